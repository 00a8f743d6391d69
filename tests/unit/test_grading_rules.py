"""The grading rules behind the contract levels the classifier checks (docs/sharing.md,
"Grading by rule"): a column is declared at the level its most personal values warrant.

- credit codes: an individual business's code (92...) names a person (L3), an organisation's
  is public by law: columns holding credit codes are L3 with mask `credit_code`, which masks
  only the 92 codes and keeps organisations' codes whole;
- the legal representative's name is a person's name (of an individual business, its operator):
  L3, mask `name`;
- the registered address of an individual business is often its operator's home, and content
  cannot tell it from an office's: L3, mask `address`.
Each rule: realistic values under the project contract give no finding, under a contract
that declares the column L1 they do, and the declared mask hides what names a person."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from etl.contracts import Contracts, SharedTable
from etl.normalize.identifiers import USCC_ALPHABET, uscc_check_char
from etl.publish.classify import judge_column
from etl.publish.masking import mask

SURNAMES, GIVEN = "王李张刘陈杨黄赵吴周", "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞"


def credit_code(prefix: str, rng: random.Random) -> str:
    body = (
        prefix
        + rng.choice(["110105", "310104", "440305"])
        + "".join(rng.choice(USCC_ALPHABET[:30]) for _ in range(9))
    )
    return body + uscc_check_char(body)


def codes(rng: random.Random, n: int = 200) -> pd.Series:
    """Mostly enterprises (91), some individual businesses (92), a few others (93, 52, 12)."""
    prefixes = rng.choices(["91", "92", "93", "52", "12"], weights=[60, 30, 4, 3, 3], k=n)
    return pd.Series([credit_code(p, rng) for p in prefixes], dtype="string")


def names(rng: random.Random, n: int = 200) -> pd.Series:
    return pd.Series(
        [rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.choice([1, 2]))) for _ in range(n)]
    )


def addresses(rng: random.Random, n: int = 200) -> pd.Series:
    places = ["北京市朝阳区", "上海市虹口区", "云南省保山市龙陵县", "广东省深圳市南山区"]
    streets = ["东风巷", "青年大道", "解放大街", "中关村大街"]
    return pd.Series(
        [f"{rng.choice(places)}{rng.choice(streets)}{rng.randrange(1, 300)}号" for _ in range(n)]
    )


def declared_l1(table: SharedTable, column: str) -> SharedTable:
    data = table.model_dump()
    for c in data["columns"]:
        if c["name"] == column:
            c.update(security_level="L1", mask="none")
    return SharedTable.model_validate(data)


@pytest.mark.parametrize(
    ("table", "column", "values", "kind"),
    [
        ("legal_entity", "credit_code", codes, "credit_code_person"),
        ("employment", "employer_credit_code", codes, "credit_code_person"),
        ("legal_entity", "legal_rep_name", names, "person_name"),
        ("legal_entity", "address", addresses, "address"),
    ],
)
def test_the_declared_level_agrees_with_the_content(
    contracts: Contracts, table: str, column: str, values, kind: str, seed: int = 5
) -> None:  # type: ignore[no-untyped-def]
    sample = values(random.Random(seed))
    shared = contracts.tables[table]
    assert judge_column("core", shared, column, sample) == []
    found = judge_column("core", declared_l1(shared, column), column, sample)
    assert [f.kind for f in found] == [kind]
    assert shared.column(column).security_level == found[0].warranted


def test_every_credit_code_column_masks_individual_businesses_only(contracts: Contracts) -> None:
    """By rule, not by name: every column checked as a credit code is L3 with mask credit_code."""
    cols = [
        (t.name, c)
        for t in contracts.tables.values()
        for c in t.columns
        if any(ch.kind == "credit_code" for ch in c.checks)
    ]
    assert cols
    for name, c in cols:
        assert (c.security_level, c.mask) == ("L3", "credit_code"), (name, c.name)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_credit_code_mask_hides_92_codes_and_keeps_organisations_whole(seed: int) -> None:
    raw = codes(random.Random(seed))
    out = mask(raw, "credit_code")
    person = raw.str.startswith("92")
    assert person.any() and (~person).any()
    assert (out[~person] == raw[~person]).all()
    masked = out[person]
    assert (masked.str.slice(0, 8) == raw[person].str.slice(0, 8)).all()
    assert (masked.str.slice(8, 17) == "*" * 9).all() and (masked.str.len() == 18).all()
    assert (masked.str.slice(17) == raw[person].str.slice(17)).all()
    assert mask(pd.Series([None, "92"], dtype="string"), "credit_code").isna().tolist() == [True, False]


@pytest.mark.parametrize(("column", "kind"), [("legal_rep_name", "name"), ("address", "address")])
def test_names_and_addresses_of_legal_entities_are_masked(
    contracts: Contracts, column: str, kind: str
) -> None:
    col = contracts.tables["legal_entity"].column(column)
    assert (col.security_level, col.mask, col.open) == ("L3", kind, "not_open")
    raw = (names if column == "legal_rep_name" else addresses)(random.Random(9))
    out = mask(raw.astype("string"), col.mask)
    assert out.str.contains(r"\*").all() and not (out == raw).any()
