"""etl.published: the catalog copies only the relations that changed (real DuckDB files,
a fresh home with core-like views over Parquet files planted by hand)."""

from __future__ import annotations

import duckdb
import pytest

from etl import meta
from etl.config import Settings
from etl.published import FINGERPRINTS, publish_catalog

pytestmark = pytest.mark.integration


def _view(settings: Settings, name: str, run: str, rows: int) -> None:
    rel = f"core/{name}/run={run}.parquet"
    (settings.warehouse / rel).parent.mkdir(parents=True, exist_ok=True)
    with meta.connect(settings) as con:
        con.execute(
            f"copy (select range as id, 'v' || range as v from range({rows})) to '{settings.warehouse / rel}'"
        )
        con.execute(
            f"create or replace view core.{name} as select * from read_parquet({meta.sql_literal(rel)})"
        )


def _content(path: str) -> dict[str, list[tuple]]:
    with duckdb.connect(path, read_only=True) as con:
        names = con.execute(
            "select schema_name, table_name from duckdb_tables() where not (schema_name = 'meta' "
            f"and table_name in ('published', '{FINGERPRINTS}')) order by 1, 2"
        ).fetchall()
        return {f"{s}.{n}": sorted(con.execute(f'select * from "{s}"."{n}"').fetchall()) for s, n in names}


def test_an_incremental_publish_copies_only_changed_views_and_equals_a_full_copy(settings: Settings) -> None:
    _view(settings, "a", "r1", 10)
    _view(settings, "b", "r1", 20)
    first = publish_catalog(settings, "p1")
    assert first.full and set(first.copied) >= {"core.a", "core.b"}
    again = publish_catalog(settings, "p2")
    assert again.full is None and {"core.a", "core.b"} <= set(again.kept)
    _view(settings, "b", "r2", 30)  # a new file: recopied
    _view(settings, "c", "r1", 5)
    with meta.connect(settings) as con:
        con.execute("drop view core.a")
    held = duckdb.connect(str(settings.catalog_path), read_only=True)  # a reader on the old state
    inc = publish_catalog(settings, "p3")
    assert "core.b" in inc.copied and "core.c" in inc.copied and inc.dropped == ("core.a",)
    assert held.execute("select count(*) from core.b").fetchall() == [(20,)]
    assert held.execute("select count(*) from core.a").fetchall() == [(10,)]
    held.close()
    incremental = _content(str(settings.catalog_path))
    assert "core.a" not in incremental and len(incremental["core.b"]) == 30
    settings.catalog_path.unlink()
    full = publish_catalog(settings, "p4")
    assert full.full == "no catalog yet"
    assert _content(str(settings.catalog_path)) == incremental
    with duckdb.connect(str(settings.catalog_path), read_only=True) as con:
        assert con.execute("select run_id from meta.published").fetchall() == [("p4",)]


def test_a_corrupt_previous_catalog_or_one_without_fingerprints_gets_a_full_copy(settings: Settings) -> None:
    _view(settings, "a", "r1", 10)
    publish_catalog(settings, "p1")
    with duckdb.connect(str(settings.catalog_path)) as con:
        con.execute(f"drop table meta.{FINGERPRINTS}")
    assert publish_catalog(settings, "p2").full == "the previous catalog has no fingerprints"
    settings.catalog_path.write_bytes(b"not a database" * 1000)
    done = publish_catalog(settings, "p3")
    assert done.full is not None and done.full.startswith("the previous catalog is unreadable")
    assert _content(str(settings.catalog_path))["core.a"] == [(i, f"v{i}") for i in range(10)]
    assert sorted(p.name for p in settings.catalog_path.parent.iterdir()) == [settings.catalog_path.name]


def test_a_view_that_reads_a_table_is_always_copied(settings: Settings) -> None:
    with meta.connect(settings) as con:
        con.execute("create or replace table core.t as select 1 as x")
        con.execute("create or replace view core.over_t as select * from core.t")
        con.execute("create or replace view core.now_v as select now() as t")
    publish_catalog(settings, "p1")
    with meta.connect(settings) as con:
        con.execute("insert into core.t values (2)")
    done = publish_catalog(settings, "p2")
    assert {"core.t", "core.over_t", "core.now_v"} <= set(done.copied)
    assert _content(str(settings.catalog_path))["core.over_t"] == [(1,), (2,)]
