"""Numbers: amounts in CNY with Chinese units, integers and decimals.

amount_cny: after NFKC (full-width digits) and removing thousands separators
and blanks, an optional currency mark (人民币, RMB, CNY, ¥, ￥), a number, an
optional multiplier (千 1e3, 万 1e4, 百万 1e6, 千万 1e7, 亿 1e8, 万亿 1e12) and an
optional 元/圆: "100万元" -> 1000000.0, "1.5亿" -> 150000000.0, "5,000.00" -> 5000.0.
Other currencies (万美元) or words -> invalid_amount.

decimal: a plain number (thousands separators, blanks and full width allowed,
scientific notation accepted) -> float64; integer: the same but it must be
whole ("12.0" is 12) -> Int64. Otherwise invalid_number. A number beyond
float64's range ("1e400", which would read as infinity) is invalid_number
(invalid_amount) too: no staged figure is ever infinite.

Decimals and amounts are float64 in staging (documented choice: exact to 15
significant digits, i.e. to the fen for amounts below 1e13 CNY, which covers
every registered capital; DuckDB can cast to DECIMAL on load if required).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etl.normalize._common import Result, basic_clean, empty_to_null, flagged, reasons_series, to_arrow

_UNITS = {"": 1.0, "千": 1e3, "万": 1e4, "百万": 1e6, "千万": 1e7, "亿": 1e8, "万亿": 1e12}
_AMOUNT = (
    r"^(?:人民币|RMB|CNY|¥|￥)?(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<unit>万亿|百万|千万|千|万|亿)?(?:元|圆)?(?:人民币)?$"
)
_NUMBER = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"


def _prepare(values: pd.Series) -> pa.Array:
    arr = basic_clean(to_arrow(values), remove_spaces=True)
    return empty_to_null(pc.replace_substring(arr, ",", ""))


def amount_cny(values: pd.Series) -> Result:
    """Amounts with optional 千/万/亿 units -> float64 CNY; else invalid_amount."""
    arr = _prepare(values)
    notnull = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    st = pc.extract_regex(pc.utf8_upper(arr), pattern=_AMOUNT)
    hit = pc.fill_null(pc.is_valid(st), False).to_numpy(zero_copy_only=False)
    if not len(arr):
        return pd.Series([], index=values.index, dtype="float64"), reasons_series(
            np.array([], object), values.index
        )
    num = pc.fill_null(pc.cast(pc.struct_field(st, "num"), pa.float64()), np.nan).to_numpy(
        zero_copy_only=False
    )
    unit = pc.struct_field(st, "unit")
    factor = np.ones(len(arr))
    for u, f in _UNITS.items():
        if u:
            factor[pc.fill_null(pc.equal(unit, u), False).to_numpy(zero_copy_only=False)] = f
    hit &= np.isfinite(num * factor)
    out = np.where(hit, num * factor, np.nan)
    return pd.Series(out, index=values.index, dtype="float64"), flagged(
        notnull & ~hit, "invalid_amount", values.index
    )


def _numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arr = _prepare(values)
    notnull = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    ok = pc.fill_null(pc.match_substring_regex(arr, _NUMBER), False).to_numpy(zero_copy_only=False)
    clean = pc.if_else(ok, arr, pa.scalar(None, pa.string()))
    num = pc.fill_null(pc.cast(clean, pa.float64()), np.nan).to_numpy(zero_copy_only=False)
    ok &= np.isfinite(num)  # "1e400" matches the pattern but overflows to infinity
    return num, notnull, ok


def decimal(values: pd.Series) -> Result:
    """Plain numbers -> float64; else invalid_number."""
    num, notnull, ok = _numbers(values)
    num = np.where(ok, num, np.nan)
    return pd.Series(num, index=values.index, dtype="float64"), flagged(
        notnull & ~ok, "invalid_number", values.index
    )


def integer(values: pd.Series) -> Result:
    """Whole numbers -> Int64; else invalid_number."""
    num, notnull, ok = _numbers(values)
    whole = ok & np.isfinite(num) & (np.floor(num) == num) & (np.abs(num) < 2**63)
    out = pd.array(np.where(whole, num, 0).astype(np.int64), dtype="Int64")
    out[~whole] = pd.NA
    return pd.Series(out, index=values.index), flagged(notnull & ~whole, "invalid_number", values.index)
