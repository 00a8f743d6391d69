"""SCD2 on golden records: changes open versions, nothing is overwritten, reruns change nothing."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from etl.resolve.history import as_of_sql, scd2

pytestmark = pytest.mark.unit

D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


def _gold(rows: list[tuple[str, bool, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["person_id", "alive", "address"])


def _on(history: pd.DataFrame, day: str) -> pd.DataFrame:
    con = duckdb.connect()
    con.execute("create schema core")
    con.register("h", history)
    con.execute("create view core.person_history as select * from h")
    sql, params = as_of_sql("person", day)
    return con.execute(sql, params).df().set_index("person_id")


def test_a_death_is_a_new_version_and_the_past_stays_readable() -> None:
    first = scd2(None, _gold([("P1", True, "a"), ("P2", True, "b")]), "person_id", D1)
    second = scd2(first, _gold([("P1", False, "a"), ("P2", True, "b")]), "person_id", D2)
    assert len(second) == 3
    assert bool(_on(second, "2026-11-01").loc["P1", "alive"]) is True
    assert bool(_on(second, "2026-11-02").loc["P1", "alive"]) is False
    assert second[second["person_id"] == "P2"]["valid_from"].tolist() == [pd.Timestamp(D1)]  # unchanged: kept
    assert second["is_current"].sum() == 2


def test_identical_golden_records_change_nothing() -> None:
    gold = _gold([("P1", True, "a")])
    first = scd2(None, gold, "person_id", D1)
    again = scd2(first, gold.copy(), "person_id", D2)
    pd.testing.assert_frame_equal(first, again)


def test_a_merged_master_has_its_version_closed() -> None:
    first = scd2(None, _gold([("P1", True, "a"), ("P2", True, "a")]), "person_id", D1)
    second = scd2(first, _gold([("P1", True, "a")]), "person_id", D2)
    p2 = second[second["person_id"] == "P2"].iloc[0]
    assert (bool(p2["is_current"]), p2["valid_to"]) == (False, pd.Timestamp(D2))
    assert "P2" in _on(second, "2026-11-01").index and "P2" not in _on(second, "2026-11-02").index
