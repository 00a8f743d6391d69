"""Where consolidation keeps its state: Parquet under warehouse/core/, views in schema `core`.

Every run writes each core table as one immutable file
`warehouse/core/<table>/run=<run_id>.parquet`, then one DuckDB transaction points
`meta.core_table` and the views `core.<table>` (commented from the contracts,
etl.descriptions) at the new files (both name them relative to the warehouse root;
DuckDB's file_search_path resolves the views' paths there), advances the id sequences
and records the run; superseded files are deleted after the commit. A run killed before
the commit leaves the previous base readable.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from etl import meta
from etl.config import Settings
from etl.contracts import get_contracts
from etl.datetypes import as_dates, as_datetimes
from etl.descriptions import comment_relation
from etl.faults import checkpoint

DDL_CORE = """
create table if not exists meta.core_table (
    table_name varchar primary key,
    path       varchar not null,     -- relative to the warehouse root
    run_id     varchar not null,
    rows       bigint not null,
    written_at timestamp not null
);
create table if not exists meta.id_sequence (
    entity     varchar primary key,
    last_value bigint not null
);
create table if not exists meta.resolve_run (
    run_id        varchar not null,
    entity        varchar not null,
    records       bigint,
    with_valid_id bigint,
    pairs_scored  bigint,
    pairs_linked  bigint,
    masters       bigint,
    merged        bigint,
    split         bigint,
    findings      bigint,
    review_pairs  bigint,
    model_path    varchar,           -- the Splink model (JSON) linked with, relative to the warehouse root
    started_at    timestamp,
    finished_at   timestamp
);
alter table meta.resolve_run add column if not exists mode varchar;  -- incremental | full | retrain
alter table meta.resolve_run add column if not exists records_scored bigint;  -- records (re)scored
alter table meta.resolve_run add column if not exists masters_chosen bigint;  -- masters whose golden record was chosen again
alter table meta.resolve_run add column if not exists survivorship_hash varchar;  -- digest of the survivorship rules and trust ranks
create table if not exists meta.review_decision (
    entity     varchar not null,
    rec_id_l   varchar not null,
    rec_id_r   varchar not null,
    decision   varchar not null,     -- accept | reject
    decided_by varchar,
    decided_at timestamp not null
);
"""


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL_CORE)


def core_file(con: duckdb.DuckDBPyConnection, settings: Settings, table: str) -> Path | None:
    """The current file of core.<table>, or None before its first run."""
    row = con.execute("select path from meta.core_table where table_name = ?", [table]).fetchone()
    return settings.warehouse / row[0] if row else None


def read_core(
    con: duckdb.DuckDBPyConnection, settings: Settings, table: str, entity: str | None = None
) -> pd.DataFrame | None:
    """The current content of core.<table>, or None before its first run; `entity`: only
    its rows (a table shared by the entities, e.g. provenance: read without the other's)."""
    row = con.execute("select path from meta.core_table where table_name = ?", [table]).fetchone()
    if not row:
        return None
    filters = [("entity", "==", entity)] if entity is not None else None
    # DATE columns as datetime64, as consolidation handles dates in memory (etl.datetypes)
    return as_datetimes(pd.read_parquet(settings.warehouse / row[0], filters=filters))


def read_published(con: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame | None:
    """core.<table> as the published catalog holds it (etl.published: a table, copied from
    the writer's view), or None before the first consolidate run."""
    found = con.execute(
        "select count(*) from duckdb_tables() where schema_name = 'core' and table_name = ?", [table]
    ).fetchall()[0][0]
    return con.execute(f'select * from core."{table}"').df() if found else None


def _create_view(con: duckdb.DuckDBPyConnection, name: str, rel: str) -> None:
    """View core.<name> over its current file, named relative to the warehouse root (the
    connection's file_search_path resolves it: a copied or moved home reads its own file)."""
    con.execute(f"create or replace view core.{name} as select * from read_parquet({meta.sql_literal(rel)})")


def relink_views(con: duckdb.DuckDBPyConnection) -> int:
    """Recreate the core views of an older version (absolute paths) over the files
    meta.core_table names; returns how many it recreated."""
    absolute = con.execute(
        "select count(*) from duckdb_views() where schema_name = 'core' and not internal "
        "and sql like '%read_parquet(''/%'"
    ).fetchall()[0][0]
    if not absolute:
        return 0
    rows = con.execute("select table_name, path from meta.core_table order by 1").fetchall()
    for name, rel in rows:
        _create_view(con, name, rel)
    return len(rows)


def last_value(con: duckdb.DuckDBPyConnection, entity: str) -> int:
    row = con.execute("select last_value from meta.id_sequence where entity = ?", [entity]).fetchone()
    return int(row[0]) if row else 0


def decisions(con: duckdb.DuckDBPyConnection, entity: str) -> pd.DataFrame:
    """The latest clerical decision per pair of an entity."""
    return con.execute(
        "select rec_id_l, rec_id_r, decision from meta.review_decision where entity = ? "
        "qualify row_number() over (partition by rec_id_l, rec_id_r order by decided_at desc) = 1",
        [entity],
    ).df()


def last_model_path(con: duckdb.DuckDBPyConnection, entity: str) -> str | None:
    """The model the entity's latest run linked with (model.json relative to the warehouse root)."""
    rows = con.execute(
        "select model_path from meta.resolve_run where entity = ? and model_path is not null "
        "order by finished_at desc, run_id desc limit 1",
        [entity],
    ).fetchall()
    return str(rows[0][0]) if rows else None


def publish(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    run_id: str,
    tables: dict[str, pd.DataFrame],
    sequences: dict[str, int],
    runs: list[dict[str, Any]],
    dates: Iterable[str] = (),
) -> None:
    """Write every core table of a run and make them current in one transaction; the
    columns named in `dates` are written as DATE wherever a table holds them."""
    written: dict[str, str] = {}
    dates = list(dates)
    for name, frame in tables.items():
        file = Path("core") / name / f"run={run_id}.parquet"
        path = settings.warehouse / file
        path.parent.mkdir(parents=True, exist_ok=True)
        as_dates(frame, dates).to_parquet(path, index=False)
        written[name] = file.as_posix()
        checkpoint("consolidate:after_core_file")
    old = dict(con.execute("select table_name, path from meta.core_table").fetchall())
    contracts = get_contracts(settings)
    con.execute("begin transaction")
    try:
        for name, rel in written.items():
            con.execute("delete from meta.core_table where table_name = ?", [name])
            con.execute(
                "insert into meta.core_table values (?, ?, ?, ?, ?)",
                [name, rel, run_id, len(tables[name]), meta.now()],
            )
            _create_view(con, name, rel)
            comment_relation(con, contracts.tables, settings.schemas_dir, "core", name)
        for entity, value in sequences.items():
            con.execute("insert or replace into meta.id_sequence values (?, ?)", [entity, value])
        for r in runs:
            cols = ", ".join(r)
            con.execute(
                f"insert into meta.resolve_run ({cols}) values ({', '.join('?' * len(r))})", list(r.values())
            )
        checkpoint("consolidate:before_commit")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    checkpoint("consolidate:after_commit")
    for name, old_rel in old.items():
        if name in written and written[name] != old_rel:
            (settings.warehouse / old_rel).unlink(missing_ok=True)
    checkpoint("consolidate:after_sweep")


__all__ = [
    "DDL_CORE",
    "decisions",
    "ensure",
    "last_model_path",
    "last_value",
    "publish",
    "read_core",
    "read_published",
    "relink_views",
]
