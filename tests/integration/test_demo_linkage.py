"""The demo's linkage cases in the delivered files, against the truth, on three seeds:
records without an ID at realistic rates, name and birth-date variants as documented,
in-department duplicates, organisations without a credit code and with name variants, and
a truth (links.parquet) consistent with the population."""

from __future__ import annotations

import csv
import io
import json

import opencc
import pandas as pd
import pytest

from etl.config import Settings, get_settings
from etl.demo import RATES, generate

pytestmark = pytest.mark.integration
PERSONS = 3000


@pytest.fixture(scope="module", params=[101, 202, 303])
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    s = get_settings(tmp_path_factory.mktemp(f"linkage{request.param}"))
    generate(s, persons=PERSONS, seed=request.param)
    return s


def _truth(s: Settings, source: str) -> pd.DataFrame:
    return pd.read_parquet(s.truth_dir / f"{source}.parquet")


def _has(t: pd.DataFrame, code: str) -> pd.Series:
    return t["defects"].str.split(",").apply(lambda xs: code in xs)


def _health(s: Settings) -> list[dict]:  # type: ignore[type-arg]
    path = next((s.landing / "nhc_health").glob("health_*.jsonl"))
    return [json.loads(x) for x in path.read_text("utf-8").splitlines()]


def _tax(s: Settings) -> pd.DataFrame:
    path = next((s.landing / "tax_registration").glob("taxpayers_*.csv"))
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))
    return pd.DataFrame([r[: len(rows[0])] for r in rows[1:]], columns=rows[0])


@pytest.mark.parametrize(
    ("source", "low", "high"),
    [("nhc_health", 0.05, 0.12), ("ca_marriage", 0.01, 0.06), ("ca_assistance", 0.06, 0.18), ("tax_registration", 0.02, 0.08)],
)  # fmt: skip
def test_records_without_an_id_at_realistic_rates(
    demo: Settings, source: str, low: float, high: float
) -> None:
    t = _truth(demo, source)
    missing = _has(t, "id_missing")
    assert low <= missing.mean() <= high, (source, missing.mean())
    assert (~t.loc[missing, "valid_id" if source != "tax_registration" else "legal_rep_valid_id"]).all()
    if source == "tax_registration":  # only individual businesses' representatives lack an ID
        orgs = pd.read_parquet(demo.truth_dir / "organisations.parquet").set_index("org_id")
        types = orgs.loc[t.loc[missing, "entity_id"], "entity_type"]
        assert (types == "individual_business").all()
        share = missing[t["true_entity_type"] == "individual_business"].mean()
        assert 0.08 <= share <= 0.25, share


def test_health_name_and_birth_variants_are_delivered(demo: Settings) -> None:
    t = _truth(demo, "nhc_health")
    recs = _health(demo)
    names = pd.Series([r["patient"]["name"] for r in recs])
    ids = pd.Series([r["patient"]["id_card"] or "" for r in recs])
    births = pd.Series([r["patient"]["birth_date"] for r in recs])
    true = t["true_name"]
    trad = _has(t, "name_variant_traditional")
    assert trad.any()
    conv = opencc.OpenCC("s2t")
    assert (names[trad] == true[trad].map(conv.convert)).all()
    assert (names[trad] != true[trad]).all()
    sur = _has(t, "name_variant_surname")
    assert sur.any()
    assert (names[sur].str[1:] == true[sur].str[1:]).all() and (names[sur].str[0] != true[sur].str[0]).all()
    nosep = _has(t, "name_variant_separator")
    assert (names[nosep] == true[nosep].str.replace("·", "")).all() and true[nosep].str.contains("·").all()
    dot = _has(t, "name_separator_dot")
    assert names[dot].str.contains(r"[.•]").all()
    variant = _has(t, "name_variant")
    assert variant.any() and (names[variant].str.len() == true[variant].str.len()).all()
    assert ((names[variant] != true[variant]) & (names[variant].str[0] == true[variant].str[0])).all()
    # wrong birth dates only where no ID was given
    for code in ("birth_swapped", "birth_off_by_one"):
        rows = _has(t, code)
        assert rows.any() or len(t) * RATES["nhc_health"][code] < 1, code
        assert (ids[rows] == "").all()
    swapped = _has(t, "birth_swapped")
    d = pd.to_datetime(t.loc[swapped, "true_birth_date"])
    want = d.dt.year.astype(str) + "-" + d.dt.day.map("{:02d}".format) + "-" + d.dt.month.map("{:02d}".format)
    got = pd.to_datetime(births[swapped].str.replace(".", "-"), format="mixed").dt.strftime("%Y-%m-%d")
    assert (got.to_numpy() == want.to_numpy()).all()


def test_health_duplicates_are_second_records_of_the_same_person(demo: Settings) -> None:
    t = _truth(demo, "nhc_health")
    dup = _has(t, "duplicate_record")
    rate = RATES["nhc_health"]["duplicate_record"]
    assert abs(dup.mean() - rate) < 0.005
    assert t.loc[dup, "record_key"].str.startswith("HD").all()
    assert t.loc[~dup, "record_key"].str.startswith("HR").all()
    first = set(t.loc[~dup, "entity_id"])
    assert set(t.loc[dup, "entity_id"]) <= first
    assert t["record_key"].is_unique


def test_moved_rows_deliver_the_old_region_and_address(demo: Settings) -> None:
    t = _truth(demo, "nhc_health")
    recs = _health(demo)
    region = pd.Series([r["address"]["region_code"] for r in recs])
    moved = _has(t, "moved")
    other_county = moved & (region != t["true_household_region"])
    assert other_county.any()  # some moved to another county
    assert (region[~moved] == t.loc[~moved, "true_household_region"]).all()
    p = pd.read_parquet(demo.truth_dir / "persons.parquet").set_index("person_id")
    ids = p.loc[t.loc[other_county, "entity_id"], "resident_id"]
    assert (region[other_county].to_numpy() == ids.str[:6].to_numpy()).all()  # the old county


def test_organisations_without_code_and_with_name_variants(demo: Settings) -> None:
    t = _truth(demo, "tax_registration")
    tax = _tax(demo)
    code_col, name_col = tax.columns[0], tax.columns[1]
    missing = _has(t, "code_missing")
    assert 0.015 <= missing.mean() <= 0.05
    assert (tax.loc[missing, code_col] == "").all() and (~t.loc[missing, "valid_id"]).all()
    form = _has(t, "org_name_variant_form")
    assert form.any()
    swapped = tax.loc[form, name_col].str.replace("有限责任公司", "有限公司") == t.loc[
        form, "true_name"
    ].str.replace("有限责任公司", "有限公司")
    assert swapped.all() and (tax.loc[form, name_col] != t.loc[form, "true_name"]).all()
    region = _has(t, "org_name_variant_region")
    assert region.any() and (tax.loc[region, name_col].str.len() < t.loc[region, "true_name"].str.len()).all()
    hrss = _truth(demo, "hrss_insurance")
    branch = _has(hrss, "org_name_variant_branch")
    assert branch.any() and (~branch | hrss["employer_entity_id"].notna()).all()
    brackets = _has(t, "org_name_bracket")
    assert (
        tax.loc[brackets, name_col].str.contains(r"\(") & ~tax.loc[brackets, name_col].str.contains("（")
    ).all()
    assert brackets.any() or _has(hrss, "org_name_bracket").any()


def test_links_cover_every_record_and_name_existing_entities(demo: Settings) -> None:
    links = pd.read_parquet(demo.truth_dir / "links.parquet")
    persons = set(pd.read_parquet(demo.truth_dir / "persons.parquet")["person_id"])
    orgs = set(pd.read_parquet(demo.truth_dir / "organisations.parquet")["org_id"])
    assert set(links.loc[links["entity_type"] == "person", "entity_id"]) <= persons
    assert set(links.loc[links["entity_type"] == "organisation", "entity_id"]) <= orgs
    assert not links.duplicated(["source", "record_key", "role"]).any()
    for source, n in links[links["role"] == "record"].groupby("source").size().items():
        assert n == len(_truth(demo, str(source)))
    # the records without a valid identifier are a real share of each entity type
    no_id = ~links["valid_id"].astype(bool)
    by_type = no_id.groupby(links["entity_type"]).mean()
    assert 0.02 < by_type["person"] < 0.2 and 0.005 < by_type["organisation"] < 0.1, by_type.to_dict()
    # a person's records across departments: look-alikes are different entities
    p = pd.read_parquet(demo.truth_dir / "persons.parquet")
    twins = p[p["twin_of"].notna()]
    assert not (twins["person_id"].to_numpy() == twins["twin_of"].to_numpy()).any()
    hukou = _truth(demo, "ps_hukou").set_index("entity_id")
    both = twins[twins["person_id"].isin(hukou.index) & twins["twin_of"].isin(hukou.index)]
    assert len(both) > 0
    a, b = hukou.loc[both["person_id"]], hukou.loc[both["twin_of"]]
    for col in ("true_birth_date", "true_address", "true_household_region"):
        assert (a[col].to_numpy() == b[col].to_numpy()).all(), col
    assert (a["record_key"].to_numpy() != b["record_key"].to_numpy()).all()
