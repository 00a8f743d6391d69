"""The extract stage's records in the warehouse catalog (meta.extract_batch, meta.source_error)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from etl.config import Settings
from etl.errors import SourceError
from etl.meta import connect, now


@dataclass
class BatchResult:
    """One file (or SQL pull) of one source.

    status: extracted (raw_path holds `rows` rows), skipped (already extracted
    with the same sha256, or no new SQL rows; no raw file), failed (no raw
    file; `message` says why, meta.source_error has the details). In the catalog only, a
    batch a newer one of its run replaces becomes superseded (etl.extract.stage._supersede).
    """

    batch_id: str
    source: str
    file: str | None
    status: str
    rows: int = 0
    flagged_rows: int = 0
    delivered: int | None = None  # records the file delivers, counted apart from the parser
    raw_path: Path | None = None
    encoding: str | None = None
    sha256: str | None = None
    message: str | None = None
    file_bytes: int | None = None
    logical_date: date | None = None
    run_id: str | None = None
    watermark_from: str | None = None
    watermark_to: str | None = None
    started_at: datetime = field(default_factory=now)
    finished_at: datetime | None = None


_COLUMNS = (
    "batch_id, run_id, source, file, file_sha256, file_bytes, encoding, rows, flagged_rows, raw_path, "
    "logical_date, status, message, started_at, finished_at, watermark_from, watermark_to, delivered"
)


def find_extracted(con: duckdb.DuckDBPyConnection, source: str, sha256: str) -> str | None:
    """batch_id of an extracted batch of `source` with this file fingerprint, if any."""
    row = con.execute(
        "select batch_id from meta.extract_batch where source = ? and file_sha256 = ? and status = 'extracted' "
        "order by started_at desc limit 1",
        [source, sha256],
    ).fetchone()
    return row[0] if row else None


def _relative(path: Path | None, warehouse: Path | None) -> str | None:
    if path is None:
        return None
    return (
        Path(path).relative_to(warehouse).as_posix() if warehouse and Path(path).is_absolute() else str(path)
    )


def record_batch(
    con: duckdb.DuckDBPyConnection,
    result: BatchResult,
    *,
    warnings: Sequence[SourceError] = (),
    flagged: Sequence[tuple[int, str, str]] = (),
    error: SourceError | None = None,
    lines: dict[int, int] | None = None,
    warehouse: Path | None = None,
) -> None:
    """Insert the batch row and its source_error rows (failure, warnings, flagged rows).
    The raw path is stored relative to `warehouse` (the root of the home's warehouse)."""
    con.execute(
        f"insert into meta.extract_batch ({_COLUMNS}) values ({', '.join('?' * 18)})",
        [
            result.batch_id,
            result.run_id,
            result.source,
            result.file,
            result.sha256,
            result.file_bytes,
            result.encoding,
            result.rows,
            result.flagged_rows,
            _relative(result.raw_path, warehouse),
            result.logical_date,
            result.status,
            result.message,
            result.started_at,
            result.finished_at,
            result.watermark_from,
            result.watermark_to,
            result.delivered,
        ],
    )
    at = now()
    errs = ([error] if error else []) + list(warnings)
    rows = {
        "run_id": [result.run_id] * (len(errs) + len(flagged)),
        "source": [result.source] * (len(errs) + len(flagged)),
        "file": [e.file or result.file for e in errs] + [result.file] * len(flagged),
        "row_number": [e.row for e in errs] + [r for r, _, _ in flagged],
        "line_number": [e.line for e in errs] + [(lines or {}).get(r) for r, _, _ in flagged],
        "kind": [e.kind for e in errs] + [k for _, k, _ in flagged],
        "problem": [e.problem for e in errs] + [p for _, _, p in flagged],
        "recorded_at": [at] * (len(errs) + len(flagged)),
    }
    if rows["kind"]:
        errors_tbl = pa.table(
            rows,
            schema=pa.schema(
                [
                    ("run_id", pa.string()),
                    ("source", pa.string()),
                    ("file", pa.string()),
                    ("row_number", pa.int64()),
                    ("line_number", pa.int64()),
                    ("kind", pa.string()),
                    ("problem", pa.string()),
                    ("recorded_at", pa.timestamp("us")),
                ]
            ),
        )
        con.register("_extract_errors", errors_tbl)
        try:
            con.execute(
                "insert into meta.source_error "
                "(run_id, source, file, row_number, line_number, kind, problem, recorded_at) "
                "select * from _extract_errors"
            )
        finally:
            con.unregister("_extract_errors")


def _from_row(row: tuple[Any, ...]) -> BatchResult:
    (
        batch_id,
        run_id,
        source,
        file,
        sha,
        nbytes,
        enc,
        rows,
        flagged,
        raw,
        ld,
        status,
        msg,
        started,
        finished,
        wm_from,
        wm_to,
        delivered,
    ) = row
    return BatchResult(
        batch_id=str(batch_id),
        run_id=run_id,
        source=str(source),
        file=file,
        sha256=sha,
        file_bytes=nbytes,
        encoding=enc,
        rows=int(rows or 0),
        flagged_rows=int(flagged or 0),
        raw_path=Path(str(raw)) if raw else None,
        logical_date=ld,
        status=str(status),
        message=msg,
        started_at=started,
        finished_at=finished,
        watermark_from=wm_from,
        watermark_to=wm_to,
        delivered=int(delivered) if delivered is not None else None,
    )


def raw_batches(
    settings: Settings,
    source: str,
    run_id: str | None = None,
    logical_date: date | None = None,
    *,
    status: str = "extracted",
) -> list[BatchResult]:
    """The raw batches of `source` the next stage reads, oldest first.

    Filtered by run_id and/or logical_date when given; by default only
    batches with status extracted (each has a raw Parquet file).
    """
    sql = f"select {_COLUMNS} from meta.extract_batch where source = ? and status = ?"
    params: list[object] = [source, status]
    if run_id is not None:
        sql += " and run_id = ?"
        params.append(run_id)
    if logical_date is not None:
        sql += " and logical_date = ?"
        params.append(logical_date)
    sql += " order by started_at, batch_id"
    with connect(settings) as con:
        batches = [_from_row(r) for r in con.execute(sql, params).fetchall()]
    for b in batches:  # stored relative to the warehouse root: this home's file
        if b.raw_path is not None:
            b.raw_path = settings.warehouse / b.raw_path
    return batches
