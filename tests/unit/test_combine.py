"""Field maps that never drop a value: several delivered fields into one column only by a
declared rule (join, first_non_empty, date_parts), a field kept in raw only only when
declared so (`to: null`), and a contract that maps two fields to one column without a
rule refused, naming both."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from etl.config import get_settings
from etl.contracts import Source, get_contracts, load_contracts
from etl.errors import ContractError
from etl.normalize import normalize

pytestmark = pytest.mark.unit

PERSON = get_contracts().tables["person"]


def person_source(fields: list[dict[str, Any]], combine: dict[str, Any] | None = None) -> Source:
    data: dict[str, Any] = {
        "name": "t_person",
        "department": "test",
        "department_name": "测试",
        "description": "a person file with split fields",
        "table": "person",
        "kind": "csv",
        "location": "*.csv",
        "fields": fields,
    }
    if combine is not None:
        data["combine"] = combine
    return Source.model_validate(data)


def raw(**columns: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame({k: pd.array(v, dtype="string") for k, v in columns.items()})


def test_surname_and_given_name_both_kept_in_name() -> None:
    src = person_source(
        [
            {"name": "姓", "to": "name", "transforms": ["name"]},
            {"name": "名", "to": "name", "transforms": ["name"]},
        ],
        {"name": {"rule": "join", "separator": ""}},
    )
    out = normalize(raw(姓=["张", "欧阳", " 李", "", None], 名=["三", "修", "四 ", "娜", None]), src, PERSON)
    assert out.staged["name"].tolist() == ["张三", "欧阳修", "李四", "娜", pd.NA]
    assert out.errors.empty and out.findings.empty


def test_address_from_several_parts() -> None:
    parts = ["省", "市", "区", "街道"]
    src = person_source(
        [{"name": p, "to": "address", "transforms": ["text"]} for p in parts],
        {"address": {"rule": "join", "separator": "", "transforms": ["address"]}},
    )
    delivered = raw(
        省=["广东省", "北京市", "浙江省"],
        市=["深圳市", "", "杭州市"],
        区=["南山区", "朝阳区", None],
        街道=["深南大道10000号", "建国路88号", "文三路１２号"],
    )
    out = normalize(delivered, src, PERSON)
    assert out.staged["address"].tolist() == [
        "广东省深圳市南山区深南大道10000号",
        "北京市朝阳区建国路88号",  # an empty part adds nothing
        "浙江省杭州市文三路12号",  # the address transform ran on the whole (full-width digits)
    ]
    assert out.errors.empty


def test_join_with_a_failing_part_leaves_the_column_null_and_names_the_part() -> None:
    """A part that could not be normalized is not quietly left out of the joined value."""
    src = person_source(
        [
            {"name": "手机", "to": "phone", "transforms": ["phone"]},
            {"name": "分机", "to": "phone", "transforms": ["phone"]},
        ],
        {"phone": {"rule": "join", "separator": "-"}},
    )
    out = normalize(raw(手机=["13800138000", "13800138000"], 分机=["", "abc"]), src, PERSON)
    assert out.staged["phone"].tolist() == ["13800138000", pd.NA]
    assert out.errors[["_row_number", "column", "raw_value", "reason", "detail"]].values.tolist() == [
        [2, "phone", "abc", "invalid_phone", "分机 (phone)"]
    ]


def test_first_non_empty_keeps_the_first_and_records_a_disagreement_masked() -> None:
    src = person_source(
        [
            {"name": "身份证号", "to": "resident_id", "transforms": ["resident_id"]},
            {"name": "证件号码", "to": "resident_id", "transforms": ["resident_id"]},
        ],
        {"resident_id": {"rule": "first_non_empty"}},
    )
    a, b = "11010519491231002X", "440524188001010014"
    out = normalize(
        raw(身份证号=[a, "", a, a], 证件号码=[a, b, b, None], _row_number=["1", "2", "3", "4"]), src, PERSON
    )
    assert out.staged["resident_id"].tolist() == [a, b, a, a]
    assert out.errors.empty  # a disagreement does not quarantine the row ...
    f = out.findings  # ... it is recorded, with both values masked
    assert f["_row_number"].tolist() == [3]
    assert f["reason"].tolist() == ["field_disagreement"]
    assert f["column"].tolist() == ["resident_id"]
    assert f["raw_value"].tolist() == ["440524********0014"]
    assert f["detail"].tolist() == [
        "证件号码=440524********0014 differs from 身份证号=110105********002X (kept)"
    ]
    assert a not in f.to_string() and b not in f.to_string()


def test_first_non_empty_compares_typed_values() -> None:
    """1985-03-02 and 1985年3月2日 are the same date: no finding."""
    src = person_source(
        [
            {"name": "出生日期", "to": "birth_date", "transforms": ["date"]},
            {"name": "生日", "to": "birth_date", "transforms": ["date"]},
        ],
        {"birth_date": {"rule": "first_non_empty"}},
    )
    out = normalize(
        raw(出生日期=["1985-03-02", "1985-03-02"], 生日=["1985年3月2日", "1986年3月2日"]), src, PERSON
    )
    assert out.staged["birth_date"].dt.strftime("%Y-%m-%d").tolist() == ["1985-03-02", "1985-03-02"]
    assert out.findings["_row_number"].tolist() == [2]
    assert out.findings["raw_value"].tolist() == ["1986-**-**"]  # birth_date masks to the year


def test_date_parts_make_one_date() -> None:
    src = person_source(
        [{"name": n, "to": "birth_date"} for n in ("出生年", "出生月", "出生日")],
        {"birth_date": {"rule": "date_parts"}},
    )
    out = normalize(
        raw(出生年=["1985", "1990", "", "1990"], 出生月=["3", "2", "", "2"], 出生日=["2", "30", "", ""]),
        src,
        PERSON,
    )
    assert out.staged["birth_date"].dt.strftime("%Y-%m-%d").fillna("-").tolist() == [
        "1985-03-02",
        "-",
        "-",
        "-",
    ]
    assert out.errors[["_row_number", "raw_value", "reason"]].values.tolist() == [
        [2, "1990|2|30", "invalid_date"],  # 30 February
        [4, "1990|2|", "invalid_date"],  # a part missing
    ]


# ---------------------------------------------------------------- the contract
@pytest.fixture
def schemas(tmp_path: Path) -> Path:
    dst = tmp_path / "schemas"
    shutil.copytree(get_settings().schemas_dir, dst)
    return dst


def _edit(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def _split_name(d: dict[str, Any]) -> None:
    d["fields"][1] = {"name": "姓", "to": "name", "transforms": ["name"]}
    d["fields"].insert(2, {"name": "名", "to": "name", "transforms": ["name"]})


@pytest.mark.parametrize(
    ("change", "key", "problem"),
    [
        (_split_name, "combine", "fields 姓, 名 all map to column name without a rule"),
        (
            lambda d: d["fields"].append({"name": "现住址", "to": "address"}),
            "combine",
            "fields 住址, 现住址 all map to column address without a rule",
        ),
        (
            lambda d: (_split_name(d), d.update(combine={"name": {"rule": "join"}})),
            "combine.name",
            "rule join needs a separator",
        ),
        (
            lambda d: (_split_name(d), d.update(combine={"name": {"rule": "concat"}})),
            "combine.name.rule",
            "unknown combine rule 'concat'",
        ),
        (
            lambda d: (
                _split_name(d),
                d.update(combine={"name": {"rule": "join", "separator": "", "transforms": ["md5"]}}),
            ),
            "combine.name.transforms",
            "unknown transform(s) md5",
        ),
        (
            lambda d: (
                _split_name(d),
                d.update(combine={"name": {"rule": "first_non_empty", "transforms": ["name"]}}),
            ),
            "combine.name",
            "takes no transforms",
        ),
        (
            lambda d: d.update(combine={"phone": {"rule": "first_non_empty"}}),
            "combine",
            "needs two or more fields mapped to phone, got 联系电话",
        ),
        (
            lambda d: (_split_name(d), d.update(combine={"name": {"rule": "date_parts"}})),
            "combine",
            "date_parts takes three fields",
        ),
        (lambda d: d["fields"][0].pop("to"), "fields[0].to", "Field required"),
    ],
)
def test_contract_without_a_rule_for_a_shared_column_is_refused(
    schemas: Path, change, key: str, problem: str
) -> None:  # type: ignore[no-untyped-def]
    path = schemas / "sources" / "ps_hukou.yml"
    _edit(path, change)
    with pytest.raises(ContractError) as info:
        load_contracts(schemas)
    assert (info.value.file, info.value.key) == (str(path), key)
    assert problem in info.value.problem


def test_a_declared_combine_loads(schemas: Path) -> None:
    path = schemas / "sources" / "ps_hukou.yml"
    _edit(path, lambda d: (_split_name(d), d.update(combine={"name": {"rule": "join", "separator": ""}})))
    src = load_contracts(schemas).sources["ps_hukou"]
    assert src.combine["name"].separator == ""
    assert [f.name for f in src.fields if f.to == "name"] == ["姓", "名"]
