"""SQL tables through SQLAlchemy, incrementally on `incremental_key`.

Connection: the Airflow connection `connection_id`, read from the environment
variable AIRFLOW_CONN_<CONNECTION_ID> (Airflow URI or JSON form; conn types
postgres/postgresql -> postgresql+psycopg, mysql/mariadb -> mysql+pymysql,
sqlite), else the contract's credential-free `default_url` with {landing}
filled in. The URL's password never appears in a message or a log line.

Rows come ordered by (incremental_key, primary key) — every column when the
table has no primary key — through a server-side cursor, `chunk_rows` at a
time. Primary-key columns the contract does not declare (a surrogate id) are
read and kept in raw without counting as schema drift; `_row_number` is the ordinal in that order.
With a watermark, rows whose key is greater are read, and rows whose key equals it
unless an earlier pull delivered them (meta.watermark keeps their identities: primary
key values, or every value without a key): a row committed late with the same key value
as the last pull's newest row is not lost, and no row is delivered twice. Values as the driver hands them over,
as text: str unchanged, numbers in plain decimal, date/time in ISO form with a
space separator ("2024-01-02 03:04:05"), booleans "true"/"false", bytes as
hex; SQL NULL is null.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from etl.config import Settings
from etl.contracts import Source
from etl.errors import SourceError
from etl.extract.common import ReadContext, RowBuffer, check_columns, number_text

_DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "sqlite": "sqlite",
}


def env_var(connection_id: str) -> str:
    return f"AIRFLOW_CONN_{connection_id.upper()}"


def _driver(conn_type: str) -> str:
    conn_type = conn_type.replace("-", "_")
    return conn_type if "+" in conn_type else _DRIVERS.get(conn_type, conn_type)


def parse_airflow_connection(raw: str) -> URL:
    """SQLAlchemy URL of an Airflow connection given as URI or JSON."""
    raw = raw.strip()
    if raw.startswith("{"):
        conn = json.loads(raw)
        extra = conn.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra) if extra.strip() else {}
        return URL.create(
            _driver(conn.get("conn_type", "")),
            username=conn.get("login") or None,
            password=conn.get("password") or None,
            host=conn.get("host") or None,
            port=int(conn["port"]) if conn.get("port") else None,
            database=conn.get("schema") or None,
            query={k: str(v) for k, v in extra.items()},
        )
    parts = urlsplit(raw)
    driver = _driver(parts.scheme)
    if driver == "sqlite":
        return make_url("sqlite://" + raw[len(parts.scheme) + 3 :])
    query = {k: v for k, v in parse_qsl(parts.query) if k != "__extra__"}
    return URL.create(
        driver,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        host=parts.hostname or None,
        port=parts.port,
        database=unquote(parts.path.lstrip("/")) or None,
        query=query,
    )


def connection_url(settings: Settings, src: Source) -> URL:
    """The URL to read `src` from: its Airflow connection, else its default_url."""
    assert src.connection_id
    raw = os.environ.get(env_var(src.connection_id))
    if raw:
        try:
            return parse_airflow_connection(raw)
        except (ValueError, KeyError, sa.exc.ArgumentError) as exc:
            raise SourceError(
                src.name,
                f"{env_var(src.connection_id)} is not a valid Airflow connection: {type(exc).__name__}",
                kind="unreachable",
            ) from None
    if src.default_url:
        return make_url(src.default_url.format(landing=settings.landing))
    raise SourceError(src.name, f"no connection: set {env_var(src.connection_id)}", kind="unreachable")


def safe_url(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def scrub(text: str, url: URL) -> str:
    """`text` with the URL's password removed, however it was quoted."""
    pw = url.password
    if pw:
        for form in {str(pw), quote(str(pw), safe="")}:
            text = text.replace(form, "***")
    return text


def engine_for(url: URL) -> Engine:
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() in ("postgresql", "mysql"):
        connect_args["connect_timeout"] = 10
    return sa.create_engine(url, connect_args=connect_args)


def value_text(value: Any) -> str | None:
    """A driver value as text (see module docstring)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


@dataclass
class Pull:
    """What one pull read: the highest incremental key seen (the next watermark) and the
    identities of the rows delivered at that key value, this pull's and earlier ones'."""

    high: str | None = None
    boundary: set[tuple[str | None, ...]] = field(default_factory=set)
    skipped: int = 0  # rows at the watermark value already delivered by an earlier pull


def _identity(values: list[str | None], at: list[int]) -> tuple[str | None, ...]:
    """A row's identity: its primary key values (all its values without a key), as text."""
    return tuple(values[i] for i in at)


def _quote_table(engine: Engine, name: str) -> tuple[str | None, str, str]:
    prep = engine.dialect.identifier_preparer
    schema, _, table = name.rpartition(".")
    quoted = (prep.quote_schema(schema) + "." if schema else "") + prep.quote(table)
    return schema or None, table, quoted


def _select(
    engine: Engine,
    quoted: str,
    columns: list[str],
    pk: list[str],
    key: str | None,
    watermark: str | None,
    *,
    inclusive: bool,
) -> tuple[str, dict[str, Any]]:
    """The pull's SQL: every column, rows after (or, inclusive, at and after) the watermark,
    ordered by the key, then the primary key (or every column) for a stable order."""
    q = engine.dialect.identifier_preparer.quote
    order = [key] if key else []
    order += [c for c in (pk or columns) if c != key]
    sql = f"select {', '.join(q(c) for c in columns)} from {quoted}"
    params: dict[str, Any] = {}
    if key and watermark is not None:
        sql += f" where {q(key)} {'>=' if inclusive else '>'} :watermark"
        params["watermark"] = watermark
    return sql + " order by " + ", ".join(q(c) for c in order), params


def read(
    ctx: ReadContext,
    engine: Engine,
    url: URL,
    watermark: str | None,
    chunk_rows: int,
    pull: Pull,
    boundary: frozenset[tuple[str | None, ...]] | None = None,
) -> Iterator[pa.Table]:
    """Yield the rows after `watermark` (all when None) in chunks; sets `pull.high` and
    `pull.boundary`.

    With a `boundary` (the identities of the rows an earlier pull delivered at the
    watermark value), rows at the watermark value are read too and only those not in it
    are yielded: a row committed after that pull with the same key value is not lost.
    Without one (a watermark recorded before boundaries were kept), rows strictly
    after the watermark are read.

    Raises SourceError kind unreachable (no password in it), missing_table, or
    the column check's kinds.
    """
    src = ctx.source
    assert src.sql_table
    key = src.incremental_key
    db = url.database
    if url.get_backend_name() == "sqlite" and db and db != ":memory:" and not Path(db).is_file():
        # connecting would create an empty database file in the landing folder
        raise ctx.error(f"database {safe_url(url)}: no such file", kind="unreachable")
    try:
        with engine.connect() as conn:
            schema, table, quoted = _quote_table(engine, src.sql_table)
            insp = sa.inspect(conn)
            if not insp.has_table(table, schema=schema):
                raise ctx.error(f"no table {src.sql_table} in {safe_url(url)}", kind="missing_table")
            columns = [c["name"] for c in insp.get_columns(table, schema=schema)]
            pk = list(insp.get_pk_constraint(table, schema=schema).get("constrained_columns") or [])
            # an undeclared primary key (a surrogate id) is not drift: it orders the pull and stays in raw
            declared = set(src.field_names)
            null_columns = check_columns(ctx, [c for c in columns if c in declared or c not in pk])
            sql, params = _select(engine, quoted, columns, pk, key, watermark, inclusive=boundary is not None)
            key_at = columns.index(key) if key else -1
            identity_at = [columns.index(c) for c in pk] if pk else list(range(len(columns)))
            if watermark is not None and boundary is not None:
                pull.high, pull.boundary = watermark, set(boundary)
            result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(
                sa.text(sql), params
            )
            buf = RowBuffer(columns, null_columns)
            for part in result.partitions(chunk_rows):
                for rec in part:
                    values = [value_text(v) for v in rec]
                    k = values[key_at] if key_at >= 0 else None
                    if k is not None:
                        ident = _identity(values, identity_at)
                        if k == watermark and boundary is not None and ident in boundary:
                            pull.skipped += 1  # delivered by an earlier pull
                            continue
                        if k != pull.high:
                            pull.high, pull.boundary = k, set()
                        pull.boundary.add(ident)
                    buf.rows.append(values)
                yield buf.take()
            if buf.total == 0:
                yield buf.take()
    except SourceError:
        raise
    except sa.exc.SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None) or exc
        detail = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        kind = "unreachable" if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) else "sql"
        raise ctx.error(
            f"database {safe_url(url)}: {type(orig).__name__}: {scrub(detail, url)}", kind=kind
        ) from None
