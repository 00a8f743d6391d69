"""Where consolidation keeps its state: Parquet under warehouse/core/, views in schema `core`.

Every run writes each core table it changes as one immutable file
`warehouse/core/<table>/run=<run_id>.parquet` (`run=<run_id>.<n>.parquet` when that name
is taken: a run id used again, by an Airflow retry or a cleared task, never writes over
the current file), then one DuckDB transaction points
`meta.core_table` and the views `core.<table>` (commented from the contracts,
etl.descriptions) at the new files (both name them relative to the warehouse root;
DuckDB's file_search_path resolves the views' paths there), advances the id sequences
and records the run; superseded files are deleted after the commit. A run killed before
the commit leaves the previous base readable.

A table comes to `publish` either whole (a pandas frame, written by pyarrow) or as a
`Patch` of its current file: the rows whose key is in `drop` removed, `add` added. DuckDB
writes the patched file (`COPY (<current file> anti join drop union all by name add)`,
zstd, the current file's column types), so the unchanged rows never pass through pandas;
an empty patch keeps the current file (no new file: the published catalog keeps its copy
too), and so does a frame of at most `SAME_CHECK_ROWS` rows equal to the current file
(same row count, then the same Arrow table as it would be written: e.g. an id map, review
queue or findings the run left as they were). A patched table also gets its `drop` and
`add` as small Parquet files beside the new one (`run=<run_id>.drop.parquet`,
`.add.parquet`) and a `meta.core_patch` row naming its base file, key and row counts, kept
until the table's next new file: the published catalog (etl.published) applies them to its
copy of the base instead of copying the whole table. A patched file carries its base's
`pandas` Parquet metadata, so `read_core` reads it with the dtypes it read the base with.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

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
create table if not exists meta.core_patch (
    table_name       varchar primary key,
    path             varchar not null,  -- the file the patch made (meta.core_table.path), relative to the warehouse root
    base_path        varchar not null,  -- the file it was made from
    base_fingerprint varchar,           -- etl.published's fingerprint of core.<table> over base_path
    key              varchar not null,  -- the key columns, a JSON list
    drop_path        varchar not null,  -- the keys dropped (Parquet)
    add_path         varchar not null,  -- the rows added (Parquet)
    run_id           varchar not null
);
alter table meta.core_patch add column if not exists drop_rows bigint;  -- keys in drop_path
alter table meta.core_patch add column if not exists add_rows bigint;   -- rows in add_path
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


@dataclass(frozen=True)
class Patch:
    """core.<table> as its current file's rows minus those whose `key` values are in `drop`,
    plus `add` (every column of the table). Written by DuckDB (COPY), never whole in pandas."""

    key: tuple[str, ...]  # e.g. ("person_id",) or ("entity", "master_id")
    drop: pd.DataFrame  # columns = key: the rows removed or replaced (any row with such a key)
    add: pd.DataFrame  # the rows added (all columns, same names as the table; types cast to its)

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("a patch needs a key")
        for what, frame in (("drop", self.drop), ("add", self.add)):
            missing = [k for k in self.key if k not in frame.columns]
            if missing and len(frame):
                raise ValueError(f"the patch's {what} lacks its key column(s) {', '.join(missing)}")

    @property
    def empty(self) -> bool:
        """No row dropped, none added: the table stays as it is."""
        return len(self.drop) == 0 and len(self.add) == 0


_names = itertools.count()

#: a frame of at most this many rows with as many rows as the table's current file is
#: compared with it, and keeps the file when equal (reading and comparing a larger one
#: costs about what writing it does)
SAME_CHECK_ROWS = 100_000


def _same(frame: pd.DataFrame, file: Path, dates: Iterable[str]) -> bool:
    """`frame` as `publish` would write it (Arrow) equal to the Parquet `file`: types and values."""
    data = pa.Table.from_pandas(as_dates(frame, dates), preserve_index=False)
    current = pq.read_table(file)
    return data.schema.remove_metadata() == current.schema.remove_metadata() and data.equals(current)


def _columns(con: duckdb.DuckDBPyConnection, file: Path) -> list[tuple[str, str]]:
    """(name, DuckDB type) of each column of a Parquet file, in its order."""
    rows = con.execute(f"describe select * from read_parquet({meta.sql_literal(str(file))})").fetchall()
    return [(r[0], r[1]) for r in rows]


def _register(
    con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, columns: list[tuple[str, str]], dates: Iterable[str]
) -> str:
    """`frame` registered in `con` under a new name; returns a SELECT of its `columns`
    (all of them, in that order) cast to their types: an empty frame without them gives
    no rows."""
    name = f"_core_patch_{next(_names)}"
    if not len(frame):
        casts = ", ".join(f'cast(null as {t}) as "{c}"' for c, t in columns)
        return f"select {casts} where false"
    missing = [c for c, _ in columns if c not in frame.columns]
    extra = [c for c in frame.columns if c not in {c for c, _ in columns}]
    if missing or extra:
        raise ValueError(
            f"patch rows do not have the table's columns (missing: {', '.join(missing) or '-'}; "
            f"not in the table: {', '.join(map(str, extra)) or '-'})"
        )
    data = pa.Table.from_pandas(as_dates(frame[[c for c, _ in columns]], dates), preserve_index=False)
    con.register(name, data)
    casts = ", ".join(f'cast("{c}" as {t}) as "{c}"' for c, t in columns)
    return f"select {casts} from {name}"


def _patch_sql(
    con: duckdb.DuckDBPyConnection, file: Path, patch: Patch, dates: Iterable[str]
) -> tuple[str, str, str]:
    """(the table after the patch, its drop keys, its added rows) as SELECTs over `file`
    (the current file) and the patch's frames registered in `con`."""
    columns = _columns(con, file)
    types = dict(columns)
    unknown = [k for k in patch.key if k not in types]
    if unknown:
        raise ValueError(f"the patch's key column(s) {', '.join(unknown)} are not in {file.name}")
    dates = list(dates)
    drop = _register(con, patch.drop, [(k, types[k]) for k in patch.key], dates)
    add = _register(con, patch.add, columns, dates)
    using = ", ".join(f'"{k}"' for k in patch.key)
    body = f"select * from read_parquet({meta.sql_literal(str(file))})"
    if len(patch.drop):
        body += f" anti join ({drop}) using ({using})"
    if len(patch.add):
        body += f" union all by name {add}"
    return body, drop, add


def patch_sql(con: duckdb.DuckDBPyConnection, file: Path, patch: Patch, dates: Iterable[str] = ()) -> str:
    """SQL (a SELECT) of the Parquet file `file` after `patch` (its frames registered in
    `con`, valid while it is open): what `publish` writes."""
    return _patch_sql(con, file, patch, dates)[0]


def patched(
    con: duckdb.DuckDBPyConnection, settings: Settings, table: str, patch: Patch, dates: Iterable[str] = ()
) -> str:
    """SQL (a SELECT) of core.<table> after `patch`: its current file's rows minus the
    dropped keys plus the added rows, for a step that needs the whole new table without
    pandas. The patch's frames stay registered in `con` (valid while it is open)."""
    file = core_file(con, settings, table)
    if file is None:
        raise ValueError(f"core.{table} has no current file to patch")
    return _patch_sql(con, file, patch, dates)[0]


def core_file(con: duckdb.DuckDBPyConnection, settings: Settings, table: str) -> Path | None:
    """The current file of core.<table>, or None before its first run."""
    row = con.execute("select path from meta.core_table where table_name = ?", [table]).fetchall()
    return settings.warehouse / row[0][0] if row else None


def read_core(
    con: duckdb.DuckDBPyConnection, settings: Settings, table: str, entity: str | None = None
) -> pd.DataFrame | None:
    """The current content of core.<table>, or None before its first run; `entity`: only
    its rows (a table shared by the entities, e.g. provenance: read without the other's)."""
    row = con.execute("select path from meta.core_table where table_name = ?", [table]).fetchall()
    if not row:
        return None
    filters = [("entity", "==", entity)] if entity is not None else None
    # DATE columns as datetime64, as consolidation handles dates in memory (etl.datetypes)
    return as_datetimes(pd.read_parquet(settings.warehouse / row[0][0], filters=filters))


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
    row = con.execute("select last_value from meta.id_sequence where entity = ?", [entity]).fetchall()
    return int(row[0][0]) if row else 0


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
    tables: Mapping[str, pd.DataFrame | Patch],
    sequences: dict[str, int],
    runs: list[dict[str, Any]],
    dates: Iterable[str] = (),
) -> None:
    """Write the core tables of a run and make them current in one transaction: a frame
    as a new file (unless it is a small one equal to the current file, `_same`), a `Patch`
    as a new file DuckDB makes from the current one (an empty patch keeps the current
    file; a patch of a table without one is a ValueError). The columns named in `dates`
    are written as DATE wherever a frame holds them (a patched file keeps its current
    file's types)."""
    dates = list(dates)
    current = {
        t: (p, r) for t, p, r in con.execute("select table_name, path, rows from meta.core_table").fetchall()
    }
    old = {t: p for t, (p, _) in current.items()}
    for name, item in tables.items():
        if isinstance(item, Patch) and name not in old:
            raise ValueError(f"core.{name} has no current file to patch")
    written: dict[str, tuple[str, int]] = {}  # table -> (its new file, rows)
    patches: list[list[Any]] = []  # meta.core_patch rows
    for name, item in tables.items():
        if _keeps(settings, item, current.get(name), dates):
            continue
        if isinstance(item, Patch):
            rel, rows, row = _write_patch(con, settings, run_id, name, item, old[name], dates)
            patches.append(row)
        else:
            rel, rows = _new_file(settings, name, run_id).as_posix(), len(item)
            (settings.warehouse / rel).parent.mkdir(parents=True, exist_ok=True)
            as_dates(item, dates).to_parquet(settings.warehouse / rel, index=False)
        written[name] = (rel, rows)
        checkpoint("consolidate:after_core_file")
    superseded = [old[n] for n in written if n in old]  # a new file never takes the current one's name
    superseded += [
        p
        for row in con.execute("select table_name, drop_path, add_path from meta.core_patch").fetchall()
        if row[0] in written
        for p in row[1:]
    ]
    contracts = get_contracts(settings)
    con.execute("begin transaction")
    try:
        for name, (rel, rows) in written.items():
            con.execute("delete from meta.core_table where table_name = ?", [name])
            con.execute("delete from meta.core_patch where table_name = ?", [name])
            con.execute(
                "insert into meta.core_table values (?, ?, ?, ?, ?)", [name, rel, run_id, rows, meta.now()]
            )
            _create_view(con, name, rel)
            comment_relation(con, contracts.tables, settings.schemas_dir, "core", name)
        for row in patches:
            con.execute("insert into meta.core_patch values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
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
    for rel in superseded:
        (settings.warehouse / rel).unlink(missing_ok=True)
    checkpoint("consolidate:after_sweep")


def _keeps(
    settings: Settings, item: pd.DataFrame | Patch, current: tuple[str, int] | None, dates: list[str]
) -> bool:
    """The table keeps its `current` file (path, rows): an empty patch, or a frame of at
    most SAME_CHECK_ROWS rows equal to the file."""
    if isinstance(item, Patch):
        return item.empty
    return (
        current is not None
        and current[1] == len(item) <= SAME_CHECK_ROWS
        and _same(item, settings.warehouse / current[0], dates)
    )


def _beside(file: Path, part: str) -> Path:
    """The patch file `part` (drop | add) beside the table file `file` (run=<id>[.<n>].parquet)."""
    return file.with_name(f"{file.name.removesuffix('.parquet')}.{part}.parquet")


def _new_file(settings: Settings, name: str, run_id: str) -> Path:
    """A new file for core.<name> of run `run_id`, relative to the warehouse root:
    `core/<name>/run=<run_id>.parquet`, or `run=<run_id>.<n>.parquet` with the smallest
    n >= 2 for which neither the file nor its patch files exist. A run id used again (an
    Airflow retry or a cleared task after its commit) must not write over the current
    file, which readers and the previous base of a patch still need until the commit,
    nor make a patch whose file is its own base."""
    folder = Path("core") / name
    for n in itertools.count(1):
        file = folder / (f"run={run_id}.parquet" if n == 1 else f"run={run_id}.{n}.parquet")
        if not any(
            (settings.warehouse / f).exists() for f in (file, _beside(file, "drop"), _beside(file, "add"))
        ):
            return file
    raise AssertionError("unreachable")


def _write_patch(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    run_id: str,
    name: str,
    patch: Patch,
    base: str,
    dates: list[str],
) -> tuple[str, int, list[Any]]:
    """Write core.<name>'s file of the run as its current file `base` patched, and the
    patch's drop and add files beside it; returns (the file, its rows, its meta.core_patch row)."""
    from etl.published import view_fingerprint  # etl.published imports nothing of etl.resolve

    file = _new_file(settings, name, run_id)
    (settings.warehouse / file).parent.mkdir(parents=True, exist_ok=True)
    body, drop, add = _patch_sql(con, settings.warehouse / base, patch, dates)
    # the base's pandas metadata kept (the same columns and types): read_core then gives the
    # patched file the dtypes it gave the base (without it, e.g. Int64 would read as float64)
    pandas_md = (pq.read_schema(settings.warehouse / base).metadata or {}).get(b"pandas")
    rows = _copy(con, body, settings.warehouse / file, pandas_md.decode() if pandas_md else None)
    drop_file, add_file = (_beside(file, part).as_posix() for part in ("drop", "add"))
    dropped = _copy(con, drop, settings.warehouse / drop_file)
    added = _copy(con, add, settings.warehouse / add_file)
    fingerprint = view_fingerprint(con, settings, "core", name)  # of the view over `base`, as it still is
    key = json.dumps(list(patch.key))
    row = [name, file.as_posix(), base, fingerprint, key, drop_file, add_file, run_id, dropped, added]
    return file.as_posix(), rows, row


def _copy(con: duckdb.DuckDBPyConnection, body: str, path: Path, pandas_md: str | None = None) -> int:
    """Write the rows of SELECT `body` to the Parquet file `path` (zstd; `pandas_md`: the
    `pandas` key-value metadata pyarrow writes, for pandas to read the dtypes it describes);
    returns how many."""
    kv = f", kv_metadata {{pandas: {meta.sql_literal(pandas_md)}}}" if pandas_md else ""
    got = con.execute(
        f"copy ({body}) to {meta.sql_literal(str(path))} (format parquet, compression zstd{kv})"
    ).fetchall()
    return int(got[0][0])


__all__ = [
    "DDL_CORE",
    "SAME_CHECK_ROWS",
    "Patch",
    "decisions",
    "ensure",
    "last_model_path",
    "last_value",
    "patch_sql",
    "patched",
    "publish",
    "read_core",
    "read_published",
    "relink_views",
]
