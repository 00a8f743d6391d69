"""The demo population's look-alikes and variation pieces (no files written): twins,
namesakes, county moves, minority names, name variants; and the truth's identity columns.
Every rate is checked on three seeds, none tuned to one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from stdnum.cn import ric

from etl.config import get_settings
from etl.demo import _text as T
from etl.demo import messy as M
from etl.demo.population import (
    MOVED_COUNTY_SHARE,
    NAMESAKE_SHARE,
    TWIN_SHARE,
    Regions,
    make_persons,
)
from etl.demo.truth import identity_flags, link_rows
from etl.reference import load_regions

pytestmark = pytest.mark.unit
N = 4000


@pytest.fixture(scope="module")
def regions() -> Regions:
    return Regions.from_reference(load_regions(get_settings().project_dir))


@pytest.fixture(scope="module", params=[1, 2, 3])
def people(request: pytest.FixtureRequest, regions: Regions) -> pd.DataFrame:
    return make_persons(np.random.default_rng([request.param, 0]), N, regions)


def test_ids_stay_valid_and_unique(people: pd.DataFrame) -> None:
    assert people["resident_id"].is_unique
    assert all(ric.is_valid(x) for x in people["resident_id"])
    # the ID's birth date is the person's, also for twins and namesakes who took a partner's
    assert (people["resident_id"].str[6:14] == people["birth_date"].dt.strftime("%Y%m%d")).all()


def test_twins_share_birth_address_and_surname_not_given_name(people: pd.DataFrame) -> None:
    twins = people[people["twin_of"].notna()]
    assert abs(len(twins) / N - TWIN_SHARE) < 0.002
    first = people.set_index("person_id").loc[twins["twin_of"]]
    for col in ("birth_date", "household_region", "address", "ethnicity"):
        assert (twins[col].to_numpy() == first[col].to_numpy()).all(), col
    # one family name: the surname, or for given·father names the father's name
    family = np.where(
        twins["name"].str.contains("·"), twins["name"].str.split("·").str[1], twins["name"].str[0]
    )
    family_first = np.where(
        first["name"].str.contains("·"), first["name"].str.split("·").str[1], first["name"].str[0]
    )
    assert (family == family_first).all()
    assert (twins["name"].to_numpy() != first["name"].to_numpy()).all()
    assert (twins["resident_id"].to_numpy() != first["resident_id"].to_numpy()).all()


def test_namesakes_share_a_common_name_and_birth_date_elsewhere(people: pd.DataFrame) -> None:
    same = people[people["namesake_of"].notna()]
    assert abs(len(same) / N - NAMESAKE_SHARE) < 0.002
    other = people.set_index("person_id").loc[same["namesake_of"]]
    for col in ("name", "birth_date", "gender"):
        assert (same[col].to_numpy() == other[col].to_numpy()).all(), col
    assert same["name"].isin(T.COMMON_NAMES).all()
    assert (same["resident_id"].to_numpy() != other["resident_id"].to_numpy()).all()


def test_county_moves_keep_the_old_region_the_id_encodes(people: pd.DataFrame) -> None:
    moved = people["household_region"] != people["old_household_region"]
    assert abs(moved.mean() - MOVED_COUNTY_SHARE) < 0.01
    assert (people["resident_id"].str[:6] == people["old_household_region"]).all()
    assert (people.loc[moved, "address"] != people.loc[moved, "old_address"]).all()


def test_name_variant_pieces(people: pd.DataFrame) -> None:
    minority = people["ethnicity"].isin(T.SEPARATOR_NAME_GROUPS)
    assert minority.any()
    assert people.loc[minority, "name"].str.fullmatch(r"\w+·\w+").all()
    assert (people["name_no_separator"] == people["name"].str.replace("·", "")).all()
    trad = people["name_traditional"] != people["name"]
    assert trad.mean() > 0.5  # most names have a character with a traditional form
    sur = people["surname_variant"] != people["name"]
    assert sur.mean() > 0.5
    assert (people.loc[sur, "surname_variant"].str[1:] == people.loc[sur, "name"].str[1:]).all()
    assert all(
        T.SURNAME_VARIANTS[a[0]] == b[0]
        for a, b in zip(people.loc[sur, "name"], people.loc[sur, "surname_variant"], strict=True)
    )
    var = people["name_variant"] != people["name"]
    assert var.mean() > 0.9
    assert (people.loc[var, "name_variant"].str.len() == people.loc[var, "name"].str.len()).all()


def test_birth_dates_without_id_swapped_or_one_day_off() -> None:
    rng = np.random.default_rng(0)
    birth = np.array(
        ["1985-03-07", "1990-12-25", "2001-05-05", "1970-01-02", "1999-08-31"], dtype="datetime64[D]"
    )
    dfx = M.Defects(rng, 5, {"birth_swapped": 0.2, "birth_off_by_one": 0.2})
    out = M.mess_birth_without_id(rng, birth, dfx, np.array([True, True, True, False, True]))
    swapped, off = dfx.get("birth_swapped"), dfx.get("birth_off_by_one")
    # only 1985-03-07 is eligible to swap (day <= 12, day != month, no ID)
    assert swapped.tolist() == [True, False, False, False, False]
    assert out[0] == np.datetime64("1985-07-03")
    assert off.sum() == 1 and not off[3] and not off[0]
    assert abs(int((out[off] - birth[off]).astype(int)[0])) == 1
    assert (out[~swapped & ~off] == birth[~swapped & ~off]).all()


def test_separator_dot_only_touches_the_middle_dot() -> None:
    out = M.separator_dot(T.sarr(["阿卜杜拉·买买提", "张伟"]), np.random.default_rng(0))
    assert out[0] in ("阿卜杜拉.买买提", "阿卜杜拉•买买提") and out[1] == "张伟"


def test_identity_flags_and_links() -> None:
    orgs = pd.DataFrame(
        {"org_id": ["E1", "E2"], "legal_rep_person": ["P1", "P2"], "credit_code": ["C1", "C2"]}
    )
    base = {"source": "s", "file": "f", "row_number": [1, 2, 3], "record_key": ["a", "b", "c"]}
    tax = pd.DataFrame(
        {**base, "entity_id": ["E1", "E2", "E1"], "defects": ["code_missing", "id_missing", ""],
         "true_credit_code": ["C1", "C2", "C1"]}
    )  # fmt: skip
    t = identity_flags(tax, orgs)
    assert t["valid_id"].tolist() == [False, True, True]
    assert t["legal_rep_entity_id"].tolist() == ["P1", "P2", "P1"]
    assert t["legal_rep_valid_id"].tolist() == [True, False, True]
    links = link_rows(t)
    assert len(links) == 6
    assert set(links["role"]) == {"record", "legal_rep"}
    assert links.groupby("role")["entity_type"].first().to_dict() == {
        "legal_rep": "person",
        "record": "organisation",
    }
    hrss = pd.DataFrame(
        {**base, "entity_id": ["P1", "P1", "P2"], "defects": ["id_excel_destroyed", "code_bad_checksum", ""],
         "true_employer_credit_code": ["C2", "C2", "C1"]}
    )  # fmt: skip
    h = identity_flags(hrss, orgs)
    assert h["valid_id"].tolist() == [False, True, True]
    assert h["employer_entity_id"].tolist() == ["E2", "E2", "E1"]
    assert h["employer_valid_id"].tolist() == [True, False, True]
    assert link_rows(h).groupby("role")["entity_type"].first().to_dict() == {
        "employer": "organisation",
        "record": "person",
    }
