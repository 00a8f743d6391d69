"""The normalize stage: raw batches -> typed rows in the shared schema + per-value errors."""

from __future__ import annotations

import shutil
from typing import Any

import pandas as pd

from etl import meta
from etl.config import Settings
from etl.contracts import Contracts, Source
from etl.ledger import write_ledger
from etl.validate.quarantine import raw_json
from etl.workdir import Progress, Writer, iter_frames, raw_paths, work_dir


def stage_normalize(
    settings: Settings,
    contracts: Contracts,
    source: Source,
    logical_date: str,
    run_id: str,
    progress: Progress | None = None,
) -> dict[str, Any]:
    from etl.normalize import normalize
    from etl.normalize.core import Memo

    started = meta.now()
    table = contracts.tables[source.table]
    wd = work_dir(settings, source.name, logical_date, run_id)
    shutil.rmtree(wd / "normalized", ignore_errors=True)
    raws = raw_paths(settings, source.name, run_id)
    staged_w = Writer(wd / "normalized" / "staged.arrow")
    errors_w = Writer(wd / "normalized" / "errors.arrow")
    raw_rows_w = Writer(wd / "normalized" / "raw_rows.arrow")
    rows_in = 0
    memos: dict[str, Memo] = {}  # repeated values are transformed once per batch
    for raw in iter_frames([p for _, p, _ in raws], source.chunk_rows):
        result = normalize(raw, source, table, memos=memos)
        staged = result.staged
        staged["_run_id"] = run_id
        staged["_logical_date"] = pd.Timestamp(logical_date).date()
        staged_w.write(staged)
        if len(result.errors):
            errs = result.errors.copy()
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
        rows_in += len(raw)
        if progress:
            progress("normalize", len(raw))
    staged_w.close()
    errors_w.close()
    raw_rows_w.close()
    write_ledger(
        settings,
        run_id=run_id,
        source=source.name,
        stage="normalize",
        logical_date=logical_date,
        rows_in=rows_in,
        rows_out=staged_w.rows,
        rows_quarantined=0,
        started=started,
        status="ok",
    )
    return {
        "source": source.name,
        "stage": "normalize",
        "rows_in": rows_in,
        "rows_out": staged_w.rows,
        "value_errors": errors_w.rows,
    }
