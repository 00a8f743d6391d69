"""Descriptions of every table and column, as DuckDB comments.

The shared tables describe themselves and their columns in schemas/shared/<table>.yml;
schemas/warehouse.yml describes the rest: the layer views built from a shared table
(staging, quarantine, core, history, department share), the columns the pipeline adds
(lineage, master ids), the core tables that are not a shared table and the meta tables.
`comment_relation` writes them onto a table or view with COMMENT ON TABLE / COMMENT ON
COLUMN, so any DuckDB client shows them (duckdb_tables(), duckdb_views(),
duckdb_columns().comment, information_schema.columns.column_comment).

DuckDB 2.0 keeps comments on views and view columns too, but `create or replace view`
drops them: whoever (re)creates a view comments it again in the same transaction
(etl.load.warehouse.refresh_views, etl.resolve.store.publish). Only comments that differ
from what the catalog holds are written.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from etl.config import Settings
from etl.contracts import SharedTable, _loc, _read_yaml
from etl.errors import ContractError

FILE = "warehouse.yml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TableEntry(_Strict):
    description: str | None = Field(None, min_length=1)
    columns: dict[str, str] = Field(default_factory=dict)


class WarehouseDescriptions(_Strict):
    layers: dict[str, str] = Field(default_factory=dict)
    columns: dict[str, str] = Field(default_factory=dict)
    tables: dict[str, TableEntry] = Field(default_factory=dict)


def load_descriptions(schemas_dir: Path) -> WarehouseDescriptions:
    """schemas/warehouse.yml (an empty set of descriptions when there is none)."""
    path = schemas_dir / FILE
    if not path.exists():
        return WarehouseDescriptions()
    return _cached(str(path), path.stat().st_mtime_ns)


class _UniqueKeys(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A YAML loader refusing a key given twice in one mapping (plain YAML keeps the last)."""


def _unique_mapping(loader: _UniqueKeys, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ContractError(
                loader.name, f"line {key_node.start_mark.line + 1}", f"{key!r} is given twice"
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


@lru_cache(maxsize=4)
def _cached(path: str, _mtime: int) -> WarehouseDescriptions:
    with open(path, encoding="utf-8") as fh:
        loader = _UniqueKeys(fh)
        loader.name = path  # libyaml's loader keeps no name: the errors name the file
        try:
            loader.get_single_data()
        finally:
            loader.dispose()
    try:
        wd = WarehouseDescriptions.model_validate(_read_yaml(Path(path)))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ContractError(path, _loc(dict(first)), first["msg"]) from exc
    empty = [f"columns.{k}" for k, v in wd.columns.items() if not v.strip()] + [
        f"tables.{t}.columns.{k}" for t, e in wd.tables.items() for k, v in e.columns.items() if not v.strip()
    ]
    if empty:
        raise ContractError(path, empty[0], "empty description")
    for name, template in wd.layers.items():
        try:
            template.format(table="t", description="d", grain="g", layer="l")
        except (KeyError, IndexError, ValueError) as exc:
            raise ContractError(
                path, f"layers.{name}", f"unknown placeholder {exc}; known: table, description, grain, layer"
            ) from None
    bad = [t for t in wd.tables if "." not in t]
    if bad:
        raise ContractError(path, f"tables.{bad[0]}", "name a table as <schema>.<table>")
    return wd


def _shared_of(tables: Mapping[str, SharedTable], schema: str, table: str) -> tuple[SharedTable | None, str]:
    """The shared table a relation is built from, and the layer template naming it."""
    if schema in ("staging", "quarantine") and table in tables:
        return tables[table], schema
    if schema == "core":
        if table in tables:
            return tables[table], "core"
        if table.endswith("_history") and table.removesuffix("_history") in tables:
            return tables[table.removesuffix("_history")], "core_history"
    return None, ""


def table_description(
    tables: Mapping[str, SharedTable], wd: WarehouseDescriptions, schema: str, table: str
) -> tuple[str | None, SharedTable | None]:
    """The description of `schema.table` and the shared table whose columns it carries."""
    entry = wd.tables.get(f"{schema}.{table}")
    shared, layer = _shared_of(tables, schema, table)
    if entry is not None and entry.description:
        return entry.description, shared
    if shared is not None and layer in wd.layers:
        text = wd.layers[layer].format(
            table=shared.name, description=shared.description.strip(), grain=shared.grain, layer=schema
        )
        return text, shared
    return (shared.description.strip() if shared is not None else None), shared


def column_description(
    wd: WarehouseDescriptions, key: str, shared: SharedTable | None, column: str, *, quarantine: bool = False
) -> str | None:
    """A column's description: its table's entry, the shared contract, then the common ones."""
    entry = wd.tables.get(key)
    if entry is not None and column in entry.columns:
        return entry.columns[column]
    if shared is not None and not quarantine and column in shared.column_names:
        return shared.column(column).description
    return wd.columns.get(column)


def describe(
    tables: Mapping[str, SharedTable], wd: WarehouseDescriptions, schema: str, table: str, columns: list[str]
) -> tuple[str | None, dict[str, str]]:
    """(table description, column -> description) of a relation with these columns."""
    text, shared = table_description(tables, wd, schema, table)
    key = f"{schema}.{table}"
    out = {}
    for c in columns:
        d = column_description(wd, key, shared, c, quarantine=schema == "quarantine")
        if d:
            out[c] = d
    return text, out


def _quote(text: str) -> str:
    return "'" + text.strip().replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def apply_comments(
    con: duckdb.DuckDBPyConnection,
    schema: str | None,
    table: str,
    comment: str | None,
    columns: dict[str, str],
) -> int:
    """COMMENT ON the table (or view) and its columns where the catalog holds another text;
    `schema` None: the connection's default schema. Returns the statements run."""
    where = "table_name = ?" + (" and schema_name = ?" if schema else " and schema_name = current_schema()")
    args = [table, schema] if schema else [table]
    current = con.execute(
        f"select comment from duckdb_tables() where {where} union all "
        f"select comment from duckdb_views() where {where.replace('table_name', 'view_name')}",
        args + args,
    ).fetchall()
    have = dict(
        con.execute(f"select column_name, comment from duckdb_columns() where {where}", args).fetchall()
    )
    name = f"{_ident(schema)}.{_ident(table)}" if schema else _ident(table)
    statements = []
    if comment and (not current or current[0][0] != comment.strip()):
        statements.append(f"comment on table {name} is {_quote(comment)}")
    for col, text in columns.items():
        if col in have and have[col] != text.strip():
            statements.append(f"comment on column {name}.{_ident(col)} is {_quote(text)}")
    for s in statements:
        con.execute(s)
    return len(statements)


def comment_relation(
    con: duckdb.DuckDBPyConnection,
    tables: Mapping[str, SharedTable],
    schemas_dir: Path,
    schema: str,
    table: str,
) -> int:
    """Write the descriptions of `schema.table` (an existing table or view) as comments."""
    wd = load_descriptions(schemas_dir)
    columns = [
        r[0]
        for r in con.execute(
            "select column_name from duckdb_columns() where schema_name = ? and table_name = ?",
            [schema, table],
        ).fetchall()
    ]
    text, described = describe(tables, wd, schema, table, columns)
    return apply_comments(con, schema, table, text, described)


def comment_schema(
    con: duckdb.DuckDBPyConnection, tables: Mapping[str, SharedTable], schemas_dir: Path, schema: str
) -> int:
    """Comment every table and view of `schema` that has a description."""
    names = [
        r[0]
        for r in con.execute(
            "select table_name from duckdb_tables() where schema_name = ? and database_name = current_database() "
            "union select view_name from duckdb_views() where schema_name = ? and not internal "
            "and database_name = current_database()",
            [schema, schema],
        ).fetchall()
    ]
    return sum(comment_relation(con, tables, schemas_dir, schema, n) for n in sorted(names))


def comment_catalog(
    con: duckdb.DuckDBPyConnection, tables: Mapping[str, SharedTable], schemas_dir: Path
) -> int:
    """Comment every described relation of the warehouse catalog in one transaction."""
    con.execute("begin transaction")
    try:
        n = sum(
            comment_schema(con, tables, schemas_dir, s) for s in ("staging", "quarantine", "core", "meta")
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return n


def describe_warehouse(settings: Settings, tables: Mapping[str, SharedTable]) -> int:
    """Comment every described relation of the settings' warehouse catalog (govbase publish:
    meta tables created after the catalog's first connection get theirs too)."""
    from etl import meta

    with meta.connect(settings) as con:
        return comment_catalog(con, tables, settings.schemas_dir)


def share_descriptions(
    tables: Mapping[str, SharedTable], schemas_dir: Path, layer: str, table: str, columns: list[str]
) -> tuple[str | None, dict[str, str]]:
    """Descriptions of a share's table `<layer>_<table>` with these columns: the contract's
    for the granted columns, the pseudonym template for `<column>_pseudonym`."""
    wd = load_descriptions(schemas_dir)
    shared = tables[table]
    template = wd.layers.get("share", "{description}")
    text = template.format(
        table=table, description=shared.description.strip(), grain=shared.grain, layer=layer
    )
    pseudo = wd.tables.get("share.pseudonyms", TableEntry())
    out: dict[str, str] = {}
    for c in columns:
        base = c.removesuffix("_pseudonym")
        if c in shared.column_names:
            out[c] = shared.column(c).description
        elif c.endswith("_pseudonym") and base in shared.column_names and "pseudonym" in pseudo.columns:
            out[c] = pseudo.columns["pseudonym"].format(
                column=base, description=shared.column(base).description
            )
        elif c in pseudo.columns:
            out[c] = pseudo.columns[c]
        elif c in wd.columns:
            out[c] = wd.columns[c]
    return text, out


def share_meta_descriptions(
    schemas_dir: Path, table: str, columns: list[str]
) -> tuple[str | None, dict[str, str]]:
    """Descriptions of a share's metadata table (share_grant, share_info)."""
    wd = load_descriptions(schemas_dir)
    entry = wd.tables.get(f"share.{table}", TableEntry())
    out = {c: entry.columns.get(c) or wd.columns.get(c) for c in columns}
    return entry.description, {c: d for c, d in out.items() if d}


__all__ = [
    "WarehouseDescriptions",
    "apply_comments",
    "comment_catalog",
    "comment_relation",
    "comment_schema",
    "describe",
    "describe_warehouse",
    "load_descriptions",
    "share_descriptions",
    "share_meta_descriptions",
]
