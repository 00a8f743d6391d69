"""The normalize stage: raw batches -> typed rows in the shared schema + per-value errors."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from etl import meta
from etl.contracts import SharedTable, Source
from etl.faults import checkpoint
from etl.validate.quarantine import raw_json
from etl.workdir import StageRun, Writer, iter_frames

if TYPE_CHECKING:
    from etl.normalize.core import Memo


@dataclass
class NormalizedChunk:
    """One chunk of raw rows, normalized.

    staged: typed rows in the shared schema with their lineage (_run_id, _logical_date set);
    errors: one row per value that could not be normalized, keyed by (_batch_id, _row_number);
    raw_rows: the delivered rows behind those errors (_batch_id, _row_number, raw JSON);
    findings: facts about kept rows (NormalizeResult.findings, values masked) with _batch_id.
    """

    staged: pd.DataFrame
    errors: pd.DataFrame
    raw_rows: pd.DataFrame
    findings: pd.DataFrame


def normalize_chunk(
    raw: pd.DataFrame,
    source: Source,
    table: SharedTable,
    *,
    run_id: str,
    logical_date: str,
    memos: dict[str, Memo] | None = None,
) -> NormalizedChunk:
    """Normalize raw rows (the extract's columns: delivered fields as text plus _source,
    _batch_id, _row_number, _row_error) the way a run does; replay calls it too."""
    from etl.normalize import normalize
    from etl.normalize.findings import with_batch

    result = normalize(raw, source, table, memos=memos)
    staged = result.staged
    staged["_run_id"] = run_id
    staged["_logical_date"] = pd.Timestamp(logical_date).date()
    errs = result.errors.copy()
    if len(errs) and "_batch_id" not in errs.columns:
        lookup = raw[["_row_number", "_batch_id"]].drop_duplicates("_row_number")
        errs = errs.merge(lookup, on="_row_number", how="left")
    errs = errs.astype({c: "string" for c in errs.columns if c not in ("_row_number",)})
    # the delivered rows behind the errors, kept now while they are in memory: the
    # quarantine needs them, and finding them later means reading the whole raw batch
    bad_rows = (
        raw[raw["_row_number"].isin(errs["_row_number"].astype("int64").unique())] if len(errs) else raw[:0]
    )
    raw_rows = pd.DataFrame(
        {
            "_batch_id": bad_rows["_batch_id"].astype("string").to_numpy(),
            "_row_number": bad_rows["_row_number"].astype("int64").to_numpy(),
            "raw": pd.array(raw_json(bad_rows), dtype="string"),
        }
    )
    findings = with_batch(result.findings, raw) if len(result.findings) else result.findings
    return NormalizedChunk(staged, errs, raw_rows, findings)


def stage_normalize(run: StageRun) -> dict[str, Any]:
    """Normalize the run's raw batches chunk by chunk into `WorkDir.staged`; each value that
    could not be normalized goes to `WorkDir.errors`, its delivered row to `WorkDir.raw_rows`;
    findings about kept rows (a combined field that disagreed) go to meta.source_error."""
    from etl.datetypes import as_dates, date_columns
    from etl.normalize.findings import record_findings

    source, table, wd = run.source, run.table, run.work
    dates = date_columns(table)
    shutil.rmtree(wd.normalized, ignore_errors=True)
    staged_w, errors_w, raw_rows_w = Writer(wd.staged), Writer(wd.errors), Writer(wd.raw_rows)
    rows_in = 0
    memos: dict[str, Memo] = {}  # repeated values are transformed once per batch
    findings: list[pd.DataFrame] = []  # rows kept, facts recorded (few)
    for raw in iter_frames([p for _, p, _ in run.raw_batches()], source.chunk_rows):
        chunk = normalize_chunk(
            raw, source, table, run_id=run.run_id, logical_date=run.logical_date, memos=memos
        )
        staged_w.write(as_dates(chunk.staged, dates))  # DATE from here on (etl.datetypes)
        checkpoint("normalize:after_chunk")
        if len(chunk.errors):
            errors_w.write(chunk.errors)
            raw_rows_w.write(chunk.raw_rows)
        if len(chunk.findings):
            findings.append(chunk.findings)
        rows_in += len(raw)
        run.tick("normalize", len(raw))
    staged_w.close()
    errors_w.close()
    raw_rows_w.close()
    checkpoint("normalize:after_files")
    with meta.connect(run.settings) as con:
        found = record_findings(
            con, source.name, run.run_id, pd.concat(findings) if findings else pd.DataFrame()
        )
    checkpoint("normalize:after_findings")
    run.ledger.counts(rows_in, staged_w.rows)
    return {
        "source": source.name,
        "stage": "normalize",
        "rows_in": rows_in,
        "rows_out": staged_w.rows,
        "value_errors": errors_w.rows,
        "findings": found,
    }
