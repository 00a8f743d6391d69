"""Findings of normalization (rows kept, facts recorded) into meta.source_error.

A finding names source, file, row and problem like a reader's warning does, so an
operator finds it where the other per-row notes are; its values are masked already
(NormalizeResult.findings).
"""

from __future__ import annotations

import duckdb
import pandas as pd

from etl.meta import now


def with_batch(findings: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
    """`findings` of one chunk with the `_batch_id` of each finding's raw row."""
    lookup = raw[["_row_number", "_batch_id"]].drop_duplicates("_row_number")
    return findings.merge(lookup.astype({"_row_number": "Int64"}), on="_row_number", how="left")


def record_findings(con: duckdb.DuckDBPyConnection, source: str, run_id: str, findings: pd.DataFrame) -> int:
    """Insert one meta.source_error row per finding (kind = its reason; problem =
    "<column>: <detail>"), the file taken from the finding's batch. Returns the count."""
    if findings.empty:
        return 0
    frame = pd.DataFrame(
        {
            "batch_id": findings["_batch_id"].astype("string"),
            "row_number": findings["_row_number"].astype("Int64"),
            "kind": findings["reason"].astype("string"),
            "problem": (findings["column"].astype("string") + ": " + findings["detail"].astype("string")),
        }
    )
    con.register("normalize_findings", frame)
    try:
        con.execute(
            "insert into meta.source_error (run_id, source, file, row_number, kind, problem, recorded_at) "
            "select ?, ?, b.file, f.row_number, f.kind, f.problem, ? from normalize_findings f "
            "left join meta.extract_batch b on b.batch_id = f.batch_id order by f.batch_id, f.row_number",
            [run_id, source, now()],
        )
    finally:
        con.unregister("normalize_findings")
    return len(frame)
