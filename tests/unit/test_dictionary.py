"""The data dictionary and the JSON Schemas, generated from the project's contracts (issue 13.7)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from jsonschema import Draft202012Validator

from etl import reference
from etl.config import Settings
from etl.contracts import Contracts
from etl.publish.dictionary import build_dictionary, json_schema, required_columns

pytestmark = pytest.mark.unit

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def resident_id(region: str, born: dt.date, rng: random.Random) -> str:
    first = f"{region}{born:%Y%m%d}{rng.randrange(1000):03d}"
    return first + "10X98765432"[sum(int(c) * w for c, w in zip(first, WEIGHTS, strict=True)) % 11]


def credit_code(region: str, rng: random.Random) -> str:
    body = "91" + region + "".join(rng.choice(CREDIT_ALPHABET) for _ in range(9))
    total = sum(CREDIT_ALPHABET.index(c) * w for c, w in zip(body, CREDIT_WEIGHTS, strict=True))
    return body + CREDIT_ALPHABET[(31 - total % 31) % 31]


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _codes(settings: Settings, name: str) -> list[str]:
    return reference.codes(settings.schemas_dir / "reference", name)


def person_record(settings: Settings, rng: random.Random) -> dict[str, Any]:
    region = rng.choice([c for c in _codes(settings, "regions") if not c.endswith("00")])
    born = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(20_000))
    return {
        "resident_id": resident_id(region, born, rng),
        "name": "张三",
        "gender": rng.choice(_codes(settings, "gender")),
        "birth_date": born.isoformat(),
        "ethnicity": rng.choice(_codes(settings, "ethnicity")),
        "household_region": region,
        "address": "北京市东城区某街1号",
        "phone": f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
        "marital_status": rng.choice(_codes(settings, "marital_status")),
        "alive": True,
        "death_date": None,
        "record_key": f"HJ{rng.randrange(10**10):010d}",
    }


def test_every_schema_is_valid_draft_2020_12(settings: Settings, contracts: Contracts) -> None:
    for table in contracts.tables.values():
        schema = json_schema(table, settings.schemas_dir / "reference")
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        validator(schema)
        assert list(schema["properties"]) == table.column_names
        for c in table.columns:
            prop = schema["properties"][c.name]
            assert prop["description"] == c.description
            assert prop["x-govbase-security-level"] == c.security_level
            assert prop["x-govbase-sharing"] == c.sharing and prop["x-govbase-open"] == c.open


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_conforming_person_passes_and_each_defect_fails(
    settings: Settings, contracts: Contracts, seed: int
) -> None:
    v = validator(json_schema(contracts.tables["person"], settings.schemas_dir / "reference"))
    good = person_record(settings, random.Random(seed))
    assert list(v.iter_errors(good)) == []
    # optional columns may be null; the key may not
    assert list(v.iter_errors({**good, "phone": None, "gender": None})) == []
    defects = {
        "gender": "7",  # not in gender.csv
        "ethnicity": "99",
        "marital_status": "21",  # a sub-code: accepted on input as 20, not a value of the column
        "household_region": "999999",
        "phone": "12345",  # pattern
        "resident_id": good["resident_id"][:-1],  # pattern (17 characters)
        "birth_date": "1985-02-30",  # format date
        "alive": "yes",  # type
        "record_key": None,  # the key is required
    }
    for column, value in defects.items():
        bad = copy.deepcopy(good)
        bad[column] = value
        errors = list(v.iter_errors(bad))
        assert errors, (column, value)
        assert all(column in list(e.absolute_path) or column in e.message for e in errors)
    missing = {k: val for k, val in good.items() if k != "record_key"}
    assert any("record_key" in e.message for e in v.iter_errors(missing))
    assert list(v.iter_errors({**good, "nickname": "x"}))  # no other properties


def test_ranges_patterns_and_codes_of_the_other_tables(settings: Settings, contracts: Contracts) -> None:
    ref = settings.schemas_dir / "reference"
    rng = random.Random(5)
    region = rng.choice([c for c in _codes(settings, "regions") if not c.endswith("00")])
    org = {
        "credit_code": credit_code(region, rng),
        "name": "某某有限公司",
        "entity_type": _codes(settings, "entity_type")[0],
        "region": region,
        "registered_capital": 1_000_000.0,
        "status": _codes(settings, "entity_status")[0],
        "industry": _codes(settings, "industry")[0],
        "record_key": "42",
    }
    v = validator(json_schema(contracts.tables["legal_entity"], ref))
    assert list(v.iter_errors(org)) == []
    assert list(v.iter_errors({**org, "registered_capital": -1.0}))
    assert list(v.iter_errors({**org, "credit_code": "91110105MA0XXXXXXO"}))  # O is not in the alphabet
    assert list(v.iter_errors({**org, "industry": "Z"}))
    ind = {"region_code": region, "period": "2024", "indicator_name": "常住人口", "value": 12.5}
    v = validator(json_schema(contracts.tables["economic_indicator"], ref))
    assert list(v.iter_errors(ind)) == []
    assert list(v.iter_errors({**ind, "period": "24"}))
    assert list(v.iter_errors({k: x for k, x in ind.items() if k != "period"}))  # nullable: false


def test_code_lists_come_from_schemas_reference(settings: Settings, contracts: Contracts) -> None:
    ref = settings.schemas_dir / "reference"
    person = json_schema(contracts.tables["person"], ref)["properties"]
    assert person["gender"]["enum"] == [*reference.codes(ref, "gender"), None]
    assert len(person["household_region"]["enum"]) == len(reference.codes(ref, "regions")) + 1
    assert "record_key" in required_columns(contracts.tables["person"])


def _page(settings: Settings, contracts: Contracts) -> tuple[str, Any]:
    d = build_dictionary(settings, contracts)
    text = d.html.read_text(encoding="utf-8")
    return text, lxml.html.fromstring(text)


def test_the_page_shows_every_column_and_every_field_map(settings: Settings, contracts: Contracts) -> None:
    _, doc = _page(settings, contracts)
    for table in contracts.tables.values():
        for c in table.columns:
            [row] = doc.xpath(f'//tr[@id="col-{table.name}-{c.name}"]')
            cells = [td.text_content().strip() for td in row.xpath("./td")]
            assert cells[0] == c.name and cells[1] == c.description and cells[2] == c.type
            assert cells[5] == c.security_level and cells[6] == c.sharing and cells[7] == c.open
            for check in c.checks:
                assert check.reason in cells[9]
    for src in contracts.sources.values():
        [section] = doc.xpath(f'//section[@id="source-{src.name}"]')
        rows = {
            tr.xpath("./td")[0].text_content(): tr.xpath("./td")[1].text_content()
            for tr in section.xpath(".//tr[td]")
        }
        for f in src.fields:
            assert f.name in rows, (src.name, f.name)
            if src.column_of(f.name):
                assert rows[f.name].split(" (")[0] == src.column_of(f.name)
            elif f.name not in src.record_key:
                assert "kept in raw only" in rows[f.name]
        for column, rule in src.combine.items():
            assert f"{column}: {rule.rule}" in section.text_content()


def test_the_page_is_self_contained_and_marks_its_chinese(settings: Settings, contracts: Contracts) -> None:
    text, doc = _page(settings, contracts)
    assert doc.xpath("//meta/@charset") == ["utf-8"]
    assert not doc.xpath("//script | //link | //img | //iframe | //object")
    assert not [u for u in doc.xpath("//@href | //@src") if not u.startswith("#")]
    assert "url(" not in text and "@import" not in text
    zh = " ".join(e.text_content() for e in doc.xpath('//*[@lang="zh-Hans"]'))
    for src in contracts.sources.values():
        assert src.department_name in zh
    for code, name in reference.code_list(settings.schemas_dir / "reference", "gender")[
        ["code", "name"]
    ].values:
        assert name in zh and code in text


def test_building_twice_changes_nothing(settings: Settings, contracts: Contracts) -> None:
    first = build_dictionary(settings, contracts)
    files = [first.html, *first.schemas.values()]
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    build_dictionary(settings, contracts)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files} == before
    schema = json.loads(first.schemas["person"].read_text(encoding="utf-8"))
    assert schema["title"] == "person"


def test_the_command_writes_where_it_is_told(
    settings: Settings, contracts: Contracts, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from etl.cli import app

    out = tmp_path / "standard_out"
    result = CliRunner().invoke(app, ["dictionary", "-o", str(out), "--home", str(settings.home)])
    assert result.exit_code == 0, result.output
    assert (out / "dictionary.html").exists()
    assert sorted(p.name for p in (out / "schema").iterdir()) == sorted(
        f"{t}.schema.json" for t in contracts.tables
    )
    result = CliRunner().invoke(app, ["dictionary", "--home", str(settings.home)])
    assert result.exit_code == 0 and (settings.reports_dir / "standard" / "dictionary.html").exists()
