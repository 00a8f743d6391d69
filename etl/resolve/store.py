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
`Patch` of its current rows: the rows whose key is in `drop` removed, `add` added. An
empty patch keeps the current file (no new file: the published catalog keeps its copy
too), and so does a frame of at most `SAME_CHECK_ROWS` rows equal to the current file
(same row count, then the same Arrow table as it would be written: e.g. an id map, review
queue or findings the run left as they were).

A patch is written as a layer (`_write_layer`, etl.resolve.layers): only its drop keys and
added rows, as `run=<run_id>.drop.parquet` and `.add.parquet` (DuckDB COPY, zstd, cast to
the table's column types), and a `meta.core_layer` row (the base file, the order, the key,
the row counts, the fingerprint the view had before it); `meta.core_table` keeps naming
the base file, with the table's row count after the layer, and the view `core.<table>`
reads the base with its layers applied (`layered_sql`): the base's rows no layer drops,
plus each layer's added rows no later layer drops. The write then costs what the patch
holds, not the table. Past the compaction bounds (a chain longer than `MAX_LAYERS`, or
layers holding more than `LAYER_FRACTION` of the table's rows in drop keys and added rows,
or a patch keyed otherwise), the patch is compacted instead: DuckDB writes the table's
current rows patched as one new file (`COPY (<current rows> anti join drop union all by
name add)`, zstd, the base file's column types), the patch's `drop` and `add` beside it as
a `meta.core_patch` row names them (its base file, key and row counts, kept until the
table's next new file or layer), and the chain's files are deleted after the commit. The
published catalog (etl.published) applies a table's layers, or its compaction's patch, to
its copy instead of copying the whole table. A patched file carries its base's `pandas`
Parquet metadata, and `read_core` composes a layered table in Arrow with it, so pandas
reads either with the dtypes it read the base with.
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
import pyarrow.compute as pc
import pyarrow.parquet as pq

from etl import meta
from etl.config import Settings
from etl.contracts import get_contracts
from etl.datetypes import as_dates, as_datetimes
from etl.descriptions import comment_relation
from etl.faults import checkpoint
from etl.resolve.layers import Layered, base_file, layered_sql, relation

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
create table if not exists meta.core_layer (
    table_name         varchar not null,
    seq                integer not null,  -- 1, 2, ...: the order the layers apply in over the base
    base_path          varchar not null,  -- meta.core_table.path: the base file the chain lies over
    key                varchar not null,  -- the key columns, a JSON list (one for the whole chain)
    drop_path          varchar not null,  -- the keys the layer drops (Parquet), relative to the warehouse root
    add_path           varchar not null,  -- the rows it adds (Parquet)
    drop_rows          bigint not null,   -- keys in drop_path
    add_rows           bigint not null,   -- rows in add_path
    before_fingerprint varchar,           -- etl.published's fingerprint of core.<table> before the layer
    run_id             varchar not null,
    primary key (table_name, seq)
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
    con: duckdb.DuckDBPyConnection, src: Path | Layered, patch: Patch, dates: Iterable[str]
) -> tuple[str, str, str]:
    """(the table after the patch, its drop keys, its added rows) as SELECTs over `src`
    (the current file, or the base and layers of a layered table) and the patch's frames
    registered in `con`."""
    file = base_file(src)
    columns = _columns(con, file)
    types = dict(columns)
    unknown = [k for k in patch.key if k not in types]
    if unknown:
        raise ValueError(f"the patch's key column(s) {', '.join(unknown)} are not in {file.name}")
    dates = list(dates)
    drop = _register(con, patch.drop, [(k, types[k]) for k in patch.key], dates)
    add = _register(con, patch.add, columns, dates)
    using = ", ".join(f'"{k}"' for k in patch.key)
    body = f"select * from {relation(src)}"
    if len(patch.drop):
        body += f" anti join ({drop}) using ({using})"
    if len(patch.add):
        body += f" union all by name {add}"
    return body, drop, add


def patch_sql(
    con: duckdb.DuckDBPyConnection, file: Path | Layered, patch: Patch, dates: Iterable[str] = ()
) -> str:
    """SQL (a SELECT) of the Parquet file `file` (or a layered table) after `patch` (its
    frames registered in `con`, valid while it is open): what `publish` writes."""
    return _patch_sql(con, file, patch, dates)[0]


def patched(
    con: duckdb.DuckDBPyConnection, settings: Settings, table: str, patch: Patch, dates: Iterable[str] = ()
) -> str:
    """SQL (a SELECT) of core.<table> after `patch`: its current rows (`core_source`) minus
    the dropped keys plus the added rows, for a step that needs the whole new table without
    pandas. The patch's frames stay registered in `con` (valid while it is open)."""
    src = core_source(con, settings, table)
    if src is None:
        raise ValueError(f"core.{table} has no current file to patch")
    return _patch_sql(con, src, patch, dates)[0]


def core_file(con: duckdb.DuckDBPyConnection, settings: Settings, table: str) -> Path | None:
    """The current (base) file of core.<table>, or None before its first run: its columns
    are the table's, its rows are the table's only when it has no layers (`core_source`)."""
    row = con.execute("select path from meta.core_table where table_name = ?", [table]).fetchall()
    return settings.warehouse / row[0][0] if row else None


@dataclass(frozen=True)
class _Layer:
    """A meta.core_layer row (paths relative to the warehouse root)."""

    key: tuple[str, ...]
    drop_path: str
    add_path: str
    drop_rows: int
    add_rows: int


def _has_layers_table(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        con.execute(
            "select count(*) from duckdb_tables() where database_name = current_database() "
            "and schema_name = 'meta' and table_name = 'core_layer'"
        ).fetchall()[0][0]
    )


def _chains(con: duckdb.DuckDBPyConnection, table: str | None = None) -> dict[str, list[_Layer]]:
    """The layers of each layered core table (of `table` only, when given), in order: those
    over the table's current base file (a layer row over another base is stale: applied to
    nothing)."""
    if not _has_layers_table(con):
        return {}
    where, args = ("and l.table_name = ? ", [table]) if table is not None else ("", [])
    rows = con.execute(
        "select l.table_name, l.key, l.drop_path, l.add_path, l.drop_rows, l.add_rows from meta.core_layer l "
        f"join meta.core_table t on t.table_name = l.table_name and t.path = l.base_path {where}"
        "order by l.table_name, l.seq",
        args,
    ).fetchall()
    chains: dict[str, list[_Layer]] = {}
    for t, key, d, a, dr, ar in rows:
        chains.setdefault(t, []).append(_Layer(tuple(json.loads(key)), d, a, int(dr), int(ar)))
    return chains


def _layered(root: Path | None, base: str, chain: list[_Layer]) -> Path | Layered:
    """The table over `base` with `chain` (paths under `root`, or as stored when None)."""
    at = (lambda rel: root / rel) if root is not None else Path
    if not chain:
        return at(base)
    return Layered(at(base), chain[0].key, tuple((at(x.drop_path), at(x.add_path)) for x in chain))


def core_source(con: duckdb.DuckDBPyConnection, settings: Settings, table: str) -> Path | Layered | None:
    """What holds the current rows of core.<table>: its file, or its base file and layers
    (etl.resolve.layers: `relation` reads either in DuckDB); None before its first run."""
    row = con.execute("select path from meta.core_table where table_name = ?", [table]).fetchall()
    if not row:
        return None
    return _layered(settings.warehouse, row[0][0], _chains(con, table).get(table, []))


def read_core(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    table: str,
    entity: str | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame | None:
    """The current content of core.<table>, or None before its first run; `entity`: only
    its rows (a table shared by the entities, e.g. provenance: read without the other's);
    `columns`: only those. A layered table is composed in Arrow and read with its base
    file's pandas metadata: the dtypes a single file of the same rows gives."""
    src = core_source(con, settings, table)
    if src is None:
        return None
    filters = [("entity", "==", entity)] if entity is not None else None
    if isinstance(src, Layered):
        frame = _read_layered(src, filters, columns)
    else:
        frame = pd.read_parquet(src, filters=filters, columns=columns)
    # DATE columns as datetime64, as consolidation handles dates in memory (etl.datetypes)
    return as_datetimes(frame)


def _read_layered(src: Layered, filters: Any, columns: list[str] | None) -> pd.DataFrame:
    """A layered table read as pd.read_parquet reads one file (pyarrow, then
    pa.Table.to_pandas with the base's pandas metadata, which the composed table keeps):
    the base's rows, then each layer's added rows, each without the rows whose key a later
    layer drops. pd.read_parquet converts with to_pandas alone from pyarrow 19 (strings as
    pandas' str) and 25 (time zones as zoneinfo): hence pyproject's pyarrow>=25."""
    key = list(src.key)
    read = None if columns is None else list(dict.fromkeys([*columns, *key]))
    base = pq.read_table(src.base, filters=filters, columns=read)
    schema = base.schema
    parts = [base, *(pq.read_table(a, filters=filters, columns=read).cast(schema) for _, a in src.layers)]
    drops = [pq.read_table(d, columns=key) for d, _ in src.layers]
    kept = []
    for i, part in enumerate(parts):
        later = drops[i:]
        if later and part.num_rows:
            keys = pa.concat_tables([d.cast(part.select(key).schema.remove_metadata()) for d in later])
            part = part.filter(pc.invert(_in(part, keys, key)))
        kept.append(part)
    table = pa.concat_tables(kept)
    if columns is not None:
        table = table.select(columns)
    return table.to_pandas()


def _in(table: pa.Table, keys: pa.Table, key: list[str]) -> pa.Array:
    """For each row of `table`: its `key` values are a row of `keys` (nulls match nothing)."""
    if len(key) == 1:
        return pc.is_in(table[key[0]], value_set=keys[key[0]].combine_chunks(), skip_nulls=True).fill_null(
            False
        )
    rows = pa.table({**{k: table[k] for k in key}, "__row": pa.array(range(table.num_rows), pa.int64())})
    hit = rows.join(keys.group_by(key).aggregate([]), keys=key, join_type="left semi")["__row"]
    return pc.is_in(pa.array(range(table.num_rows), pa.int64()), value_set=hit.combine_chunks())


def read_published(con: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame | None:
    """core.<table> as the published catalog holds it (etl.published: a table, copied from
    the writer's view), or None before the first consolidate run."""
    found = con.execute(
        "select count(*) from duckdb_tables() where schema_name = 'core' and table_name = ?", [table]
    ).fetchall()[0][0]
    return con.execute(f'select * from core."{table}"').df() if found else None


def _create_view(
    con: duckdb.DuckDBPyConnection, name: str, rel: str, chain: list[_Layer] | None = None
) -> None:
    """View core.<name> over its current file (and the layers `chain` over it:
    etl.resolve.layers.layered_sql), named relative to the warehouse root (the connection's
    file_search_path resolves them: a copied or moved home reads its own files)."""
    chain = chain or []
    sql = layered_sql(rel, chain[0].key if chain else (), [(x.drop_path, x.add_path) for x in chain])
    con.execute(f"create or replace view core.{name} as {sql}")


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
    chains = _chains(con)
    for name, rel in rows:
        _create_view(con, name, rel, chains.get(name))
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


#: compaction bounds of a layered table (`publish`): a patch becomes a new layer unless the
#: chain would then be longer than MAX_LAYERS layers or its layers would hold more than
#: LAYER_FRACTION of the table's rows (drop keys + added rows): then the table is written
#: whole again (its current rows patched, one file) and the chain starts anew. A reader
#: of a layered table scans the base plus the layers and anti-joins with their drop keys:
#: at most about LAYER_FRACTION more rows than one file, in at most 2 * MAX_LAYERS + 1 files.
MAX_LAYERS = 8
LAYER_FRACTION = 0.2


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
    as a new layer over the current file (`_write_layer`: its drop keys and added rows
    only) or, past the compaction bounds (MAX_LAYERS, LAYER_FRACTION), as a new file
    DuckDB makes from the current rows (an empty patch keeps the current file; a patch of
    a table without one is a ValueError). The columns named in `dates` are written as DATE
    wherever a frame holds them (a patched file or layer keeps its current file's types)."""
    dates = list(dates)
    current = {
        t: (p, r) for t, p, r in con.execute("select table_name, path, rows from meta.core_table").fetchall()
    }
    old = {t: p for t, (p, _) in current.items()}
    chains = _chains(con)
    for name, item in tables.items():
        if isinstance(item, Patch) and name not in old:
            raise ValueError(f"core.{name} has no current file to patch")
    written: dict[str, tuple[str, int]] = {}  # table -> (its new file, rows)
    patches: list[list[Any]] = []  # meta.core_patch rows
    layers: dict[str, list[Any]] = {}  # table -> the meta.core_layer row of its new layer
    for name, item in tables.items():
        chain = chains.get(name, [])
        if _keeps(settings, item, current.get(name), dates, layered=bool(chain)):
            continue
        written[name], patch_row, layer_row = _write(
            con, settings, run_id, name, item, current.get(name), chain, dates
        )
        if patch_row is not None:
            patches.append(patch_row)
        if layer_row is not None:
            layers[name] = layer_row
        checkpoint("consolidate:after_core_file")
    superseded = _superseded(con, old, written, layers, chains)
    con.execute("begin transaction")
    try:
        _record(con, settings, run_id, written, patches, layers, chains, sequences, runs)
        checkpoint("consolidate:before_commit")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    checkpoint("consolidate:after_commit")
    for rel in superseded:
        (settings.warehouse / rel).unlink(missing_ok=True)
    checkpoint("consolidate:after_sweep")


def _record(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    run_id: str,
    written: dict[str, tuple[str, int]],
    patches: list[list[Any]],
    layers: dict[str, list[Any]],
    chains: dict[str, list[_Layer]],
    sequences: dict[str, int],
    runs: list[dict[str, Any]],
) -> None:
    """publish's transaction: the tables `written` made current (their meta rows and views),
    the id sequences advanced, the run recorded."""
    contracts = get_contracts(settings)
    for name, (rel, rows) in written.items():
        chain = [*chains.get(name, []), _layer_of(layers[name])] if name in layers else None
        _point(con, settings, contracts, run_id, name, rel, rows, chain)
    for row in patches:
        con.execute("insert into meta.core_patch values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    for row in layers.values():
        con.execute("insert into meta.core_layer values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    for entity, value in sequences.items():
        con.execute("insert or replace into meta.id_sequence values (?, ?)", [entity, value])
    for r in runs:
        cols = ", ".join(r)
        con.execute(
            f"insert into meta.resolve_run ({cols}) values ({', '.join('?' * len(r))})", list(r.values())
        )


def _write(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    run_id: str,
    name: str,
    item: pd.DataFrame | Patch,
    current: tuple[str, int] | None,
    chain: list[_Layer],
    dates: list[str],
) -> tuple[tuple[str, int], list[Any] | None, list[Any] | None]:
    """Write core.<name>'s new file or layer of the run (its `current` file and rows, its
    layers `chain`): returns ((its file, its rows), its meta.core_patch row or None, its
    meta.core_layer row or None)."""
    if isinstance(item, Patch) and current is not None:
        if not _compacts(item, chain, current[1]):
            rows, row = _write_layer(con, settings, run_id, name, item, current[0], chain, current[1], dates)
            return (current[0], rows), None, row
        src = _layered(settings.warehouse, current[0], chain)
        rel, rows, row = _write_patch(con, settings, run_id, name, item, current[0], src, dates)
        return (rel, rows), row, None
    if isinstance(item, Patch):
        raise ValueError(f"core.{name} has no current file to patch")
    rel, rows = _new_file(settings, name, run_id).as_posix(), len(item)
    (settings.warehouse / rel).parent.mkdir(parents=True, exist_ok=True)
    as_dates(item, dates).to_parquet(settings.warehouse / rel, index=False)
    return (rel, rows), None, None


def _superseded(
    con: duckdb.DuckDBPyConnection,
    old: dict[str, str],
    written: dict[str, tuple[str, int]],
    layers: dict[str, list[Any]],
    chains: dict[str, list[_Layer]],
) -> list[str]:
    """The files the tables `written` no longer need once committed: a table written anew
    its previous file and layers (a new file never takes the current one's name:
    _new_file), any written table the patch files of its previous new file (meta.core_patch:
    a new layer's catalog follows the chain instead)."""
    gone = [old[n] for n in written if n in old and n not in layers]
    gone += [
        p for n in written if n not in layers for x in chains.get(n, []) for p in (x.drop_path, x.add_path)
    ]
    gone += [
        p
        for row in con.execute("select table_name, drop_path, add_path from meta.core_patch").fetchall()
        if row[0] in written
        for p in row[1:]
    ]
    return gone


def _point(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    contracts: Any,
    run_id: str,
    name: str,
    rel: str,
    rows: int,
    chain: list[_Layer] | None,
) -> None:
    """In publish's transaction: meta.core_table and the view core.<name> pointed at its
    file `rel` (and its layers `chain`, the new one last; None: a new file, no layers)."""
    con.execute("delete from meta.core_table where table_name = ?", [name])
    con.execute("delete from meta.core_patch where table_name = ?", [name])
    if chain is None:
        con.execute("delete from meta.core_layer where table_name = ?", [name])
    con.execute("insert into meta.core_table values (?, ?, ?, ?, ?)", [name, rel, run_id, rows, meta.now()])
    _create_view(con, name, rel, chain)
    comment_relation(con, contracts.tables, settings.schemas_dir, "core", name)


def _keeps(
    settings: Settings,
    item: pd.DataFrame | Patch,
    current: tuple[str, int] | None,
    dates: list[str],
    layered: bool = False,
) -> bool:
    """The table keeps its `current` file (path, rows): an empty patch, or a frame of at
    most SAME_CHECK_ROWS rows equal to the file (not compared when the table is `layered`:
    its file is not all its rows)."""
    if isinstance(item, Patch):
        return item.empty
    return (
        current is not None
        and not layered
        and current[1] == len(item) <= SAME_CHECK_ROWS
        and _same(item, settings.warehouse / current[0], dates)
    )


def _compacts(patch: Patch, chain: list[_Layer], rows: int) -> bool:
    """`patch` makes its table one file again (compaction) rather than a new layer: the
    chain would be longer than MAX_LAYERS, or its layers (drop keys + added rows) more than
    LAYER_FRACTION of the table's `rows`, or the patch is keyed otherwise than the chain."""
    held = sum(x.drop_rows + x.add_rows for x in chain) + len(patch.drop) + len(patch.add)
    return (
        len(chain) + 1 > MAX_LAYERS
        or held > LAYER_FRACTION * rows
        or (bool(chain) and chain[0].key != tuple(patch.key))
    )


def _layer_of(row: list[Any]) -> _Layer:
    """The _Layer of a meta.core_layer row `_write_layer` made."""
    return _Layer(tuple(json.loads(row[3])), row[4], row[5], int(row[6]), int(row[7]))


def _write_layer(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    run_id: str,
    name: str,
    patch: Patch,
    base: str,
    chain: list[_Layer],
    rows: int,
    dates: list[str],
) -> tuple[int, list[Any]]:
    """Write `patch` as a new layer of core.<name> (over its base file `base` and layers
    `chain`; `rows`: the table's rows now): its drop keys and added rows as two Parquet
    files (`run=<id>.drop.parquet`, `.add.parquet`, named as `_new_file` names a file);
    returns (the table's rows after it, its meta.core_layer row)."""
    from etl.published import view_fingerprint  # etl.published imports nothing of etl.resolve

    src = _layered(settings.warehouse, base, chain)
    _, _, drop_file, add_file, dropped, added = _patch_files(con, settings, run_id, name, patch, src, dates)
    gone = 0
    if dropped:  # the current rows the layer drops: the table's row count stays exact
        cols = ", ".join(f'"{k}"' for k in patch.key)
        gone = con.execute(
            f"select count(*) from (select {cols} from {relation(src)}) "
            f"semi join read_parquet({meta.sql_literal(str(settings.warehouse / drop_file))}) using ({cols})"
        ).fetchall()[0][0]
    fingerprint = view_fingerprint(con, settings, "core", name)  # of the view before the layer
    key = json.dumps(list(patch.key))
    row = [name, len(chain) + 1, base, key, drop_file, add_file, dropped, added, fingerprint, run_id]
    return rows - int(gone) + added, row


def _patch_files(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    run_id: str,
    name: str,
    patch: Patch,
    src: Path | Layered,
    dates: list[str],
) -> tuple[Path, str, str, str, int, int]:
    """The part `_write_layer` and `_write_patch` share: a new file name for core.<name> of
    the run (`_new_file`, relative to the warehouse root), and `patch`'s drop keys and added
    rows over the current rows `src` written beside it; returns (the file, the SELECT of the
    patched rows, the drop file, the add file, their rows). The patched file itself is
    `_write_patch`'s to write (a layer has none)."""
    file = _new_file(settings, name, run_id)
    (settings.warehouse / file).parent.mkdir(parents=True, exist_ok=True)
    body, drop, add = _patch_sql(con, src, patch, dates)
    drop_file, add_file = (_beside(file, part).as_posix() for part in ("drop", "add"))
    dropped = _copy(con, drop, settings.warehouse / drop_file)
    added = _copy(con, add, settings.warehouse / add_file)
    return file, body, drop_file, add_file, dropped, added


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
    src: Path | Layered,
    dates: list[str],
) -> tuple[str, int, list[Any]]:
    """Write core.<name>'s file of the run as its current rows `src` (its file `base`, and
    its layers if any) patched, and the patch's drop and add files beside it; returns (the
    file, its rows, its meta.core_patch row)."""
    from etl.published import view_fingerprint  # etl.published imports nothing of etl.resolve

    file, body, drop_file, add_file, dropped, added = _patch_files(
        con, settings, run_id, name, patch, src, dates
    )
    # the base's pandas metadata kept (the same columns and types): read_core then gives the
    # patched file the dtypes it gave the base (without it, e.g. Int64 would read as float64)
    pandas_md = (pq.read_schema(settings.warehouse / base).metadata or {}).get(b"pandas")
    rows = _copy(con, body, settings.warehouse / file, pandas_md.decode() if pandas_md else None)
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
    "LAYER_FRACTION",
    "MAX_LAYERS",
    "SAME_CHECK_ROWS",
    "Layered",
    "Patch",
    "core_file",
    "core_source",
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
