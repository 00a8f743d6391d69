"""Linkage on small in-code records: exact on valid IDs, Splink for the rest, conflicts split."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from stdnum.cn import ric

from etl.config import get_settings
from etl.contracts import Contracts
from etl.resolve.config import ResolveConfig, load_resolve_configs
from etl.resolve.evaluate import pairwise, split_scores
from etl.resolve.ids import Assignment, assign
from etl.resolve.linkage import Linkage, Previous, link
from etl.resolve.records import add_features, changes, content_hash

pytestmark = pytest.mark.unit

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂"


def _rid(region: str, born: dt.date, seq: int) -> str:
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    return first17 + ric.calc_check_digit(first17 + "0")


@pytest.fixture(scope="module")
def cfg(contracts: Contracts) -> ResolveConfig:
    return load_resolve_configs(get_settings().schemas_dir, contracts.tables)["person"]


def _people(n: int = 60) -> pd.DataFrame:
    rows = []
    for i in range(n):
        born = dt.date(1950 + i % 50, 1 + i % 12, 1 + (i * 7) % 28)
        region = ["110105", "310104", "440106", "510107"][i % 4]
        gender = "1" if i % 2 else "2"
        rows.append(
            {
                "true": f"T{i}",
                "name": SURNAMES[i % 20] + GIVEN[(i * 3) % len(GIVEN)] + GIVEN[(i * 5 + 1) % len(GIVEN)],
                "birth_date": pd.Timestamp(born),
                "gender": gender,
                "household_region": region,
                "address": f"{region}某街道{i}号",
                "phone": f"139{i:08d}",
                "resident_id": _rid(region, born, 100 + 2 * i + (1 if gender == "1" else 0)),
            }
        )
    return pd.DataFrame(rows)


def _records(people: pd.DataFrame) -> pd.DataFrame:
    """Two departments: hukou holds everyone with an ID; health a copy, every third without its ID."""
    hukou = people.assign(_source="ps_hukou", rec_id=[f"person|ps_hukou|{i:03d}" for i in range(len(people))])
    health = people.assign(
        _source="nhc_health",
        rec_id=[f"person|nhc_health|{i:03d}" for i in range(len(people))],
        resident_id=[None if i % 3 == 0 else r for i, r in enumerate(people["resident_id"])],
    )
    recs = pd.concat([hukou, health], ignore_index=True)
    recs = recs.assign(
        _table="person",
        _batch_id="b",
        _row_number=range(len(recs)),
        _logical_date=pd.Timestamp("2026-11-01"),
        record_key=recs["rec_id"],
        ethnicity=None,
        marital_status=None,
        alive=True,
        death_date=pd.NaT,
    )
    return recs


def test_records_without_an_id_link_to_their_person_and_namesakes_stay_apart(cfg: ResolveConfig) -> None:
    people = _people()
    # a namesake: same name and region as person 0, born elsewhere in time, no ID anywhere
    twin = people.iloc[[0]].assign(
        true="T-namesake", birth_date=pd.Timestamp("1999-09-09"), phone="13000000000"
    )
    recs = _records(people)
    extra = recs.iloc[[0]].assign(
        rec_id="person|ca_assistance|001",
        _source="ca_assistance",
        resident_id=None,
        **twin.iloc[0][["birth_date", "phone"]].to_dict(),
        true="T-namesake",
        address="别处",
    )
    recs = add_features(pd.concat([recs, extra], ignore_index=True), cfg)
    got = link(recs, cfg)
    merged = recs.merge(got.clusters, on="rec_id")
    overall, no_id = split_scores(merged["cluster"], merged["true"], merged["resident_id"].notna())
    assert overall.precision == 1.0 and overall.recall == 1.0, overall
    assert no_id.true_pairs == 20 and no_id.correct_pairs == 20
    assert got.stats["clusters"] == len(people) + 1
    assert got.stats["with_valid_id"] == 2 * len(people) - 20  # the IDs built here are valid ones
    assert got.model.settings["comparisons"], "the trained model is kept"


def test_two_valid_ids_are_never_merged_by_the_model_and_the_conflict_is_a_finding(
    cfg: ResolveConfig,
) -> None:
    people = _people()
    recs = _records(people)
    # a typo that passes the checksum: person 1 in health under another valid ID, and a
    # third record without an ID that matches both
    other = _rid("110105", people.loc[1, "birth_date"].date(), 999)
    recs.loc[recs["rec_id"] == "person|nhc_health|001", "resident_id"] = other
    bridge = recs[recs["rec_id"] == "person|ps_hukou|001"].assign(
        rec_id="person|ca_marriage|001", _source="ca_marriage", resident_id=None
    )
    recs = add_features(pd.concat([recs, bridge], ignore_index=True), cfg)
    got = link(recs, cfg)
    cl = got.clusters.set_index("rec_id")["cluster"]
    assert cl["person|ps_hukou|001"] != cl["person|nhc_health|001"]
    assert cl["person|ca_marriage|001"] in {cl["person|ps_hukou|001"], cl["person|nhc_health|001"]}
    kinds = [f["kind"] for f in got.findings]
    assert kinds == ["two_valid_ids_in_cluster"]
    assert set(got.findings[0]["rec_ids"]) >= {"person|ps_hukou|001", "person|nhc_health|001"}


def test_clerical_decisions_win_over_the_model(cfg: ResolveConfig) -> None:
    recs = add_features(_records(_people()), cfg)
    a, b = "person|nhc_health|000", "person|ps_hukou|000"  # linked by the model (no ID on a)
    c = "person|nhc_health|003"  # another person, no ID
    decisions = pd.DataFrame(
        [(a, b, "reject"), (c, "person|ps_hukou|005", "accept")], columns=["rec_id_l", "rec_id_r", "decision"]
    )
    base = link(recs, cfg).clusters.set_index("rec_id")["cluster"]
    assert base[a] == base[b]
    got = link(recs, cfg, decisions).clusters.set_index("rec_id")["cluster"]
    assert got[a] != got[b]
    assert got[c] == got["person|ps_hukou|005"]


def test_an_accepted_pair_of_two_valid_ids_keeps_every_record_of_either_id(cfg: ResolveConfig) -> None:
    """A person accepts that two valid IDs are one person: the records holding either ID
    all join that master (the group's identifiers are sanctioned; an edge adding none
    joins), while a third ID still stays apart."""
    people = _people()
    recs = _records(people)
    hukou, health = "person|ps_hukou|001", "person|nhc_health|001"
    other = _rid("110105", people.loc[1, "birth_date"].date(), 999)
    recs.loc[recs["rec_id"] == health, "resident_id"] = other
    # more records under each of the two IDs, sorting before and after the accepted pair
    same_x = recs[recs["rec_id"] == hukou].assign(rec_id="person|ca_marriage|001", _source="ca_marriage")
    same_y = recs[recs["rec_id"] == health].assign(rec_id="person|rs_employment|001", _source="rs_employment")
    third = _rid("110105", people.loc[1, "birth_date"].date(), 997)
    stranger = recs[recs["rec_id"] == hukou].assign(
        rec_id="person|ca_assistance|001", _source="ca_assistance", resident_id=third
    )
    recs = add_features(pd.concat([recs, same_x, same_y, stranger], ignore_index=True), cfg)
    decisions = pd.DataFrame([(health, hukou, "accept")], columns=["rec_id_l", "rec_id_r", "decision"])
    got = link(recs, cfg, decisions).clusters.set_index("rec_id")["cluster"]
    group = [hukou, health, "person|ca_marriage|001", "person|rs_employment|001"]
    assert got[group].nunique() == 1, got[group]
    assert got["person|ca_assistance|001"] != got[hukou]  # a third ID, never accepted
    apart = link(recs, cfg).clusters.set_index("rec_id")["cluster"]  # without the decision
    assert (
        apart[hukou] == apart["person|ca_marriage|001"] != apart[health] == apart["person|rs_employment|001"]
    )


def test_a_rejected_pair_stays_apart_even_through_a_third_record(cfg: ResolveConfig) -> None:
    recs = _records(_people())
    a, b = "person|nhc_health|000", "person|ps_hukou|000"
    third = recs[recs["rec_id"] == a].assign(rec_id="person|ca_marriage|000", _source="ca_marriage")
    recs = add_features(pd.concat([recs, third], ignore_index=True), cfg)
    base = link(recs, cfg).clusters.set_index("rec_id")["cluster"]
    assert base[a] == base[b] == base["person|ca_marriage|000"]
    decisions = pd.DataFrame([(a, b, "reject")], columns=["rec_id_l", "rec_id_r", "decision"])
    got = link(recs, cfg, decisions)
    cl = got.clusters.set_index("rec_id")["cluster"]
    assert cl[a] != cl[b]
    assert cl["person|ca_marriage|000"] in {cl[a], cl[b]}
    assert got.findings == []  # a decision is not a conflict


def _base(cfg: ResolveConfig) -> pd.DataFrame:
    """Every person twice (hukou with the ID, health a copy, every third without it), a
    conflict (person 1 in health under another valid ID, a record without an ID matching
    both: a cluster split, a finding) and a loner: one record, no ID anywhere."""
    people = _people()
    recs = _records(people)
    other = _rid("110105", people.loc[1, "birth_date"].date(), 999)
    recs.loc[recs["rec_id"] == "person|nhc_health|001", "resident_id"] = other
    bridge = recs[recs["rec_id"] == "person|ps_hukou|001"].assign(
        rec_id="person|ca_marriage|001", _source="ca_marriage", resident_id=None
    )
    loner = recs[recs["rec_id"] == "person|ps_hukou|030"].assign(
        rec_id="person|ca_assistance|900",
        _source="ca_assistance",
        resident_id=None,
        true="T-loner",
        name="欧阳娜娜",
        birth_date=pd.Timestamp("1977-07-07"),
        phone="13711112222",
        address="310104某街道900号",
        household_region="310104",
    )
    return pd.concat([recs, bridge, loner], ignore_index=True)


def _ids(got: Linkage, previous: pd.DataFrame, incremental: bool) -> Assignment:
    """The run's master ids as the consolidation gives them: every cluster mapped, or (an
    incremental run) only the clusters computed again, the others keeping their ids."""
    kept = None
    if incremental:
        assert got.previous_master is not None and got.reclustered is not None
        kept = got.previous_master.where(~got.reclustered)
    return assign(got.clusters, previous, last_value=70, prefix="P", digits=10, run_id="r2", kept=kept)


def _incremental_and_full(
    tmp_path: Path, cfg: ResolveConfig, later: pd.DataFrame, decisions: pd.DataFrame | None = None
) -> tuple[Linkage, Linkage, Assignment, Assignment]:
    """Run 1 links the base (training its model) and ids it; run 2 links `later` with that
    model twice: incremental against run 1's pairs and record table, and in full."""
    first = link(add_features(_base(cfg), cfg), cfg, run_id="r1")
    ids1 = assign(
        first.clusters,
        pd.DataFrame(columns=["rec_id", "master_id"]),
        last_value=0,
        prefix="P",
        digits=10,
        run_id="r1",
    )
    table = ids1.records.assign(content_hash=ids1.records["rec_id"].map(first.hashes))
    path = tmp_path / "person_record.parquet"
    table.rename(columns={"master_id": "person_id"}).to_parquet(path, index=False)
    later = add_features(later, cfg)
    previous = Previous(pairs=first.pairs, records=path, id_col="person_id")
    inc = link(later, cfg, decisions, model=first.model, previous=previous, run_id="r2")
    full = link(later, cfg, decisions, model=first.model, run_id="r2")
    prev = ids1.records[["rec_id", "master_id"]]
    return inc, full, _ids(inc, prev, True), _ids(full, prev, False)


def _assert_same(inc: Linkage, full: Linkage, a: Assignment, b: Assignment) -> None:
    pd.testing.assert_frame_equal(inc.clusters.astype("string"), full.clusters.astype("string"))
    pd.testing.assert_frame_equal(inc.pairs.drop(columns="run_id"), full.pairs.drop(columns="run_id"))
    assert inc.findings == full.findings
    assert {k: v for k, v in inc.stats.items() if k not in ("records_scored", "records_clustered")} == {
        k: v for k, v in full.stats.items() if k not in ("records_scored", "records_clustered")
    }
    pd.testing.assert_frame_equal(a.records.astype("string"), b.records.astype("string"))
    pd.testing.assert_frame_equal(a.id_map, b.id_map)
    assert a.last_value == b.last_value
    # the incremental run clustered only what its delta touched
    assert inc.reclustered is not None and 0 < inc.reclustered.sum() < len(inc.clusters) / 2


def test_an_incremental_link_bridging_two_masters_equals_a_full_one(
    cfg: ResolveConfig, tmp_path: Path
) -> None:
    later = _base(cfg)
    # a new record: person 2's ID with the loner's name, birth date, phone and address, so it
    # joins person 2's master (the ID) and the loner's (the model): the two merge
    loner = later[later["rec_id"] == "person|ca_assistance|900"]
    p2 = later.loc[later["rec_id"] == "person|ps_hukou|002", "resident_id"].iloc[0]
    new = loner.assign(rec_id="person|ca_assistance|901", resident_id=p2)
    # and a changed record (person 10 moved) and a removed one (person 20's health record)
    later.loc[later["rec_id"] == "person|nhc_health|010", "address"] = "440106别的街道1号"
    later = later[later["rec_id"] != "person|nhc_health|020"]
    later = pd.concat([later, new], ignore_index=True)
    inc, full, a, b = _incremental_and_full(tmp_path, cfg, later)
    _assert_same(inc, full, a, b)
    cl = inc.clusters.set_index("rec_id")["cluster"]
    assert cl["person|ca_assistance|900"] == cl["person|ps_hukou|002"] == cl["person|ca_assistance|901"]
    assert list(a.id_map["reason"]) == ["merged"]
    # the cluster run 1 split (two valid IDs) is still split and still a finding
    assert [f["kind"] for f in inc.findings] == ["two_valid_ids_in_cluster"]
    assert cl["person|ps_hukou|001"] != cl["person|nhc_health|001"]


def test_an_incremental_link_where_decisions_split_and_join_masters_equals_a_full_one(
    cfg: ResolveConfig, tmp_path: Path
) -> None:
    a_, b_ = "person|nhc_health|000", "person|ps_hukou|000"  # one master in run 1 (the model)
    c = "person|nhc_health|003"  # another person, no ID
    decisions = pd.DataFrame(
        [(a_, b_, "reject"), (c, "person|ps_hukou|005", "accept")],
        columns=["rec_id_l", "rec_id_r", "decision"],
    )
    inc, full, a, b = _incremental_and_full(tmp_path, cfg, _base(cfg), decisions)
    _assert_same(inc, full, a, b)
    cl = inc.clusters.set_index("rec_id")["cluster"]
    assert cl[a_] != cl[b_] and cl[c] == cl["person|ps_hukou|005"]
    # the rejection splits master 0; the acceptance takes c out of master 3 (a split) into
    # the cluster of master 5, which then holds two ids (a merge)
    assert sorted(a.id_map["reason"]) == ["merged", "split", "split"]


def test_changes_are_the_new_changed_and_removed_records_with_their_previous_masters(
    tmp_path: Path,
) -> None:
    recs = pd.DataFrame(
        {
            "rec_id": ["a", "b", "c", "d"],
            "name": ["x", "y", "z", "w"],
            "_batch_id": ["b1"] * 4,
            "_row_number": [1, 2, 3, 4],
            "_logical_date": pd.Timestamp("2026-11-01"),
        }
    )
    table = pd.DataFrame(
        {
            "rec_id": ["a", "b", "c", "d"],
            "person_id": ["P2", "P2", "P1", "P1"],
            "content_hash": content_hash(recs),
        }
    )
    path = tmp_path / "person_record.parquet"
    table.to_parquet(path, index=False)
    # b redelivered in a new batch (its lineage is not its content), c changed, d gone, e new
    later = pd.DataFrame(
        {
            "rec_id": ["a", "b", "c", "e"],
            "name": ["x", "y", "z2", "v"],
            "_batch_id": ["b1", "b2", "b2", "b2"],
            "_row_number": [1, 1, 2, 3],
            "_logical_date": pd.Timestamp("2026-11-02"),
        }
    )
    got = changes(later, path, "person_id")
    assert list(got.delta) == [False, False, True, True]
    assert got.content_hash.tolist() == content_hash(later).tolist()
    assert got.master.tolist()[:3] == ["P2", "P2", "P1"] and pd.isna(got.master.iloc[3])
    assert got.label.tolist()[:3] == ["a", "a", "c"]  # the smallest rec_id of each previous master
    assert got.removed.to_dict("list") == {"rec_id": ["d"], "master_id": ["P1"]}


def test_pairwise_counts_pairs() -> None:
    pred = pd.Series(["x", "x", "x", "y"])
    truth = pd.Series(["1", "1", "2", "2"])
    s = pairwise(pred, truth)
    assert (s.linked_pairs, s.true_pairs, s.correct_pairs) == (3, 2, 1)
    assert s.precision == pytest.approx(1 / 3) and s.recall == pytest.approx(0.5)
    assert (s.clusters, s.true_clusters) == (2, 2)
