"""The demo generator: determinism, valid identifiers, truth alignment, documented defect rates."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from python_calamine import CalamineWorkbook
from stdnum.cn import ric, uscc

from etl.config import Settings, get_settings
from etl.contracts import Contracts
from etl.demo import RATES, generate
from etl.demo.population import credit_codes, resident_ids
from etl.quality import DEFECTS

pytestmark = pytest.mark.unit
PERSONS = 6000


def _digests(landing: Path) -> dict[str, str]:
    return {
        str(p.relative_to(landing)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(landing.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    s = get_settings(tmp_path_factory.mktemp("demo"))
    generate(s, persons=PERSONS, seed=7)
    return s


def truth(s: Settings, source: str) -> pd.DataFrame:
    return pd.read_parquet(s.truth_dir / f"{source}.parquet")


def has(df: pd.DataFrame, code: str) -> pd.Series:
    return df["defects"].str.split(",").apply(lambda xs: code in xs)


def test_same_seed_same_bytes(demo: Settings, tmp_path: Path) -> None:
    again = get_settings(tmp_path / "again")
    generate(again, persons=PERSONS, seed=7)
    assert _digests(demo.landing) == _digests(again.landing)


def test_different_seed_differs(demo: Settings, tmp_path: Path) -> None:
    other = get_settings(tmp_path / "other")
    generate(other, persons=PERSONS, seed=8)
    a, b = _digests(demo.landing), _digests(other.landing)
    assert a.keys() == b.keys()
    # the base drop has no events: its (empty) event table is the same for every seed
    assert all(a[k] != b[k] for k in a if k != "_truth/events.parquet")


def test_files_match_contract_globs(demo: Settings, contracts: Contracts) -> None:
    for name, src in contracts.sources.items():
        if src.kind == "sql":
            assert (demo.landing / "samr_registry" / "registry.sqlite").is_file()
        else:
            assert len(list((demo.landing / name).glob(src.location or ""))) == 1, name
        assert (demo.truth_dir / f"{name}.parquet").is_file()


def test_vectorized_ids_agree_with_stdnum() -> None:
    rng = np.random.default_rng(0)
    ids = resident_ids(
        np.full(500, 110105), rng.integers(1950, 2000, 500) * 10000 + 101, rng.integers(1, 999, 500)
    )
    assert all(ric.is_valid(x) for x in ids.tolist())
    codes = credit_codes(np.full(500, 91), np.full(500, 110105), rng.integers(0, 31, (500, 8)))
    assert all(uscc.calc_check_digit(c[:17]) == c[17] for c in codes.tolist())
    assert uscc.is_valid("91110000600037341L")


def test_population_ids_valid(demo: Settings) -> None:
    p = pd.read_parquet(demo.truth_dir / "persons.parquet")
    assert p["resident_id"].is_unique and p["person_id"].is_unique
    assert all(ric.is_valid(x) for x in p["resident_id"].sample(2000, random_state=1))
    o = pd.read_parquet(demo.truth_dir / "organisations.parquet")
    assert o["credit_code"].is_unique
    assert all(uscc.is_valid(x) for x in o["credit_code"])
    assert 0.005 < (~p["alive"]).mean() < 0.03


@pytest.mark.parametrize(
    "encoding,source", [("gbk", "ps_hukou"), ("utf-8-sig", "tax_registration"), ("utf-8", "stats_indicators")]
)
def test_csv_decode_strictly_and_row_counts(
    demo: Settings, contracts: Contracts, encoding: str, source: str
) -> None:
    path = next((demo.landing / source).glob(contracts.source(source).location or ""))
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")
    lines = raw.decode(encoding).splitlines()
    header = lines[0].split(",")
    assert header == contracts.source(source).field_names
    t = truth(demo, source)
    assert len(lines) - 1 == len(t)
    widths = pd.Series([len(x.split(",")) for x in lines[1:]])
    assert ((widths == len(header) + 1) == has(t, "ragged_row").to_numpy()).all()


def test_fixed_width_layout(demo: Settings, contracts: Contracts) -> None:
    src = contracts.source("ca_assistance")
    lines = (
        next((demo.landing / "ca_assistance").glob(src.location or ""))
        .read_bytes()
        .decode("gb18030")
        .splitlines()
    )
    t = truth(demo, "ca_assistance")
    assert len(lines) == len(t)
    total = max(f.start + f.width for f in src.fields)  # type: ignore[operator]
    assert all(len(x) == total for x in lines)
    ids = [x[:18].rstrip() for x in lines]
    fifteen = has(t, "id_15digit").to_numpy()
    assert all(len(i) == 15 for i, f in zip(ids, fifteen, strict=True) if f)
    assert abs(fifteen.mean() - RATES["ca_assistance"]["id_15digit"]) < 0.02


def test_json_and_xml_counts(demo: Settings, contracts: Contracts) -> None:
    from lxml import etree

    lines = next((demo.landing / "nhc_health").glob("health_*.jsonl")).read_text("utf-8").splitlines()
    recs = [json.loads(x) for x in lines]
    t = truth(demo, "nhc_health")
    assert len(recs) == len(t)
    dead = ~t["true_alive"].to_numpy()
    assert all(r["vital_status"]["alive"] is (not d) for r, d in zip(recs, dead, strict=True))
    assert all(r["vital_status"]["death_date"] for r, d in zip(recs, dead, strict=True) if d)
    root = etree.parse(str(next((demo.landing / "ca_marriage").glob("marriage_*.xml")))).getroot()
    records = root.findall("record")
    assert len(records) == len(truth(demo, "ca_marriage"))
    assert [c.tag for c in records[0]] == contracts.source("ca_marriage").field_names


def test_sqlite_registry(demo: Settings) -> None:
    import sqlite3

    con = sqlite3.connect(demo.landing / "samr_registry" / "registry.sqlite")
    rows = con.execute("SELECT id, updated_at FROM enterprise_registry ORDER BY id").fetchall()
    assert len(rows) == len(truth(demo, "samr_registry"))
    assert [u for _, u in rows] == sorted(u for _, u in rows)


def test_excel_two_header_rows_and_destroyed_ids(demo: Settings, contracts: Contracts) -> None:
    path = next((demo.landing / "hrss_insurance").glob("insurance_*.xlsx"))
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
    groups, leaves = rows[0], rows[1]
    filled, last = [], ""
    for g in groups:
        last = g or last
        filled.append(last)
    assert [f"{g}/{leaf}" for g, leaf in zip(filled, leaves, strict=True)] == contracts.source(
        "hrss_insurance"
    ).field_names
    t = truth(demo, "hrss_insurance")
    data = rows[2:]
    assert len(data) == len(t)
    destroyed = has(t, "id_excel_destroyed").to_numpy()
    assert destroyed.any()
    numeric = np.array([isinstance(r[0], float) for r in data])
    assert (numeric == destroyed).all()
    for r, true_id in zip(
        [d for d, x in zip(data, destroyed, strict=True) if x],
        t.loc[destroyed, "true_resident_id"],
        strict=True,
    ):
        kept = f"{r[0]:.14e}".split("e")[0].replace(".", "")  # the 15 significant digits Excel keeps
        assert kept == true_id[:15] and str(int(r[0])) != true_id


@pytest.mark.parametrize("source", ["ps_hukou", "nhc_health", "ca_marriage", "hrss_insurance"])
def test_ids_valid_unless_defective(demo: Settings, source: str) -> None:
    t = truth(demo, source)
    path = next(p for p in (demo.landing / source).iterdir())
    if path.suffix == ".csv":
        delivered = [x.split(",")[0] for x in path.read_bytes().decode("gbk").splitlines()[1:]]
    elif path.suffix == ".jsonl":
        delivered = [json.loads(x)["patient"]["id_card"] or "" for x in path.read_text("utf-8").splitlines()]
    elif path.suffix == ".xml":
        from lxml import etree

        delivered = [r.findtext("sfzh") or "" for r in etree.parse(str(path)).getroot().findall("record")]
    else:
        rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()[2:]
        delivered = [str(r[0]) for r in rows]
    d = pd.Series(delivered)
    clean = (
        t["defects"]
        .str.split(",")
        .apply(
            lambda xs: (
                not any(
                    x.startswith("id_") and x not in ("id_birth_mismatch", "id_gender_mismatch") for x in xs
                )
            )
        )
    )
    assert (d[clean].to_numpy() == t.loc[clean, "true_resident_id"].to_numpy()).all()
    assert all(ric.is_valid(x) for x in d[clean].head(500))
    bad = has(t, "id_bad_checksum")
    assert bad.any() or len(t) * RATES[source]["id_bad_checksum"] < 0.5
    assert not any(ric.is_valid(x) for x in d[bad])


def test_credit_code_checksum_defects(demo: Settings) -> None:
    raw = (
        (demo.landing / "tax_registration")
        .glob("taxpayers_*.csv")
        .__next__()
        .read_bytes()
        .decode("utf-8-sig")
    )
    codes = pd.Series([x.split(",")[0] for x in raw.splitlines()[1:]])
    t = truth(demo, "tax_registration")
    bad = has(t, "code_bad_checksum")
    clean = ~t["defects"].str.contains("code_")
    assert bad.any() and not any(uscc.is_valid(c) for c in codes[bad])
    assert all(uscc.is_valid(c) for c in codes[clean])
    assert (codes[clean].to_numpy() == t.loc[clean, "true_credit_code"].to_numpy()).all()


def test_defect_rates_documented_and_met(demo: Settings) -> None:
    for source, rates in RATES.items():
        t = truth(demo, source)
        assert set(rates) <= set(DEFECTS), source
        seen = {c for cs in t["defects"] for c in cs.split(",") if c}
        assert seen <= set(rates), (source, seen - set(rates))
        for code, rate in rates.items():
            got = has(t, code).mean()
            assert abs(got - rate) <= max(0.5 * rate, 2 / len(t)), (source, code, got, rate)


def test_truth_columns(demo: Settings, contracts: Contracts) -> None:
    for name, src in contracts.sources.items():
        t = truth(demo, name)
        assert list(t.columns[:5]) == ["source", "file", "row_number", "entity_id", "defects"]
        assert (t["row_number"].to_numpy() == np.arange(1, len(t) + 1)).all()
        for f in src.fields:
            if f.to and not src.unpivot:
                assert f"true_{f.to}" in t.columns, (name, f.to)
    p = truth(demo, "ps_hukou")
    assert p["true_birth_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert p["true_gender"].isin(["1", "2"]).all()
    assert p["true_ethnicity"].str.fullmatch(r"\d{2}").all()
