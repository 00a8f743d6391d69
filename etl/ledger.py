"""meta.run_ledger: one row per stage of a run, with its counts and status."""

from __future__ import annotations

from typing import Any

from etl import meta
from etl.config import Settings


def write_ledger(
    settings: Settings,
    *,
    run_id: str,
    source: str,
    stage: str,
    logical_date: str,
    rows_in: int,
    rows_out: int,
    rows_quarantined: int,
    started: Any,
    status: str,
    message: str | None = None,
) -> None:
    with meta.connect(settings) as con:
        con.execute(
            "insert into meta.run_ledger values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                source,
                stage,
                logical_date,
                rows_in,
                rows_out,
                rows_quarantined,
                started,
                meta.now(),
                status,
                message,
            ],
        )
