"""The compiled validation engine and Great Expectations agree.

etl.validate.compiled evaluates the expectation types of compiled.EVALUATORS itself
and claims GE's semantics for them. Here both engines judge the same frames:

(a) generated frames per expectation type (nulls, edge values, duplicates, non-ASCII
    text, corrupted identifiers): the same unexpected rows, the same success (also
    with `mostly`), the same counts and percentages;
(b) demo data through extract + normalize, as staged for validation, and the same
    rows with realistic slips: in tests/integration/test_validation_engines_demo.py;
(c) expectations the compiled engine does not evaluate still reach GE.

Disagreements found while writing these (regex dialects, rows skipped by ignore_row_if,
GE merging two expectations on one column) are fixed; their tests are at the end of the file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from stdnum.cn import ric, uscc

from etl.config import Settings
from etl.contracts import Contracts, get_contracts
from etl.normalize.identifiers import USCC_ALPHABET
from etl.validate import compiled
from etl.validate import runner as runner_module
from etl.validate.runner import ENGINES, SuiteRunner

pytestmark = pytest.mark.unit

ROW_META = {"level": "row", "reason": "x"}
#: GE result keys that list values or positions (compared separately, or not at all)
_LISTS = {
    "partial_unexpected_list",
    "partial_unexpected_index_list",
    "partial_unexpected_counts",
    "unexpected_list",
    "unexpected_index_list",
}
N = 240
RATES = (0.02, 0.4, 0.75)
EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"

Expectation = dict[str, Any]


# ---------------------------------------------------------------- helpers
def _exp(etype: str, mostly: float | None = None, **kwargs: Any) -> Expectation:
    if mostly is not None:
        kwargs["mostly"] = mostly
    return {"type": etype, "kwargs": kwargs, "meta": dict(ROW_META)}


def _mostly(
    etype: str, values: tuple[float | None, ...] = (None, 1.0, 0.6), **kwargs: Any
) -> list[Expectation]:
    return [_exp(etype, m, **kwargs) for m in values]


def _positions(index_list: list[Any] | None) -> set[int]:
    """GE's unexpected_index_list as row positions: entries are ints, or dicts of
    index column -> value (decoded as runner.validate_rows does)."""
    return {int(next(iter(i.values()))) if isinstance(i, dict) else int(i) for i in index_list or []}


def _ge(df: pd.DataFrame, exps: list[Expectation]) -> list[Any]:
    """GE's ExpectationValidationResult for each expectation, in order.

    One GE run for all of them; a GE suite keeps one of several equivalent
    expectations (say mostly absent and mostly=1.0), so those left out run again."""
    by_case: dict[int, Any] = {}
    todo = list(range(len(exps)))
    while todo:
        tagged = [{**exps[k], "meta": {**ROW_META, "case": k}} for k in todo]
        result = runner_module._run("engines_agree", df, "engines_agree", tagged)
        for r in result.results:
            by_case[int(r.expectation_config.meta["case"])] = r
        left = [k for k in todo if k not in by_case]
        assert len(left) < len(todo)
        todo = left
    return [by_case[k] for k in range(len(exps))]


def _compiled(df: pd.DataFrame, exp: Expectation) -> tuple[set[int], dict[str, Any]]:
    bad, skipped = compiled.unexpected(df, exp)
    res = compiled.expectation_result(exp, len(df), int(bad.sum()), int(skipped.sum()))
    return set(np.flatnonzero(bad).tolist()), res


def _assert_agree(df: pd.DataFrame, exps: list[Expectation]) -> list[int]:
    """Both engines on every expectation: same unexpected positions, success and counts.
    Returns the number of unexpected rows per expectation."""
    counts = []
    for exp, ge in zip(exps, _ge(df, exps), strict=True):
        label = f"{exp['type']} {exp['kwargs']}"
        assert not ge.exception_info.get("raised_exception"), (label, ge.exception_info)
        positions, mine = _compiled(df, exp)
        ge_positions = _positions(ge.result.get("unexpected_index_list"))
        assert positions == ge_positions, (
            label,
            f"compiled only: {sorted(positions - ge_positions)[:10]}",
            f"GE only: {sorted(ge_positions - positions)[:10]}",
        )
        assert mine["success"] == ge.success, (label, mine["result"], dict(ge.result))
        ge_counts = {k: v for k, v in ge.result.items() if k not in _LISTS}
        assert set(mine["result"]) == set(ge_counts), label
        for key, value in ge_counts.items():
            if value is None:
                assert mine["result"][key] is None, (label, key)
            else:
                assert mine["result"][key] == pytest.approx(value, rel=1e-12), (label, key)
        counts.append(len(positions))
    return counts


def _choose(rng: np.random.Generator, pool: list[Any], n: int) -> list[Any]:
    return [pool[i] for i in rng.integers(len(pool), size=n)]


def _mix(
    rng: np.random.Generator,
    good: list[Any],
    bad: list[Any],
    rate: float,
    null: Any = None,
    null_rate: float = 0.1,
    n: int = N,
) -> list[Any]:
    """n values: `null` with probability null_rate, one of `bad` with probability rate, else one of `good`."""
    u = rng.random(n)
    g, b = _choose(rng, good, n), _choose(rng, bad, n)
    return [null if x < null_rate else b[i] if x < null_rate + rate else g[i] for i, x in enumerate(u)]


def _strings(values: list[Any]) -> pd.arrays.ArrowStringArray:
    return pd.array(values, dtype="string")


# ---------------------------------------------------------------- identifiers (stdnum makes the valid ones)
REGIONS = ["110101", "110105", "120101", "310104", "440305", "650102"]
FULLWIDTH = str.maketrans(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "０１２３４５６７８９ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ",
)


def _ric(body: str) -> str:
    return body + ric.calc_check_digit(body + "0")


def _valid_ids(rng: np.random.Generator, n: int) -> list[str]:
    days = rng.integers(0, (dt.date(2020, 12, 31) - dt.date(1900, 1, 1)).days, n)
    births = (np.datetime64("1900-01-01") + days.astype("timedelta64[D]")).astype(str)
    return [
        _ric(f"{reg}{b.replace('-', '')}{int(s):03d}")
        for reg, b, s in zip(_choose(rng, REGIONS, n), births, rng.integers(0, 1000, n), strict=True)
    ]


def _bad_id(rng: np.random.Generator, v: str) -> str:
    kind = int(rng.integers(11))
    i = int(rng.integers(17))
    if kind == 0:  # one digit changed
        return v[:i] + str((int(v[i]) + int(rng.integers(1, 10))) % 10) + v[i + 1 :]
    if kind == 1:  # check character changed
        return v[:17] + "0123456789X".replace(v[17], "")[int(rng.integers(10))]
    if kind == 2:
        return v[:17] + "x" if v[17] == "X" else v.translate(FULLWIDTH)
    if kind == 3:  # old 15-digit number (valid after conversion, not as staged)
        return v[:6] + v[8:17]
    if kind == 4:
        return v[:8] + " " + v[8:]
    if kind == 5:  # born in 2099, check character right
        return _ric(v[:6] + "2099" + v[10:17])
    if kind == 6:  # 30 February, check character right
        return _ric(v[:6] + "19850230" + v[14:17])
    if kind == 7:  # Excel's scientific notation
        return f"{v[0]}.{v[1:15]}E+17"
    if kind == 8:
        return v[: int(rng.integers(10, 18))]
    if kind == 9:
        return ""
    return "身份证" + v[:15]


def _valid_codes(rng: np.random.Generator, n: int) -> list[str]:
    out = []
    for _ in range(n):
        body = "".join(_choose(rng, list("0123456789"), 8) + _choose(rng, list(USCC_ALPHABET), 9))
        out.append(body + uscc.calc_check_digit(body))
    return out


def _bad_code(rng: np.random.Generator, v: str) -> str:
    kind = int(rng.integers(8))
    i = int(rng.integers(17))
    if kind == 0:  # one character changed
        return v[:i] + USCC_ALPHABET.replace(v[i], "")[int(rng.integers(30))] + v[i + 1 :]
    if kind == 1:
        return v.lower() if v.lower() != v else v[:-1] + "Z"
    if kind == 2:  # letters outside the alphabet
        return v[:i] + "IOSVZ"[int(rng.integers(5))] + v[i + 1 :]
    if kind == 3:
        return v[:-1] if rng.integers(2) else v + "1"
    if kind == 4:  # a letter among the first 8 (registration authority, type, region)
        return "A" + v[1:]
    if kind == 5:
        return v.translate(FULLWIDTH)
    if kind == 6:
        return v[:4] + "-" + v[4:]
    return ""


def _id_parts(ids: list[Any]) -> tuple[list[pd.Timestamp | None], list[str | None]]:
    """The birth date and gender code a valid 18-character ID encodes (None otherwise)."""
    births: list[pd.Timestamp | None] = []
    genders: list[str | None] = []
    for v in ids:
        ok = isinstance(v, str) and len(v) == 18 and v[:17].isascii() and v[:17].isdigit()
        births.append(pd.to_datetime(v[6:14], format="%Y%m%d", errors="coerce") if ok else None)
        genders.append(("1" if int(v[16]) % 2 else "2") if ok else None)
    return births, genders


def _ids(rng: np.random.Generator, rate: float, null_rate: float = 0.1) -> list[Any]:
    valid = _valid_ids(rng, N)
    bad = [_bad_id(rng, v) for v in valid]
    u = rng.random(N)
    return [None if x < null_rate else bad[i] if x < null_rate + rate else valid[i] for i, x in enumerate(u)]


# ---------------------------------------------------------------- generated frames, one builder per type
Builder = Callable[[np.random.Generator, float], tuple[pd.DataFrame, list[Expectation]]]


def _not_null(rng: np.random.Generator, rate: float) -> tuple[pd.DataFrame, list[Expectation]]:
    def null(n: int = N) -> np.ndarray:
        return rng.random(n) < rate

    text = np.array(_choose(rng, ["x", "", " ", "张三", "nan", "None", "NULL"], N), dtype=object)
    floats = np.array(_choose(rng, [0.0, -0.0, np.inf, -np.inf, 1.5, 1e308], N))
    ints = pd.array(rng.integers(-3, 3, N), dtype="Int64")
    objs = np.array(_choose(rng, ["", 0, "x", False, 0.0, "NaN"], N), dtype=object)
    missing = np.array(_choose(rng, [None, np.nan, pd.NA, pd.NaT], N), dtype=object)
    stamps = pd.Series(pd.date_range("1949-10-01", periods=N, freq="37D")).astype("datetime64[ms]")
    m_text, m_float, m_int, m_obj, m_date, m_bool = (null() for _ in range(6))
    ints[m_int] = pd.NA
    df = pd.DataFrame(
        {
            "s": _strings(np.where(m_text, None, text).tolist()),
            "f": np.where(m_float, np.nan, floats),
            "i": ints,
            "o": pd.Series(np.where(m_obj, missing, objs), dtype=object),
            "d": stamps.mask(m_date),
            "b": pd.array(rng.integers(0, 2, N).astype(bool), dtype="boolean"),
        }
    )
    df.loc[m_bool, "b"] = pd.NA
    exps = [_exp("expect_column_values_to_not_be_null", column=c) for c in df.columns]
    exps += _mostly("expect_column_values_to_not_be_null", (1.0, 0.6, 0.95), column="s")
    exps += _mostly("expect_column_values_to_not_be_null", (1.0, 0.6, 0.25), column="o")
    return df, exps


def _in_set(rng: np.random.Generator, rate: float) -> tuple[pd.DataFrame, list[Expectation]]:
    df = pd.DataFrame(
        {
            "gender": _strings(
                _mix(rng, ["0", "1", "2", "9"], ["3", "", " 1", "１", "男", "10", "1 ", "nan"], rate)
            ),
            "code": pd.array(_mix(rng, [1, 2, 3], [0, 4, -1, 10**12], rate), dtype="Int64"),
            "obj": pd.Series(
                _mix(rng, ["a", 1, 2.0], ["1", "A", 2.5, "a "], rate, null=np.nan), dtype=object
            ),
            "f": _mix(rng, [0.5, 1.0], [0.25, np.inf, -1.0], rate, null=np.nan),
            "dirty": pd.Series(_mix(rng, ["已婚", "未婚"], ["已 婚", "離婚", "离婚"], rate), dtype=object),
        }
    )
    exps = _mostly("expect_column_values_to_be_in_set", column="gender", value_set=["0", "1", "2", "9"])
    exps += [
        _exp("expect_column_values_to_be_in_set", column="code", value_set=[1, 2, 3]),
        _exp("expect_column_values_to_be_in_set", 0.6, column="code", value_set=[1, 2, 3]),
        _exp("expect_column_values_to_be_in_set", column="obj", value_set=["a", 1, 2]),
        _exp("expect_column_values_to_be_in_set", column="f", value_set=[0.5, 1]),
        _exp("expect_column_values_to_be_in_set", column="gender", value_set=[]),
        _exp("expect_column_values_to_be_in_set", 0.6, column="dirty", value_set=["已婚", "未婚"]),
    ]
    return df, exps


def _built_suites() -> list[dict[str, Any]]:
    """The full suites of the committed contracts (schemas/shared + expectations/)."""
    from etl.validate.suites import build_suite

    root = EXPECTATIONS_DIR.parent
    contracts = get_contracts(Settings(home=root / "var", project_dir=root))
    return [
        build_suite(t, EXPECTATIONS_DIR, root / "schemas" / "reference") for t in contracts.tables.values()
    ]


REGION_REGEX = "^[1-8][0-9]{5}$"
#: the regular expressions of the committed suites, and two that region and ethnicity
#: codes were checked with before their code lists became accepted values
SUITE_REGEXES = sorted(
    {
        e["kwargs"]["regex"]
        for suite in _built_suites()
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_match_regex"
    }
    | {REGION_REGEX, "^(?:0[1-9]|[1-4][0-9]|5[0-6]|97|98)$"}
)
assert "^[12][0-9]{3}$" in SUITE_REGEXES  # economic_indicator.period, from the YAML


def _match_regex(rng: np.random.Generator, rate: float) -> tuple[pd.DataFrame, list[Expectation]]:
    # No value holds a newline and no pattern uses \d \w \s \b: see the tests at the end.
    df = pd.DataFrame(
        {
            "region": _strings(
                _mix(
                    rng,
                    ["110105", "310101", "810000", "650102"],
                    # 7 digits, prefixes, spaces and full-width digits match only unanchored
                    [
                        "010105",
                        "910105",
                        "11010",
                        "1101050",
                        "x110105",
                        "１１０１０５",
                        "北京110105",
                        "110105 ",
                        "",
                    ],
                    rate,
                )
            ),
            "phone": _strings(
                _mix(
                    rng,
                    ["13812345678", "010-12345678", "0571-87654321"],
                    ["138123456789", "12812345678", "+8613812345678", "电话13812345678", "0571-8765432"],
                    rate,
                )
            ),
            "code": _strings(
                _mix(
                    rng,
                    ["01", "09", "10", "49", "56", "97", "98", "2019"],
                    ["00", "57", "1", "٠١", "汉族", "0１"],
                    rate,
                )
            ),
            "name": pd.Series(
                _mix(
                    rng,
                    ["张三", "阿依古丽·买买提", "北京ABC科技有限公司", "李四"],
                    ["John Smith", "王五", "Ｊｏｈｎ", "é", "e\u0301", "𠀀"],
                    rate,
                ),
                dtype=object,
            ),
        }
    )
    exps = [
        _exp("expect_column_values_to_match_regex", column=c, regex=rx) for rx in SUITE_REGEXES for c in df
    ]
    exps += _mostly("expect_column_values_to_match_regex", (1.0, 0.6), column="region", regex=REGION_REGEX)
    exps += [
        _exp("expect_column_values_to_match_regex", column=c, regex=rx)
        for c, rx in [
            ("region", "[1-8][0-9]{5}"),  # searched, not anchored
            ("region", "^[1-8]"),
            ("region", "[0-9]{5}$"),
            ("phone", "1[3-9][0-9]{9}"),
            ("code", "[0-9]"),
            ("code", "族"),
            ("name", "有限公司$"),
            ("name", "^[张李]"),
            ("name", "·"),
            ("name", "(?i)^john"),
            ("name", "^[一-龥]+$"),
            ("name", "^[^A-Za-z]*$"),
            ("name", "^.$"),
        ]
    ]
    return df, exps


def _between(rng: np.random.Generator, rate: float) -> tuple[pd.DataFrame, list[Expectation]]:
    good = [0.0, -0.0, 1.0, 5000.5, 999_999.99, 1_000_000.0, 1e-300]
    bad = [-0.01, -1e-300, 1_000_000.01, np.inf, -np.inf, 2e6]
    df = pd.DataFrame(
        {
            "wage": _mix(rng, good, bad, rate, null=np.nan),
            "nullable": pd.array(_mix(rng, good[:-1], bad[:2], rate), dtype="Float64"),
            "cap": pd.array(_mix(rng, [1, 2, 500, 999, 1000], [0, -1, 1001, 10**12], rate), dtype="Int64"),
            "k": rng.integers(-5, 15, N),
        }
    )
    b = "expect_column_values_to_be_between"
    exps = [
        _exp(b, column="wage", min_value=0),
        _exp(b, column="wage", max_value=1_000_000),
        _exp(b, column="wage", min_value=0, max_value=1_000_000),
        _exp(b, column="wage", min_value=0, strict_min=True),
        _exp(b, column="wage", max_value=1_000_000, strict_max=True),
        _exp(b, column="wage", min_value=0, max_value=1_000_000, strict_min=True, strict_max=True),
        _exp(b, column="wage", min_value=0, max_value=1_000_000, strict_min=False, strict_max=True),
        _exp(b, column="wage", min_value=0, max_value=1_000_000, strict_min=True, strict_max=False),
        _exp(b, column="nullable", min_value=0, max_value=1_000_000),
        _exp(b, column="cap", min_value=1, max_value=1000),
        _exp(b, column="cap", min_value=1, max_value=1000, strict_min=True, strict_max=True),
        _exp(b, column="cap", min_value=0.5),
        _exp(b, column="cap", max_value=999.5, strict_max=True),
        _exp(b, column="k", min_value=0, max_value=9),
        _exp(b, column="k", min_value=0, max_value=9, strict_max=True),
        _exp(b, column="k", min_value=0, max_value=0),
    ]
    exps += _mostly(b, (1.0, 0.6), column="wage", min_value=0, max_value=1_000_000)
    exps += _mostly(b, (0.6,), column="cap", min_value=1, max_value=1000)
    return df, exps


def _compound_unique(rng: np.random.Generator, rate: float) -> tuple[pd.DataFrame, list[Expectation]]:
    key = np.where(rng.random(N) < rate, rng.integers(N, size=N), np.arange(N))  # copies of other rows' keys
    k1 = pd.Series(_strings([f"R{k // 7}" for k in key]))
    k2 = pd.Series(pd.array(key % 7, dtype="Int64"))
    k3 = pd.Series((key % 3) * 0.5)
    some = rng.random((N, 3)) < 0.12  # some key values missing
    every = rng.random(N) < 0.06  # all of them
    k1 = k1.mask(some[:, 0] | every)
    k2 = k2.mask(some[:, 1] | every)
    k3 = k3.mask(some[:, 2] | every)
    df = pd.DataFrame({"k1": k1, "k2": k2, "k3": k3, "k4": _strings(_choose(rng, ["a", "b", None], N))})
    u = "expect_compound_columns_to_be_unique"
    exps = [
        _exp(u, column_list=["k1", "k2"]),
        _exp(u, column_list=["k1", "k2", "k3"]),
        _exp(u, column_list=["k2", "k3"]),
        _exp(u, column_list=["k1", "k4"]),
        _exp(u, column_list=["k1", "k2"], ignore_row_if="all_values_are_missing"),
        _exp(u, column_list=["k1", "k2"], ignore_row_if="any_value_is_missing"),
        _exp(u, column_list=["k1", "k2", "k3"], ignore_row_if="any_value_is_missing"),
        _exp(u, column_list=["k1", "k2"], ignore_row_if="never"),
    ]
    exps += _mostly(u, (1.0, 0.6, 0.9), column_list=["k1", "k2"])
    return df, exps


def _unique_values(rng: np.random.Generator, rate: float) -> tuple[pd.DataFrame, list[Expectation]]:
    """One-column keys (a table's single key column): copies of other rows' values at
    `rate`, nulls (never duplicates of each other), look-alikes that are distinct values."""
    key = np.where(rng.random(N) < rate, rng.integers(N, size=N), np.arange(N))
    ids = _valid_ids(rng, N)
    text = [ids[k] for k in key]
    # distinct look-alikes: a lower-case x, a trailing space, full-width digits
    alike = rng.random(N) < 0.05
    text = [
        (v.lower() + " " if v.endswith("X") else v.translate(FULLWIDTH)) if a else v
        for v, a in zip(text, alike, strict=True)
    ]
    nulls = rng.random(N) < 0.1
    df = pd.DataFrame(
        {
            "resident_id": _strings([None if z else v for v, z in zip(text, nulls, strict=True)]),
            "period": pd.Series(pd.array(np.where(nulls, -1, key % 97), dtype="Int64")).mask(nulls),
            "code": pd.Series(
                [None if z else f"C{k}" for k, z in zip(key, nulls, strict=True)], dtype=object
            ),
        }
    )
    u = "expect_column_values_to_be_unique"
    exps = _mostly(u, column="resident_id") + _mostly(u, (None, 0.9), column="period")
    exps += _mostly(u, (None,), column="code")
    return df, exps


def _valid_resident_id(rng: np.random.Generator, rate: float) -> tuple[pd.DataFrame, list[Expectation]]:
    df = pd.DataFrame(
        {
            "resident_id": _strings(_ids(rng, rate)),
            "legal_rep_id": pd.Series(_ids(rng, rate), dtype=object),
        }
    )
    t = "expect_column_values_to_be_valid_resident_id"
    return df, _mostly(t, column="resident_id") + _mostly(t, (None, 0.6), column="legal_rep_id")


def _valid_credit_code(rng: np.random.Generator, rate: float) -> tuple[pd.DataFrame, list[Expectation]]:
    def codes() -> list[Any]:
        valid = _valid_codes(rng, N)
        bad = [_bad_code(rng, v) for v in valid]
        u = rng.random(N)
        return [None if x < 0.1 else bad[i] if x < 0.1 + rate else valid[i] for i, x in enumerate(u)]

    df = pd.DataFrame(
        {"credit_code": _strings(codes()), "employer_credit_code": pd.Series(codes(), dtype=object)}
    )
    t = "expect_column_values_to_be_valid_credit_code"
    return df, _mostly(t, column="credit_code") + _mostly(t, (None, 0.6), column="employer_credit_code")


def _agree_birth(rng: np.random.Generator, rate: float) -> tuple[pd.DataFrame, list[Expectation]]:
    ids = _ids(rng, 0.3)
    encoded, _ = _id_parts(ids)
    fallback = pd.Timestamp("1980-06-15")
    shift = _choose(
        rng, [pd.Timedelta(days=1), pd.Timedelta(days=-1), pd.Timedelta(days=366), pd.Timedelta(0)], N
    )
    births = []
    for enc, u, d, t in zip(encoded, rng.random(N), shift, rng.random(N), strict=True):
        base = fallback if enc is None or pd.isna(enc) else enc
        if u < 0.1:
            births.append(None)
        elif u < 0.1 + rate:
            births.append(base + d)  # mostly wrong by a day or a year
        else:
            births.append(base + (pd.Timedelta(hours=8, minutes=30) if t < 0.2 else pd.Timedelta(0)))
    stamps = [np.datetime64("NaT", "ms") if b is None else b.as_unit("ms").to_datetime64() for b in births]
    df = pd.DataFrame({"resident_id": _strings(ids), "birth_date": np.array(stamps, dtype="datetime64[ms]")})
    # the same dates at ns resolution (1677-2262 only: corrupted IDs may encode the 1500s or 8914)
    df["birth_ns"] = (
        df["birth_date"].where(df["birth_date"].dt.year.between(1700, 2200)).astype("datetime64[ns]")
    )
    return df, _agreement_variants("expect_resident_id_to_agree_with_birth_date", "birth_date", "birth_ns")


def _agreement_variants(t: str, column: str, other_typed: str) -> list[Expectation]:
    """An ID agreement expectation with `mostly` values, every ignore_row_if, and on the
    same values in another dtype."""
    cols = ["resident_id", column]
    exps = _mostly(t, column_list=cols)
    exps += [
        _exp(t, column_list=cols, ignore_row_if=i)
        for i in ("any_value_is_missing", "all_values_are_missing", "never")
    ]
    exps += [_exp(t, 0.6, column_list=cols, ignore_row_if="never")]
    exps += [_exp(t, column_list=["resident_id", other_typed])]
    return exps


def _agree_gender(rng: np.random.Generator, rate: float) -> tuple[pd.DataFrame, list[Expectation]]:
    ids = _ids(rng, 0.3)
    _, encoded = _id_parts(ids)
    genders = []
    for enc, u, other in zip(
        encoded, rng.random(N), _choose(rng, ["0", "9", "x", "3", "", "1", "2"], N), strict=True
    ):
        if u < 0.1:
            genders.append(None)
        elif u < 0.1 + rate:
            genders.append({"1": "2", "2": "1"}.get(enc, other) if enc else other)
        else:
            genders.append(enc if enc and u < 0.9 else other)
    df = pd.DataFrame({"resident_id": _strings(ids), "gender": _strings(genders)})
    df["gender_int"] = pd.array(
        [int(g) if g in ("0", "1", "2", "9") else None for g in genders], dtype="Int64"
    )
    return df, _agreement_variants("expect_resident_id_to_agree_with_gender", "gender", "gender_int")


BUILDERS: dict[str, Builder] = {
    "expect_column_values_to_not_be_null": _not_null,
    "expect_column_values_to_be_in_set": _in_set,
    "expect_column_values_to_match_regex": _match_regex,
    "expect_column_values_to_be_between": _between,
    "expect_compound_columns_to_be_unique": _compound_unique,
    "expect_column_values_to_be_unique": _unique_values,
    "expect_column_values_to_be_valid_resident_id": _valid_resident_id,
    "expect_column_values_to_be_valid_credit_code": _valid_credit_code,
    "expect_resident_id_to_agree_with_birth_date": _agree_birth,
    "expect_resident_id_to_agree_with_gender": _agree_gender,
}


def test_every_compiled_expectation_type_is_checked() -> None:
    assert set(BUILDERS) == set(compiled.EVALUATORS)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("etype", sorted(BUILDERS))
def test_engines_agree_on_generated_frames(etype: str, rate: float) -> None:
    rng = np.random.default_rng([20261101, sorted(BUILDERS).index(etype), round(rate * 100)])
    df, exps = BUILDERS[etype](rng, rate)
    assert all(e["type"] == etype and compiled.supports(e) for e in exps)
    counts = _assert_agree(df, exps)
    assert any(counts), "the frame should hold unexpected values"


@pytest.mark.parametrize("bad", range(2, 9))
def test_mostly_boundaries(bad: int) -> None:
    """10 judged values (plus 2 missing), `bad` of them unexpected, against `mostly`
    values at and near the boundary (0.6 holds for bad <= 4, 0.7 for bad <= 3)."""
    ids = _valid_ids(np.random.default_rng(bad), 10)
    _, genders = _id_parts(ids)
    wrong = {"1": "2", "2": "1"}
    df = pd.DataFrame(
        {
            "g": _strings(["1"] * (10 - bad) + ["x"] * bad + [None, None]),
            "r": _strings(["110105"] * (10 - bad) + ["x110105"] * bad + [None, None]),
            "v": [1.0] * (10 - bad) + [-1.0] * bad + [np.nan, np.nan],
            "n": _strings(["a"] * (10 - bad) + [None] * (bad + 2)),
            "k1": _strings([f"k{i}" for i in range(10 - bad)] + ["d"] * bad + [None, None]),
            "k2": _strings(["z"] * 10 + [None, None]),
            "id": _strings([*ids, None, None]),
            "gender": _strings([g if i >= bad else wrong[g] for i, g in enumerate(genders)] + ["1", "2"]),
        }
    )
    exps = []
    for m in (0.6, 0.7, 0.3, 0.1 + 0.2, 0.8, 1 / 3, 2 / 3, 0.0):
        exps += [
            _exp("expect_column_values_to_be_in_set", m, column="g", value_set=["1"]),
            _exp("expect_column_values_to_match_regex", m, column="r", regex="^[1-8][0-9]{5}$"),
            _exp("expect_column_values_to_be_between", m, column="v", min_value=0),
            _exp("expect_column_values_to_not_be_null", m, column="n"),
            _exp("expect_compound_columns_to_be_unique", m, column_list=["k1", "k2"]),
            _exp("expect_resident_id_to_agree_with_gender", m, column_list=["id", "gender"]),
        ]
    _assert_agree(df, exps)


def test_all_values_missing_is_vacuously_true_in_both() -> None:
    df = pd.DataFrame(
        {
            "a": _strings([None] * 5),
            "b": pd.array([None] * 5, dtype="Int64"),
            "d": pd.Series([None] * 5, dtype="datetime64[ms]"),
            "g": _strings([None] * 5),
        }
    )
    exps = [
        _exp("expect_column_values_to_be_in_set", column="a", value_set=["x"]),
        _exp("expect_column_values_to_match_regex", column="a", regex="^x$"),
        _exp("expect_column_values_to_be_between", column="b", min_value=0),
        _exp("expect_compound_columns_to_be_unique", column_list=["a", "b"]),
        _exp("expect_column_values_to_be_valid_resident_id", column="a"),
        _exp("expect_column_values_to_be_valid_credit_code", column="a"),
        _exp("expect_resident_id_to_agree_with_birth_date", column_list=["a", "d"]),
        _exp("expect_resident_id_to_agree_with_gender", column_list=["a", "g"]),
        _exp("expect_column_values_to_not_be_null", column="a"),
        _exp("expect_column_values_to_not_be_null", 0.0, column="a"),
    ]
    _assert_agree(df, exps)


# ---------------------------------------------------------------- (c) what the compiled engine does not evaluate
def _person_rows() -> pd.DataFrame:
    ids = ["11010519491231002X", "1101051949123100", "11010519491231002X", None]
    df = pd.DataFrame(
        {
            "resident_id": _strings(ids),
            "name": _strings(["张三", "李四", "王5", "赵六"]),
            "gender": _strings(["2", "2", "2", "1"]),
            "birth_date": pd.to_datetime(["1949-12-31", "1949-12-31", "1949-12-31", "1980-01-01"]).astype(
                "datetime64[ms]"
            ),
            "ethnicity": _strings(["01", "01", "01", "01"]),
            "household_region": _strings(["110105"] * 4),
            "address": _strings([None] * 4),
            "phone": _strings([None] * 4),
            "marital_status": _strings(["10", "20", "99", "20"]),
            "alive": pd.array([True] * 4, dtype="boolean"),
            "death_date": pd.Series([None] * 4, dtype="datetime64[ms]"),
            "record_key": _strings(["HJ01", "HJ02", "HJ03", "HJ04"]),
        }
    )
    df["_batch_id"] = "b1"
    df["_row_number"] = pd.array(range(1, 5), dtype="Int64")
    return df


UNSUPPORTED = [
    {
        "type": "expect_column_value_lengths_to_equal",
        "kwargs": {"column": "resident_id", "value": 18},
        "meta": {"level": "row", "reason": "resident_id_format"},
    },
    {
        "type": "expect_column_values_to_not_match_regex",
        "kwargs": {"column": "name", "regex": "[0-9]"},
        "meta": {"level": "row", "reason": "invalid_name"},
    },
    {  # a supported type with a keyword the compiled engine does not know
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {
            "column": "marital_status",
            "value_set": ["10", "20"],
            "row_condition": 'gender=="2"',
            "condition_parser": "pandas",
        },
        "meta": {"level": "row", "reason": "invalid_code"},
    },
]


def test_unsupported_expectations_fall_back_to_ge(contracts: Contracts, settings: Settings) -> None:
    """The compiled engine evaluates what it supports and hands the rest to GE: in the
    suite result, its own results carry meta.engine = govbase-compiled, GE's do not."""
    assert not any(compiled.supports(e) for e in UNSUPPORTED)

    def evaluated_by_ge(summary: dict[str, Any]) -> list[str]:
        return [
            r["expectation_config"]["type"]
            for r in summary["results"]
            if (r.get("meta") or {}).get("engine") != "govbase-compiled"
        ]

    results = {}
    for engine in ENGINES:
        runner = _hukou_runner(contracts, settings, engine)
        runner.row_expectations = runner.row_expectations + UNSUPPORTED
        failures, summary = runner.validate_rows(_person_rows())
        results[engine] = set(
            zip(failures["position"], failures["reason"], failures["expectation"], strict=True)
        )
        assert summary["statistics"]["evaluated_expectations"] == len(runner.row_expectations)
        assert summary["success"] is False
        sent_to_ge = evaluated_by_ge(summary)
        if engine == "compiled":
            assert sent_to_ge == [e["type"] for e in UNSUPPORTED]
        else:
            assert len(sent_to_ge) == len(runner.row_expectations)
    assert results["compiled"] == results["ge"]
    assert {
        (1, "resident_id_format", "expect_column_value_lengths_to_equal"),
        (2, "invalid_name", "expect_column_values_to_not_match_regex"),
        (1, "resident_id_checksum", "expect_column_values_to_be_valid_resident_id"),
    } <= results["compiled"]
    in_set = {f for f in results["compiled"] if f[2] == "expect_column_values_to_be_in_set"}
    assert in_set == {
        (2, "invalid_code", "expect_column_values_to_be_in_set")
    }  # row 3: gender 1, not checked


# ---------------------------------------------------------------- known disagreements
# GE's regex check is pandas `Series.astype(str).str.contains(regex)`. For patterns whose
# meaning differs between Python's `re` and RE2 (`$`, \d \w \b \s, lookarounds, \u escapes)
# pandas runs Python's `re`; compiled._regex always runs RE2 (pc.match_substring_regex).


def test_regex_end_anchor_before_a_trailing_newline() -> None:
    df = pd.DataFrame({"household_region": _strings(["110105", "110105\n", "1101051\n", None])})
    # GE: unexpected {2}; compiled: unexpected {1, 2}
    _assert_agree(
        df, [_exp("expect_column_values_to_match_regex", column="household_region", regex=REGION_REGEX)]
    )


@pytest.mark.parametrize(
    ("regex", "values"),
    [
        (r"^\d{6}$", ["110105", "１１０１０５", "١١٠١٠٥"]),  # GE: none unexpected; compiled: {1, 2}
        (r"^\w+$", ["abc", "汉字"]),  # GE: none; compiled: {1}
        (r"a\sb", ["a b", "a\u3000b", "a\x0bb"]),  # GE: none; compiled: {1, 2}
    ],
)
def test_regex_unicode_character_classes(regex: str, values: list[str]) -> None:
    """RE2's \\d \\w \\s are ASCII-only, Python's Unicode-aware: such patterns are left to GE."""
    exp = _exp("expect_column_values_to_match_regex", column="v", regex=regex)
    assert not compiled.supports(exp)
    df = pd.DataFrame({"v": _strings(values)})
    ge = _ge(df, [exp])[0]
    assert _positions(ge.result.get("unexpected_index_list")) == set()  # GE: all match


def _hukou_runner(contracts: Contracts, settings: Settings, engine: str) -> SuiteRunner:
    """The person suite's runner for ps_hukou, with `engine`."""
    return SuiteRunner(
        settings.expectations_dir, contracts.tables["person"], contracts.sources["ps_hukou"], engine=engine
    )


def _failing_rows_by_engine(
    df: pd.DataFrame, expectations: list[Expectation], contracts: Contracts, settings: Settings
) -> dict[str, set[tuple[int, str]]]:
    """Per engine, the (position, reason) pairs `expectations` fail on `df` (person suite runner)."""
    got = {}
    for engine in ENGINES:
        runner = _hukou_runner(contracts, settings, engine)
        failures, _ = runner.validate_rows(df, expectations)
        got[engine] = set(zip(failures["position"], failures["reason"], strict=True))
    return got


@pytest.mark.parametrize("regex", [r"^(?!000)[0-9]{6}$", r"^[\u4e00-\u9fff]+$"])
def test_regex_python_only_syntax(regex: str, contracts: Contracts, settings: Settings) -> None:
    exp = {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "name", "regex": regex}}
    exp["meta"] = {"level": "row", "reason": "invalid_name"}
    df = _person_rows()
    df["name"] = _strings(["000123", "张三", "Zhang", None])
    got = _failing_rows_by_engine(df, [exp], contracts, settings)
    assert got["compiled"] == got["ge"]


def test_birth_date_as_text_with_skipped_rows() -> None:
    # row 0 is skipped (no ID). GE parses "12/30/1949" as month/day/year and flags row 1
    # (the ID says 1949-12-31); compiled infers %Y-%m-%d from row 0, reads NaT: nothing flagged.
    df = pd.DataFrame(
        {
            "resident_id": _strings([None, "11010519491231002X", "11010519491231002X"]),
            "birth_date": pd.Series(["1950-01-01", "12/30/1949", "12/31/1949"], dtype=object),
        }
    )
    _assert_agree(
        df, [_exp("expect_resident_id_to_agree_with_birth_date", column_list=["resident_id", "birth_date"])]
    )


# runner.gx_suite builds the GE suite with ExpectationSuite.add_expectation_configuration,
# whose default match_type="domain" treats two expectations of the same type on the same
# column as one and keeps the last: engine="ge" evaluates only that one, compiled all.
SAME_DOMAIN = (
    "runner.gx_suite adds expectations with GE's default match_type='domain': a later expectation of "
    "the same type on the same column replaces an earlier one, so engine='ge' drops it; compiled keeps it"
)


def test_two_expectations_of_one_type_on_one_column(contracts: Contracts, settings: Settings) -> None:
    phone = next(
        e
        for e in SuiteRunner(
            settings.expectations_dir, contracts.tables["person"], contracts.sources["ps_hukou"]
        ).row_expectations
        if e["kwargs"].get("column") == "phone"
    )
    mobile_only = {
        "type": "expect_column_values_to_match_regex",
        "kwargs": {"column": "phone", "regex": "^1"},
        "meta": {"level": "row", "reason": "invalid_phone"},
    }
    df = _person_rows()
    df["phone"] = _strings(["13812345678", "010-12345678", "12345", None])
    got = _failing_rows_by_engine(df, [phone, mobile_only], contracts, settings)
    # compiled: {(1, invalid_phone), (2, invalid_phone)}; GE: {(1, invalid_phone)} (row 2 fails only the first)
    assert got["compiled"] == got["ge"]


def test_batch_null_rates_of_suite_and_source_on_one_column(contracts: Contracts, settings: Settings) -> None:
    """ps_hukou as committed: the person suite allows 5% null names, the source's
    max_null_rate 1%. With 10% null names compiled reports both, GE only the 1% one."""
    verdicts = {
        engine: _hukou_runner(contracts, settings, engine).validate_batch(
            {"name": 10, "resident_id": 0}, 100, source_rows=100, previous_rows=None
        )
        for engine in ENGINES
    }
    assert verdicts["compiled"].success == verdicts["ge"].success  # both fail the batch
    assert verdicts["compiled"].failures == verdicts["ge"].failures
