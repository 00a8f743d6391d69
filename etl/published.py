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
reader still on an older snapshot would fail on files that are gone.

What is copied when: the temporary file starts as a copy of the published catalog
(`shutil.copyfile`), and in one transaction of the writer's connection only the relations
that changed are copied again (`create or replace table`), the ones the writer no longer
has dropped, and `meta.published` and `meta._catalog_fingerprint` rewritten. A view whose
SQL reads nothing but `read_parquet` over literal local paths or globs, with only
functions DuckDB calls consistent, is kept when its fingerprint is unchanged: sha256 of
DuckDB's version, the view's SQL, and path (relative to the warehouse), size, mtime_ns and the sha256 of the Parquet
footer (the file's metadata: row groups, column chunks' offsets, sizes and statistics) of
every file it resolves to (DuckDB's glob, through the warehouse's file_search_path). Neither the
inode nor the absolute path: a home copied, moved or restored with its mtimes (`cp -a`, a backup, the benchmark's copy of
a staged home) keeps every unchanged relation instead of copying the whole catalog again
(staging.person alone is about 4 s at 400,000 persons). What it cannot tell apart: a file
rewritten under its own path to the same size, mtime_ns and footer; the writer never
rewrites a file (each run writes files of its own name, then deletes superseded ones). Base tables (meta.*)
and views reading tables are copied every time. A core table consolidation wrote as a
patch of its previous file (etl.resolve.store.Patch; the writer's `meta.core_patch` names
the base file, the fingerprint the view had over it, the key and the patch's drop and add
Parquet files) is patched in place instead of copied, when the copy is of that base (its
fingerprint is the base's), the view now reads just the patched file and the patch adds at
most half the table's rows: in the same transaction, `delete` of the rows whose key is
among the dropped ones, `insert` of the added rows, then the new fingerprint; otherwise it
is copied whole (deleting and inserting most of a table costs more than copying it).
Everything is copied anew (a full copy) when there is no catalog yet, it has a WAL or no
fingerprint table, it cannot be opened (checked in a connection of its own), or more than
half of its blocks are free (the bound on the file's growth: replaced tables leave free
blocks the next copy reuses).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


#: table of the published catalog: (schema_name, name, fingerprint) of each relation copied
#: from a view over Parquet files (`_fingerprint`); the next publish keeps those unchanged
FINGERPRINTS = "_catalog_fingerprint"


class CatalogMissing(GovbaseError):
    """No published catalog yet, and the writer is busy making the first one."""


@dataclass(frozen=True)
class Publication:
    """What one publish of the catalog did: relations ("schema.name") copied from the
    writer, kept from the previous catalog, dropped from it, patched in it (a core patch
    applied to the previous copy); `full` says why nothing could be kept (None: an
    incremental publish)."""

    path: Path
    full: str | None
    copied: tuple[str, ...]
    kept: tuple[str, ...]
    dropped: tuple[str, ...]
    seconds: float
    cpu_seconds: float
    patched: tuple[str, ...] = ()

    def __str__(self) -> str:
        total = len(self.copied) + len(self.kept) + len(self.patched)
        how = (
            f"full copy: {self.full}"
            if self.full
            else f"{len(self.kept)} kept, {len(self.patched)} patched, {len(self.dropped)} dropped"
        )
        return (
            f"published catalog: {len(self.copied)} of {total} relations copied, {how} "
            f"({self.seconds:.1f} s, {self.cpu_seconds:.1f} s CPU)"
        )


def publish_catalog(settings: Settings, run_id: str | None = None) -> Publication:
    """Replace the published catalog by a snapshot of the writer's catalog (atomically),
    copying only the relations that changed since the previous one (module docstring);
    returns what it did. Takes the writer lock (re-entrant: callers usually hold it)."""
    target = settings.catalog_path
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    started, cpu = time.perf_counter(), time.process_time()
    with writer_lock(settings, run_id):
        _discard(tmp)
        sweep_catalog(settings, keep=tmp)  # snapshots a killed writer began
        try:
            previous, why_full = _previous(target, tmp)
            if previous is None:
                _discard(tmp)  # a copy found unusable: start from an empty file
            with meta.connect(settings) as con:
                con.execute(f"attach {meta.sql_literal(str(tmp))} as published")
                try:
                    done_ = _copy_into(con, "published", run_id, settings, previous or {})
                finally:
                    con.execute("detach published")  # checkpoints: the file is whole, no WAL
            _fsync(tmp)
            checkpoint("catalog:after_snapshot")
            os.replace(tmp, target)
            checkpoint("catalog:after_replace")
        except BaseException:
            _discard(tmp)
            raise
        _fsync(target.parent)
    done = Publication(
        target,
        why_full,
        tuple(done_.copied),
        tuple(done_.kept),
        tuple(done_.dropped),
        time.perf_counter() - started,
        time.process_time() - cpu,
        tuple(done_.patched),
    )
    log.info("%s", done)
    return done


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


def _relations(
    con: duckdb.DuckDBPyConnection, db: str
) -> tuple[list[str], list[tuple[str, str, str | None]]]:
    """The schemas of database `db` and every (schema, table or view, the view's SQL or
    None for a table) in them."""
    relations = con.execute(
        "select schema_name, table_name, null from duckdb_tables() where database_name = ? and not internal "
        "union all select schema_name, view_name, sql from duckdb_views() where database_name = ? "
        "and not internal order by 1, 2",
        [db, db],
    ).fetchall()
    schemas = [
        s
        for (s,) in con.execute(
            "select schema_name from duckdb_schemas() where database_name = ? order by 1", [db]
        ).fetchall()
        if s not in _INTERNAL
    ]
    return schemas, [(s, n, sql) for s, n, sql in relations if s not in _INTERNAL]


def _previous(target: Path, tmp: Path) -> tuple[dict[tuple[str, str], str] | None, str | None]:
    """Start `tmp` as a copy of the published catalog and return its fingerprints, or
    (None, why) when the next snapshot must be a full copy. The copy is checked in a
    connection of its own (a damaged file must not touch the writer's connection)."""
    if not target.exists():
        return None, "no catalog yet"
    if Path(f"{target}.wal").exists():
        return None, "the previous catalog has a WAL"
    shutil.copyfile(target, tmp)  # copy_file_range on Linux: within the kernel
    try:
        with duckdb.connect(str(tmp), read_only=True) as con:
            found = con.execute(
                "select count(*) from duckdb_tables() where schema_name = 'meta' and table_name = ?",
                [FINGERPRINTS],
            ).fetchall()[0][0]
            if not found:
                return None, "the previous catalog has no fingerprints"
            free, total = con.execute(
                "select free_blocks, total_blocks from pragma_database_size() where database_name = current_database()"
            ).fetchall()[0]
            if total and free * 2 > total:
                return None, f"{free} of the previous catalog's {total} blocks free"
            rows = con.execute(f"select schema_name, name, fingerprint from meta.{FINGERPRINTS}").fetchall()
    except duckdb.Error as exc:
        return None, f"the previous catalog is unreadable ({type(exc).__name__})"
    return {(s, n): f for s, n, f in rows}, None


#: SQL value keywords DuckDB parses as column references and binds to the moment
_SPECIAL = frozenset(
    {"current_timestamp", "current_time", "current_date", "localtimestamp", "localtime", "current_user",
     "current_role", "session_user", "user", "current_catalog", "current_schema"}
)  # fmt: skip


def _read_parquet(fn: dict[str, Any]) -> tuple[list[str] | None, list[Any]]:
    """(the local paths or globs, the other arguments) of a `read_parquet` call of the
    parsed SQL; paths None for another table function, or paths not given as literals."""
    args = fn.get("arguments") or []
    if fn.get("function_name") not in ("read_parquet", "parquet_scan") or not args or args[0]["name"]:
        return None, []
    paths = _literals(args[0]["expression"])
    if not paths or any("://" in f or f.startswith("~") for f in paths):
        return None, []
    return paths, args[1:]


def _literals(node: dict[str, Any]) -> list[str] | None:
    """A string constant or a list of them, parsed; None for anything else."""
    if node.get("class") == "CONSTANT" and node["literal"].get("kind") == "STRING":
        return [node["literal"]["text"]]
    if node.get("class") == "FUNCTION" and node.get("function_name") == "list_value":
        found = [_literals(a["expression"]) for a in node["arguments"]]
        return None if any(f is None for f in found) else [x for f in found if f for x in f]
    return None


def _parquet_files(con: duckdb.DuckDBPyConnection, sql: str, consistent: frozenset[str]) -> list[str] | None:
    """The path literals (or globs) of `read_parquet` a view's SQL names, when they are all
    it reads: no table, view or other table function, and only functions DuckDB calls
    consistent (same result for the same input: not now(), random()); None otherwise."""
    head, sep, body = sql.partition(" AS ")
    if not sep or not head.startswith("CREATE VIEW "):
        return None
    try:
        tree = json.loads(con.execute("select json_serialize_sql(?)", [body]).fetchall()[0][0])
    except duckdb.Error:
        return None
    if tree.get("error") or len(tree.get("statements", ())) != 1:
        return None
    files: list[str] = []

    def fine(node: Any) -> bool:
        if isinstance(node, list):
            return all(fine(n) for n in node)
        if not isinstance(node, dict):
            return True
        kind, klass = node.get("type"), node.get("class")
        if kind in ("BASE_TABLE", "SHOW_REF", "COLUMN_DATA", "DELIM_GET", "BOUND_TABLE_REF"):
            return False
        if kind == "TABLE_FUNCTION":
            paths, rest = _read_parquet(node["function"])
            files.extend(paths or ())
            return (
                paths is not None and fine(rest) and all(fine(v) for k, v in node.items() if k != "function")
            )
        if klass == "FUNCTION" and (
            node.get("schema") or node.get("function_name", "").lower() not in consistent
        ):
            return False
        if (
            klass == "COLUMN_REF"
            and len(node["column_names"]) == 1
            and node["column_names"][0].lower() in _SPECIAL
        ):
            return False
        return all(fine(v) for v in node.values())

    return files if fine(tree["statements"]) else None


def _fingerprint(
    con: duckdb.DuckDBPyConnection, settings: Settings, sql: str | None, consistent: frozenset[str]
) -> str | None:
    """What a view over Parquet files yields, in short: sha256 of DuckDB's version, the
    view's SQL and (path relative to the warehouse, size, mtime_ns, footer digest:
    `_footer`) of every file it resolves to. None for a
    base table or a view that reads anything else: always copied."""
    if sql is None:
        return None
    files = _parquet_files(con, sql, consistent)
    if files is None:
        return None
    h = hashlib.sha256(f"{duckdb.__version__}\0{sql}\0".encode())
    for pattern in files:  # DuckDB's own glob: resolved as read_parquet resolves it
        h.update(f"{pattern}\0".encode())
        for (file,) in con.execute("select file from glob(?) order by file", [pattern]).fetchall():
            path = settings.warehouse / file  # glob answers absolute paths: hashed relative to the home
            st = os.stat(path)
            name = os.path.relpath(path, settings.warehouse)
            h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0{_footer(path)}\n".encode())
    return h.hexdigest()


def _footer(path: Path) -> str:
    """sha256 of a Parquet file's footer (its metadata: schema, row groups, each column
    chunk's offsets, sizes and statistics, the writer's key-value metadata): what tells a
    file from another of the same path, size and mtime. Not the inode, so a home copied or
    restored with its mtimes (`cp -a`, a backup) keeps its catalog; a file that is not
    Parquet (no footer) hashes whole."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        if size >= 12:
            f.seek(size - 8)
            tail = f.read(8)
            length = int.from_bytes(tail[:4], "little")
            if tail[4:] == b"PAR1" and length + 12 <= size:
                f.seek(size - 8 - length)
                return hashlib.sha256(f.read(length)).hexdigest()
        f.seek(0)
        return hashlib.file_digest(f, "sha256").hexdigest()


def _consistent(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """The (lower-case) names of the functions DuckDB calls consistent in every overload."""
    return frozenset(
        n
        for (n,) in con.execute(
            "select lower(function_name) from duckdb_functions() group by all "
            "having bool_and(stability is not distinct from 'CONSISTENT')"
        ).fetchall()
    )


def view_fingerprint(
    con: duckdb.DuckDBPyConnection, settings: Settings, schema: str, name: str
) -> str | None:
    """The fingerprint (`_fingerprint`) the view `schema.name` of the connection's database
    has now, as the next publish of the catalog would compute it; None when it has none
    (no such view, or one reading more than Parquet files). The writer records it for a
    core table it patches (etl.resolve.store.publish), before the view moves to the new file."""
    rows = con.execute(
        "select sql from duckdb_views() where database_name = current_database() and schema_name = ? "
        "and view_name = ?",
        [schema, name],
    ).fetchall()
    return _fingerprint(con, settings, rows[0][0], _consistent(con)) if rows else None


@dataclass(frozen=True)
class _CorePatch:
    """A writer's meta.core_patch row: core.<table> over `path` is `base_path` patched;
    `small`: the patch adds at most half the table's rows (a larger one is copied whole:
    deleting and inserting most rows costs more than copying them)."""

    path: str
    base_fingerprint: str | None
    key: tuple[str, ...]
    drop_path: str
    add_path: str
    small: bool


def _core_patches(con: duckdb.DuckDBPyConnection, db: str) -> dict[str, _CorePatch]:
    """The writer's meta.core_patch rows by table (none before a version that kept them; a
    row of a version that did not count the added rows is not `small`: copied whole)."""
    columns = {
        c
        for (c,) in con.execute(
            "select column_name from duckdb_columns() where database_name = ? and schema_name = 'meta' "
            "and table_name = 'core_patch'",
            [db],
        ).fetchall()
    }
    if not columns:
        return {}
    small = "coalesce(add_rows * 2 <= t.rows, false)" if "add_rows" in columns else "false"
    rows = con.execute(
        f"select table_name, p.path, base_fingerprint, key, drop_path, add_path, {small} "
        f'from "{db}".meta.core_patch p join "{db}".meta.core_table t using (table_name)'
    ).fetchall()
    return {t: _CorePatch(p, fp, tuple(json.loads(k)), d, a, small) for t, p, fp, k, d, a, small in rows}


@dataclass
class _Chain:
    """A writer's layered core table (meta.core_layer): the files its view reads (base and
    layers), its rows, its layers in order (as patches: `base_fingerprint` the view's
    fingerprint before the layer) and the rows each adds."""

    files: set[str]
    rows: int
    layers: list[_CorePatch]
    added: list[int]


def _core_chains(con: duckdb.DuckDBPyConnection, db: str) -> dict[str, _Chain]:
    """The writer's layered core tables by name (none before a version that kept them)."""
    found = con.execute(
        "select count(*) from duckdb_tables() where database_name = ? and schema_name = 'meta' "
        "and table_name = 'core_layer'",
        [db],
    ).fetchall()[0][0]
    if not found:
        return {}
    rows = con.execute(
        "select table_name, t.path, t.rows, l.before_fingerprint, l.key, l.drop_path, l.add_path, l.add_rows "
        f'from "{db}".meta.core_layer l join "{db}".meta.core_table t using (table_name) '
        "where l.base_path = t.path order by table_name, l.seq"
    ).fetchall()
    chains: dict[str, _Chain] = {}
    for t, base, total, fp, key, d, a, added in rows:
        chain = chains.setdefault(t, _Chain({base}, int(total), [], []))
        chain.files |= {d, a}
        chain.layers.append(_CorePatch(t, fp, tuple(json.loads(key)), d, a, True))
        chain.added.append(int(added))
    return chains


def _chain_todo(chain: _Chain | None, had: str | None, files: list[str] | None) -> list[_CorePatch] | None:
    """The layers of a layered table the catalog's copy (fingerprint `had`) lacks, to apply
    in order: when the view reads just the chain's files, the copy is of the table as it
    was before one of its layers (the latest such) and those layers add at most half the
    table's rows (more is copied whole, as a patch is); None otherwise."""
    if chain is None or had is None or files is None or set(files) != chain.files:
        return None
    at = [i for i, x in enumerate(chain.layers) if x.base_fingerprint == had]
    if not at or sum(chain.added[at[-1] :]) * 2 > chain.rows:
        return None
    return chain.layers[at[-1] :]


def _patches_for(
    con: duckdb.DuckDBPyConnection,
    sql: str | None,
    had: str | None,
    patch: _CorePatch | None,
    chain: _Chain | None,
    consistent: frozenset[str],
) -> list[_CorePatch] | None:
    """What turns the catalog's copy of a core view (fingerprint `had`; `sql`: the view's,
    None when it has no fingerprint) into the view's rows: its patch (meta.core_patch) when
    the copy is of the patch's base, the view reads just the patched file and the patch is
    small; else the layers the copy lacks (`_chain_todo`); None: copy it whole."""
    if sql is None or had is None or (patch is None and chain is None):
        return None
    files = _parquet_files(con, sql, consistent)
    if (
        patch is not None
        and patch.small
        and patch.base_fingerprint is not None
        and had == patch.base_fingerprint
        and files == [patch.path]
    ):
        return [patch]
    return _chain_todo(chain, had, files)


@dataclass
class _Done:
    copied: list[str]
    kept: list[str]
    dropped: list[str]
    patched: list[str]


def _copy_into(
    con: duckdb.DuckDBPyConnection,
    alias: str,
    run_id: str | None,
    settings: Settings,
    previous: dict[tuple[str, str], str],
) -> _Done:
    """Database `alias` made to hold every table and view of the writer's schemas as a
    table: those whose fingerprint is in `previous` (and still in `alias`) kept, a core
    table whose copy is of the base of its patch (meta.core_patch) patched, the rest
    copied, the ones the writer no longer has dropped."""
    db = con.execute("select current_database()").fetchall()[0][0]
    done = _Done([], [], [], [])
    copied, kept, dropped = done.copied, done.kept, done.dropped
    con.execute("begin transaction")  # one consistent read of the writer's file
    try:
        schemas, relations = _relations(con, db)
        have_schemas, have = _relations(con, alias)
        ours = {("meta", "published"), ("meta", FINGERPRINTS)}
        wanted = {(s, n) for s, n, _ in relations} | ours
        for schema in sorted(set(have_schemas) - set(schemas) - {"meta"}):
            con.execute(f'drop schema {alias}."{schema}" cascade')
            dropped.extend(f"{s}.{n}" for s, n, _ in have if s == schema)
        present = set()
        for schema, name, sql in have:
            if schema not in schemas and schema != "meta":
                continue
            if (schema, name) in wanted:
                present.add((schema, name))
            else:
                kind = "view" if sql is not None else "table"
                con.execute(f'drop {kind} {alias}."{schema}"."{name}"')
                dropped.append(f"{schema}.{name}")
        for schema in schemas:
            con.execute(f'create schema if not exists {alias}."{schema}"')
        consistent = _consistent(con)
        patches = _core_patches(con, db)
        chains = _core_chains(con, db)
        fingerprints: list[tuple[str, str, str]] = []
        for schema, name, sql in relations:
            fp = _fingerprint(con, settings, sql, consistent)
            if fp is not None:
                fingerprints.append((schema, name, fp))
            if fp is not None and previous.get((schema, name)) == fp and (schema, name) in present:
                kept.append(f"{schema}.{name}")
                continue
            core = schema == "core" and (schema, name) in present
            todo = _patches_for(
                con,
                sql if fp is not None else None,
                previous.get((schema, name)),
                patches.get(name) if core else None,
                chains.get(name) if core else None,
                consistent,
            )
            if todo is not None:  # a core patch, or the layers the copy lacks, applied in order
                _apply(con, f'{alias}."{schema}"."{name}"', *todo)
                done.patched.append(f"{schema}.{name}")
                continue
            con.execute(
                f'create or replace table {alias}."{schema}"."{name}" as select * from "{db}"."{schema}"."{name}"'
            )
            copied.append(f"{schema}.{name}")
        con.execute(
            f"create or replace table {alias}.meta.{FINGERPRINTS} "
            "(schema_name varchar not null, name varchar not null, fingerprint varchar not null)"
        )
        if fingerprints:
            con.executemany(f"insert into {alias}.meta.{FINGERPRINTS} values (?, ?, ?)", fingerprints)
        con.execute(
            f"create or replace table {alias}.meta.published as select now()::timestamp as published_at, "
            "?::varchar as run_id",
            [run_id],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return done


def _apply(con: duckdb.DuckDBPyConnection, table: str, *patches: _CorePatch) -> None:
    """The catalog's copy `table` of a patch's base made the patched table, each patch in
    turn: the rows whose key is among the dropped keys deleted (as the writer's anti join:
    equal, not null), the added rows inserted (by name)."""
    for patch in patches:
        on = " and ".join(f't."{k}" = d."{k}"' for k in patch.key)
        con.execute(
            f"delete from {table} t using (select * from read_parquet({meta.sql_literal(patch.drop_path)})) d "
            f"where {on}"
        )
        con.execute(
            f"insert into {table} by name select * from read_parquet({meta.sql_literal(patch.add_path)})"
        )


def _discard(tmp: Path) -> None:
    tmp.unlink(missing_ok=True)
    Path(f"{tmp}.wal").unlink(missing_ok=True)


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


__all__ = [
    "FINGERPRINTS",
    "CatalogMissing",
    "Publication",
    "publish_catalog",
    "publishing",
    "read_catalog",
    "view_fingerprint",
]
