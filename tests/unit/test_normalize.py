"""Transforms (dates, codes, text, phones, amounts) and normalize() on small raw frames."""

from __future__ import annotations

import datetime as dt
import inspect
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pandas.testing import assert_series_equal

from etl.contracts import Contracts
from etl.normalize import TRANSFORMS, consistency, core, normalize
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


# ---------------------------------------------------------------- core's shortcuts change nothing
def _python_regex(pattern: str) -> str:
    """A FIXPOINTS pattern (RE2) for Python's re: RE2's \\x{3400} is \\U00003400 there."""
    return re.sub(r"\\x\{([0-9A-Fa-f]+)\}", lambda m: f"\\U{int(m.group(1), 16):08X}", pattern)


def test_python_regex_translation() -> None:
    py = _python_regex(core.CLEAN_TEXT)
    assert "x{" not in py
    for v in ["张三", "ABC123", "\u3400\u4dbf\u4e00\u9fff"]:
        assert re.fullmatch(py, v)
    for v in ["张 三", "Ａ", "\u4dc0", "\ua000", "·", ""]:
        assert not re.fullmatch(py, v)


@pytest.mark.parametrize("name", sorted(core.FIXPOINTS))
@hsettings(max_examples=150, deadline=None)
@given(data=st.data())
def test_fixpoints_are_returned_unchanged(name: str, data: st.DataObject) -> None:
    """What FIXPOINTS claims: a value matching the transform's pattern is its own
    normal form (the transform returns it as is, without a reason)."""
    pattern = core.FIXPOINTS[name]
    values = data.draw(
        st.lists(st.from_regex(_python_regex(pattern), fullmatch=True), min_size=1, max_size=20)
    )
    # the Python translation describes values the RE2 pattern matches too
    assert pc.all(pc.match_substring_regex(pa.array(values, pa.string()), pattern)).as_py()
    out, reasons = TRANSFORMS[name](pd.Series(values, dtype="string"))
    assert out.tolist() == values
    assert reasons.isna().all()


def _single_characters(pattern: str) -> list[str]:
    """Every character c (all of Unicode but surrogates) for which the RE2 pattern matches "c"."""
    points = np.r_[np.arange(0xD800), np.arange(0xE000, 0x110000)]
    chars = pa.array([chr(c) for c in points], pa.string())
    hit = pc.fill_null(pc.match_substring_regex(chars, pattern), False)
    return chars.filter(hit).to_pylist()


#: FIXPOINTS patterns that are one character class, repeated (CLEAN_TEXT)
CLASS_FIXPOINTS = sorted(n for n, p in core.FIXPOINTS.items() if re.fullmatch(r"\^\[[^\]]+\]\+\$", p))


def test_clean_text_is_a_character_class() -> None:
    assert {n for n, p in core.FIXPOINTS.items() if p == core.CLEAN_TEXT} <= set(CLASS_FIXPOINTS)
    assert len(_single_characters(core.CLEAN_TEXT)) == 10 + 52 + (0x4DBF - 0x3400 + 1) + (0x9FFF - 0x4E00 + 1)


@pytest.mark.parametrize("name", CLASS_FIXPOINTS)
def test_character_class_fixpoints_every_character(name: str) -> None:
    """A pattern like CLEAN_TEXT is a class of characters: every one of them, alone and
    in runs, is returned unchanged (hypothesis rarely draws from the small ranges of a
    large class)."""
    chars = _single_characters(core.FIXPOINTS[name])
    assert chars
    rng = np.random.default_rng(3)
    shuffled = [chars[i] for i in rng.permutation(len(chars))]
    cuts = np.cumsum(rng.integers(2, 12, len(chars)))
    runs = ["".join(shuffled[a:b]) for a, b in zip(np.r_[0, cuts], cuts, strict=False) if a < len(chars)]
    values = chars + runs
    out, reasons = TRANSFORMS[name](pd.Series(values, dtype="string"))
    changed = [(v, o) for v, o in zip(values, out.tolist(), strict=True) if v != o]
    assert not changed, changed[:5]
    assert reasons.isna().all()


def _draw(rng: np.random.Generator, pool: list[Any], n: int) -> list[Any]:
    return [pool[i] for i in rng.integers(len(pool), size=n)]


DIRTY_TEXT = [
    "张 三", "ＡＢＣ", "王\u200b五", " 李四 ", "John  Smith", "运城兴家合伙企业(有限合伙)", "阿依古丽・买买提",
    "北京市 朝阳区  １号", "\u3000赵六", "e\u0301", "Ⅻ", "", "  ", None,
]  # fmt: skip


@pytest.mark.parametrize("name", sorted(core.FIXPOINTS))
def test_fixpoint_shortcut_equals_the_transform(name: str) -> None:
    """core._run sends only the values not matching FIXPOINTS[name] to the transform."""
    rng = np.random.default_rng(sorted(core.FIXPOINTS).index(name))
    n = 5000
    if name == "phone":
        clean = [
            f"1{d}{x:09d}" for d, x in zip(rng.integers(3, 10, n), rng.integers(0, 10**9, n), strict=True)
        ]
        dirty = [
            "+86 138-1234-5678",
            "010-12345678",
            "(0571) 8765 4321",
            "12345",
            "1381234567",
            "",
            " ",
            None,
        ]
    else:
        clean = _draw(rng, ["张三", "ABC123", "\u3400\u4dbf", "北京市朝阳区", "李四", "x"], n)
        dirty = DIRTY_TEXT
    values = pd.Series(
        [
            dirty[int(rng.integers(len(dirty)))] if u < 0.3 else c
            for u, c in zip(rng.random(n), clean, strict=True)
        ],
        dtype="str",
        index=pd.RangeIndex(100, 100 + 2 * n, 2),
    )
    pattern = core.FIXPOINTS[name]
    matches = pc.fill_null(pc.match_substring_regex(pa.array(values.array), pattern), False)
    assert n >= core._DISTINCT_MIN_ROWS and 0 < n - pc.sum(matches).as_py() <= n // 2  # the shortcut is taken
    got_values, got_reasons = core._run(name, values, None)
    want_values, want_reasons = TRANSFORMS[name](values)
    assert_series_equal(got_values, want_values, check_dtype=True)
    assert_series_equal(got_reasons, want_reasons, check_dtype=True)


DATES = [
    "1985-03-02", "1985/3/2", "1985年3月2日", "19850302", "1985.03.02", "１９８５－０３－０２",
    "2020-01-01 00:00:00", "2020-01-01T08:30:00Z", "31108", "31108.75", "61", "60", "0", "1985-02-30",
    "1985-13-01", "85-03-02", "二〇〇一年", "2099-01-01", "1879-12-31", "2000-02-29", "1900-02-29",
    "", "  ", None,
]  # fmt: skip
GENDERS = ["男", "女", "1", "2", "M", "F", "Male", "female", "未知", "9", "0", "x", " 男 ", "男性", "", None]
ETHNICITIES = ["汉族", "汉", "1", "01", "蒙古族", "56", "火星族", "回 族", "", None]
REGION_CODES = ["110105", "１１０１０５", "110 105", "990000", "11010", "310101", "", None]
AMOUNTS = ["100万元", "1.5亿", "50000元", "5,000.00", "３千", "10万美元", "面议", "0", "-5", "", None]
INTEGERS = ["12", "12.0", "12.5", "１２", "x", "-3", "1e3", "", " ", None]
BOOLEANS = ["是", "否", "Y", "N", "true", "0", "死亡", "在世", "也许", "", None]
NAMES = [*DIRTY_TEXT, "张三", "李四", "ＡＢＣ（北京）科技有限公司", "Ｊｏｈｎ", "王五"]
BLANKS = ["", "  ", "\u3000", None]


def _dated(rng: np.random.Generator) -> list[Any]:
    """DATES plus a few hundred distinct real dates in the common formats."""
    days = np.datetime64("1950-01-01") + rng.integers(0, 25_000, 300).astype("timedelta64[D]")
    real = [str(d) for d in days] + [str(d).replace("-", "") for d in days[:100]]
    return DATES + real


DISTINCT_CASES: dict[str, tuple[list[str], str, Callable[[np.random.Generator], list[Any]]]] = {
    "date": (["date"], "date", _dated),
    "date_1904": (["date_1904"], "date", _dated),
    "date by default": ([], "date", _dated),
    "timestamp by default": ([], "timestamp", _dated),
    "text then date": (["text", "date"], "date", _dated),
    "gender": (["gender"], "string", lambda _: GENDERS),
    "ethnicity": (["ethnicity"], "string", lambda _: ETHNICITIES),
    "marital_status": (
        ["marital_status"],
        "string",
        lambda _: ["已婚", "未婚", "再婚", "22", "离异", "", None],
    ),
    "region": (["region"], "string", lambda _: REGION_CODES),
    "name": (["name"], "string", lambda _: NAMES),
    "address": (["address"], "string", lambda _: NAMES),
    "text": (["text"], "string", lambda _: NAMES),
    "no transform": ([], "string", lambda _: NAMES),
    "amount_cny": (["amount_cny"], "decimal", lambda _: AMOUNTS),
    "decimal by default": ([], "decimal", lambda _: AMOUNTS),
    "integer by default": ([], "integer", lambda _: INTEGERS),
    "boolean": (["boolean"], "boolean", lambda _: BOOLEANS),
    "blanks as dates": (["date"], "date", lambda _: BLANKS),
    "blanks as text": ([], "string", lambda _: BLANKS),
}


def _assert_same(got: tuple[pd.Series, ...], want: tuple[pd.Series, ...]) -> None:
    for part, g, w in zip(("values", "reasons", "failed"), got, want, strict=True):
        assert_series_equal(g, w, check_dtype=True, obj=part)


#: Column types as normalize() documents them.
DTYPES = {"string": "string", "date": "datetime64[ms]", "timestamp": "datetime64[ms]"}
DTYPES |= {"decimal": "float64", "integer": "Int64", "boolean": "boolean"}


def _row_by_row(values: pd.Series, transforms: list[str], kind: str) -> tuple[pd.Series, ...]:
    """The reference: apply_transforms over pieces of 500 rows, each piece handed to the
    chain whole, every row as it is (no distinct-value path, no memo: checked through the
    `sizes` hook), the pieces put back together in order."""
    parts = []
    for start in range(0, len(values), 500):
        piece = values.iloc[start : start + 500]
        got, sizes = _apply(piece, transforms, kind)
        assert sizes == [len(piece)], "the reference must transform every row as it is"
        parts.append(got)
    return tuple(pd.concat([p[i] for p in parts]) for i in range(3))


def _apply(
    values: pd.Series, transforms: list[str], kind: str, memo: core.Memo | None = None
) -> tuple[tuple[pd.Series, ...], list[int]]:
    """apply_transforms, and the number of values each run of its chain was handed
    (apply_transforms' public `sizes` hook)."""
    sizes: list[int] = []
    got = core.apply_transforms(values, transforms, kind, TODAY, memo, sizes=sizes)
    return got, sizes


@pytest.mark.parametrize("dtype", ["str", object])
@pytest.mark.parametrize("case", sorted(DISTINCT_CASES))
def test_distinct_value_path_equals_the_plain_chain(case: str, dtype: object) -> None:
    """apply_transforms runs a repetitive column's chain over its distinct values only:
    same values, reasons and failed transform as running it over every value."""
    transforms, kind, pool = DISTINCT_CASES[case]
    rng = np.random.default_rng(sorted(DISTINCT_CASES).index(case))
    n = 6000
    values = pd.Series(_draw(rng, pool(rng), n), dtype=dtype, index=pd.RangeIndex(7, 7 + 3 * n, 3))
    got, sizes = _apply(values, transforms, kind)
    assert sizes == [values.nunique()], "the distinct path should be taken"
    _assert_same(got, _row_by_row(values, transforms, kind))
    assert got[0].dtype == DTYPES[kind]


@pytest.mark.parametrize("limit", [1_000_000, 40])
@pytest.mark.parametrize("case", sorted(DISTINCT_CASES))
def test_memo_across_chunks_equals_the_plain_chain(case: str, limit: int) -> None:
    """Chunks of one batch sharing a Memo: the same values, reasons and failed transform
    as the plain chain, and only the distinct values the memo does not hold yet are
    transformed (a memo of 40 values is full after the first chunk of most cases)."""
    transforms, kind, pool = DISTINCT_CASES[case]
    rng = np.random.default_rng(100 + sorted(DISTINCT_CASES).index(case))
    values = pd.Series(_draw(rng, pool(rng), 9000), dtype="str")
    memo = core.Memo(limit=limit)
    held: set[Any] = set()  # what the memo should hold
    for start, stop in ((0, 2500), (2500, 6000), (6000, 9000)):
        chunk = values.iloc[start:stop]
        got, sizes = _apply(chunk, transforms, kind, memo)
        _assert_same(got, _row_by_row(chunk, transforms, kind))
        fresh = set(chunk.dropna()) - held
        assert sizes == ([len(fresh)] if fresh or not held else [])
        if len(held) + len(fresh) <= limit:
            held |= fresh
        assert set(memo.keys.to_pylist()) == held


def test_memo_takes_dates_that_look_distinct_in_one_chunk() -> None:
    """Chunks of 5,000 dates with over 2,500 distinct values each (too many for the distinct
    path on its own): with a memo the second chunk transforms only the dates the first
    did not have, and the answer is the plain chain's."""
    rng = np.random.default_rng(5)
    days = [
        str(d)
        for d in np.datetime64("1950-01-01") + rng.permutation(20_000)[:12_000].astype("timedelta64[D]")
    ]
    first = pd.Series(_draw(rng, days[:6000], 5000), dtype="str")
    second = pd.Series(_draw(rng, days[3000:9000], 5000), dtype="str")
    assert first.nunique() > len(first) * core._DISTINCT_MAX_RATIO
    memo = core.Memo()
    sizes: list[int] = []
    for chunk in (first, second):
        got, more = _apply(chunk, ["date"], "date", memo)
        _assert_same(got, _whole_column("date", chunk, "date"))
        sizes += more
    assert sizes == [first.nunique(), len(set(second) - set(first))]


def _whole_column(name: str, values: pd.Series, kind: str) -> tuple[pd.Series, ...]:
    """The reference for a chain of one transform whose output has the column's type:
    the public transform itself over every value, and its name where it gave a reason."""
    fn = TRANSFORMS[name]
    out, why = fn(values, today=TODAY) if "today" in inspect.signature(fn).parameters else fn(values)
    failed = pd.Series(np.where(why.notna(), name, None), index=why.index, dtype=why.dtype)
    return out.astype(DTYPES[kind]), why, failed


@pytest.mark.parametrize("transforms", [["date"], ["gender"]])
def test_distinct_value_path_for_many_distinct_dates(transforms: list[str]) -> None:
    """20,000 values, 40% of them distinct: a sample looks unique, but date and code
    transforms still run over the distinct values (the answer is the same)."""
    rng = np.random.default_rng(23)
    n = 20_000
    days = np.datetime64("1900-01-01") + rng.permutation(45_000)[: n * 2 // 5].astype("timedelta64[D]")
    pool = [str(d) for d in days]
    pool = [v.replace("-", "/") if i % 3 else v for i, v in enumerate(pool)] + ["1985-02-30", "x", "", None]
    values = pd.Series(_draw(rng, pool, n), dtype="str")
    kind = "date" if transforms == ["date"] else "string"
    got, sizes = _apply(values, transforms, kind)
    _assert_same(got, _whole_column(transforms[0], values, kind))
    assert len(sizes) == 1 and sizes[0] <= n // 2 and sizes[0] == values.nunique()


def test_mostly_distinct_column_is_transformed_as_is() -> None:
    """Phones: > 50% distinct values, so no distinct path; the fixpoint shortcut still
    applies (most values are already 11-digit mobiles)."""
    rng = np.random.default_rng(11)
    n = 6000
    mobiles = [f"1{d}{x:09d}" for d, x in zip(rng.integers(3, 10, n), rng.integers(0, 10**9, n), strict=True)]
    dirty = [
        lambda m: "+86 " + m, lambda m: f"{m[:3]}-{m[3:7]}-{m[7:]}", lambda m: "0086" + m, lambda m: m[:-1],
        lambda m: "010-" + m[3:11], lambda m: "(0571) " + m[3:7] + " " + m[7:], lambda m: "", lambda m: None,
        lambda m: m.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
    ]  # fmt: skip
    raw = [
        dirty[int(rng.integers(len(dirty)))](m) if u < 0.15 else m
        for u, m in zip(rng.random(n), mobiles, strict=True)
    ]
    values = pd.Series(raw, dtype="str", index=pd.RangeIndex(3, 3 + n))
    got, sizes = _apply(values, ["phone"], "string")
    assert sizes == [n], "a column of mostly distinct values is transformed as it is"
    _assert_same(got, _whole_column("phone", values, "string"))
    assert got[1].notna().any() and got[0].notna().mean() > 0.8


def test_blank_row_error_is_not_a_malformed_row(contracts: Contracts) -> None:
    raw = _person_raw()
    raw.loc[0, "_row_error"] = "  "  # a reader's blank note: nothing wrong with the row
    res = normalize(raw, contracts.source("ps_hukou"), contracts.table_of("ps_hukou"), today=TODAY)
    malformed = res.errors[res.errors["reason"] == "malformed_row"]
    assert malformed["_row_number"].astype(int).tolist() == [3]
    assert malformed["detail"].tolist() == ["ragged: 10 fields, expected 9"]


@pytest.mark.parametrize("n", [0, 1, 1000])
def test_flagged_reasons_equal_the_object_array_route(n: int) -> None:
    from etl.normalize._common import flagged, reasons_series

    mask = np.random.default_rng(n).random(n) < 0.3
    index = pd.RangeIndex(5, 5 + n)
    got = flagged(mask, "invalid_phone", index)
    want = reasons_series(np.where(mask, "invalid_phone", None).astype(object), index)
    assert got.dtype == want.dtype and got.index.equals(want.index)
    assert got.isna().tolist() == (~mask).tolist() and got.equals(want)
