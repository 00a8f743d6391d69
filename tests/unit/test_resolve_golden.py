"""Survivorship: each rule decides when the ones before it tie; provenance names rule and record."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from etl.contracts import Column, SharedTable
from etl.resolve.golden import choose, golden

pytestmark = pytest.mark.unit


def _table(rules: dict[str, list[str]]) -> SharedTable:
    cols = [
        Column(
            name=n,
            type="string",
            description=n,
            security_level="L1",
            sharing="unconditional",
            open="unconditional",
            survivorship=r,  # type: ignore[arg-type]
        )
        for n, r in rules.items()
    ]
    return SharedTable(name="t", description="t", grain="g", keys=[cols[0].name], columns=cols)


def _records(rows: list[tuple[str, str, str, str | None]]) -> pd.DataFrame:
    """rows: (rec_id, source, logical date, value)"""
    df = pd.DataFrame(rows, columns=["rec_id", "_source", "_logical_date", "v"])
    return df.assign(
        master_id="M1",
        _table="t",
        _batch_id="b",
        _row_number=range(1, len(df) + 1),
        record_key=df["rec_id"],
        _logical_date=pd.to_datetime(df["_logical_date"]),
    )


TRUST = pd.DataFrame(
    [("t", "high", "v", 9), ("t", "low", "v", 2), ("t", "low2", "v", 2)],
    columns=["_table", "_source", "attribute", "trust"],
)


@pytest.mark.parametrize(
    ("rules", "rows", "winner", "rule"),
    [
        (
            ["trust", "recent"],
            [("a", "low", "2026-11-02", "x"), ("b", "high", "2026-11-01", "y")],
            "b",
            "trust",
        ),
        (
            ["recent", "trust"],
            [("a", "low", "2026-11-02", "x"), ("b", "high", "2026-11-01", "y")],
            "a",
            "recent",
        ),
        (
            ["trust", "complete"],
            [
                ("a", "low", "2026-11-01", "北京市海淀区"),
                ("b", "low2", "2026-11-01", "北京市海淀区中关村大街1号"),
            ],
            "b",
            "complete",
        ),
        (
            ["frequent"],
            [
                ("a", "low", "2026-11-01", "x"),
                ("b", "high", "2026-11-01", "y"),
                ("c", "low2", "2026-11-01", "y"),
            ],
            "b",
            "frequent",
        ),
        (["trust"], [("b", "low", "2026-11-01", "x"), ("a", "low2", "2026-11-01", "y")], "a", "tie_break"),
        (["trust"], [("b", "low", "2026-11-01", None), ("a", "low2", "2026-11-01", "y")], "a", "only_value"),
    ],
)
def test_rules_decide_in_declared_order(rules: list[str], rows: list, winner: str, rule: str) -> None:
    recs = _records(rows)
    chosen = choose(recs, _table({"v": rules}), ["v"], TRUST)
    assert len(chosen) == 1
    assert (chosen.loc[0, "rec_id"], chosen.loc[0, "rule"]) == (winner, rule)
    gold = golden(recs, chosen, ["v"], "t_id")
    assert gold.loc[0, "v"] == recs.set_index("rec_id").loc[winner, "v"]
    assert (gold.loc[0, "t_id"], gold.loc[0, "source_records"]) == ("M1", len(rows))


def test_a_master_without_any_value_has_a_null_golden_value() -> None:
    recs = _records([("a", "low", "2026-11-01", None)])
    chosen = choose(recs, _table({"v": ["trust"]}), ["v"], TRUST)
    assert chosen.empty
    assert pd.isna(golden(recs, chosen, ["v"], "t_id").loc[0, "v"])


def test_provenance_carries_the_lineage_of_the_winning_record() -> None:
    recs = _records([("a", "low", "2026-11-01", "x"), ("b", "high", "2026-11-01", "y")])
    row = choose(recs, _table({"v": ["trust"]}), ["v"], TRUST).iloc[0]
    src = recs.set_index("rec_id").loc["b"]
    assert (row["_source"], row["_batch_id"], row["_row_number"], row["record_key"]) == (
        "high",
        src["_batch_id"],
        src["_row_number"],
        "b",
    )
    _ = dt  # dates enter through _records
