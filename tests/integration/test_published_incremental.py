"""etl.published: the catalog copies only the relations that changed (real DuckDB files,
a fresh home with core-like views over Parquet files planted by hand)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from etl import meta
from etl.config import Settings, get_settings
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


def test_a_home_copied_with_its_mtimes_keeps_its_catalog(settings: Settings, tmp_path: Path) -> None:
    """A copy (`cp -a`, a backup restored) has new inodes, not new files: its next publish
    keeps every unchanged view instead of copying the whole catalog again."""
    _view(settings, "a", "r1", 10)
    _view(settings, "b", "r1", 20)
    publish_catalog(settings, "p1")
    moved = get_settings(tmp_path / "moved")
    shutil.copytree(settings.home, moved.home, copy_function=shutil.copy2)
    done = publish_catalog(moved, "p2")
    assert done.full is None and {"core.a", "core.b"} <= set(done.kept)
    assert not [r for r in done.copied if r.startswith("core.")]
    assert _content(str(moved.catalog_path))["core.b"] == [(i, f"v{i}") for i in range(20)]


def test_a_file_rewritten_in_place_to_the_same_size_and_mtime_is_copied(settings: Settings) -> None:
    """Same path, size, mtime_ns and inode, other rows: the footer (statistics) tells."""

    def write(letter: str) -> bytes:
        with meta.connect(settings) as con:
            out = settings.warehouse / f"{letter}.parquet"
            con.execute(
                f"copy (select range as id, '{letter}' || range as v from range(10)) to '{out}' "
                "(compression uncompressed)"
            )
        return out.read_bytes()

    file = settings.warehouse / "core/a/run=r1.parquet"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(write("x"))
    with meta.connect(settings) as con:
        con.execute("create or replace view core.a as select * from read_parquet('core/a/run=r1.parquet')")
    publish_catalog(settings, "p1")
    before = file.stat()
    other = write("y")
    assert len(other) == before.st_size  # the precondition: a rewrite to the same size
    with open(file, "r+b") as f:  # in place: the same inode
        f.write(other)
    os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = file.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    done = publish_catalog(settings, "p2")
    assert "core.a" in done.copied
    assert _content(str(settings.catalog_path))["core.a"] == [(i, f"y{i}") for i in range(10)]
