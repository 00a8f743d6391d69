"""Life and registry events after the base drop: what a later delivery has to tell.

`make_events` draws, once per seed and independent of any drop date, every event of a
fixed horizon after the base date (REF_DATE): deaths, marriages (of unmarried adults, in
pairs), moves to another county, phone changes, births (new persons) and deregistrations
of organisations. `state_at` applies the events dated on or before a drop date to the base
population and organisations, so a later drop shows them and an even later one shows
them too (events accumulate; nothing is redrawn). Annual rates are national orders of
magnitude (DOMAIN.md); so that the day after the base drop already has something to
record, the earliest event of each kind is placed on that day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from etl.demo.population import (
    REF_DATE,
    Regions,
    make_persons,
    mobiles,
    resident_ids,
    street_addresses,
    ymd_parts,
)

#: Days after REF_DATE over which events are drawn (later drops see no further events).
HORIZON_DAYS = 730
#: Annual rates: marriage (unmarried adults 20-40), move of county, phone change, birth
#: (per person), deregistration (active organisations). Death is age dependent (Gompertz).
ANNUAL = {"marriage": 0.12, "move": 0.02, "phone_change": 0.05, "birth": 0.0065, "deregistration": 0.05}

EVENT_COLUMNS = [
    "event_id",
    "kind",
    "date",
    "entity_type",
    "entity_id",
    "partner_id",
    "old_value",
    "new_value",
]


@dataclass
class Events:
    """Every event of the horizon (`table`, one row per event and entity, EVENT_COLUMNS) and
    the persons born in it (`newborns`, make_persons columns, person_id after the base)."""

    table: pd.DataFrame
    newborns: pd.DataFrame

    def until(self, day: np.datetime64) -> pd.DataFrame:
        return self.table[self.table["date"] <= day].reset_index(drop=True)


def _wait_days(rng: np.random.Generator, annual: np.ndarray) -> np.ndarray:
    """Exponential waiting time in whole days (>= 1) for annual probabilities `annual`."""
    rate = -np.log1p(-np.clip(annual, 0.0, 0.999)) / 365.25
    with np.errstate(divide="ignore"):
        return np.ceil(rng.exponential(1.0, len(annual)) / np.where(rate > 0, rate, np.nan))


def _first_on_day_one(days: np.ndarray) -> np.ndarray:
    """The earliest event of a kind moved to day 1 (if the horizon has one at all)."""
    out = days.copy()
    ok = np.flatnonzero(np.isfinite(out) & (out <= HORIZON_DAYS))
    if len(ok):
        out[ok[np.argmin(out[ok])]] = 1
    return out


def _frame(
    kind: str, days: np.ndarray, etype: str, ids: np.ndarray, old: object, new: object, partner: object = None
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "kind": kind,
            "date": (REF_DATE + days.astype(np.int64)).astype("datetime64[D]"),
            "entity_type": etype,
            "entity_id": np.asarray(ids, dtype=object),
            "partner_id": np.asarray(partner, dtype=object) if partner is not None else None,
            "old_value": np.asarray(old, dtype=object) if not isinstance(old, str) else old,
            "new_value": np.asarray(new, dtype=object) if not isinstance(new, str) else new,
        }
    )


def _marriages(
    rng: np.random.Generator, persons: pd.DataFrame, alive: np.ndarray, age: np.ndarray
) -> list[pd.DataFrame]:
    """Marriages of unmarried adults 22-40 alive through the horizon: men and women in the
    order of their draws, paired; two event rows per marriage (each with the partner)."""
    n = len(persons)
    pid = persons["person_id"].to_numpy().astype(object)
    male = persons["gender"].to_numpy() == "1"
    single = alive & (persons["marital_status"].to_numpy() == "10") & (age >= 22) & (age < 40)
    wed = np.where(single, _wait_days(rng, np.full(n, ANNUAL["marriage"])), np.inf)
    men = np.flatnonzero(male & (wed <= HORIZON_DAYS))
    women = np.flatnonzero(~male & (wed <= HORIZON_DAYS))
    men, women = men[np.argsort(wed[men], kind="stable")], women[np.argsort(wed[women], kind="stable")]
    k = min(len(men), len(women))
    men, women = men[:k], women[:k]
    day = _first_on_day_one(np.maximum(wed[men], wed[women])) if k else np.empty(0)
    return [
        _frame("marriage", day, "person", pid[who], "10", "20", pid[other])
        for who, other in ((men, women), (women, men))
    ]


def make_events(seed: int, persons: pd.DataFrame, orgs: pd.DataFrame, regions: Regions) -> Events:
    """All events of the horizon for this seed's base population (deterministic per seed)."""
    rng = np.random.default_rng([seed, 2])
    n = len(persons)
    alive = persons["alive"].to_numpy()
    birth = persons["birth_date"].to_numpy().astype("datetime64[D]")
    age = (REF_DATE - birth).astype(np.int64) / 365.25
    pid = persons["person_id"].to_numpy().astype(object)
    parts = []

    death_days = _first_on_day_one(np.where(alive, _wait_days(rng, 0.00002 * np.exp(age / 10.5)), np.inf))
    dead = np.flatnonzero(death_days <= HORIZON_DAYS)
    parts.append(_frame("death", death_days[dead], "person", pid[dead], "alive", "deceased"))

    parts += _marriages(rng, persons, alive & (death_days > HORIZON_DAYS), age)

    move_days = _first_on_day_one(np.where(alive, _wait_days(rng, np.full(n, ANNUAL["move"])), np.inf))
    movers = np.flatnonzero(move_days <= HORIZON_DAYS)
    to = rng.integers(0, len(regions.code), len(movers))
    new_region = np.char.zfill(regions.code[to].astype(str), 6)
    new_address = street_addresses(rng, regions.prefix[to])
    moves = _frame(
        "move",
        move_days[movers],
        "person",
        pid[movers],
        persons["household_region"].to_numpy()[movers],
        new_region,
    )
    moves["new_address"] = np.asarray(new_address, dtype=object)
    parts.append(moves)

    phone_days = _first_on_day_one(
        np.where(alive, _wait_days(rng, np.full(n, ANNUAL["phone_change"])), np.inf)
    )
    ph = np.flatnonzero(phone_days <= HORIZON_DAYS)
    parts.append(
        _frame(
            "phone_change",
            phone_days[ph],
            "person",
            pid[ph],
            persons["phone"].to_numpy()[ph],
            mobiles(rng, len(ph)),
        )
    )

    status = orgs["status"].to_numpy()
    dereg_days = _first_on_day_one(
        np.where(status == "active", _wait_days(rng, np.full(len(orgs), ANNUAL["deregistration"])), np.inf)
    )
    gone = np.flatnonzero(dereg_days <= HORIZON_DAYS)
    parts.append(
        _frame(
            "deregistration",
            dereg_days[gone],
            "organisation",
            orgs["org_id"].to_numpy()[gone],
            "active",
            "cancelled",
        )
    )

    newborns = _newborns(rng, n, regions)
    parts.append(
        _frame(
            "birth", newborns.pop("_day").to_numpy(), "person", newborns["person_id"].to_numpy(), None, "born"
        )
    )

    table = pd.concat(parts, ignore_index=True).sort_values(["date", "kind", "entity_id"], kind="stable")
    table = table.reset_index(drop=True)
    table.insert(0, "event_id", [f"V{i:07d}" for i in range(1, len(table) + 1)])
    return Events(table=table, newborns=newborns)


def _newborns(rng: np.random.Generator, n: int, regions: Regions) -> pd.DataFrame:
    """Persons born in the horizon (about ANNUAL['birth'] x n a year), numbered after the base."""
    k = int(rng.poisson(n * ANNUAL["birth"] * HORIZON_DAYS / 365.25)) + 1
    babies = make_persons(rng, k, regions)
    days = np.sort(rng.integers(1, HORIZON_DAYS + 1, k))
    days[0] = 1
    birth = (REF_DATE + days).astype("datetime64[D]")
    y, m, d = ymd_parts(birth)
    male = babies["gender"].to_numpy() == "1"
    code = babies["household_region"].to_numpy().astype(np.int64)
    seq = np.arange(k) * 2 % 996 + np.where(male, 1, 2)
    width = max(7, len(str(n + k)))
    babies["person_id"] = [f"P{i:0{width}d}" for i in range(n + 1, n + k + 1)]
    babies["birth_date"] = birth
    babies["resident_id"] = resident_ids(code, y * 10000 + m * 100 + d, seq)
    babies["old_household_region"] = babies["household_region"]
    babies["marital_status"] = "10"
    babies["alive"] = True
    babies["death_date"] = np.datetime64("NaT")
    babies["twin_of"] = None
    babies["namesake_of"] = None
    babies["_day"] = days
    return babies.reset_index(drop=True)


def state_at(
    persons: pd.DataFrame, orgs: pd.DataFrame, events: Events, day: np.datetime64
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(persons, organisations, events applied) as of `day`: the base rows with their events
    applied, then the persons born by `day` appended (their person_id after the base)."""
    ev = events.until(day)
    P = persons.copy()
    org = orgs.copy()
    at = pd.Series(np.arange(len(P)), index=P["person_id"].to_numpy())
    for kind, g in ev[ev["entity_type"] == "person"].groupby("kind", sort=False):
        if kind == "birth":
            continue
        i = at.reindex(g["entity_id"]).dropna().astype(np.int64).to_numpy()
        if kind == "death":
            P.loc[i, "alive"] = False
            P.loc[i, "death_date"] = g["date"].to_numpy()
        elif kind == "marriage":
            P.loc[i, "marital_status"] = "20"
        elif kind == "move":
            P.loc[i, "old_household_region"] = P.loc[i, "household_region"].to_numpy()
            P.loc[i, "old_address"] = P.loc[i, "address"].to_numpy()
            P.loc[i, "household_region"] = g["new_value"].to_numpy()
            P.loc[i, "address"] = g["new_address"].to_numpy()
        elif kind == "phone_change":
            P.loc[i, "old_phone"] = P.loc[i, "phone"].to_numpy()
            P.loc[i, "phone"] = g["new_value"].to_numpy()
    gone = ev.loc[ev["kind"] == "deregistration", "entity_id"]
    cancelled = org["org_id"].isin(gone).to_numpy()
    org.loc[cancelled, "status"] = "cancelled"
    org.loc[cancelled, "status_name"] = "注销"
    born = events.newborns[events.newborns["birth_date"] <= day]
    if len(born):
        P = pd.concat([P, born[P.columns]], ignore_index=True)
    return P, org, ev.drop(columns=[c for c in ev.columns if c not in EVENT_COLUMNS])
