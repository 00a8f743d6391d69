"""Stored paths of the core layer: relative to the warehouse root, and an older version's
absolute core views are relinked on the first open (real DuckDB file, real Parquet)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from etl import meta
from etl.config import get_settings
from etl.resolve import store

pytestmark = pytest.mark.integration


def test_core_views_name_their_files_relative_to_the_warehouse(tmp_path: Path) -> None:
    settings = get_settings(tmp_path / "home")
    frame = pd.DataFrame({"person_id": ["P1", "P2"], "name": ["a", "b"]})
    with meta.connect(settings) as con:
        store.ensure(con)
        store.publish(con, settings, "run-1", {"person": frame}, sequences={}, runs=[])
        sql = con.execute("select sql from duckdb_views() where view_name = 'person'").fetchall()[0][0]
    assert str(settings.warehouse) not in sql and "core/person/run=run-1.parquet" in sql
    moved = get_settings(tmp_path / "moved")
    settings.home.rename(moved.home)
    with meta.connect(moved, read_only=True) as con:
        assert con.execute("select * from core.person order by 1").df().equals(frame)


def test_absolute_core_views_of_an_older_version_are_relinked_on_first_open(tmp_path: Path) -> None:
    old = get_settings(tmp_path / "old")
    frame = pd.DataFrame({"person_id": ["P1", "P2", "P3"]})
    with meta.connect(old) as con:
        store.ensure(con)
        store.publish(con, old, "run-1", {"person": frame}, sequences={}, runs=[])
        # what an older version left: the view over the absolute path of the file
        absolute = old.warehouse / "core" / "person" / "run=run-1.parquet"
        con.execute(f"create or replace view core.person as select * from read_parquet('{absolute}')")
    moved = get_settings(tmp_path / "moved")
    old.home.rename(moved.home)
    with meta.connect(moved) as con:  # the writer's first open migrates
        assert con.execute("select count(*) from core.person").fetchall() == [(3,)]
        sql = con.execute("select sql from duckdb_views() where view_name = 'person'").fetchall()[0][0]
    assert str(old.warehouse) not in sql
