"""Stable master ids: issued once, never derived from data, merges keep the oldest, splits logged."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from etl.resolve.ids import assign

pytestmark = pytest.mark.unit


def _clusters(groups: list[list[str]]) -> pd.DataFrame:
    rows = [(r, min(g)) for g in groups for r in g]
    return pd.DataFrame(rows, columns=["rec_id", "cluster"])


def _run(groups: list[list[str]], previous: pd.DataFrame | None = None, last: int = 0, run: str = "r1"):
    prev = previous if previous is not None else pd.DataFrame(columns=["rec_id", "master_id"])
    return assign(_clusters(groups), prev, last_value=last, prefix="P", digits=10, run_id=run)


def test_new_ids_are_a_sequence_in_cluster_order_and_carry_no_data() -> None:
    got = _run([["person|b|2", "person|b|9"], ["person|a|1"]])
    ids = dict(zip(got.records["rec_id"], got.records["master_id"], strict=True))
    assert ids == {"person|a|1": "P0000000001", "person|b|2": "P0000000002", "person|b|9": "P0000000002"}
    assert all(re.fullmatch(r"P\d{10}", m) for m in ids.values())
    assert got.last_value == 2 and got.id_map.empty


def test_identical_inputs_give_identical_ids() -> None:
    groups = [["c"], ["a", "d"], ["b"]]
    assert _run(groups).records.equals(_run(groups).records)


def test_ids_survive_a_later_run_that_adds_records() -> None:
    first = _run([["a", "b"], ["c"]])
    second = _run([["a", "b", "z"], ["c"], ["0"]], first.records, first.last_value, "r2")
    ids = dict(zip(second.records["rec_id"], second.records["master_id"], strict=True))
    before = dict(zip(first.records["rec_id"], first.records["master_id"], strict=True))
    assert all(ids[r] == m for r, m in before.items())
    assert ids["z"] == ids["a"]
    assert ids["0"] == "P0000000003"  # new record, new id, after the existing ones
    assert second.last_value == 3


def test_a_merge_keeps_the_oldest_id_and_maps_the_other() -> None:
    first = _run([["a"], ["b"], ["c"]])  # P1 a, P2 b, P3 c
    second = _run([["a"], ["b", "c"]], first.records, first.last_value, "r2")
    ids = dict(zip(second.records["rec_id"], second.records["master_id"], strict=True))
    assert ids["b"] == ids["c"] == "P0000000002"
    row = second.id_map.iloc[0]
    assert (row["master_id"], row["merged_into"], row["run_id"], row["reason"]) == (
        "P0000000003",
        "P0000000002",
        "r2",
        "merged",
    )
    assert second.last_value == 3  # a merge issues nothing


def test_a_split_keeps_the_id_with_the_larger_part_and_logs_the_new_one() -> None:
    first = _run([["a", "b", "c"]])
    second = _run([["a"], ["b", "c"]], first.records, first.last_value, "r2")
    ids = dict(zip(second.records["rec_id"], second.records["master_id"], strict=True))
    assert ids["b"] == ids["c"] == "P0000000001"
    assert ids["a"] == "P0000000002"
    row = second.id_map.iloc[0]
    assert (row["master_id"], row["split_from"], row["reason"]) == ("P0000000002", "P0000000001", "split")


def test_retired_ids_are_never_reissued() -> None:
    first = _run([["a"], ["b"]])
    merged = _run([["a", "b"]], first.records, first.last_value)
    again = _run([["a", "b"], ["n"]], merged.records, merged.last_value)
    assert set(again.records["master_id"]) == {"P0000000001", "P0000000003"}
