"""Replay quarantined rows after a mapping or code-list fix.

Each published partition's quarantined rows are rebuilt from their raw values
(kept as delivered in the quarantine), normalized and validated again with the
current contracts; rows that now pass move to staging, the rest stay with their
updated reasons. The move is one write-audit-publish of the partition, and the
ledger records it once (stage `replay` on the partition's original run), so the
run still reconciles: loaded + quarantined is unchanged.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pandas as pd

from etl import meta
from etl.config import Settings
from etl.contracts import Contracts
from etl.load.warehouse import LINEAGE, Partition, audit, partition_path, publish
from etl.lock import writer_lock
from etl.published import publish_catalog

log = logging.getLogger(__name__)


def replay(settings: Settings, contracts: Contracts, source: str) -> dict[str, Any]:
    """Replay the quarantined rows of `source` (holding the home's writer lock)."""
    with writer_lock(settings, f"replay-{source}", say=log.warning):
        summary = _replay(settings, contracts, source)
        publish_catalog(settings, f"replay-{source}")
        return summary


def _replay(settings: Settings, contracts: Contracts, source: str) -> dict[str, Any]:
    from etl.normalize import normalize
    from etl.validate.runner import SuiteRunner

    src = contracts.source(source)
    table = contracts.tables[src.table]
    runner = SuiteRunner(settings.expectations_dir, table, src)
    with meta.connect(settings) as con:
        parts = con.execute(
            "select logical_date, run_id, staging_path, quarantine_path, rows_loaded, source_rows, rows_quarantined "
            "from meta.partition where table_name=? and source=? and quarantine_path is not null order by logical_date",
            [table.name, source],
        ).fetchall()
    moved_total, remaining_total = 0, 0
    for logical_date, run_id, st_path, q_path, _rows_loaded, source_rows, rows_q in parts:
        q = pd.read_parquet(settings.warehouse / q_path)
        q_keys = list(zip(q["_batch_id"], q["_row_number"].astype("int64"), strict=True))
        moved_parts, passed_keys = [], set()
        for batch_id, qb in q.groupby("_batch_id", sort=False):
            staged, bad = _recheck(src, table, runner, qb, normalize)
            ok = staged[~staged["_row_number"].astype("int64").isin(bad)]
            moved_parts.append(ok)
            passed_keys |= {(batch_id, int(n)) for n in ok["_row_number"]}
        # A wide row passes only when all its values pass.
        if not passed_keys:
            remaining_total += len(q)
            continue
        moved = pd.concat(moved_parts, ignore_index=True)
        replay_run = f"{run_id}-replay-{meta.new_run_id('r')[2:]}"
        moved["_run_id"] = run_id
        moved["_logical_date"] = pd.Timestamp(logical_date).date()
        old = pd.read_parquet(settings.warehouse / st_path) if st_path else moved.iloc[0:0]
        new_staging = pd.concat([old, moved[old.columns] if len(old.columns) else moved], ignore_index=True)
        keep = q[[k not in passed_keys for k in q_keys]]
        p = Partition(table.name, source, str(logical_date), replay_run)
        new_st = partition_path(settings, "staging", p)
        new_st.parent.mkdir(parents=True, exist_ok=True)
        new_staging.to_parquet(new_st, index=False)
        new_q = None
        if len(keep):
            new_q = partition_path(settings, "quarantine", p)
            keep.to_parquet(new_q, index=False)
        audit(new_st, len(new_staging), table.column_names + LINEAGE)
        moved_rows = len(q) - len(keep)
        with meta.connect(settings) as con:
            superseded = publish(
                con,
                settings,
                table,
                p,
                staging_path=new_st,
                quarantine_path=new_q,
                rows_loaded=len(new_staging),
                source_rows=source_rows + moved_rows,
                rows_quarantined=rows_q - moved_rows,
            )
            con.execute(
                "insert into meta.run_ledger values (?, ?, 'replay', ?, ?, ?, ?, ?, ?, 'ok', ?)",
                [
                    run_id,
                    source,
                    logical_date,
                    len(q),
                    moved_rows,
                    -moved_rows,
                    meta.now(),
                    meta.now(),
                    f"replayed quarantine of {logical_date}: {moved_rows} row(s) moved to staging",
                ],
            )
        for f in superseded:
            f.unlink(missing_ok=True)
        moved_total += moved_rows
        remaining_total += len(keep)
    return {
        "source": source,
        "partitions": len(parts),
        "moved": moved_total,
        "still_quarantined": remaining_total,
    }


def _recheck(
    src: Any, table: Any, runner: Any, q: pd.DataFrame, normalize: Any
) -> tuple[pd.DataFrame, set[int]]:
    """Normalize and validate quarantined rows of one batch again; returns staged rows and failing row numbers."""
    raw = pd.DataFrame([json.loads(r) if isinstance(r, str) else {} for r in q["raw"]])
    for col in src.field_names:
        if col not in raw.columns:
            raw[col] = None
    raw = raw.astype("string")
    raw["_source"], raw["_batch_id"] = q["_source"].to_numpy(), q["_batch_id"].to_numpy()
    raw["_row_number"] = q["_row_number"].astype("int64").to_numpy()
    if "_row_error" not in raw.columns:
        raw["_row_error"] = pd.Series([None] * len(raw), dtype="string")
    result = normalize(raw, src, table)
    staged = result.staged
    bad = set(result.errors["_row_number"].astype("int64")) if len(result.errors) else set()
    fails, _ = runner.validate_rows(staged)
    if len(fails):
        bad |= set(staged.iloc[fails["position"].to_numpy()]["_row_number"].astype("int64"))
    return staged, bad
