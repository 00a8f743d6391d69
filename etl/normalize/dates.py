"""Dates as departments deliver them, to datetime64[ms] (midnight; time parts dropped).

Accepted (after NFKC, so full-width digits and separators work):
- year-month-day with any of the separators - / . 年月日: 1985-03-02, 1985/3/2,
  1985.03.02, 1985-3-2, 1985年3月2日, optionally followed by a time of day
  ("2020-01-01 00:00:00", "2020-01-01T08:30:00Z"), which is dropped;
- compact 19850302;
- Excel serial numbers (an integer or decimal of at most 7 digits; the fraction
  is the time of day and dropped). 1900 system (`date`): serial 1 = 1900-01-01,
  serial 60 is Excel's fictitious 1900-02-29 and is `invalid_date`, serial 61 =
  1900-03-01. 1904 system (`date_1904`): serial 0 = 1904-01-01. A bare number is
  always read as a serial, never as a year.

Reasons: invalid_date (no accepted format, or a date that does not exist such as
1985-02-30 or month 13), date_out_of_range (after today, or before 1880-01-01).
Day-first and two-digit-year forms are deliberately not guessed: invalid_date.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etl.normalize._common import Result, basic_clean, empty_to_null, reasons_series, to_arrow

MIN_DATE = pd.Timestamp("1880-01-01")
_TIME = r"(?:[ T][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
_YMD = r"^(?P<y>[0-9]{4})\s*[-/.年]\s*(?P<m>[0-9]{1,2})\s*[-/.月]\s*(?P<d>[0-9]{1,2})\s*日?" + _TIME + "$"
_COMPACT = r"^(?P<y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})" + _TIME + "$"
_SERIAL = r"^(?P<n>[0-9]{1,7})(?:\.[0-9]+)?$"

_EPOCH_1900 = np.datetime64("1899-12-30", "D")  # serial 61 and later (after the fake 29 Feb)
_EPOCH_1900_EARLY = np.datetime64("1899-12-31", "D")  # serials 1..59
_EPOCH_1904 = np.datetime64("1904-01-01", "D")


def _extract(arr: pa.Array, pattern: str, fields: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
    st = pc.extract_regex(arr, pattern=pattern)
    matched = pc.fill_null(pc.is_valid(st), False).to_numpy(zero_copy_only=False)
    cols = []
    for f in fields:
        child = pc.struct_field(st, f)
        nums = pc.cast(pc.if_else(matched, child, pa.scalar(None, pa.string())), pa.int64())
        cols.append(pc.fill_null(nums, 0).to_numpy(zero_copy_only=False))
    return matched, cols


_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _ymd_to_dates(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """datetime64[D] array and an 'exists' mask for integer year/month/day arrays.

    Integer arithmetic only (days from the civil date, H. Hinnant's algorithm), so
    a million dates cost milliseconds, not calendar-unit conversions.
    """
    y = np.asarray(y, dtype=np.int64)
    m = np.asarray(m, dtype=np.int64)
    d = np.asarray(d, dtype=np.int64)
    month_ok = (m >= 1) & (m <= 12)
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    dim = _DAYS_IN_MONTH[np.where(month_ok, m, 0)] + ((m == 2) & leap)
    ok = (y >= 1) & (y <= 9999) & month_ok & (d >= 1) & (d <= dim)
    yy = np.where(ok, y, 2000) - (np.where(ok, m, 1) <= 2)
    mm = np.where(ok, m, 1)
    dd = np.where(ok, d, 1)
    era = np.floor_divide(yy, 400)
    yoe = yy - era * 400
    doy = (153 * (mm + np.where(mm > 2, -3, 9)) + 2) // 5 + dd - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    return days.astype("datetime64[D]"), ok


def _parse(values: pd.Series, system: int, today: dt.date | None) -> Result:
    index = values.index
    n = len(values)
    arr = empty_to_null(basic_clean(to_arrow(values), remove_spaces=False))
    notnull = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    dates = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    found = np.zeros(n, dtype=bool)
    exists = np.zeros(n, dtype=bool)

    for pattern in (_YMD, _COMPACT):
        matched, (y, m, d) = _extract(arr, pattern, ["y", "m", "d"])
        take = matched & ~found
        if take.any():
            dd, ok = _ymd_to_dates(y[take], m[take], d[take])
            dates[take] = np.where(ok, dd, np.datetime64("NaT"))
            exists[take] = ok
            found |= take

    matched, (serial,) = _extract(arr, _SERIAL, ["n"])
    take = matched & ~found
    if take.any():
        s = serial[take]
        if system == 1900:
            ok = (s >= 1) & (s != 60)
            d = np.where(
                s < 60,
                _EPOCH_1900_EARLY + s.astype("timedelta64[D]"),
                _EPOCH_1900 + s.astype("timedelta64[D]"),
            )
        else:
            ok = s >= 0
            d = _EPOCH_1904 + s.astype("timedelta64[D]")
        ok &= s <= 2_958_465  # 9999-12-31
        dates[take] = np.where(ok, d, np.datetime64("NaT"))
        exists[take] = ok
        found |= take

    upper = np.datetime64(today or dt.date.today(), "D")
    in_range = (dates >= np.datetime64(MIN_DATE.date(), "D")) & (dates <= upper)
    reasons = np.full(n, None, dtype=object)
    reasons[notnull & ~exists] = "invalid_date"
    bad_range = notnull & exists & ~in_range
    reasons[bad_range] = "date_out_of_range"
    dates[~exists | bad_range] = np.datetime64("NaT")
    return pd.Series(dates.astype("datetime64[ms]"), index=index), reasons_series(reasons, index)


def date(values: pd.Series, today: dt.date | None = None) -> Result:
    """Dates in every delivered format (module docstring); bare numbers are Excel 1900-system serials."""
    return _parse(values, 1900, today)


def date_1904(values: pd.Series, today: dt.date | None = None) -> Result:
    """As `date`, but bare numbers are Excel 1904-system serials (serial 0 = 1904-01-01)."""
    return _parse(values, 1904, today)
