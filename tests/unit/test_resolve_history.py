"""SCD2 on golden records: changes open versions, nothing is overwritten, reruns change nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from etl.datetypes import as_dates
from etl.resolve import store
from etl.resolve.history import as_of_sql, scd2, scd2_frame_patch, scd2_patch
from etl.resolve.store import Patch

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


def _write(frame: pd.DataFrame, path: Path) -> Path:
    as_dates(frame, ["valid_from", "valid_to"]).to_parquet(path, index=False)
    return path


def _apply(con: duckdb.DuckDBPyConnection, file: Path, patch: Patch) -> list[tuple]:
    return sorted(con.execute(store.patch_sql(con, file, patch, ["valid_from", "valid_to"])).fetchall())


def _rows(con: duckdb.DuckDBPyConnection, history: pd.DataFrame, tmp: Path) -> list[tuple]:
    path = _write(history, tmp / "full.parquet")
    return sorted(con.execute(f"select * from read_parquet('{path}')").fetchall())


def _golden_patch(before: pd.DataFrame, after: pd.DataFrame) -> Patch:
    """The patch a survivorship step would give: masters gone or changed dropped, changed or new added."""
    m = before.merge(after, on="person_id", how="outer", suffixes=("_b", ""), indicator=True)
    cols = [c for c in after.columns if c != "person_id"]
    changed = m[(m["_merge"] == "both") & m.apply(lambda r: any(r[c] != r[f"{c}_b"] for c in cols), axis=1)]
    gone, new = m[m["_merge"] == "left_only"], m[m["_merge"] == "right_only"]
    drop = pd.concat([gone, changed])[["person_id"]]
    add = after[after["person_id"].isin(pd.concat([changed, new])["person_id"])]
    return Patch(("person_id",), drop, add)


RUNS = [
    (D1, [("P1", True, "a"), ("P2", True, "b"), ("P3", True, "c"), ("P4", True, "d")]),
    (
        D2,
        [("P1", False, "a"), ("P3", True, "c"), ("P4", True, "e"), ("P5", True, "f")],
    ),  # a death, a merge, a move, a birth
    (D2, [("P1", False, "a"), ("P3", True, "x"), ("P4", True, "e"), ("P5", True, "f")]),  # the same day again
    (dt.date(2027, 3, 1), [("P1", False, "a"), ("P3", True, "c"), ("P4", True, "e"), ("P5", True, "f")]),
]


def test_the_history_patch_gives_what_the_full_history_gives(tmp_path: Path) -> None:
    con = duckdb.connect()
    full = scd2(None, _gold(RUNS[0][1]), "person_id", RUNS[0][0])
    current = _write(full, tmp_path / "h0.parquet")
    for i, (day, rows) in enumerate(RUNS[1:], start=1):
        before, after = _gold(RUNS[i - 1][1]), _gold(rows)
        golden_file = _write(before, tmp_path / f"g{i}.parquet")
        patch = scd2_patch(con, current, golden_file, _golden_patch(before, after), "person_id", day)
        assert patch is not None and patch.key == ("person_id", "is_current")
        full = scd2(full, after, "person_id", day)
        patched = _apply(con, current, patch)
        assert patched == _rows(con, full, tmp_path), i
        # only the touched masters' current versions are dropped: never an unchanged one
        assert set(patch.drop["person_id"]) <= set(_golden_patch(before, after).drop["person_id"])
        current = tmp_path / f"h{i}.parquet"
        con.execute(f"copy ({store.patch_sql(con, tmp_path / f'h{i - 1}.parquet', patch)}) to '{current}'")
    assert patch.drop.empty is False  # the last run reverted P3's address: closed and reopened


def test_an_unchanged_golden_table_patches_nothing_and_a_new_attribute_asks_for_the_full(
    tmp_path: Path,
) -> None:
    con = duckdb.connect()
    gold = _gold(RUNS[0][1])
    history = _write(scd2(None, gold, "person_id", D1), tmp_path / "h.parquet")
    golden_file = _write(gold, tmp_path / "g.parquet")
    same = Patch(("person_id",), gold[["person_id"]].iloc[:2], gold.iloc[:2])  # touched, unchanged
    assert scd2_patch(con, history, golden_file, same, "person_id", D2).empty
    wider = _write(gold.assign(phone="1"), tmp_path / "g2.parquet")
    assert scd2_patch(con, history, wider, same, "person_id", D2) is None
    with pytest.raises(ValueError, match="keyed by person_id"):
        scd2_patch(
            con, history, golden_file, Patch(("x",), pd.DataFrame({"x": []}), gold.iloc[:0]), "person_id", D2
        )


def test_an_arrow_backed_golden_patch_versions_as_the_in_memory_golden_table(tmp_path: Path) -> None:
    con = duckdb.connect()
    gold = _gold(RUNS[0][1]).assign(since=pd.to_datetime(["2020-01-01", "2020-02-01", None, "2021-03-04"]))
    history = _write(scd2(None, gold, "person_id", D1), tmp_path / "h.parquet")
    golden_file = _write(as_dates(gold, ["since"]), tmp_path / "g.parquet")
    after = gold.copy()
    after.loc[1, "address"] = "moved"
    arrow = as_dates(after, ["since"]).convert_dtypes(dtype_backend="pyarrow")  # as a DuckDB result gives it
    patch = scd2_patch(
        con, history, golden_file, Patch(("person_id",), after[["person_id"]], arrow), "person_id", D2
    )
    assert patch is not None
    assert sorted(patch.drop["person_id"]) == ["P2"]  # only the one that changed: closed, reopened
    full = scd2(scd2(None, gold, "person_id", D1), after, "person_id", D2)
    assert _apply(con, history, patch) == _rows(con, full, tmp_path)


def test_a_golden_patch_that_only_drops_closes_those_masters(tmp_path: Path) -> None:
    con = duckdb.connect()
    gold = _gold(RUNS[0][1])
    first = scd2(None, gold, "person_id", D1)
    history = _write(first, tmp_path / "h.parquet")
    golden_file = _write(gold, tmp_path / "g.parquet")
    gone = Patch(
        ("person_id",), pd.DataFrame({"person_id": ["P2", "P9"]}), pd.DataFrame()
    )  # P9: never existed
    patch = scd2_patch(con, history, golden_file, gone, "person_id", D2)
    assert patch is not None and list(patch.drop["person_id"]) == ["P2"]
    full = scd2(first, gold[gold["person_id"] != "P2"], "person_id", D2)
    assert _apply(con, history, patch) == _rows(con, full, tmp_path)


def test_the_history_patch_of_a_whole_golden_table_gives_what_the_full_history_gives(tmp_path: Path) -> None:
    con = duckdb.connect()
    full = scd2(None, _gold(RUNS[0][1]), "person_id", RUNS[0][0])
    current = _write(full, tmp_path / "h0.parquet")
    for i, (day, rows) in enumerate(RUNS[1:], start=1):
        after = _gold(rows)
        patch = scd2_frame_patch(con, current, after, "person_id", day)
        assert patch is not None
        full = scd2(full, after, "person_id", day)
        assert _apply(con, current, patch) == _rows(con, full, tmp_path), i
        changed = set(_golden_patch(_gold(RUNS[i - 1][1]), after).drop["person_id"])
        assert set(patch.drop["person_id"]) == changed  # exactly the changed and gone masters
        nxt = tmp_path / f"h{i}.parquet"
        con.execute(f"copy ({store.patch_sql(con, current, patch)}) to '{nxt}'")
        current = nxt
    assert scd2_frame_patch(con, current, _gold(RUNS[-1][1]), "person_id", D2).empty  # nothing changed
    assert scd2_frame_patch(con, current, _gold(RUNS[-1][1]).assign(phone="1"), "person_id", D2) is None
