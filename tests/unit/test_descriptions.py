"""Descriptions (schemas/warehouse.yml) and comments on an in-memory DuckDB catalog."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from etl.config import Settings
from etl.contracts import Contracts
from etl.descriptions import apply_comments, comment_relation, load_descriptions
from etl.errors import ContractError

pytestmark = pytest.mark.unit


def test_the_project_describes_every_meta_table_it_creates(settings: Settings) -> None:
    from etl import meta
    from etl.orchestration.failure import DDL as FAILURE_DDL
    from etl.publish.classify import DDL as CLASSIFY_DDL
    from etl.resolve.store import DDL_CORE
    from etl.validate.conformance import DDL as CONFORMANCE_DDL

    wd = load_descriptions(settings.schemas_dir)
    con = duckdb.connect()
    con.execute("create schema meta")
    for ddl in (meta.DDL, meta.DDL_EXTRACT, DDL_CORE, CLASSIFY_DDL, FAILURE_DDL, CONFORMANCE_DDL):
        con.execute(ddl)
    columns = con.execute(
        "select table_name, column_name from duckdb_columns() where schema_name = 'meta'"
    ).fetchall()
    missing = [
        (t, c)
        for t, c in columns
        if f"meta.{t}" not in wd.tables or not (wd.tables[f"meta.{t}"].columns.get(c) or wd.columns.get(c))
    ]
    assert missing == []


def test_a_view_and_its_columns_take_their_descriptions(settings: Settings, contracts: Contracts) -> None:
    con = duckdb.connect()
    con.execute("create schema staging")
    person = contracts.tables["person"]
    cols = ", ".join(f"null::varchar as {c.name}" for c in person.columns)
    con.execute(f"create view staging.person as select {cols}, 'x' as _source")
    assert comment_relation(con, contracts.tables, settings.schemas_dir, "staging", "person") > 0
    got = dict(
        con.execute(
            "select column_name, comment from duckdb_columns() where table_name = 'person'"
        ).fetchall()
    )
    assert got["phone"] == person.column("phone").description
    assert got["_source"] == load_descriptions(settings.schemas_dir).columns["_source"]
    # nothing changed: nothing written again
    assert comment_relation(con, contracts.tables, settings.schemas_dir, "staging", "person") == 0


def test_quotes_in_a_description_survive() -> None:
    con = duckdb.connect()
    con.execute("create table t (a int)")
    apply_comments(con, "main", "t", "it's 中文", {"a": 'a\'s "value"'})
    assert con.execute("select comment from duckdb_columns() where table_name='t'").fetchall() == [
        ('a\'s "value"',)
    ]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("layers: {staging: 'x {nope}'}\n", "layers.staging"),
        ("tables: {run_ledger: {description: x}}\n", "tables.run_ledger"),
        ("columns: {a: ''}\n", "columns.a"),
        ("colums: {a: b}\n", "colums"),
        ("columns:\n  a: x\n  a: y\n", "line 3"),
    ],
)
def test_a_malformed_warehouse_yml_is_refused(tmp_path: Path, text: str, where: str) -> None:
    (tmp_path / "warehouse.yml").write_text(text, encoding="utf-8")
    with pytest.raises(ContractError) as err:
        load_descriptions(tmp_path)
    assert where in str(err.value)
