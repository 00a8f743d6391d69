"""Department shares on a real warehouse catalog: masking, pseudonyms, grants as metadata,
isolation of a share opened by its department, and the proof of the line (issue 13.3, 13.4, 13.8)."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from etl import meta
from etl.config import Settings
from etl.contracts import Contracts, SharedTable
from etl.normalize.identifiers import uscc_check_char
from etl.publish import classify
from etl.publish.grants import Sharing, load_sharing
from etl.publish.shares import ShareError, build_shares, open_share

SURNAMES, GIVEN = "王李张刘陈杨黄赵", "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞"
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
#: every third entity an individual business (92..., a person's code), the others enterprises
CREDIT_CODES = [
    (body := f"{'92' if i % 3 == 0 else '91'}110105MA{i:07d}") + uscc_check_char(body) for i in range(20)
]


def resident_id(rng: random.Random) -> str:
    born = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(25_000))
    first = f"{rng.choice(['110105', '310104', '440305'])}{born:%Y%m%d}{rng.randrange(1000):03d}"
    return first + "10X98765432"[sum(int(c) * w for c, w in zip(first, WEIGHTS, strict=True)) % 11]


def persons(n: int = 60, seed: int = 7) -> pd.DataFrame:
    rng = random.Random(seed)
    ids = [resident_id(rng) for _ in range(n)]
    alive = [rng.random() > 0.1 for _ in ids]
    return pd.DataFrame(
        {
            "person_id": [f"P{i:010d}" for i in range(n)],
            "resident_id": ids,
            "name": [rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.choice([1, 2]))) for _ in ids],
            "birth_date": [dt.date(int(i[6:10]), int(i[10:12]), int(i[12:14])) for i in ids],
            "household_region": [i[:6] for i in ids],
            "phone": [f"1{rng.choice('3589')}{rng.randrange(10**9):09d}" for _ in ids],
            "marital_status": [rng.choice(["10", "20"]) for _ in ids],
            "alive": alive,
            "death_date": [None if a else dt.date(2025, 1 + i % 12, 1 + i % 28) for i, a in enumerate(alive)],
            "is_current": [True] * n,
        }
    )


@pytest.fixture
def warehouse(settings: Settings) -> Settings:
    with meta.connect(settings) as con:
        con.register("p", persons())
        con.execute("create table core.person as select * from p")
        con.register("le", pd.DataFrame({"i": range(20), "credit_code": CREDIT_CODES}))
        con.execute(
            "create table core.legal_entity as select 'E' || lpad(i::varchar, 10, '0') as legal_entity_id, "
            "credit_code, '公司' || i as name, '1' as entity_type, "
            "'110105' as region, '1' as status, 'I' as industry, 1000000.0 as registered_capital, "
            "date '2010-01-01' as established_date, true as is_current from le"
        )
        for e in ("person", "legal_entity"):  # the record maps of consolidation (empty here)
            con.execute(
                f"create table core.{e}_record (rec_id varchar, {e}_id varchar, _table varchar, "
                "_source varchar, record_key varchar)"
            )
        con.execute(
            "create table staging.employment as select resident_id, "
            f"case when row_number() over () % 2 = 0 then '{CREDIT_CODES[0]}' else '{CREDIT_CODES[1]}' end "
            "as employer_credit_code, '公司1' as employer_name, 'pension' as insurance_type from p"
        )
    return settings


def project_sharing(contracts: Contracts, settings: Settings) -> Sharing:
    return load_sharing(settings.schemas_dir, contracts.tables)


def tables(path: Path) -> dict[str, pd.DataFrame]:
    con = open_share(path)
    try:
        names = [r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()]
        return {n: con.execute(f'select * from "{n}"').df() for n in names}
    finally:
        con.close()


def content_hash(path: Path) -> str:
    parts = []
    for name, df in sorted(tables(path).items()):
        if name == "share_info":
            continue  # carries the refresh time
        parts.append(name + df.sort_values(list(df.columns)).to_csv(index=False))
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def test_unconditional_grant_sees_exactly_its_columns(warehouse: Settings, contracts: Contracts) -> None:
    sharing = project_sharing(contracts, warehouse)
    [share] = [
        r
        for r in build_shares(warehouse, contracts, sharing, [], "2026-12-01")
        if r.department == "market_regulation"
    ]
    t = tables(share.path)
    granted = sharing.departments["market_regulation"].grants[0].columns
    assert set(t) == {"core_legal_entity", "share_grant", "share_info"}
    assert list(t["core_legal_entity"].columns) == ["legal_entity_id", *granted]
    assert len(t["core_legal_entity"]) == 20
    assert (share.path.parent / "core_legal_entity.parquet").exists()


def test_conditional_grant_carries_its_purpose_and_key_version(
    warehouse: Settings, contracts: Contracts
) -> None:
    sharing = project_sharing(contracts, warehouse)
    build_shares(warehouse, contracts, sharing, [], "2026-12-01")
    t = tables(warehouse.warehouse / "share" / "civil_affairs" / "share.duckdb")
    purpose = sharing.departments["civil_affairs"].grants[0].purpose
    g = t["share_grant"].set_index("column_name")
    assert g.loc["name", "purpose"] == purpose and g.loc["name", "sharing"] == "conditional"
    assert g.loc["resident_id", "shared_as"] == "pseudonym"
    assert t["share_info"].loc[0, "key_version"] == "test"
    assert set(t["core_person"][["pseudonym_key_version"]].drop_duplicates()["pseudonym_key_version"]) == {
        "test"
    }


def _pseudonyms(settings: Settings, contracts: Contracts, key: str) -> dict[str, pd.DataFrame]:
    s = settings.with_(pseudonym_key=key.split(":")[1], pseudonym_key_version=key.split(":")[0])
    build_shares(s, contracts, project_sharing(contracts, s), [], "2026-12-01")
    root = s.warehouse / "share"
    return {d: tables(root / d / "share.duckdb")["core_person"] for d in ("civil_affairs", "human_resources")}


def test_rotating_the_key_rekeys_every_share_and_joins_still_work(
    warehouse: Settings, contracts: Contracts
) -> None:
    v1 = _pseudonyms(warehouse, contracts, "v1:first-secret")
    v2 = _pseudonyms(warehouse, contracts, "v2:second-secret")
    for dept in v1:
        a, b = v1[dept].set_index("person_id"), v2[dept].set_index("person_id")
        assert (a["resident_id_pseudonym"] != b.loc[a.index, "resident_id_pseudonym"]).all()
        assert set(b["pseudonym_key_version"]) == {"v2"}
    joined = v2["civil_affairs"].merge(v2["human_resources"], on="resident_id_pseudonym")
    assert len(joined) == 60 and (joined["person_id_x"] == joined["person_id_y"]).all()


def test_publishing_twice_gives_identical_share_content(warehouse: Settings, contracts: Contracts) -> None:
    sharing = project_sharing(contracts, warehouse)
    first = {
        r.department: content_hash(r.path)
        for r in build_shares(warehouse, contracts, sharing, [], "2026-12-01")
    }
    second = {
        r.department: content_hash(r.path)
        for r in build_shares(warehouse, contracts, sharing, [], "2026-12-02")
    }
    assert first == second and len(first) == 3


def test_without_a_key_no_share_is_published(warehouse: Settings, contracts: Contracts) -> None:
    s = warehouse.with_(pseudonym_key=None)
    with pytest.raises(ShareError, match="GOVBASE_PSEUDONYM_KEY is not set"):
        build_shares(s, contracts, project_sharing(contracts, s), [], "2026-12-01")
    assert not (s.warehouse / "share").exists()


def test_a_planted_phone_column_declared_l1_stops_publication(
    warehouse: Settings, contracts: Contracts
) -> None:
    note = SharedTable.model_validate(
        {
            "name": "note",
            "description": "case notes",
            "grain": "one row per note",
            "keys": ["note_id"],
            "columns": [
                {
                    "name": "note_id",
                    "type": "string",
                    "description": "id",
                    "security_level": "L1",
                    "sharing": "unconditional",
                    "open": "not_open",
                },
                {
                    "name": "remark",
                    "type": "string",
                    "description": "free text",
                    "security_level": "L1",
                    "sharing": "unconditional",
                    "open": "not_open",
                },
            ],
        }
    )
    with_note = Contracts(tables={**contracts.tables, "note": note}, sources={})
    with meta.connect(warehouse) as con:
        con.execute(
            "create table staging.note as select i::varchar as note_id, case when i % 4 = 0 "
            "then '请回电 139' || lpad((i * 7919)::varchar, 8, '0') else '已办结' end as remark from range(200) t(i)"
        )
        findings = classify.classify(con, with_note)
        classify.record(con, "classify-1", findings)
        kept = con.execute(
            "select kind, share, examples from meta.classification_finding where column_name = 'remark'"
        ).fetchall()
    assert [(k, s) for k, s, _ in kept] == [("mobile", 0.25)] and "****" in kept[0][2]
    sharing = Sharing.model_validate(
        {
            "departments": {
                "civil": {
                    "name": "民政",
                    "grants": [{"table": "staging.note", "columns": ["note_id", "remark"]}],
                }
            }
        }
    )
    with pytest.raises(ShareError, match=r"staging\.note\.remark is declared L1 .* mobile"):
        build_shares(warehouse, with_note, sharing, findings, "2026-12-01")
    assert not (warehouse.warehouse / "share" / "civil").exists()


ATTEMPTS = {
    "attach another share": "attach '{other}' as other (read_only)",
    "attach the warehouse catalog": "attach '{catalog}' as wh (read_only)",
    "read a share's parquet": "select * from read_parquet('{parquet}')",
    "read a file as csv": "select * from read_csv('{csv}')",
    "write a file": "copy (select 1) to '{out}'",
    "unlock the configuration": "set enable_external_access = true",
    "read core tables": "select * from core.person",
}


@pytest.mark.parametrize("attempt", sorted(ATTEMPTS))
def test_a_department_cannot_leave_its_share(warehouse: Settings, contracts: Contracts, attempt: str) -> None:
    build_shares(warehouse, contracts, project_sharing(contracts, warehouse), [], "2026-12-01")
    root = warehouse.warehouse / "share"
    csv = warehouse.home / "secret.csv"
    csv.write_text("resident_id\n11010519491231002X\n", encoding="utf-8")
    sql = ATTEMPTS[attempt].format(
        other=root / "civil_affairs" / "share.duckdb",
        catalog=warehouse.duckdb_path,
        parquet=root / "civil_affairs" / "core_person.parquet",
        csv=csv,
        out=warehouse.home / "leak.csv",
    )
    con = open_share(root / "market_regulation" / "share.duckdb")
    try:
        assert con.execute("select count(*) from core_legal_entity").fetchall() == [(20,)]
        with pytest.raises(duckdb.Error):
            con.execute(sql).fetchall()
    finally:
        con.close()
    assert not (warehouse.home / "leak.csv").exists()


RIC = re.compile(r"(?<![0-9])[0-9]{17}[0-9X](?![0-9X])")
MOBILE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
USCC92 = re.compile(r"(?<![0-9A-Z])92[0-9A-Z]{16}(?![0-9A-Z])")


def test_proof_of_the_line_in_every_share(warehouse: Settings, contracts: Contracts) -> None:
    """No L3/L4 column with a mask unmasked, no raw identifier where a pseudonym was granted,
    no resident ID or mobile number anywhere in any share."""
    results = build_shares(warehouse, contracts, project_sharing(contracts, warehouse), [], "2026-12-01")
    raw = persons()
    assert results
    for r in results:
        t = tables(r.path)
        grants = t["share_grant"]
        for _, g in grants.iterrows():
            name = g["table_name"].replace(".", "_")
            df = t[name]
            if g["security_level"] in ("L3", "L4"):  # never raw: masked or a pseudonym
                assert g["shared_as"] == "pseudonym" or g["shared_as"].startswith("masked:"), dict(g)
            if g["shared_as"] == "pseudonym":
                assert g["column_name"] not in df.columns
                assert not df[g["column_name"] + "_pseudonym"].isin(raw["resident_id"]).any()
            elif g["shared_as"] == "masked:credit_code":  # organisations' codes are public
                values = df[g["column_name"]].dropna().astype(str)
                assert values.isin(CREDIT_CODES).any(), (r.department, g["column_name"])
                assert not values.isin([c for c in CREDIT_CODES if c.startswith("92")]).any()
            elif g["shared_as"].startswith("masked:"):
                values = df[g["column_name"]].dropna().astype(str)
                assert values.str.contains(r"\*", regex=True).all(), (r.department, g["column_name"])
        for name, df in t.items():
            for c in df.columns:
                text = df[c].dropna().astype(str)
                assert not text.str.contains(RIC).any(), (r.department, name, c)
                assert not text.str.contains(MOBILE).any(), (r.department, name, c)
                assert not text.str.contains(USCC92).any(), (r.department, name, c)
                assert not text.isin(raw["resident_id"]).any()


def test_an_unmasked_l3_column_is_never_shared_raw(warehouse: Settings, contracts: Contracts) -> None:
    """`govbase contracts` refuses such a grant (tests/unit/test_classify_grants.py); a grant
    that did not come through it still stops the share instead of showing the values."""
    from etl.publish.grants import Department, Grant

    grant = Grant(table="core.person", columns=["household_region", "alive"], purpose="核查")
    sharing = Sharing(departments={"civil_affairs": Department(name="民政", grants=[grant])})
    with pytest.raises(ShareError, match=r"core.person.alive is L3 with no mask"):
        build_shares(warehouse, contracts, sharing, [], "2026-12-01")
    assert not (warehouse.warehouse / "share" / "civil_affairs" / "share.duckdb").exists()


def test_a_publish_whose_shares_are_refused_still_refreshes_the_readers_catalog(
    warehouse: Settings, contracts: Contracts
) -> None:
    """The publish stage republishes the catalog readers open once the classification is
    in, before the shares: a share refused (no key) leaves readers with the current state."""
    from etl.pipeline import run_publish

    s = warehouse.with_(pseudonym_key=None)
    with pytest.raises(ShareError, match="GOVBASE_PSEUDONYM_KEY is not set"):
        run_publish("2026-12-01", "publish-nokey", settings=s)
    with duckdb.connect(str(s.catalog_path), read_only=True) as con:
        assert con.execute("select run_id from meta.published").fetchall() == [("publish-nokey",)]
        assert con.execute("select count(*) from core.person").fetchall() == [(60,)]
        findings = con.execute(
            "select count(*) from meta.classification_finding where run_id = 'publish-nokey'"
        ).fetchall()
    with meta.connect(s, read_only=True) as con:
        assert (
            con.execute(
                "select count(*) from meta.classification_finding where run_id = 'publish-nokey'"
            ).fetchall()
            == findings
        )


def test_civil_affairs_sees_who_has_died_by_the_masked_death_date(
    warehouse: Settings, contracts: Contracts
) -> None:
    """Its purpose checks survival status: the share carries no `alive` and no
    `marital_status` (docs/sharing.md), and every person recorded dead, and only they, shows a
    death year (YYYY-**-**) and no more of the date."""
    build_shares(warehouse, contracts, project_sharing(contracts, warehouse), [], "2026-12-01")
    share = tables(warehouse.warehouse / "share" / "civil_affairs" / "share.duckdb")["core_person"]
    assert not {"alive", "marital_status"} & set(share.columns)
    truth = persons().set_index("person_id")
    shown = share.set_index("person_id")["death_date"]
    dead = ~truth["alive"].reindex(shown.index)
    assert dead.any() and (~dead).any()
    assert shown[dead].str.fullmatch(r"2025-\*\*-\*\*").all()
    assert shown[~dead].isna().all()
