"""Where consolidation keeps its state: Parquet under warehouse/core/, views in schema `core`.

Every run writes each core table as one immutable file
`warehouse/core/<table>/run=<run_id>.parquet`, then one DuckDB transaction points
`meta.core_table` and the views `core.<table>` at the new files (both name them relative
to the warehouse root; DuckDB's file_search_path resolves the views' paths there),
advances the id sequences and records the run; superseded files are deleted after the
commit. A run killed before the commit leaves the previous base readable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from etl import meta
from etl.config import Settings

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
    model_path    varchar,           -- the trained Splink model (JSON), relative to the warehouse root
    started_at    timestamp,
    finished_at   timestamp
);
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


def read_core(con: duckdb.DuckDBPyConnection, settings: Settings, table: str) -> pd.DataFrame | None:
    """The current content of core.<table>, or None before its first run."""
    row = con.execute("select path from meta.core_table where table_name = ?", [table]).fetchone()
    if not row:
        return None
    return pd.read_parquet(settings.warehouse / row[0])


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


def write_model(settings: Settings, entity: str, run_id: str, model: dict[str, Any]) -> str:
    """Keep the trained model of a run; returns its path relative to the warehouse root."""
    rel = Path("core") / "_models" / entity / f"run={run_id}.json"
    path = settings.warehouse / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(model, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
    return rel.as_posix()


def publish(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    run_id: str,
    tables: dict[str, pd.DataFrame],
    sequences: dict[str, int],
    runs: list[dict[str, Any]],
) -> None:
    """Write every core table of a run and make them current in one transaction."""
    written: dict[str, str] = {}
    for name, frame in tables.items():
        file = Path("core") / name / f"run={run_id}.parquet"
        path = settings.warehouse / file
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
        written[name] = file.as_posix()
    old = dict(con.execute("select table_name, path from meta.core_table").fetchall())
    con.execute("begin transaction")
    try:
        for name, rel in written.items():
            con.execute("delete from meta.core_table where table_name = ?", [name])
            con.execute(
                "insert into meta.core_table values (?, ?, ?, ?, ?)",
                [name, rel, run_id, len(tables[name]), meta.now()],
            )
            _create_view(con, name, rel)
        for entity, value in sequences.items():
            con.execute("insert or replace into meta.id_sequence values (?, ?)", [entity, value])
        for r in runs:
            cols = ", ".join(r)
            con.execute(
                f"insert into meta.resolve_run ({cols}) values ({', '.join('?' * len(r))})", list(r.values())
            )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    for name, old_rel in old.items():
        if name in written and written[name] != old_rel:
            (settings.warehouse / old_rel).unlink(missing_ok=True)


__all__ = [
    "DDL_CORE",
    "decisions",
    "ensure",
    "last_value",
    "publish",
    "read_core",
    "read_published",
    "relink_views",
    "write_model",
]
