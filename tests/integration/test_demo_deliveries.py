"""Later deliveries of the demo (`generate(..., drop_date=...)` after the base drop): the same
records under the same record keys with the values the seed's events changed (deaths,
marriages, moves, phone changes, deregistrations), plus the records events add (newborns,
marriage registrations), each event in the truth; and the pipeline carries them to staging."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from etl import meta
from etl.config import Settings, get_settings
from etl.demo import generate
from etl.demo.events import ANNUAL, make_events
from etl.pipeline import run_source

pytestmark = pytest.mark.integration
KEYED = [
    "ps_hukou",
    "tax_registration",
    "hrss_insurance",
    "nhc_health",
    "ca_marriage",
    "samr_registry",
    "ca_assistance",
]
PIPELINE = ["ps_hukou", "nhc_health", "ca_marriage", "samr_registry"]


@dataclass
class Drops:
    settings: Settings
    base: dict[str, pd.DataFrame]  # truth of the base drop, by file name
    later: dict[str, pd.DataFrame]


def _truths(s: Settings) -> dict[str, pd.DataFrame]:
    names = [*KEYED, "persons", "organisations", "events"]
    return {n: pd.read_parquet(s.truth_dir / f"{n}.parquet") for n in names}


@pytest.fixture(scope="module", params=[17, 29, 41])
def drops(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Drops:
    s = get_settings(tmp_path_factory.mktemp(f"drops{request.param}"))
    generate(s, persons=1500, seed=request.param)
    for src in PIPELINE:
        run_source(src, "2026-11-01", "run-1", settings=s)
    base = _truths(s)
    generate(s, persons=1500, seed=request.param, drop_date="20261102")
    for src in PIPELINE:
        run_source(src, "2026-11-02", "run-2", settings=s)
    return Drops(s, base, _truths(s))


def test_the_base_drop_has_no_events(drops: Drops) -> None:
    assert drops.base["events"].empty


def test_a_later_drop_redelivers_the_same_records_under_the_same_keys(drops: Drops) -> None:
    ev = drops.later["events"]
    born = set(ev.loc[ev["kind"] == "birth", "entity_id"])
    pairs = int((ev["kind"] == "marriage").sum()) // 2
    for src in KEYED:
        b, lt = drops.base[src], drops.later[src]
        m = b.merge(lt, on="record_key", how="outer", indicator=True, suffixes=("", "_later"))
        assert (m["_merge"] != "left_only").all(), src  # nothing the base delivered is gone
        both = m[m["_merge"] == "both"]
        assert (both["entity_id"] == both["entity_id_later"]).all(), src
        new = lt[~lt["record_key"].isin(b["record_key"])]
        if src in ("ps_hukou", "nhc_health"):
            assert set(new["entity_id"]) <= born and len(new) >= 1, src
        elif src == "ca_marriage":
            assert len(new) == 2 * pairs and set(new["true_marital_status"]) == {"20"}
        else:
            assert new.empty, src
        assert lt["record_key"].is_unique and (lt["row_number"] == np.arange(1, len(lt) + 1)).all()


def test_every_kind_of_event_is_there_and_the_truth_shows_it(drops: Drops) -> None:
    ev = drops.later["events"]
    assert set(ev["kind"]) == {"birth", "death", "marriage", "move", "phone_change", "deregistration"}
    assert (ev["date"] <= "2026-11-02").all() and (ev["date"] > "2026-11-01").all()
    p0 = drops.base["persons"].set_index("person_id")
    p1 = drops.later["persons"].set_index("person_id")
    dead = ev.loc[ev["kind"] == "death"]
    assert p0.loc[dead["entity_id"], "alive"].all()
    assert not p1.loc[dead["entity_id"], "alive"].any()
    assert (p1.loc[dead["entity_id"], "death_date"].to_numpy() == dead["date"].to_numpy()).all()
    wed = ev.loc[ev["kind"] == "marriage"]
    assert (p0.loc[wed["entity_id"], "marital_status"] == "10").all()
    assert (p1.loc[wed["entity_id"], "marital_status"] == "20").all()
    assert set(wed["entity_id"]) == set(wed["partner_id"])
    moved = ev.loc[ev["kind"] == "move"]
    assert (p1.loc[moved["entity_id"], "household_region"].to_numpy() == moved["new_value"].to_numpy()).all()
    assert (p1.loc[moved["entity_id"], "address"] != p0.loc[moved["entity_id"], "address"]).all()
    born = ev.loc[ev["kind"] == "birth", "entity_id"]
    assert not set(born) & set(p0.index) and set(born) <= set(p1.index)
    o0 = drops.base["organisations"].set_index("org_id")
    o1 = drops.later["organisations"].set_index("org_id")
    gone = ev.loc[ev["kind"] == "deregistration", "entity_id"]
    assert (o0.loc[gone, "status"] == "active").all() and (o1.loc[gone, "status"] == "cancelled").all()


def test_events_reach_staging_under_the_same_record_keys(drops: Drops) -> None:
    s, ev = drops.settings, drops.later["events"]
    with meta.connect(s, read_only=True) as con:
        rec = con.execute("select run_id, source, balanced from meta.reconciliation").fetchall()
        health = con.execute(
            "select _logical_date, record_key, alive from staging.person where _source = 'nhc_health'"
        ).df()
        samr = con.execute(
            "select _logical_date, record_key, status from staging.legal_entity where _source = 'samr_registry'"
        ).df()
    assert len(rec) == 2 * len(PIPELINE) and all(b for _, _, b in rec)
    # the person who died: the same health record, alive on the first date, deceased on the second
    t = drops.later["nhc_health"]
    keys = t.loc[t["entity_id"].isin(ev.loc[ev["kind"] == "death", "entity_id"]), "record_key"]
    days = health[health["record_key"].isin(keys)].pivot_table(
        index="record_key",
        columns=health["_logical_date"].astype(str).str[:10],
        values="alive",
        aggfunc="first",
    )
    assert len(days) >= 1 or keys.empty
    assert days.get("2026-11-02", pd.Series(dtype=bool)).eq(False).all()
    assert days.get("2026-11-01", pd.Series(dtype=bool)).eq(True).all()
    # the registry's incremental pull on the second date: exactly the deregistered companies
    later = samr[samr["_logical_date"].astype(str).str[:10] == "2026-11-02"]
    reg = drops.later["samr_registry"].set_index("entity_id")
    gone = ev.loc[(ev["kind"] == "deregistration") & ev["entity_id"].isin(reg.index), "entity_id"]
    assert set(later["record_key"]) == set(reg.loc[gone, "record_key"])
    assert (later["status"] == "cancelled").all()
    first = samr[samr["_logical_date"].astype(str).str[:10] == "2026-11-01"].set_index("record_key")
    assert (first.loc[first.index.intersection(later["record_key"]), "status"] == "active").all()


def test_events_are_deterministic_and_accumulate(drops: Drops) -> None:
    from etl.demo.population import Regions, make_organisations, make_persons
    from etl.reference import load_regions

    regions = Regions.from_reference(load_regions(drops.settings.project_dir))
    p = make_persons(np.random.default_rng([5, 0]), 1500, regions)
    o = make_organisations(np.random.default_rng([5, 1]), 100, p, regions)
    a, b = make_events(5, p, o, regions), make_events(5, p, o, regions)
    pd.testing.assert_frame_equal(a.table, b.table)
    early, late = a.until(np.datetime64("2026-11-02")), a.until(np.datetime64("2027-05-01"))
    assert len(early) < len(late)
    pd.testing.assert_frame_equal(early, late.iloc[: len(early)])
    # about realistic annual rates over the first year (DOMAIN.md orders of magnitude)
    year = a.until(np.datetime64("2027-11-01"))
    per = year["kind"].value_counts() / len(p)
    assert 0.002 < per["death"] < 0.02 and 0.002 < per["birth"] < 0.02, per.to_dict()


@pytest.mark.parametrize("seed", [5, 11, 23])
def test_a_next_day_drop_without_a_deregistration_yet(seed: int, tmp_path: Path) -> None:
    """A small population's drop one day after the base may hold events but no deregistration:
    the registry keeps its update times (it failed on pandas mapping through no dates)."""
    s = get_settings(tmp_path)
    generate(s, persons=300, seed=seed)
    generate(s, persons=300, seed=seed, drop_date="20261102")
    events = pd.read_parquet(s.truth_dir / "events.parquet")
    assert set(events["kind"]) <= {*ANNUAL, "death"}
    later = pd.read_parquet(s.truth_dir / "organisations.parquet")
    assert len(later) >= 1
