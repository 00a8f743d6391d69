"""The published read-only catalog: what analysts, `govbase status`, the quarantine,
review, asof and evaluate commands open, never the writer's own file.

`warehouse/govbase.duckdb` belongs to the one writer (etl.lock): its connections come
and go through a run, and a reader holding it open would stop the loader on DuckDB's
file lock. After each load, replay, publish, consolidate and recorded task failure the
writer builds `warehouse/catalog/govbase.duckdb` anew: every schema the writer has
(staging, quarantine, core, open, meta, and any later one) with each of its tables and
views copied as a table, written to a temporary file next to it, fsynced, and moved over
the previous one with `os.replace`. A reader opening it gets the old file or the new
one, whole; a reader holding it open keeps the file it opened (its inode lives on until
it closes), so it sees one state throughout, never a mix.

Tables, not views over Parquet, on purpose: the snapshot is then self-contained. Views
would name Parquet files that DuckDB resolves against the reading process's working
directory (or its `file_search_path`), so an analyst opening the file from elsewhere
would find no files; and the writer deletes superseded files after each publish, so a
reader still on an older snapshot would fail on files that are gone. The cost is a copy
of the data per publish (figures in docs/performance.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from etl import meta
from etl.config import Settings
from etl.debris import sweep_catalog
from etl.errors import GovbaseError, write_error
from etl.faults import checkpoint
from etl.lock import WriterBusy, describe, holder, writer_lock

log = logging.getLogger(__name__)

#: schemas of the writer's file that are DuckDB's own, not the warehouse's
_INTERNAL = ("main", "information_schema", "pg_catalog")


class CatalogMissing(GovbaseError):
    """No published catalog yet, and the writer is busy making the first one."""


def publish_catalog(settings: Settings, run_id: str | None = None) -> Path:
    """Replace the published catalog by a snapshot of the writer's catalog (atomically);
    returns its path. Takes the writer lock (re-entrant: callers usually hold it)."""
    target = settings.catalog_path
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with writer_lock(settings, run_id):
        tmp.unlink(missing_ok=True)
        sweep_catalog(settings, keep=tmp)  # snapshots a killed writer began
        try:
            with meta.connect(settings) as con:
                con.execute(f"attach {meta.sql_literal(str(tmp))} as published")
                try:
                    _copy_into(con, "published", run_id)
                finally:
                    con.execute("detach published")  # checkpoints: the file is whole, no WAL
            _fsync(tmp)
            checkpoint("catalog:after_snapshot")
            os.replace(tmp, target)
            checkpoint("catalog:after_replace")
        except BaseException:
            tmp.unlink(missing_ok=True)
            Path(f"{tmp}.wal").unlink(missing_ok=True)
            raise
        _fsync(target.parent)
    return target


@contextmanager
def publishing(settings: Settings, run_id: str | None, *, enabled: bool = True) -> Iterator[None]:
    """Publish the catalog when the block ends (when `enabled`): after the block succeeded
    (a failure to publish then raises), or after it raised (readers see the failure in the
    ledger; a failure to publish is logged and the block's own error stands)."""
    if not enabled:
        yield
        return
    try:
        yield
    except BaseException:
        try:
            publish_catalog(settings, run_id)
        except Exception as exc:
            if write_error(exc, "the published catalog") is None:
                log.exception("the published catalog could not be refreshed after a failure")
            else:  # the home cannot be written (full, no permission): the block's error says so
                log.error("the published catalog could not be refreshed after the failure: %s", exc)
        raise
    publish_catalog(settings, run_id)


def _relations(con: duckdb.DuckDBPyConnection, db: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The writer's own schemas and every (schema, table or view) in them."""
    relations = con.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = ? and not internal "
        "union all select schema_name, view_name from duckdb_views() where database_name = ? and not internal "
        "order by 1, 2",
        [db, db],
    ).fetchall()
    schemas = [
        s
        for (s,) in con.execute(
            "select schema_name from duckdb_schemas() where database_name = ? order by 1", [db]
        ).fetchall()
        if s not in _INTERNAL
    ]
    return schemas, [(s, n) for s, n in relations if s not in _INTERNAL]


def _copy_into(con: duckdb.DuckDBPyConnection, alias: str, run_id: str | None) -> None:
    """Every table and view of the writer's schemas, as tables of database `alias`."""
    db = con.execute("select current_database()").fetchall()[0][0]
    schemas, relations = _relations(con, db)
    con.execute("begin transaction")  # one consistent read of the writer's file
    try:
        for schema in schemas:
            con.execute(f'create schema if not exists {alias}."{schema}"')
        for schema, name in relations:
            con.execute(
                f'create table {alias}."{schema}"."{name}" as select * from "{db}"."{schema}"."{name}"'
            )
        con.execute(
            f"create or replace table {alias}.meta.published as select now()::timestamp as published_at, "
            "?::varchar as run_id",
            [run_id],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def read_catalog(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the published catalog; never takes the writer's lock
    once the catalog exists. A home without one yet (never run, or run by a version
    that did not publish) gets it made now, when no writer is busy."""
    path = settings.catalog_path
    if not path.exists():
        try:
            with writer_lock(settings, "first-catalog", timeout=0):
                if not path.exists():
                    publish_catalog(settings, "first-catalog")
        except WriterBusy:
            raise CatalogMissing(
                f"{path} is not published yet: {describe(holder(settings))} is writing the home; "
                "it appears when its first load is done"
            ) from None
    con = duckdb.connect(str(path), read_only=True)
    try:
        yield con
    finally:
        con.close()


__all__ = ["CatalogMissing", "publish_catalog", "publishing", "read_catalog"]
