"""The extract stage: landing -> raw Parquet batches recorded in meta.extract_batch."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from etl import meta
from etl.config import Settings
from etl.contracts import Contracts, Source
from etl.errors import GovbaseError
from etl.ledger import write_ledger
from etl.workdir import Progress

log = logging.getLogger(__name__)


def stage_extract(
    settings: Settings,
    contracts: Contracts,
    source: Source,
    logical_date: str,
    run_id: str,
    full_refresh: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    from etl.extract import extract_source

    started = meta.now()
    results = extract_source(
        settings,
        source,
        run_id=run_id,
        logical_date=date.fromisoformat(logical_date),
        full_refresh=full_refresh,
        progress=progress,
    )
    extracted = [r for r in results if r.status == "extracted"]
    failed = [r for r in results if r.status == "failed"]
    rows = sum(r.rows for r in extracted)
    adopted = _adopt_unpublished(settings, source.name, run_id, logical_date)
    rows += sum(n for _, n in adopted)
    status = "failed" if failed else "ok"
    message = "; ".join(r.message or "" for r in failed) or None
    write_ledger(
        settings,
        run_id=run_id,
        source=source.name,
        stage="extract",
        logical_date=logical_date,
        rows_in=rows,
        rows_out=rows,
        rows_quarantined=0,
        started=started,
        status=status,
        message=message,
    )
    summary = {
        "source": source.name,
        "stage": "extract",
        "files": len(results),
        "extracted": len(extracted),
        "carried_forward": len(adopted),
        "skipped": sum(r.status == "skipped" for r in results),
        "failed": len(failed),
        "rows": rows,
    }
    if failed:
        raise GovbaseError(f"extract failed for {len(failed)} file(s) of {source.name}: {message}")
    return summary


def _adopt_unpublished(
    settings: Settings, source: str, run_id: str, logical_date: str
) -> list[tuple[str, int]]:
    """Carry forward batches an earlier run of the same (source, logical date) extracted
    but never published (killed, or stopped by validation): the file is not extracted
    twice, so without this its rows would sit in raw forever. Only the same logical
    date: Airflow never runs one (DAG, date) twice at once, while runs of other dates
    (a backfill beside a scheduled run) may be in flight. Returns (batch_id, rows)."""
    with meta.connect(settings) as con:
        rows = con.execute(
            "update meta.extract_batch set run_id = ? where source = ? and status = 'extracted' "
            "and logical_date = ? and coalesce(run_id, '') <> ? and coalesce(run_id, '') not in ("
            "  select run_id from meta.run_ledger where source = ? and stage = 'load' and status = 'ok') "
            "returning batch_id, rows",
            [run_id, source, logical_date, run_id, source],
        ).fetchall()
    if rows:
        log.warning("%s: carrying forward %d unpublished batch(es) into run %s", source, len(rows), run_id)
    return [(b, int(n or 0)) for b, n in rows]
