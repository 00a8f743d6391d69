"""Replay quarantined rows after a mapping or code-list fix.

Each published partition's quarantined rows are rebuilt from their raw values
(kept as delivered in the quarantine), then normalized and validated again by the
code a run uses (etl.normalize.stage.normalize_chunk, etl.validate.stage and
etl.validate.quarantine) with the current contracts. Rows that now pass move to
staging; the rest stay with their updated reasons. Uniqueness is judged beside the
rows the partition already published, so a replayed row that duplicates a published
key stays quarantined. The move is one write-audit-publish of the partition, and the
ledger records it once (stage `replay` on the partition's original run), so the run
still reconciles: loaded + quarantined is unchanged.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from etl import meta
from etl.config import Settings
from etl.contracts import Contracts, SharedTable, Source
from etl.datetypes import as_dates, date_columns
from etl.ledger import ledger
from etl.load.stage import publish_partition
from etl.load.warehouse import LINEAGE, Partition, PartitionContent, audit, partition_path
from etl.lock import writer_lock
from etl.published import publishing
from etl.validate.quarantine import assemble

log = logging.getLogger(__name__)

#: what a changed quarantine row differs in
_VERDICT = ["_batch_id", "_row_number", "reasons", "failed_expectations", "details"]


@dataclass(frozen=True)
class _Published:
    """One row of meta.partition with quarantined rows."""

    logical_date: date
    run_id: str
    staging_path: str | None
    quarantine_path: str
    source_rows: int
    rows_quarantined: int


def replay(settings: Settings, contracts: Contracts, source: str) -> dict[str, Any]:
    """Replay every published partition of `source` that holds quarantined rows (holding
    the home's writer lock, then publishing the catalog); returns how many partitions there were, how many rows moved
    and how many stay quarantined."""
    run_id = f"replay-{source}"
    # readers see the replayed partitions in a new published catalog
    with writer_lock(settings, run_id, say=log.warning), publishing(settings, run_id):
        return _replay(settings, contracts, source)


def _replay(settings: Settings, contracts: Contracts, source: str) -> dict[str, Any]:
    from etl.validate.runner import SuiteRunner

    src = contracts.source(source)
    table = contracts.tables[src.table]
    runner = SuiteRunner(settings.expectations_dir, table, src, settings.validation_engine)
    with meta.connect(settings) as con:
        parts = [
            _Published(*row)
            for row in con.execute(
                "select logical_date, run_id, staging_path, quarantine_path, source_rows, rows_quarantined "
                "from meta.partition where table_name=? and source=? and quarantine_path is not null "
                "order by logical_date",
                [table.name, source],
            ).fetchall()
        ]
    moved_total, remaining_total = 0, 0
    for part in parts:
        moved, remaining = _replay_partition(settings, src, table, runner, part)
        moved_total += moved
        remaining_total += remaining
    return {
        "source": source,
        "partitions": len(parts),
        "moved": moved_total,
        "still_quarantined": remaining_total,
    }


def _replay_partition(
    settings: Settings, src: Source, table: SharedTable, runner: Any, part: _Published
) -> tuple[int, int]:
    """Re-validate one partition's quarantine; publish the partition again when a row
    moved or a reason changed. Returns (rows moved, rows still quarantined)."""
    from etl.validate.stage import check_beside_published

    q = pd.read_parquet(settings.warehouse / part.quarantine_path)  # stored relative to the root
    q["_batch_id"] = q["_batch_id"].astype(str)
    q["_row_number"] = q["_row_number"].astype("int64")
    logical_date = str(part.logical_date)
    staged, value_errors = _renormalize(q, src, table, part.run_id, logical_date)
    published = pq.read_table(settings.warehouse / part.staging_path) if part.staging_path else None
    still = assemble(
        value_errors,
        check_beside_published(runner, staged, published),
        known_raw=q.set_index(["_batch_id", "_row_number"])["raw"],
        raw_files=[],
        source=src.name,
        run_id=part.run_id,
        logical_date=logical_date,
    )
    moved_rows = len(q) - len(still)
    if not moved_rows and _same_verdicts(q, still):
        return 0, len(q)
    failing = pd.MultiIndex.from_frame(still[["_batch_id", "_row_number"]])
    keys = pd.MultiIndex.from_frame(staged[["_batch_id", "_row_number"]].astype({"_batch_id": str}))
    moved = staged[~keys.isin(failing)]
    old = published.to_pandas() if published is not None else moved.iloc[0:0]
    new_staging = pd.concat([old, moved[old.columns] if len(old.columns) else moved], ignore_index=True)
    # DATE, also where the partition was written before dates were typed (TIMESTAMP)
    new_staging = as_dates(new_staging, date_columns(table))
    p = Partition(table.name, src.name, logical_date, f"{part.run_id}-replay-{meta.new_run_id('r')[2:]}")
    new_st = partition_path(settings, "staging", p)
    new_st.parent.mkdir(parents=True, exist_ok=True)
    new_staging.to_parquet(new_st, index=False)
    new_q = partition_path(settings, "quarantine", p) if len(still) else None
    if new_q is not None:
        new_q.parent.mkdir(parents=True, exist_ok=True)
        still.to_parquet(new_q, index=False)
    audit(new_st, len(new_staging), table.column_names + LINEAGE)
    audit(new_q, len(still), ["_source", "_batch_id", "_row_number", "reasons", "raw"])
    with ledger(
        settings, run_id=part.run_id, source=src.name, stage="replay", logical_date=logical_date
    ) as entry:
        content = PartitionContent(
            new_st, new_q, len(new_staging), part.source_rows + moved_rows, part.rows_quarantined - moved_rows
        )
        publish_partition(settings, table, p, content)
        entry.counts(len(q), moved_rows, -moved_rows)
        entry.message = f"replayed quarantine of {logical_date}: {moved_rows} row(s) moved to staging"
    return moved_rows, len(still)


def _renormalize(
    q: pd.DataFrame, src: Source, table: SharedTable, run_id: str, logical_date: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The quarantined rows rebuilt from their raw JSON and normalized as a run does, batch
    by batch (row numbers are unique within a batch): (staged rows, value errors)."""
    from etl.normalize.stage import normalize_chunk

    staged, errors = [], []
    for _, qb in q.groupby("_batch_id", sort=False):
        chunk = normalize_chunk(_raw_frame(qb, src), src, table, run_id=run_id, logical_date=logical_date)
        staged.append(chunk.staged)
        errors.append(chunk.errors)
    value_errors = pd.concat(errors, ignore_index=True)
    if len(value_errors):
        value_errors["_row_number"] = value_errors["_row_number"].astype("int64")
    return pd.concat(staged, ignore_index=True), value_errors


def _raw_frame(q: pd.DataFrame, src: Source) -> pd.DataFrame:
    """Quarantined rows as the raw rows extract delivered: every field as text, lineage."""
    raw = pd.DataFrame([json.loads(r) if isinstance(r, str) else {} for r in q["raw"]])
    for col in src.field_names:
        if col not in raw.columns:
            raw[col] = None
    raw = raw.astype("string")
    raw["_source"], raw["_batch_id"] = q["_source"].to_numpy(), q["_batch_id"].to_numpy()
    raw["_row_number"] = q["_row_number"].astype("int64").to_numpy()
    if "_row_error" not in raw.columns:
        raw["_row_error"] = pd.Series([None] * len(raw), dtype="string")
    # through Arrow, as a run reads its raw Parquet: the same dtypes reach normalize
    return pa.Table.from_pandas(raw, preserve_index=False).replace_schema_metadata(None).to_pandas()


def _same_verdicts(before: pd.DataFrame, after: pd.DataFrame) -> bool:
    """Whether the quarantine rows say the same (same rows, reasons, expectations, details)."""

    def norm(df: pd.DataFrame) -> list[tuple[str, ...]]:
        return sorted(
            tuple("" if pd.isna(v) else str(v) for v in row) for row in df[_VERDICT].itertuples(index=False)
        )

    return norm(before) == norm(after)
