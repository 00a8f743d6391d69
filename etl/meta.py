"""The warehouse catalog file and its `meta` schema.

`meta` holds what the pipeline knows about itself: extracted batches and their
file fingerprints, per-row source errors, SQL watermarks, the run ledger,
validation results. Every writer opens the DuckDB file through `connect`, which
creates the schemas and tables on first use.

DuckDB allows one read-write process per file, and this file is the writer's own:
every writing process holds the home's writer lock (etl.lock), and readers open the
published catalog (etl.published), never this file.

Every path stored here (meta.partition, meta.extract_batch.raw_path,
meta.validation_result.ge_result_path, meta.core_table, meta.core_patch, meta.resolve_run.model_path,
the staging, quarantine and core views) is relative
to the warehouse root, so a home can be copied or moved: `stored_path` writes one,
`warehouse_path` reads one, and `connect` points DuckDB's `file_search_path` at the
warehouse root so the views resolve their relative Parquet paths there. Absolute
paths written before (by older versions) are made relative on the first open.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from etl.config import Settings

SCHEMAS = ("meta", "staging", "quarantine", "core", "open")

DDL = """
create table if not exists meta.extract_batch (
    batch_id     varchar primary key,
    run_id       varchar,
    source       varchar not null,
    file         varchar,            -- path relative to the landing folder, or the SQL table
    file_sha256  varchar,
    file_bytes   bigint,
    encoding     varchar,
    rows         bigint,             -- data rows written to raw
    flagged_rows bigint,             -- rows kept but flagged (ragged ...)
    raw_path     varchar,            -- Parquet file under warehouse/raw
    logical_date date,
    status       varchar not null,   -- extracted | skipped | failed | superseded
    message      varchar,
    started_at   timestamp,
    finished_at  timestamp
);
create table if not exists meta.source_error (
    run_id      varchar,
    source      varchar not null,
    file        varchar,
    row_number  bigint,
    kind        varchar not null,    -- unreadable | decode | mixed_encoding | ragged | unbalanced_quote | control_character | field_too_long | invalid_cell | merged_cell | wrong_json_type | duplicate_json_key | unreadable_record | unreconciled | missing_column | schema_drift | empty | unsafe_path | unreachable | ...
    problem     varchar not null,
    recorded_at timestamp not null
);
create table if not exists meta.watermark (
    source     varchar primary key,
    key        varchar not null,
    value      varchar,
    updated_at timestamp not null
);
create table if not exists meta.run_ledger (
    run_id           varchar not null,
    source           varchar not null,
    stage            varchar not null,   -- extract | normalize | validate | load
    logical_date     date,
    rows_in          bigint,
    rows_out         bigint,
    rows_quarantined bigint,
    started_at       timestamp,
    finished_at      timestamp,
    status           varchar not null,   -- ok | failed
    message          varchar
);
create table if not exists meta.partition (
    table_name        varchar not null,
    source            varchar not null,
    logical_date      date not null,
    run_id            varchar not null,
    staging_path      varchar,
    quarantine_path   varchar,
    rows_loaded       bigint not null,   -- staged rows (after unpivot)
    source_rows       bigint not null,   -- source rows loaded
    rows_quarantined  bigint not null,   -- source rows quarantined
    published_at      timestamp not null,
    primary key (table_name, source, logical_date)
);
create table if not exists meta.validation_result (   -- one row per validated (source, run)
    run_id                  varchar,
    source                  varchar,
    table_name              varchar,
    logical_date            date,
    rows_validated          bigint,
    source_rows_quarantined bigint,
    success                 boolean,
    failures                varchar,            -- why a batch was not published
    ge_result_path          varchar,            -- the Great Expectations results (JSON) behind the Data Docs
    validated_at            timestamp
);
-- One row per (run, source): a run balances when every delivered record (counted from
-- the files' lines, apart from the parser) was extracted, and every extracted source row
-- either loaded or quarantined; a run whose stages all ended ok but that does not
-- balance has status 'unbalanced', never 'ok'. The latest ledger row of each stage counts (a
-- retried task replaces its earlier attempt); replays move rows from quarantine
-- to loaded and add up.
create or replace view meta.reconciliation as
with latest as (
    select * from meta.run_ledger where stage <> 'replay'
    qualify row_number() over (partition by run_id, source, stage order by finished_at desc) = 1
), replays as (
    select run_id, source, sum(rows_out) as moved from meta.run_ledger where stage = 'replay' and status = 'ok'
    group by all
), runs as (
    select run_id, source, min(logical_date) as logical_date, min(started_at) as started_at,
           max(finished_at) as finished_at,
           max(rows_out) filter (where stage = 'extract') as extracted,
           max(rows_in) filter (where stage = 'extract') as delivered,
           max(rows_out) filter (where stage = 'load') as loaded,
           max(rows_quarantined) filter (where stage = 'load') as quarantined,
           bool_and(status = 'ok') as ok,
           string_agg(message, '; ') filter (where status = 'failed') as failure
    from latest group by all
)
select r.run_id, r.source, r.logical_date, r.started_at, r.finished_at, r.extracted,
       r.loaded + coalesce(p.moved, 0) as loaded,
       r.quarantined - coalesce(p.moved, 0) as quarantined,
       coalesce(r.extracted = r.loaded + r.quarantined and r.delivered = r.extracted, false) as balanced,
       case when not r.ok then 'failed' when r.loaded is null then 'incomplete'
            when not coalesce(r.extracted = r.loaded + r.quarantined and r.delivered = r.extracted, false)
            then 'unbalanced' else 'ok' end as status,
       r.failure,
       r.delivered
from runs r left join replays p using (run_id, source);
"""


# Added by the extract stage: the watermark range an SQL pull covered (replay, audit), and
# the rows already delivered at the watermark value itself (a JSON list of row identities).
DDL_EXTRACT = """
alter table meta.extract_batch add column if not exists watermark_from varchar;
alter table meta.extract_batch add column if not exists watermark_to varchar;
alter table meta.watermark add column if not exists boundary varchar;
alter table meta.extract_batch add column if not exists delivered bigint;  -- records by the file's lines
alter table meta.source_error add column if not exists line_number bigint;  -- physical line (sheet row)
"""


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_run_id(prefix: str = "run") -> str:
    return f"{prefix}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def _open(path: str, retries: int = 50) -> duckdb.DuckDBPyConnection:
    # Another process may hold the write lock for a moment (CLI next to a test,
    # a reader closing): wait briefly instead of failing at once.
    for attempt in range(retries):
        try:
            return duckdb.connect(path)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or attempt == retries - 1:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


def stored_path(settings: Settings, path: Path | str | None) -> str | None:
    """How `path` (a file under the warehouse) is stored: relative to the warehouse
    root, with forward slashes. A path outside the warehouse is refused."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    try:
        return p.relative_to(settings.warehouse).as_posix()
    except ValueError:
        raise ValueError(f"{p} is not under the warehouse {settings.warehouse}") from None


def warehouse_path(settings: Settings, stored: str | None) -> Path | None:
    """The file a stored path names, under this home's warehouse."""
    return None if stored is None else settings.warehouse / stored


#: stored path columns and how many trailing parts of an old absolute path name the file
#: below the warehouse root (layer/table/source=/load_date=/run=, raw/source/load_date=/batch,
#: validation/source/file)
_PATH_COLUMNS = (
    ("meta.partition", "staging_path", 5),
    ("meta.partition", "quarantine_path", 5),
    ("meta.extract_batch", "raw_path", 4),
    ("meta.validation_result", "ge_result_path", 3),
)


def _relativize(con: duckdb.DuckDBPyConnection) -> int:
    """Make the absolute paths an older version stored relative to the warehouse root
    (by their fixed depth below it, so a home copied or moved before this still names
    its own files, not the original's), and recreate the views over them. Returns how
    many values changed."""
    changed = 0
    for table, column, depth in _PATH_COLUMNS:
        old = [
            r[0]
            for r in con.execute(f"select distinct {column} from {table} where {column} like '/%'").fetchall()
        ]
        for value in old:
            rel = "/".join(Path(value).parts[-depth:])
            con.execute(f"update {table} set {column} = ? where {column} = ?", [rel, value])
            changed += 1
    if changed:
        from etl.load.warehouse import relink_views

        relink_views(con)
    if con.execute(
        "select count(*) from duckdb_tables() where schema_name = 'meta' and table_name = 'core_table'"
    ).fetchall()[0][0]:
        from etl.resolve import store

        changed += store.relink_views(con)
    return changed


#: catalogs this process has already brought to the current DDL (the DDL runs once per
#: process and file, not at every connection: the stages connect often)
_INITIALIZED: set[str] = set()


def _comment_meta(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """The meta tables' descriptions (schemas/warehouse.yml) as DuckDB comments."""
    from etl.descriptions import comment_schema

    con.execute("begin transaction")
    try:
        comment_schema(con, {}, settings.schemas_dir, "meta")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


@contextmanager
def connect(settings: Settings, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse catalog; creates it and the meta tables when absent."""
    settings.warehouse.mkdir(parents=True, exist_ok=True)
    path = str(settings.duckdb_path)
    if read_only and settings.duckdb_path.exists():
        con = duckdb.connect(path, read_only=True)
        _search_warehouse(con, settings)
    else:
        existed = settings.duckdb_path.exists()
        con = _open(path)
        _search_warehouse(con, settings)
        if not existed or path not in _INITIALIZED:
            for schema in SCHEMAS:
                con.execute(f"create schema if not exists {schema}")
            con.execute(DDL)
            con.execute(DDL_EXTRACT)
            _relativize(con)
            _comment_meta(con, settings)
            _INITIALIZED.add(path)
    try:
        yield con
    finally:
        con.close()


def _search_warehouse(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    # the views hold paths relative to the warehouse root: resolve them there, not in
    # the process's working directory
    con.execute("set file_search_path = " + sql_literal(str(settings.warehouse)))


def sql_literal(text: str) -> str:
    """`text` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Watermark:
    """Where a source's SQL pulls stand: the highest `key` value delivered, and the rows
    delivered at exactly that value (`boundary`, row identities: tuples of their primary
    key values as text; None when the mark predates boundaries), so that a row committed later with the same key value
    is still pulled, and the delivered ones are not pulled twice."""

    key: str
    value: str | None
    boundary: frozenset[tuple[str | None, ...]] | None = None


def get_watermark(con: duckdb.DuckDBPyConnection, source: str) -> Watermark | None:
    """A source's watermark, or None when it has none yet."""
    rows = con.execute(
        "select key, value, boundary from meta.watermark where source = ?", [source]
    ).fetchall()
    if not rows:
        return None
    row = rows[0]
    boundary = frozenset(tuple(i) for i in json.loads(row[2])) if row[2] is not None else None
    return Watermark(row[0], row[1], boundary)


def set_watermark(con: duckdb.DuckDBPyConnection, source: str, mark: Watermark) -> None:
    boundary = (
        json.dumps(sorted(mark.boundary, key=json.dumps), ensure_ascii=False)
        if mark.boundary is not None
        else None
    )
    con.execute(
        "insert or replace into meta.watermark (source, key, value, updated_at, boundary) values (?, ?, ?, ?, ?)",
        [source, mark.key, mark.value, now(), boundary],
    )
