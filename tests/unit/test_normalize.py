"""Transforms (dates, codes, text, phones, amounts) and normalize() on small raw frames."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd
import pytest

from etl.contracts import Contracts
from etl.normalize import TRANSFORMS, consistency, normalize
from etl.normalize.dates import date, date_1904
from etl.quality import REASONS

pytestmark = pytest.mark.unit
TODAY = dt.date(2026, 1, 1)


def _one(fn: Callable[..., tuple[pd.Series, pd.Series]], raw: str | None) -> tuple[object, object]:
    v, r = fn(pd.Series([raw], dtype="str"))
    return (None if pd.isna(v.iloc[0]) else v.iloc[0]), (None if pd.isna(r.iloc[0]) else r.iloc[0])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1985年3月2日", "1985-03-02"), ("1985-03-02", "1985-03-02"), ("1985/3/2", "1985-03-02"),
        ("19850302", "1985-03-02"), ("1985.03.02", "1985-03-02"), ("1985-3-2", "1985-03-02"),
        ("１９８５－０３－０２", "1985-03-02"), ("2020-01-01 00:00:00", "2020-01-01"),
        ("2020-01-01T08:30:00Z", "2020-01-01"), ("31108", "1985-03-02"), ("31108.75", "1985-03-02"),
        ("61", "1900-03-01"), ("59", "1900-02-28"), ("1", "1900-01-01"), ("2000-02-29", "2000-02-29"),
    ],
)  # fmt: skip
def test_date_formats(raw: str, expected: str) -> None:
    v, r = date(pd.Series([raw]), today=TODAY)
    assert v.iloc[0] == pd.Timestamp(expected) and pd.isna(r.iloc[0])
    assert v.dtype == "datetime64[ms]"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("60", "invalid_date"), ("0", "invalid_date"), ("1985-02-30", "invalid_date"),
        ("1985-13-01", "invalid_date"), ("1900-02-29", "invalid_date"), ("85-03-02", "invalid_date"),
        ("二〇〇一年", "invalid_date"), ("2026-01-02", "date_out_of_range"), ("1879-12-31", "date_out_of_range"),
    ],
)  # fmt: skip
def test_date_rejects(raw: str, reason: str) -> None:
    v, r = date(pd.Series([raw]), today=TODAY)
    assert pd.isna(v.iloc[0]) and r.iloc[0] == reason


def test_date_1904_and_empty() -> None:
    v, _ = date_1904(pd.Series(["0", "29645"]), today=TODAY)
    assert v.tolist() == [pd.Timestamp("1904-01-01"), pd.Timestamp("1985-03-01")]
    v, r = date(pd.Series(["", "  ", None]))
    assert v.isna().all() and r.isna().all()


CASES = [
    ("gender", "男", "1", None), ("gender", "F", "2", None), ("gender", "Male", "1", None),
    ("gender", "9", "9", None), ("gender", "未知", "0", None), ("gender", "x", None, "invalid_code"),
    ("marital_status", "未婚", "10", None), ("marital_status", "再婚", "20", None),
    ("marital_status", "22", "20", None), ("marital_status", "4", "40", None),
    ("marital_status", "离异", None, "invalid_code"),
    ("ethnicity", "汉族", "01", None), ("ethnicity", "汉", "01", None), ("ethnicity", "1", "01", None),
    ("ethnicity", "蒙古族", "02", None), ("ethnicity", "56", "56", None), ("ethnicity", "火星族", None, "invalid_code"),
    ("entity_status", "存续", "active", None), ("entity_status", "在业", "active", None),
    ("entity_status", "吊销，未注销", "revoked", None), ("entity_status", "注销", "cancelled", None),
    ("entity_status", "迁出", "moved_out", None), ("entity_status", "非正常", None, "invalid_code"),
    ("entity_type", "有限责任公司(自然人投资或控股)", "limited_company", None),
    ("entity_type", "有限责任公司（外商投资、非独资）", "limited_company", None),
    ("entity_type", "股份有限公司(上市)", "joint_stock", None), ("entity_type", "个体工商户", "individual_business", None),
    ("entity_type", "普通合伙企业", "partnership", None), ("entity_type", "国有企业", None, "invalid_code"),
    ("boolean", "是", True, None), ("boolean", "N", False, None), ("boolean", "true", True, None),
    ("boolean", "死亡", False, None), ("boolean", "也许", None, "invalid_code"),
    ("region", "110105", "110105", None), ("region", "１１０１０５", "110105", None),
    ("region", "990000", None, "invalid_region"), ("region", "11010", None, "invalid_region"),
    ("name", " 张 三 ", "张三", None), ("name", "王\u200b五", "王五", None),
    ("name", "阿依古丽・买买提", "阿依古丽·买买提", None), ("name", "阿依古丽•买买提", "阿依古丽·买买提", None),
    ("name", "John  Smith", "John Smith", None), ("name", "ＡＢＣ（北京）科技有限公司", "ABC（北京）科技有限公司", None), ("name", "运城兴家合伙企业(有限合伙)", "运城兴家合伙企业（有限合伙）", None),
    ("address", "北京市 朝阳区  １号", "北京市 朝阳区 1号", None), ("text", " 地区生产总值\u200b ", "地区生产总值", None),
    ("phone", "13812345678", "13812345678", None), ("phone", "+86 138-1234-5678", "13812345678", None),
    ("phone", "0086 13812345678", "13812345678", None), ("phone", "010-12345678", "010-12345678", None),
    ("phone", "01012345678", "010-12345678", None), ("phone", "(0571) 8765 4321", "0571-87654321", None),
    ("phone", "+86 10 1234 5678", "010-12345678", None), ("phone", "12345678", None, "invalid_phone"),
    ("phone", "1381234567", None, "invalid_phone"),
    ("amount_cny", "100万元", 1_000_000.0, None), ("amount_cny", "1.5亿", 150_000_000.0, None),
    ("amount_cny", "50000元", 50_000.0, None), ("amount_cny", "5,000.00", 5000.0, None),
    ("amount_cny", "３千", 3000.0, None), ("amount_cny", "人民币 100 万元", 1_000_000.0, None),
    ("amount_cny", "10万美元", None, "invalid_amount"), ("amount_cny", "面议", None, "invalid_amount"),
    ("decimal", "1,234.5", 1234.5, None), ("decimal", "１２", 12.0, None), ("decimal", "abc", None, "invalid_number"),
    ("integer", "12", 12, None), ("integer", "12.0", 12, None), ("integer", "12.5", None, "invalid_number"),
    ("credit_code", "91110000600037341L", "91110000600037341L", None),
    ("resident_id", "11010519491231002X", "11010519491231002X", None),
]  # fmt: skip


@pytest.mark.parametrize(("transform", "raw", "expected", "reason"), CASES)
def test_transform(transform: str, raw: str, expected: object, reason: str | None) -> None:
    assert _one(TRANSFORMS[transform], raw) == (expected, reason)
    if reason:
        assert reason in REASONS


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_every_transform_empty_is_null_and_keeps_index(transform: str) -> None:
    s = pd.Series(["", "  ", None], index=[5, 6, 7], dtype="str")
    v, r = TRANSFORMS[transform](s)
    assert list(v.index) == [5, 6, 7] and v.isna().all() and r.isna().all()


def _person_raw() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "_source": "ps_hukou", "_batch_id": "b1", "_row_number": ["1", "2", "3", "4"], "_file_sha256": "f",
            "_row_error": [None, None, "ragged: 10 fields, expected 9", None],
            "公民身份号码": ["11010519491231002X", "110105194912310000", "１１０１０５１９４９１２３１００２ｘ", ""],
            "姓名": ["张 三", "李四", "王五", "赵六"], "性别": ["女", "女", "男", "男"],
            "出生日期": ["1949年12月31日", "1985-02-30", "1949-12-30", "19800101"],
            "民族": ["汉族", "1", "x", "回族"], "户籍地行政区划": ["110105", "110105", "999999", "110101"],
            "住址": ["北京市朝阳区", "", None, "北京"], "联系电话": ["13812345678", "x", "", "010-12345678"],
            "婚姻状况": ["已婚", "10", "初婚", "离婚"],
        },
        dtype="str",
    )  # fmt: skip


def test_normalize_person(contracts: Contracts) -> None:
    res = normalize(_person_raw(), contracts.source("ps_hukou"), contracts.table_of("ps_hukou"), today=TODAY)
    st = res.staged
    table = contracts.table_of("ps_hukou")
    assert list(st.columns) == [*table.column_names, "_source", "_batch_id", "_row_number"]
    assert len(st) == 4 and st["_row_number"].tolist() == [1, 2, 3, 4]
    assert st["resident_id"].dtype == "string" and st["birth_date"].dtype == "datetime64[ms]"
    assert st["alive"].dtype == "boolean" and st["alive"].isna().all() and st["death_date"].isna().all()
    assert (
        st["resident_id"].tolist()[0] == "11010519491231002X"
        and st["resident_id"].tolist()[2] == "11010519491231002X"
    )
    assert st["name"].tolist() == ["张三", "李四", "王五", "赵六"]
    assert st["marital_status"].tolist() == ["20", "10", "20", "40"]
    e = res.errors
    got = set(zip(e["_row_number"].astype(int), e["column"], e["reason"], strict=True))
    assert got == {
        (2, "resident_id", "resident_id_destroyed"),
        (2, "birth_date", "invalid_date"),
        (2, "phone", "invalid_phone"),
        (3, "_row", "malformed_row"),
        (3, "ethnicity", "invalid_code"),
        (3, "household_region", "invalid_region"),
        (3, "birth_date", "resident_id_birth_mismatch"),
        (3, "gender", "resident_id_gender_mismatch"),
    }
    assert list(res.errors.columns) == ["_row_number", "column", "raw_value", "reason", "detail"]
    assert res.errors["reason"].isin(list(REASONS)).all()
    destroyed = res.errors[res.errors.reason == "resident_id_destroyed"].iloc[0]
    assert destroyed.raw_value == "110105194912310000" and "公民身份号码" in destroyed.detail
    # never silently nulled: every null staged value with a non-empty raw value has an error
    assert st.loc[1, "resident_id"] is pd.NA


def test_alive_false_when_death_date(contracts: Contracts) -> None:
    raw = pd.DataFrame(
        {
            "_row_number": ["1", "2", "3"], "patient.id_card": ["11010519491231002X"] * 3,
            "vital_status.alive": ["", "true", ""], "vital_status.death_date": ["2020-05-01", "", ""],
        },
        dtype="str",
    )  # fmt: skip
    res = normalize(raw, contracts.source("nhc_health"), contracts.table_of("nhc_health"), today=TODAY)
    assert res.staged["alive"].tolist()[:2] == [False, True] and pd.isna(res.staged["alive"].iloc[2])
    assert res.staged["_source"].tolist() == ["nhc_health"] * 3  # missing lineage filled
    assert res.staged["name"].isna().all()  # field absent from the delivery -> null


def test_normalize_unpivot(contracts: Contracts) -> None:
    raw = pd.DataFrame(
        {
            "_source": "stats_indicators", "_batch_id": "b", "_row_number": ["1", "2"], "_row_error": [None, None],
            "地区代码": ["110000", "310000"], "地区名称": ["北京市", "上海市"], "指标名称": ["地区生产总值", "常住人口"],
            "计量单位": ["亿元", "万人"], "2019年": ["35,371.3", "2428.14"], "2020年": ["—", "x"],
            "2025年": ["1", ""], "备注": ["", ""],
        },
        dtype="str",
    )  # fmt: skip
    src = contracts.source("stats_indicators")
    res = normalize(raw, src, contracts.table_of("stats_indicators"), today=TODAY)
    st = res.staged
    assert st[["region_code", "period"]].values.tolist() == [
        ["110000", "2019"], ["110000", "2025"], ["310000", "2019"], ["310000", "2020"],
    ]  # fmt: skip
    assert st["_row_number"].tolist() == [1, 1, 2, 2]
    assert st["value"].dtype == "float64" and st["value"].tolist()[:3] == [35371.3, 1.0, 2428.14]
    assert pd.isna(st["value"].iloc[3])
    err = res.errors.iloc[0]
    assert len(res.errors) == 1 and (err["_row_number"], err["column"], err["reason"]) == (
        2,
        "value",
        "invalid_number",
    )
    assert err.detail.startswith("2020年")


def test_consistency_alone() -> None:
    staged = pd.DataFrame(
        {
            "resident_id": pd.array(["11010519491231002X", "11010519491231002X", None], dtype="string"),
            "birth_date": pd.to_datetime(["1949-12-31", "1950-01-01", "1950-01-01"]),
            "gender": pd.array(["2", "1", "1"], dtype="string"),
            "_row_number": [7, 8, 9],
        }
    )
    errs = consistency(staged)
    assert sorted(zip(errs["_row_number"], errs["reason"], strict=True)) == [
        (8, "resident_id_birth_mismatch"), (8, "resident_id_gender_mismatch"),
    ]  # fmt: skip
