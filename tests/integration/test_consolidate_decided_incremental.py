"""Clerical decisions taken between two runs: the incremental run clusters again only the
masters the decisions touch, and gives what a full rebuild with the same model gives.

On a copy of the consolidated demo: a pair the model linked inside one master is rejected
(the master splits) and a pair of records of two masters without a valid identifier is
accepted (they merge); then an incremental consolidation, and beside it, on a copy, a full
one (`mode="full"`, the same model): the same records, ids, id map, golden records,
provenance and findings.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
from demohome import copy_home

from etl import meta
from etl.config import Settings
from etl.contracts import get_contracts
from etl.resolve import store
from etl.resolve.config import load_resolve_configs
from etl.resolve.stage import consolidate

pytestmark = pytest.mark.integration


def _core(settings: Settings, table: str) -> pd.DataFrame:
    with meta.connect(settings, read_only=True) as con:
        frame = store.read_core(con, settings, table)
    assert frame is not None, table
    return frame


def _decisions(settings: Settings) -> list[tuple[str, str, str]]:
    cfg = load_resolve_configs(settings.schemas_dir, get_contracts(settings).tables)["person"]
    recs = _core(settings, "person_record")
    master = recs.set_index("rec_id")["person_id"]
    pairs = _core(settings, "person_pair")
    linked = pairs[pairs["match_probability"] >= cfg.thresholds.match]
    inside = linked[
        master.reindex(linked["rec_id_l"]).to_numpy() == master.reindex(linked["rec_id_r"]).to_numpy()
    ]
    reject = inside.sort_values(["rec_id_l", "rec_id_r"]).iloc[0]
    loose = recs.groupby("person_id")["has_valid_id"].transform("any")
    two = recs[~loose].sort_values("rec_id").drop_duplicates("person_id").head(2)
    assert len(two) == 2, "the demo has masters without a valid identifier"
    a, b = sorted(two["rec_id"])
    return [(reject["rec_id_l"], reject["rec_id_r"], "reject"), (a, b, "accept")]


def test_decisions_split_and_merge_masters_as_a_full_rebuild_does(
    demo_consolidated: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inc = copy_home(demo_consolidated.home, tmp_path / "incremental")
    decided = _decisions(inc)
    with meta.connect(inc) as con:
        for left, right, decision in decided:
            con.execute(
                "insert into meta.review_decision values ('person', ?, ?, ?, 'test', ?)",
                [left, right, decision, meta.now()],
            )
    full = copy_home(inc.home, tmp_path / "full")
    with caplog.at_level(logging.INFO, logger="etl.resolve.linkage"):
        got = consolidate(inc)
    assert got.entities["person"]["mode"] == "incremental"
    # only the masters the decisions touch were clustered again
    (again,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("person: ")]
    n, _, of = again.split()[1:4]
    assert 2 <= int(n) < int(of) / 20, again
    assert consolidate(full, mode="full").entities["person"]["mode"] == "full"
    assert got.entities["person"]["merged"] >= 1 and got.entities["person"]["split"] >= 1
    rec = _core(inc, "person_record").set_index("rec_id")["person_id"]
    (rl, rr, _), (al, ar, _) = decided
    assert rec[rl] != rec[rr] and rec[al] == rec[ar]
    for table, key in (
        ("person_record", ["rec_id"]),
        ("person", ["person_id"]),
        ("person_id_map", ["person_id", "run_id"]),
        ("legal_entity_record", ["rec_id"]),
        ("legal_entity", ["legal_entity_id"]),
    ):
        x, y = _core(inc, table), _core(full, table)
        if "run_id" in key:  # the last run's id differs between the homes
            last = x["run_id"].max()
            x, y = (
                x.drop(columns="run_id").assign(last=x["run_id"] == last),
                y.drop(columns="run_id").assign(last=y["run_id"] == y["run_id"].max()),
            )
            key = [k for k in key if k != "run_id"] + ["last"]
        pd.testing.assert_frame_equal(
            x.sort_values(key, ignore_index=True), y.sort_values(key, ignore_index=True), obj=table
        )
    for table in ("provenance", "finding"):
        x, y = (_core(h, table).drop(columns="run_id") for h in (inc, full))
        cols = list(x.columns)
        pd.testing.assert_frame_equal(
            x.sort_values(cols, ignore_index=True), y.sort_values(cols, ignore_index=True), obj=table
        )
