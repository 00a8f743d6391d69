"""A golden table that arrives as a Patch or whole: consolidation's history step (stage._history)
patches the SCD2 history instead of rebuilding it, and the result, written by the store and
applied by the published catalog, is what the full `history.scd2` gives (the demo's
consolidated warehouse, its golden records changed as a delta would change them)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
from demohome import copy_home

from etl import meta
from etl.config import Settings
from etl.contracts import get_contracts
from etl.datetypes import as_dates, core_dates
from etl.published import publish_catalog
from etl.resolve import history, store
from etl.resolve.stage import _history
from etl.resolve.store import Patch

pytestmark = pytest.mark.integration

DAYS = (pd.Timestamp("2026-11-02").date(), pd.Timestamp("2027-03-01").date())


def _delta(gold: pd.DataFrame, step: int) -> tuple[pd.DataFrame, Patch]:
    """The golden table after a delta: every 40th master moved, every 97th gone (merged),
    a few new ones, and some masters touched but unchanged; with the patch that says so."""
    gold = gold.sort_values("person_id", ignore_index=True)
    n = len(gold)
    moved = gold.index[(gold.index + step) % 40 == 0]
    gone = gold.index[(gold.index + step) % 97 == 1]
    touched = gold.index[(gold.index + step) % 113 == 2].difference(moved).difference(gone)
    after = gold.copy()
    after.loc[moved, "address"] = after.loc[moved, "address"].astype("string") + f" (moved {step})"
    births = gold.iloc[:3].assign(person_id=[f"PN{step}{i:06d}" for i in range(3)])
    after = pd.concat([after.drop(index=gone), births], ignore_index=True)
    drop = gold.loc[moved.union(gone).union(touched), ["person_id"]]
    changed = after["person_id"].isin(gold.loc[moved.union(touched), "person_id"]) | after["person_id"].isin(
        births["person_id"]
    )
    assert len(drop) < n / 10
    return after, Patch(("person_id",), drop, after[changed])


def _view(settings: Settings, table: str) -> list[tuple]:
    with meta.connect(settings, read_only=True) as con:
        return sorted(con.execute(f"select * from core.{table}").fetchall())


def _as_rows(frame: pd.DataFrame, dates: frozenset[str], tmp: Path) -> list[tuple]:
    path = tmp / "expected.parquet"
    as_dates(frame, dates).to_parquet(path, index=False)
    with duckdb.connect() as con:
        return sorted(con.execute(f"select * from read_parquet('{path}')").fetchall())


@pytest.mark.parametrize("whole", [False, True], ids=["golden patch", "whole golden table"])
def test_a_golden_patch_or_table_gives_the_history_a_full_rebuild_gives(
    demo_consolidated: Settings, tmp_path: Path, whole: bool
) -> None:
    settings = copy_home(demo_consolidated.home, tmp_path / "home")
    dates = core_dates(get_contracts(settings))
    publish_catalog(settings, "start")
    for step, day in enumerate(DAYS):
        with meta.connect(settings) as con:
            gold = store.read_core(con, settings, "person")
            previous = store.read_core(con, settings, "person_history")
            assert gold is not None and previous is not None
            after, patch = _delta(gold, step)
            golden: pd.DataFrame | Patch = after if whole else patch
            got = _history(con, settings, "person", golden, day)
            assert isinstance(got, Patch)
            # only the touched masters' versions are in the patch
            assert set(got.drop["person_id"]) <= set(patch.drop["person_id"])
            assert set(got.add["person_id"]) <= set(patch.drop["person_id"]) | set(patch.add["person_id"])
            assert len(got.add) < len(previous) / 10
            expected = history.scd2(previous, after, "person_id", day)
            store.publish(
                con, settings, f"patch-{step}", {"person": golden, "person_history": got}, {}, [], dates=dates
            )
        assert _view(settings, "person_history") == _as_rows(expected, dates, tmp_path)
        assert _view(settings, "person") == _as_rows(after, dates, tmp_path)
        done = publish_catalog(settings, f"patch-{step}")
        patched = {"core.person_history"} if whole else {"core.person", "core.person_history"}
        assert patched <= set(done.patched) and not patched & set(done.copied)
        with duckdb.connect(str(settings.catalog_path), read_only=True) as cat:
            assert sorted(cat.execute("select * from core.person_history").fetchall()) == _view(
                settings, "person_history"
            )
    closed = [r for r in _view(settings, "person_history") if r[-1] is False]
    assert {r[-2] for r in closed} >= set(DAYS)  # the patches closed versions on both days


def test_a_golden_patch_without_a_history_yet_gets_the_full_history(
    demo_consolidated: Settings, tmp_path: Path
) -> None:
    settings = copy_home(demo_consolidated.home, tmp_path / "home")
    with meta.connect(settings) as con:
        gold = store.read_core(con, settings, "person")
        assert gold is not None
        after, patch = _delta(gold, 0)
        con.execute("delete from meta.core_table where table_name = 'person_history'")
        got = _history(con, settings, "person", patch, DAYS[0])
    assert isinstance(got, pd.DataFrame)
    expected = history.scd2(None, after, "person_id", DAYS[0])
    key = ["person_id", "valid_from"]
    pd.testing.assert_frame_equal(
        got.sort_values(key, ignore_index=True)[list(expected.columns)],
        expected.sort_values(key, ignore_index=True),
    )
