"""Content classification (etl.publish.classify) and sharing grants (etl.publish.grants)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from etl.contracts import SharedTable
from etl.errors import ContractError
from etl.publish.classify import classify_values, judge_column
from etl.publish.grants import load_sharing

REMARK = SharedTable.model_validate(
    {
        "name": "note",
        "description": "d",
        "grain": "g",
        "keys": ["k"],
        "columns": [
            {
                "name": "k",
                "type": "string",
                "description": "d",
                "security_level": "L1",
                "sharing": "unconditional",
                "open": "not_open",
            },
            {
                "name": "remark",
                "type": "string",
                "description": "d",
                "security_level": "L1",
                "sharing": "unconditional",
                "open": "not_open",
            },
            {
                "name": "phone",
                "type": "string",
                "description": "d",
                "security_level": "L4",
                "sharing": "conditional",
                "open": "not_open",
                "mask": "phone",
            },
            {
                "name": "marital",
                "type": "string",
                "description": "d",
                "security_level": "L3",
                "sharing": "conditional",
                "open": "not_open",
            },
            {
                "name": "secret",
                "type": "string",
                "description": "d",
                "security_level": "L4",
                "sharing": "not_shared",
                "open": "not_open",
            },
        ],
    }
)


def test_each_kind_is_detected_by_content() -> None:
    values = [
        "联系13812341234",
        "张伟",
        "北京市海淀区中关村大街27号",
        "1985-03-02",
        "11010519491231002X",
        "010-62751234",
        "无",
    ]
    found = classify_values(pd.Series(values * 5))
    assert set(found) == {"mobile", "person_name", "address", "birth_date", "resident_id", "landline"}


def test_division_names_and_units_are_no_person_names() -> None:
    """Statistics tables name regions and units: 吕梁市 and 万人 start with a surname."""
    values = pd.Series(["吕梁市", "周口市", "黄浦区", "万人", "亿元", "方正县"] * 5)
    assert "person_name" not in classify_values(values)
    assert "person_name" in classify_values(pd.Series(["吕明", "周口", "黄浦"] * 5))


def test_a_wrong_check_character_is_no_resident_id() -> None:
    assert "resident_id" not in classify_values(pd.Series(["110105194912310021"] * 5))


def test_planted_phone_in_an_l1_remark_is_a_finding_with_masked_examples() -> None:
    remarks = pd.Series([f"请回电 1381234{i:04d}" for i in range(30)] + ["已办结"] * 70)
    [f] = [f for f in judge_column("staging", REMARK, "remark", remarks) if f.kind == "mobile"]
    assert (f.declared, f.warranted, f.share, f.sampled) == ("L1", "L3", 0.3, 100)
    assert f.examples and all("****" in e and "13812340000" not in e for e in f.examples)
    assert "staging.note.remark" in f.message()


def test_a_column_declared_high_enough_is_no_finding() -> None:
    phones = pd.Series([f"1381234{i:04d}" for i in range(30)])
    assert judge_column("staging", REMARK, "phone", phones) == []


def _sharing(tmp_path: Path, grant: dict[str, object]) -> Path:
    (tmp_path / "sharing.yml").write_text(
        yaml.safe_dump({"departments": {"civil": {"name": "民政", "grants": [grant]}}}, allow_unicode=True),
        encoding="utf-8",
    )
    return tmp_path


@pytest.mark.parametrize(
    ("grant", "key", "problem"),
    [
        (
            {"table": "staging.note", "columns": ["secret"], "purpose": "p"},
            "grants[0].columns[0]",
            "not_shared",
        ),
        ({"table": "staging.note", "columns": ["k", "phone"]}, "grants[0].columns[1]", "needs a purpose"),
        (
            {"table": "staging.note", "columns": ["k", "marital"], "purpose": "p"},
            "grants[0].columns[1]",
            "L3 with mask none",
        ),
        ({"table": "staging.nope", "columns": ["k"]}, "grants[0].table", "unknown table"),
        ({"table": "staging.note", "columns": ["nope"]}, "grants[0].columns[0]", "not a column"),
        (
            {"table": "staging.note", "columns": ["k"], "joinable": ["secret"], "purpose": "p"},
            "grants[0].joinable[0]",
            "not_shared",
        ),
    ],
)
def test_a_bad_grant_is_a_contract_error_naming_it(
    tmp_path: Path, grant: dict[str, object], key: str, problem: str
) -> None:
    with pytest.raises(ContractError) as err:
        load_sharing(_sharing(tmp_path, grant), {"note": REMARK})
    assert err.value.key == f"departments.civil.{key}" and problem in err.value.problem
    assert err.value.file.endswith("sharing.yml")


def test_a_conditional_grant_with_a_purpose_is_accepted(tmp_path: Path) -> None:
    grant = {"table": "core.note", "columns": ["k", "phone"], "purpose": "核查"}
    s = load_sharing(_sharing(tmp_path, grant), {"note": REMARK})
    assert s.departments["civil"].grants[0].layer == "core"


def test_an_unmasked_l3_column_may_be_granted_as_a_pseudonym(tmp_path: Path) -> None:
    grant = {"table": "staging.note", "columns": ["k"], "joinable": ["marital"], "purpose": "核查"}
    assert load_sharing(_sharing(tmp_path, grant), {"note": REMARK}).departments["civil"].grants[0].joinable


def test_the_project_grants_are_valid(contracts) -> None:  # type: ignore[no-untyped-def]
    from etl.config import get_settings

    s = load_sharing(get_settings().schemas_dir, contracts.tables)
    assert s.departments


def test_credit_codes_are_not_taken_for_resident_ids() -> None:
    """A credit code of digits only passes the resident-ID check character about one time in
    eleven; its "region" (91xxxx) and "birth date" are none, so it is no resident ID. The
    demo's employer credit codes stopped every share's publication before."""
    import random

    from etl.normalize.identifiers import uscc_check_char
    from etl.publish.classify import classify_values

    rng = random.Random()
    codes = []
    while len(codes) < 2000:
        body = "91" + "".join(rng.choice("0123456789") for _ in range(15))
        code = body + uscc_check_char(body)
        if code.isdigit():
            codes.append(code)
    shares = classify_values(pd.Series(codes, dtype="str"))
    assert shares.get("resident_id", 0.0) == 0.0
    assert classify_values(pd.Series(["11010519491231002X"] * 3, dtype="str"))["resident_id"] == 1.0


@pytest.mark.parametrize("column", ["alive", "marital_status"])
def test_civil_affairs_is_not_granted_alive_or_marital_status(
    tmp_path: Path,
    contracts,
    column: str,  # type: ignore[no-untyped-def]
) -> None:
    """The decision of docs/sharing.md ("Civil affairs: survival status, not alive or marital
    status"): both are L3 with no mask kind that keeps their meaning, so the contracts refuse
    them raw; the project's grant does without them and carries the survival status as the
    death date masked to its year."""
    from etl.config import get_settings

    schemas = get_settings().schemas_dir
    project = yaml.safe_load((schemas / "sharing.yml").read_text(encoding="utf-8"))
    [grant] = project["departments"]["civil_affairs"]["grants"]
    assert column not in grant["columns"] and column not in grant.get("joinable", [])
    person = contracts.tables["person"]
    assert "death_date" in grant["columns"] and person.column("death_date").mask == "date"
    assert (person.column(column).security_level, person.column(column).mask) == ("L3", "none")
    grant["columns"].append(column)
    (tmp_path / "sharing.yml").write_text(yaml.safe_dump(project, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ContractError) as err:
        load_sharing(tmp_path, contracts.tables)
    assert err.value.key == f"departments.civil_affairs.grants[0].columns[{len(grant['columns']) - 1}]"
    assert f"person.{column} is L3 with mask none" in err.value.problem
