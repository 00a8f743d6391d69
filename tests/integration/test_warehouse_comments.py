"""Every table and column of the warehouse catalog and of the department shares carries its
description as a DuckDB comment (issue 13.7), on a real run: demo data through every stage,
consolidation and publishing."""

from __future__ import annotations

import json

import duckdb
import pytest
from jsonschema import Draft202012Validator

from etl import meta
from etl.config import Settings, get_settings
from etl.contracts import DUCKDB_TYPES, get_contracts
from etl.demo import generate
from etl.descriptions import describe_warehouse, load_descriptions
from etl.pipeline import run_source
from etl.publish.dictionary import json_schema
from etl.publish.grants import load_sharing
from etl.publish.shares import build_shares, open_share
from etl.resolve.stage import consolidate

pytestmark = pytest.mark.integration

DATE = "2026-11-01"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = get_settings(tmp_path_factory.mktemp("descriptions") / "home")
    generate(settings, persons=300, seed=5)
    for source in sorted(get_contracts(settings).sources):
        run_source(source, DATE, "run-1", settings=settings)
    consolidate(settings, "consolidate-1")
    contracts = get_contracts(settings)
    describe_warehouse(settings, contracts.tables)
    # the shares without the classification (its findings and their effect: test_shares.py)
    build_shares(settings, contracts, load_sharing(settings.schemas_dir, contracts.tables), [], DATE)
    return settings


def _columns(con: duckdb.DuckDBPyConnection, schema: str) -> list[tuple[str, str, str | None]]:
    return con.execute(
        "select table_name, column_name, comment from duckdb_columns() where schema_name = ? "
        "and database_name = current_database() order by table_name, column_index",
        [schema],
    ).fetchall()


def _relations(con: duckdb.DuckDBPyConnection, schema: str) -> dict[str, str | None]:
    return dict(
        con.execute(
            "select table_name, comment from duckdb_tables() where schema_name = ? union all "
            "select view_name, comment from duckdb_views() where schema_name = ? and not internal",
            [schema, schema],
        ).fetchall()
    )


def test_staging_columns_carry_their_contract_description(published: Settings) -> None:
    contracts = get_contracts(published)
    with meta.connect(published, read_only=True) as con:
        got = {(t, c): d for t, c, d in _columns(con, "staging")}
        for table in contracts.tables.values():
            for col in table.columns:
                assert got[(table.name, col.name)] == col.description, (table.name, col.name)
            assert table.description.strip() in (_relations(con, "staging")[table.name] or "")


def test_every_staging_quarantine_and_core_column_is_described(published: Settings) -> None:
    with meta.connect(published, read_only=True) as con:
        for schema in ("staging", "quarantine", "core"):
            relations = _relations(con, schema)
            assert relations, schema
            assert [n for n, d in relations.items() if not d] == [], schema
            bare = [(t, c) for t, c, d in _columns(con, schema) if not (d and d.strip())]
            assert bare == [], schema


def test_meta_tables_described_in_warehouse_yml_carry_it(published: Settings) -> None:
    described = load_descriptions(published.schemas_dir).tables
    with meta.connect(published, read_only=True) as con:
        relations = _relations(con, "meta")
        present = [t for t in relations if f"meta.{t}" in described]
        assert {"run_ledger", "reconciliation", "extract_batch", "core_table"} <= set(present)
        for t in present:
            assert relations[t] == described[f"meta.{t}"].description
        bare = [(t, c) for t, c, d in _columns(con, "meta") if t in present and not d]
        assert bare == []
        ledger = {c: d for t, c, d in _columns(con, "meta") if t == "run_ledger"}
        assert ledger["stage"] == described["meta.run_ledger"].columns["stage"]


def test_share_columns_carry_their_contract_description(published: Settings) -> None:
    contracts = get_contracts(published)
    shares = sorted((published.warehouse / "share").glob("*/share.duckdb"))
    assert shares
    checked = 0
    for path in shares:
        con = open_share(path)
        try:
            relations = _relations(con, "main")
            assert [n for n, d in relations.items() if not d] == [], path
            for table, column, comment in _columns(con, "main"):
                assert comment and comment.strip(), (path, table, column)
                if table.startswith(("core_", "staging_")):
                    shared = contracts.tables[table.split("_", 1)[1]]
                    if column in shared.column_names:
                        assert comment == shared.column(column).description, (path, table, column)
                        checked += 1
                    elif column.endswith("_pseudonym"):
                        base = shared.column(column.removesuffix("_pseudonym"))
                        assert base.description in comment and "HMAC" in comment
        finally:
            con.close()
    assert checked >= 10


def test_every_share_carries_the_master_ids_of_real_core_data(published: Settings) -> None:
    """Core tables name their master ids person_id / legal_entity_id; a staged record gets its
    masters from the record maps: every shared row carries them, as core has them (issue 13.3)."""
    sharing = load_sharing(published.schemas_dir, get_contracts(published).tables)
    seen = set()
    with meta.connect(published, read_only=True) as wh:
        for dept, d in sharing.departments.items():
            con = open_share(published.warehouse / "share" / dept / "share.duckdb")
            try:
                for g in d.grants:
                    name = f"{g.layer}_{g.table_name}"
                    cols = [r[0] for r in con.execute(f"describe {name}").fetchall()]
                    ids = [c for c in cols if c in ("person_id", "legal_entity_id")]
                    assert ids, (dept, name)
                    for c in ids:
                        shared = {r[0] for r in con.execute(f"select {c} from {name}").fetchall()}
                        entity = c.removesuffix("_id")
                        known = {r[0] for r in wh.execute(f"select {c} from core.{entity}").fetchall()}
                        assert None not in shared and shared and shared <= known, (dept, name, c)
                        seen.add((g.layer, c))
            finally:
                con.close()
    assert {("core", "person_id"), ("core", "legal_entity_id"), ("staging", "person_id")} <= seen


def test_a_reloaded_view_is_commented_again(published: Settings) -> None:
    """`create or replace view` drops comments: the load comments the new view itself."""
    run_source("ps_hukou", DATE, "run-2", settings=published, full_refresh=True)
    person = get_contracts(published).tables["person"]
    with meta.connect(published, read_only=True) as con:
        got = {c: d for t, c, d in _columns(con, "staging") if t == "person"}
        [(run,)] = con.execute(
            "select run_id from meta.partition where table_name = 'person' and source = 'ps_hukou'"
        ).fetchall()
    assert run == "run-2"  # the view was rebuilt over the new run's file
    assert all(got[c.name] == c.description for c in person.columns)
    assert got["_source"]


def test_every_staged_row_conforms_to_its_json_schema(published: Settings) -> None:
    """The rows validation let through meet the JSON Schema of the standard (the suites and
    the schemas are built from the same checks)."""
    contracts = get_contracts(published)
    ref = published.schemas_dir / "reference"
    checked = 0
    with meta.connect(published, read_only=True) as con:
        for name, table in contracts.tables.items():
            v = Draft202012Validator(
                json_schema(table, ref), format_checker=Draft202012Validator.FORMAT_CHECKER
            )
            # as the contract types them (staged Parquet holds dates as timestamps)
            cols = ", ".join(
                f'cast("{c.name}" as {DUCKDB_TYPES[c.type]}) as "{c.name}"' for c in table.columns
            )
            rows = [
                json.loads(r[0])
                for r in con.execute(
                    f"select to_json(t) from (select {cols} from staging.{name}) t"
                ).fetchall()
            ]
            assert rows, name
            bad = [(r, e.message) for r in rows for e in v.iter_errors(r)]
            assert bad == [], (name, bad[:3])
            checked += len(rows)
    assert checked > 1000
