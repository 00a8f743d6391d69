"""The normalize stage: raw batches -> typed rows in the shared schema + per-value errors."""

from __future__ import annotations

import shutil
from typing import Any

import pandas as pd

from etl.validate.quarantine import raw_json
from etl.workdir import StageRun, Writer, iter_frames


def stage_normalize(run: StageRun) -> dict[str, Any]:
    """Normalize the run's raw batches chunk by chunk into `WorkDir.staged`; each value that
    could not be normalized goes to `WorkDir.errors`, its delivered row to `WorkDir.raw_rows`."""
    from etl.normalize import normalize
    from etl.normalize.core import Memo

    source, table, wd = run.source, run.table, run.work
    shutil.rmtree(wd.normalized, ignore_errors=True)
    staged_w, errors_w, raw_rows_w = Writer(wd.staged), Writer(wd.errors), Writer(wd.raw_rows)
    rows_in = 0
    memos: dict[str, Memo] = {}  # repeated values are transformed once per batch
    for raw in iter_frames([p for _, p, _ in run.raw_batches()], source.chunk_rows):
        result = normalize(raw, source, table, memos=memos)
        staged = result.staged
        staged["_run_id"] = run.run_id
        staged["_logical_date"] = pd.Timestamp(run.logical_date).date()
        staged_w.write(staged)
        if len(result.errors):
            _write_value_errors(raw, result.errors, errors_w, raw_rows_w)
        rows_in += len(raw)
        run.tick("normalize", len(raw))
    staged_w.close()
    errors_w.close()
    raw_rows_w.close()
    run.ledger.counts(rows_in, staged_w.rows)
    return {
        "source": source.name,
        "stage": "normalize",
        "rows_in": rows_in,
        "rows_out": staged_w.rows,
        "value_errors": errors_w.rows,
    }


def _write_value_errors(
    raw: pd.DataFrame, errors: pd.DataFrame, errors_w: Writer, raw_rows_w: Writer
) -> None:
    """The value errors of one chunk, keyed by (_batch_id, _row_number), and the delivered
    rows behind them as raw JSON."""
    errs = errors.copy()
    if "_batch_id" not in errs.columns:
        lookup = raw[["_row_number", "_batch_id"]].drop_duplicates("_row_number")
        errs = errs.merge(lookup, on="_row_number", how="left")
    errors_w.write(errs.astype({c: "string" for c in errs.columns if c not in ("_row_number",)}))
    # the delivered rows behind the errors, kept now while they are in memory: the
    # quarantine needs them, and finding them later means reading the whole raw batch
    bad_rows = raw[raw["_row_number"].isin(errs["_row_number"].astype("int64").unique())]
    raw_rows_w.write(
        pd.DataFrame(
            {
                "_batch_id": bad_rows["_batch_id"].astype("string").to_numpy(),
                "_row_number": bad_rows["_row_number"].astype("int64").to_numpy(),
                "raw": pd.array(raw_json(bad_rows), dtype="string"),
            }
        )
    )
