"""Write-audit-publish of staged batches into the warehouse.

Files are immutable and named by run: a batch is written under
  warehouse/<layer>/<table>/source=<s>/load_date=<d>/run=<run_id>.parquet
(`run=<run_id>.<n>.parquet` when that name is taken: a run id used again, by an Airflow
retry or a cleared task, never writes over the partition's current file; write;
meta.partition and the views hold that path relative to the warehouse root),
checked against what validation said it holds (audit), then made visible by one
DuckDB transaction that swaps the (table, source, date) entry in meta.partition and
recreates the views `staging.<table>` and `quarantine.<table>` over the current files
(publish). A process killed at any
point leaves either the previous or the new state: the views only ever point
at files whose publish committed. Superseded files are deleted after commit,
and any left by a killed run are swept on the next publish.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from etl.config import Settings
from etl.contracts import DUCKDB_TYPES, SharedTable
from etl.datetypes import date_columns, date_view
from etl.descriptions import comment_relation
from etl.errors import GovbaseError
from etl.faults import checkpoint
from etl.meta import sql_literal, stored_path

log = logging.getLogger(__name__)

LINEAGE = ["_source", "_batch_id", "_row_number", "_run_id", "_logical_date"]


class AuditError(GovbaseError):
    """A written batch does not hold what validation said it would."""


@dataclass(frozen=True)
class Partition:
    table: str
    source: str
    logical_date: str
    run_id: str


def partition_path(settings: Settings, layer: str, p: Partition, n: int = 1) -> Path:
    """The `n`-th file name of partition `p`'s run in `layer`: `run=<run_id>.parquet`,
    `run=<run_id>.<n>.parquet` from n = 2 (see `new_partition_paths`)."""
    name = f"run={p.run_id}.parquet" if n == 1 else f"run={p.run_id}.{n}.parquet"
    return settings.layer(layer) / p.table / f"source={p.source}" / f"load_date={p.logical_date}" / name


def new_partition_paths(
    con: duckdb.DuckDBPyConnection, settings: Settings, p: Partition
) -> tuple[Path, Path]:
    """New (staging, quarantine) files for partition `p`'s run: `run=<run_id>.parquet`, or
    `run=<run_id>.<n>.parquet` with the smallest n >= 2 for which neither file exists nor is
    one meta.partition names for the partition. A run id used again (an Airflow retry, or a
    task cleared after its commit) must not copy its batch over the current file, which
    the views read until the publish commits: a kill mid-copy would leave them unreadable."""
    current = {
        f
        for row in con.execute(
            "select staging_path, quarantine_path from meta.partition "
            "where table_name = ? and source = ? and logical_date = ?",
            [p.table, p.source, p.logical_date],
        ).fetchall()
        for f in row
        if f
    }
    for n in itertools.count(1):
        files = (partition_path(settings, "staging", p, n), partition_path(settings, "quarantine", p, n))
        if not any(f.exists() or stored_path(settings, f) in current for f in files):
            return files
    raise AssertionError("unreachable")


def audit(path: Path | None, expected_rows: int, required_columns: list[str]) -> None:
    """Check a written Parquet file: row count and columns."""
    if path is None:
        if expected_rows:
            raise AuditError(f"expected {expected_rows} rows but no file was written")
        return
    meta = pq.read_metadata(path)
    if meta.num_rows != expected_rows:
        raise AuditError(f"{path}: holds {meta.num_rows} rows, validation passed {expected_rows}")
    names = set(meta.schema.names)
    missing = [c for c in required_columns if c not in names]
    if missing:
        raise AuditError(f"{path}: missing columns {', '.join(missing)}")


def _empty_select(table: SharedTable, quarantine: bool) -> str:
    types = DUCKDB_TYPES
    if quarantine:
        cols = [
            "cast(null as varchar) as _source",
            "cast(null as varchar) as _batch_id",
            "cast(null as bigint) as _row_number",
            "cast(null as varchar) as _run_id",
            "cast(null as date) as _logical_date",
            "cast(null as varchar) as reasons",
            "cast(null as varchar) as failed_expectations",
            "cast(null as varchar) as details",
            "cast(null as varchar) as raw",
        ]
    else:
        cols = [f"cast(null as {types[c.type]}) as {c.name}" for c in table.columns] + [
            "cast(null as varchar) as _source",
            "cast(null as varchar) as _batch_id",
            "cast(null as bigint) as _row_number",
            "cast(null as varchar) as _run_id",
            "cast(null as date) as _logical_date",
        ]
    return "select " + ", ".join(cols) + " where false"


def _view_body(con: duckdb.DuckDBPyConnection, table: str, layer: str) -> str | None:
    """The body of view <layer>.<table> over its published files (paths relative to the
    warehouse root, resolved through the connection's file_search_path); None when the
    table has no published file in that layer."""
    col = f"{layer}_path"
    files = [
        r[0]
        for r in con.execute(
            f"select {col} from meta.partition where table_name = ? and {col} is not null order by source, logical_date",
            [table],
        ).fetchall()
    ]
    if not files:
        return None
    listing = ", ".join(sql_literal(f) for f in files)
    return f"select * from read_parquet([{listing}], union_by_name = true, hive_partitioning = false)"


def refresh_views(
    con: duckdb.DuckDBPyConnection, table: SharedTable, schemas_dir: Path | None = None
) -> None:
    """(Re)create staging.<table> and quarantine.<table> over the published files; with
    `schemas_dir`, comment them from the contracts (etl.descriptions: a replaced view
    loses its comments)."""
    for layer in ("staging", "quarantine"):
        body = _view_body(con, table.name, layer)
        if body is None:
            body = _empty_select(table, quarantine=layer == "quarantine")
        elif layer == "staging":
            # DATE whatever the partitions store: those written before dates were
            # typed hold TIMESTAMP, and union_by_name would widen DATE to it
            body = date_view(con, body, date_columns(table))
        con.execute(f"create or replace view {layer}.{table.name} as {body}")
        if schemas_dir is not None:
            comment_relation(con, {table.name: table}, schemas_dir, layer, table.name)


@dataclass(frozen=True)
class PartitionContent:
    """What a published partition holds: its written, audited files (None: no rows of that
    layer) and its counts, as meta.partition records them."""

    staging_path: Path | None
    quarantine_path: Path | None
    rows_loaded: int  # staged rows
    source_rows: int  # source rows loaded
    rows_quarantined: int  # source rows quarantined


def relink_views(con: duckdb.DuckDBPyConnection) -> None:
    """Recreate the views of every table with published files (after their stored paths
    changed; the next publish of each table recreates them with its DATE casts)."""
    for (table,) in con.execute("select distinct table_name from meta.partition order by 1").fetchall():
        for layer in ("staging", "quarantine"):
            body = _view_body(con, table, layer)
            if body is not None:
                con.execute(f"create or replace view {layer}.{table} as {body}")


def publish(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    table: SharedTable,
    p: Partition,
    c: PartitionContent,
    schemas_dir: Path | None = None,
) -> list[Path]:
    """Atomically make a written batch (files under this home's warehouse) the current
    content of its partition; meta.partition stores their paths relative to the root.

    Returns the files it superseded (the caller deletes them after commit).
    """
    current = {stored_path(settings, c.staging_path), stored_path(settings, c.quarantine_path)}
    con.execute("begin transaction")
    try:
        old = con.execute(
            "select staging_path, quarantine_path from meta.partition where table_name=? and source=? and logical_date=?",
            [p.table, p.source, p.logical_date],
        ).fetchall()
        con.execute(
            "delete from meta.partition where table_name=? and source=? and logical_date=?",
            [p.table, p.source, p.logical_date],
        )
        con.execute(
            "insert into meta.partition values (?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
            [
                p.table,
                p.source,
                p.logical_date,
                p.run_id,
                stored_path(settings, c.staging_path),
                stored_path(settings, c.quarantine_path),
                c.rows_loaded,
                c.source_rows,
                c.rows_quarantined,
            ],
        )
        refresh_views(con, table, schemas_dir)
        checkpoint("load:before_commit")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return [settings.warehouse / f for row in old for f in row if f and f not in current]


def sweep(settings: Settings, con: duckdb.DuckDBPyConnection, table: str, source: str) -> int:
    """Delete files of a (table, source) under this home's warehouse that no published
    partition references (left by killed runs)."""
    referenced = {
        f
        for row in con.execute(
            "select staging_path, quarantine_path from meta.partition where table_name=? and source=?",
            [table, source],
        ).fetchall()
        for f in row
        if f
    }
    removed = 0
    for layer in ("staging", "quarantine"):
        base = settings.layer(layer) / table / f"source={source}"
        if not base.exists():
            continue
        for f in base.rglob("run=*.parquet"):
            if stored_path(settings, f) not in referenced:
                f.unlink(missing_ok=True)
                removed += 1
    return removed


def previous_rows(con: duckdb.DuckDBPyConnection, table: str, source: str, logical_date: str) -> int | None:
    """Source rows of the latest published batch of this source before `logical_date` (volume check)."""
    row = con.execute(
        "select source_rows + rows_quarantined from meta.partition where table_name=? and source=? "
        "and logical_date < ? order by logical_date desc limit 1",
        [table, source, logical_date],
    ).fetchone()
    return int(row[0]) if row else None
