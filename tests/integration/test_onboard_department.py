"""Onboarding a new person-bearing department from YAML alone (issue 12.12).

The exit-entry administration delivers passport applications in a layout the project has
not seen: tab-separated, surname and given name in separate fields, dates as 1985年3月2日,
a postcode, a passport number (a foreign identifier) and no resident ID. Onboarding it
is YAML: a shared table `travel_document`, its source contract with a `combine` rule for
the name, two person attributes (`passport_no`, `postcode`) and, in the person resolve
settings, one more input and a comparison on the passport number. No Python changes: the
test writes only YAML and the delivery, then runs ingest and consolidate, and measures
the new department's linkage against its own truth (the demo person each row was made of).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from etl import meta
from etl.config import Settings, get_settings
from etl.contracts import get_contracts
from etl.demo import generate
from etl.pipeline import run_source
from etl.resolve import store
from etl.resolve.evaluate import evaluate, pairwise, truth_of
from etl.resolve.stage import consolidate

pytestmark = pytest.mark.integration

PERSONS = 2000
SEED = 47
SOURCE = "nia_passport"
APPLICANTS = 300  # persons of the base with a passport application
STRANGERS = 20  # applicants no other department knows

TABLE = """\
name: travel_document
description: Passport applications with the exit-entry administration.
grain: one row per passport application
keys: [record_key]
data_grade: important
columns:
  - {name: passport_no, type: string, description: "Passport number", security_level: L4, sharing: conditional, open: not_open, mask: redact,
     checks: [{pattern: {regex: "^E[0-9]{8}$", reason: invalid_code}}]}
  - {name: name, type: string, description: "Full name", security_level: L3, sharing: conditional, open: not_open, mask: name, checks: [not_null]}
  - {name: gender, type: string, description: "Gender code, GB/T 2261.1", security_level: L3, sharing: conditional, open: not_open,
     checks: [{accepted_values: gender}]}
  - {name: birth_date, type: date, description: "Date of birth", security_level: L3, sharing: conditional, open: not_open, mask: date}
  - {name: household_region, type: string, description: "Division code of the household registration", security_level: L2, sharing: unconditional,
     open: not_open, checks: [{accepted_values: {code_list: regions, reason: invalid_region}}]}
  - {name: address, type: string, description: "Residential address", security_level: L3, sharing: conditional, open: not_open, mask: address}
  - {name: postcode, type: string, description: "Postcode of the address", security_level: L2, sharing: conditional, open: not_open,
     checks: [{pattern: {regex: "^[0-9]{6}$", reason: invalid_code}}]}
  - {name: phone, type: string, description: "Phone number", security_level: L4, sharing: conditional, open: not_open, mask: phone}
  - {name: applied_on, type: date, description: "Application date", security_level: L1, sharing: unconditional, open: not_open}
  - {name: record_key, type: string, description: "The application number", security_level: L2, sharing: unconditional, open: not_open}
"""

CONTRACT = """\
name: nia_passport
department: exit_entry
department_name: 出入境管理局 护照受理
description: Passport applications, one tab-separated file per drop; no resident ID.
table: travel_document
kind: csv
location: "passport_*.tsv"
file_date_pattern: "_(\\\\d{8})\\\\."
encoding: utf-8
delimiter: "\\t"
schema_drift: fail
record_key: [受理编号]
fields:
  - {name: 受理编号, to: null, transforms: []}
  - {name: 姓, to: name, transforms: [name], trust: 6}
  - {name: 名, to: name, transforms: [name], trust: 6}
  - {name: 性别, to: gender, transforms: [gender], trust: 6}
  - {name: 出生日期, to: birth_date, transforms: [date], trust: 6}
  - {name: 护照号码, to: passport_no, transforms: [text], trust: 10}
  - {name: 户籍地, to: household_region, transforms: [region], trust: 4}
  - {name: 通讯地址, to: address, transforms: [address], trust: 6}
  - {name: 邮政编码, to: postcode, transforms: [text], trust: 10}
  - {name: 手机号码, to: phone, transforms: [phone], trust: 8}
  - {name: 受理日期, to: applied_on, transforms: [date]}
combine:
  name: {rule: join, separator: ""}
"""

PERSON_COLUMNS = [
    {"name": "passport_no", "type": "string", "description": "Passport number", "security_level": "L4",
     "sharing": "conditional", "open": "not_open", "mask": "redact", "survivorship": ["recent", "trust"]},
    {"name": "postcode", "type": "string", "description": "Postcode of the address", "security_level": "L2",
     "sharing": "conditional", "open": "not_open", "survivorship": ["recent", "trust"]},
]  # fmt: skip

RESOLVE_INPUT = {
    "table": "travel_document",
    "columns": {
        c: c
        for c in (
            "name",
            "gender",
            "birth_date",
            "household_region",
            "address",
            "phone",
            "passport_no",
            "postcode",
        )
    },
}


def _onboarded_project(tmp_path: Path) -> Path:
    """The project's contracts plus the new department: YAML only."""
    project = tmp_path / "project"
    shutil.copytree(get_settings().schemas_dir, project / "schemas")
    shutil.copytree(get_settings().expectations_dir, project / "expectations")
    schemas = project / "schemas"
    (schemas / "shared" / "travel_document.yml").write_text(TABLE, encoding="utf-8")
    (schemas / "sources" / f"{SOURCE}.yml").write_text(CONTRACT, encoding="utf-8")
    person = schemas / "shared" / "person.yml"
    shared = yaml.safe_load(person.read_text(encoding="utf-8"))
    shared["columns"][-1:-1] = PERSON_COLUMNS  # before record_key
    person.write_text(yaml.safe_dump(shared, allow_unicode=True, sort_keys=False), encoding="utf-8")
    resolve = schemas / "resolve" / "person.yml"
    cfg = yaml.safe_load(resolve.read_text(encoding="utf-8"))
    cfg["inputs"].append(RESOLVE_INPUT)
    cfg["blocking_rules"].append(["passport_no"])
    cfg["comparisons"].append({"kind": "ExactMatch", "column": "passport_no"})
    resolve.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return project


def _date(iso: str) -> str:
    y, m, d = iso.split("-")
    return f"{y}年{int(m)}月{int(d)}日"


def _applications(settings: Settings) -> pd.DataFrame:
    """The delivery and its truth: some of the base's living adults apply (a tenth of them
    twice, an old and a new passport), with their current address and a postcode, one in
    ten from another phone; and a few applicants nobody else knows."""
    rng = random.Random(SEED)
    persons = pd.read_parquet(settings.truth_dir / "persons.parquet")
    adults = persons[persons["alive"] & (persons["birth_date"] < "2006-01-01")]
    chosen = adults.sample(APPLICANTS, random_state=SEED)
    strangers = chosen.sample(STRANGERS, random_state=SEED + 1).assign(
        person_id=[f"X{i:04d}" for i in range(STRANGERS)],
        name=["欧阳" + "明华文志"[i % 4] + "晓雪宁远"[i // 4 % 4] for i in range(STRANGERS)],
        birth_date=[f"19{60 + i}-0{1 + i % 9}-1{i % 10}" for i in range(STRANGERS)],
        phone=[f"1990000{i:04d}" for i in range(STRANGERS)],
    )
    rows = []
    for p in pd.concat([chosen, strangers]).itertuples():
        for renewal in range(2 if rng.random() < 0.1 else 1):
            phone = p.phone if rng.random() > 0.1 else f"1{rng.randint(3, 9)}{rng.randint(0, 10**9 - 1):09d}"
            rows.append(
                {
                    "受理编号": f"SL{len(rows) + 1:07d}",
                    "姓": p.name[0],
                    "名": p.name[1:],
                    "性别": "男" if p.gender == "1" else "女",
                    "出生日期": _date(p.birth_date),
                    "护照号码": f"E{rng.randint(0, 10**8 - 1):08d}",
                    "户籍地": p.household_region,
                    "通讯地址": p.address,
                    "邮政编码": f"{p.household_region[:4]}00",
                    "手机号码": phone,
                    "受理日期": f"202{renewal + 3}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                    "entity_id": p.person_id,
                }
            )
    return pd.DataFrame(rows)


def _deliver(settings: Settings, apps: pd.DataFrame) -> None:
    landing = settings.source_landing(SOURCE)
    landing.mkdir(parents=True, exist_ok=True)
    data = apps.drop(columns="entity_id")
    lines = ["\t".join(data.columns), *("\t".join(r) for r in data.astype(str).itertuples(index=False))]
    (landing / "passport_20261101.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    truth = pd.DataFrame({"source": SOURCE, "record_key": apps["受理编号"], "entity_id": apps["entity_id"]})
    truth.to_parquet(settings.truth_dir / f"{SOURCE}.parquet", index=False)


@pytest.fixture(scope="module")
def onboarded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, pd.Series, pd.DataFrame]:
    """A consolidated base of the project's departments; then the new department is
    declared, delivers, is ingested and consolidated. Returns the onboarded settings, the
    base's record -> master mapping and the delivered applications with their truth."""
    root = tmp_path_factory.mktemp("onboard")
    base = get_settings(root / "home")
    generate(base, persons=PERSONS, seed=SEED)
    for source in sorted(get_contracts(base).sources):
        run_source(source, "2026-11-01", "run-1", settings=base)
    consolidate(base)
    with meta.connect(base, read_only=True) as con:
        before = store.read_core(con, base, "person_record")
    assert before is not None
    settings = Settings(home=base.home, project_dir=_onboarded_project(root))
    apps = _applications(settings)
    _deliver(settings, apps)
    run_source(SOURCE, "2026-11-02", "run-2", settings=settings)
    consolidate(settings)
    return settings, before.set_index("rec_id")["person_id"], apps


def test_the_new_department_is_staged_from_its_yaml(
    onboarded: tuple[Settings, pd.Series, pd.DataFrame],
) -> None:
    settings, _, apps = onboarded
    with meta.connect(settings, read_only=True) as con:
        staged = con.execute("select name, passport_no, postcode from staging.travel_document").df()
    assert len(staged) == len(apps)
    joined = (apps["姓"] + apps["名"]).str.replace("·", "")
    assert set(staged["name"].str.replace("·", "")) == set(joined)  # surname + given name combined


def test_its_persons_link_to_the_existing_masters(
    onboarded: tuple[Settings, pd.Series, pd.DataFrame],
) -> None:
    settings, before, apps = onboarded
    with meta.connect(settings, read_only=True) as con:
        recs = store.read_core(con, settings, "person_record")
        assert recs is not None
        recs["true"] = truth_of(con, settings, "person", recs)
    ours = recs[recs["_source"] == SOURCE]
    assert len(ours) == len(apps) and ours["true"].notna().all()
    # each application's master is the master of its person's other records (or a new one)
    others = recs[(recs["_source"] != SOURCE) & recs["true"].notna()]
    home = others.drop_duplicates("true").set_index("true")["person_id"]
    known = ours[ours["true"].isin(home.index)]
    assert len(known) >= APPLICANTS * 0.9
    right = (known["person_id"] == known["true"].map(home)).mean()
    assert right >= 0.97, right
    strangers = ours[~ours["true"].isin(home.index)]
    assert len(strangers) >= STRANGERS and not strangers["person_id"].isin(others["person_id"]).any()
    # pairwise over the department's records and every record of the persons they name
    scope = recs[recs["true"].isin(ours["true"])]
    s = pairwise(scope["person_id"], scope["true"])
    assert s.precision >= 0.98 and s.recall >= 0.95, s
    # the golden records gained the department's attributes, and existing ids stayed
    gold = pd.read_parquet(settings.warehouse / _path(settings, "person")).set_index("person_id")
    assert gold.loc[known["person_id"], "passport_no"].notna().all()
    now = recs.set_index("rec_id")["person_id"].reindex(before.index)
    with meta.connect(settings, read_only=True) as con:
        id_map = store.read_core(con, settings, "person_id_map")
    assert id_map is not None
    merged = dict(zip(id_map["person_id"], id_map["merged_into"], strict=True))
    assert all(merged.get(o) == n for o, n in zip(before, now, strict=True) if o != n)
    overall, _ = evaluate(settings)["person"]  # govbase evaluate reads the department's truth too
    assert overall.records == len(recs) and overall.precision >= 0.995 and overall.recall >= 0.99, overall


def _path(settings: Settings, table: str) -> str:
    with meta.connect(settings, read_only=True) as con:
        return str(
            con.execute("select path from meta.core_table where table_name = ?", [table]).fetchall()[0][0]
        )
