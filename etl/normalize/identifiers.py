"""National identifiers: resident ID number (GB 11643-1999) and unified social
credit code (GB 32100-2015), vectorized.

Both transforms share one cleanup: NFKC (full-width ０-９, Ｘ, Ａ-Ｚ to
half width), every whitespace and zero-width character removed (U+200B-U+200D,
U+2060, U+FEFF, U+00A0, U+3000), upper case. The checks run on a uint8 matrix
of characters (one row per value), so 1M values take well under a second.

python-stdnum (stdnum.cn.ric / stdnum.cn.uscc) is the test oracle; the
intended differences are:
- resident_id removes inner spaces / zero-width characters (stdnum keeps them and
  fails), converts old 15-digit numbers to 18 (stdnum: invalid length), and does
  NOT check the 6-digit address code against a division table: the code in an ID
  is the birth-place code when the number was issued, often since abolished;
  stdnum checks it against its own historical table. A birth date after today or
  before 1880 is `date_out_of_range` here (stdnum only checks that it exists).
- credit_code also removes dashes (as stdnum does); like stdnum it requires the
  first 8 characters (authority, entity type, region) to be digits.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etl.normalize._common import (
    Result,
    basic_clean,
    coded_reasons,
    empty_to_null,
    from_arrow,
    reasons_series,
    to_arrow,
)

RIC_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int32)
RIC_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int32)
_USCC_INDEX = np.full(256, -1, dtype=np.int16)
_USCC_INDEX[np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)] = np.arange(31)
_USCC_CHARS = np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)

_ZERO, _NINE, _X = ord("0"), ord("9"), ord("X")
#: an 18-digit number Excel rendered in scientific notation (1.10105194912310E+17)
_SCIENTIFIC = r"^[0-9](\.[0-9]+)?E\+?[0-9]{1,2}$"
_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
MIN_YEAR = 1880


# ---------------------------------------------------------------- matrix helpers
def _char_matrix(arr: pa.Array, width: int) -> np.ndarray:
    """uint8 matrix (len(arr), width) of an Arrow string array whose values are all
    exactly `width` ASCII characters and not null."""
    if len(arr) == 0:
        return np.zeros((0, width), dtype=np.uint8)
    arr = arr.cast(pa.string())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
    start = int(offsets[0])
    if int(offsets[-1]) - start != len(arr) * width:
        raise ValueError("values are not all of the expected width")
    return data[start : start + len(arr) * width].reshape(-1, width)


def _strings(mat: np.ndarray) -> pa.Array:
    """Arrow string array from a uint8 matrix of ASCII characters."""
    n, width = mat.shape
    offsets = (np.arange(n + 1, dtype=np.int32) * width).astype(np.int32)
    data = np.ascontiguousarray(mat, dtype=np.uint8)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _scatter(n: int, positions: np.ndarray, values: pa.Array) -> pa.Array:
    """A length-n string array holding `values` at `positions`, null elsewhere."""
    take = np.full(n, len(values), dtype=np.int64)
    take[positions] = np.arange(len(values))
    return pc.take(pa.concat_arrays([values, pa.array([None], pa.string())]), pa.array(take))


def _today_int(today: dt.date | None) -> int:
    t = today or dt.date.today()
    return t.year * 10000 + t.month * 100 + t.day


#: place values of the 8 digits of YYYYMMDD
_YMD_WEIGHTS = (10 ** np.arange(7, -1, -1)).astype(np.int32)


def _all_digits(chars: np.ndarray) -> np.ndarray:
    """Rows of a uint8 character matrix made of ASCII digits only. Column by column:
    numpy's .all(axis=1) over such a short axis costs about three times as much."""
    ok = np.ones(len(chars), dtype=bool)
    for j in range(chars.shape[1]):
        ok &= (chars[:, j] - np.uint8(_ZERO)) <= 9  # uint8 wraps: below "0" is above 9
    return ok


def _ymd(digits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(year, month, day) int32 arrays of YYYYMMDD digit columns (int matrix, 8 wide)."""
    ymd = digits.astype(np.int32) @ _YMD_WEIGHTS
    return ymd // 10000, ymd // 100 % 100, ymd % 100


def _date_checks(digits: np.ndarray, today: dt.date | None) -> tuple[np.ndarray, np.ndarray]:
    """(exists, in_range) for YYYYMMDD digit columns (int matrix, 8 wide; a row with
    values outside 0-9 gives a meaningless answer, for the caller to mask)."""
    y, m, d = _ymd(digits)
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    month_ok = (m >= 1) & (m <= 12)
    dim = _DAYS[np.where(month_ok, m, 0)] + ((m == 2) & leap)
    exists = month_ok & (d >= 1) & (d <= dim) & (y >= 1)
    ymd = y * 10000 + m * 100 + d
    in_range = (y >= MIN_YEAR) & (ymd <= _today_int(today))
    return exists, in_range


def ric_check_chars(first17: np.ndarray) -> np.ndarray:
    """Check characters (uint8 ASCII) for an int matrix of the first 17 digits."""
    # an integer matmul: numpy's own loop, as fast as BLAS here on one core, and no
    # BLAS thread pool spinning beside the stage's other threads
    total = first17.astype(np.int32) @ RIC_WEIGHTS
    return RIC_CHECK[total % 11]


# ---------------------------------------------------------------- resident ID
def _ascii18(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the 18-character ASCII values of `arr`, and their character matrix."""
    ok = pc.and_(pc.equal(pc.binary_length(arr), 18), pc.string_is_ascii(arr))
    pos = np.flatnonzero(pc.fill_null(ok, False).to_numpy(zero_copy_only=False))
    return pos, _char_matrix(pc.take(arr, pa.array(pos)), 18)


def _ric18_checks(
    mat: np.ndarray, today: dt.date | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For an 18-wide ASCII character matrix: (format ok: 17 digits and a digit or X,
    last character a digit, check character right, birth date exists, birth date in
    1880..today). The last three mean something only where the format is ok."""
    last = mat[:, 17]
    last_digit = (last >= _ZERO) & (last <= _NINE)
    fmt_ok = _all_digits(mat[:, :17]) & (last_digit | (last == _X))
    # rows that are not 17 digits give meaningless sums and dates here: fmt_ok masks them
    digits = mat[:, :17].astype(np.int16) - _ZERO
    check_ok = fmt_ok & (ric_check_chars(digits) == last)
    exists, in_range = _date_checks(digits[:, 6:14], today)
    return fmt_ok, last_digit, check_ok, exists, in_range


def is_canonical_resident_id(values: pd.Series, today: dt.date | None = None) -> np.ndarray:
    """True where a value is already a normalized resident ID: 18 characters, 17 digits
    and a check character (digit or upper-case X) that matches, an embedded birth date
    that exists and lies in 1880..today. Null and anything else: False. (The check a
    staged value must pass; `resident_id` cleans and converts first.)"""
    pos, mat = _ascii18(to_arrow(values))
    _, _, check, exists, in_range = _ric18_checks(mat, today)
    ok = np.zeros(len(values), dtype=bool)
    ok[pos] = check & exists & in_range
    return ok


def resident_id(values: pd.Series, today: dt.date | None = None) -> Result:
    """Clean and validate resident ID numbers.

    Output: 18-character IDs (old 15-digit numbers converted by inserting "19" and
    computing the check character), null where invalid with one reason:
    resident_id_destroyed (Excel scientific notation, or 18 digits ending in "000"
    whose checksum fails: a valid checksum always wins), resident_id_format,
    resident_id_checksum, invalid_date (embedded birth date impossible),
    date_out_of_range (embedded birth date in the future or before 1880).
    """
    index = values.index
    n = len(values)
    arr = empty_to_null(pc.utf8_upper(basic_clean(to_arrow(values), remove_spaces=True)))
    codes = np.zeros(n, dtype=np.uint8)  # _RIC_REASONS, 1-based; 0 = fine
    notnull = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    length = pc.fill_null(pc.binary_length(arr), 0).to_numpy(zero_copy_only=False)
    ascii_ = pc.fill_null(pc.string_is_ascii(arr), False).to_numpy(zero_copy_only=False)
    good_mask = np.zeros(n, dtype=bool)

    # 18 characters
    is18 = notnull & ascii_ & (length == 18)
    pos18 = np.flatnonzero(is18)
    mat = _char_matrix(pc.take(arr, pa.array(pos18)), 18)
    fmt_ok, last_digit, check_ok, exists, in_range = _ric18_checks(mat, today)
    tail000 = (mat[:, 15:] == _ZERO).all(axis=1)
    destroyed = fmt_ok & last_digit & tail000 & ~check_ok
    c18 = np.zeros(len(pos18), dtype=np.uint8)
    c18[~fmt_ok] = _FORMAT
    c18[fmt_ok & ~check_ok] = _CHECKSUM
    c18[destroyed] = _DESTROYED
    c18[check_ok & ~exists] = _INVALID_DATE
    c18[check_ok & exists & ~in_range] = _OUT_OF_RANGE
    codes[pos18] = c18
    good_mask[pos18[check_ok & exists & in_range]] = True
    # a valid 18-character ID is its own normal form
    out = pc.if_else(pa.array(good_mask), arr, pa.scalar(None, pa.string()))

    # 15 digits (old numbers): insert "19" before the year, compute the check
    is15 = notnull & ascii_ & (length == 15)
    pos15 = np.flatnonzero(is15)
    if len(pos15):
        m15 = _char_matrix(pc.take(arr, pa.array(pos15)), 15)
        d15: np.ndarray = np.asarray(((m15 >= _ZERO) & (m15 <= _NINE)).all(axis=1))
        conv = np.empty((len(pos15), 18), dtype=np.uint8)
        conv[:, :6] = m15[:, :6]
        conv[:, 6] = ord("1")
        conv[:, 7] = ord("9")
        conv[:, 8:17] = m15[:, 6:]
        cdig = np.where(d15[:, None], conv[:, :17].astype(np.int16) - _ZERO, 0)
        conv[:, 17] = ric_check_chars(cdig)
        exists15, in_range15 = _date_checks(cdig[:, 6:14], today)
        c15 = np.zeros(len(pos15), dtype=np.uint8)
        c15[~d15] = _FORMAT
        c15[d15 & ~exists15] = _INVALID_DATE
        c15[d15 & exists15 & ~in_range15] = _OUT_OF_RANGE
        codes[pos15] = c15
        good15 = d15 & exists15 & in_range15
        mask15 = np.zeros(n, dtype=bool)
        mask15[pos15[good15]] = True
        out = pc.replace_with_mask(out, pa.array(mask15), _strings(conv[good15]))

    codes[notnull & ~is18 & ~is15] = _FORMAT
    suspect = np.flatnonzero(notnull & ~good_mask & (codes != 0))
    if len(suspect):
        sci = pc.fill_null(pc.match_substring_regex(arr.take(pa.array(suspect)), _SCIENTIFIC), False)
        codes[suspect[sci.to_numpy(zero_copy_only=False)]] = _DESTROYED
    return from_arrow(out, index), coded_reasons(codes, _RIC_REASONS, index)


_RIC_REASONS = [
    "resident_id_format",
    "resident_id_checksum",
    "resident_id_destroyed",
    "invalid_date",
    "date_out_of_range",
]
_FORMAT, _CHECKSUM, _DESTROYED, _INVALID_DATE, _OUT_OF_RANGE = 1, 2, 3, 4, 5


def id_birth_date(ids: pd.Series) -> pd.Series:
    """Birth date encoded in normalized 18-character IDs (datetime64[ms]; NaT otherwise,
    including a date that does not exist)."""
    from etl.normalize.dates import _ymd_to_dates

    pos, mat = _ascii18(to_arrow(ids))
    is_digit = _all_digits(mat[:, 6:14])
    # rows with other characters give a meaningless date here: `is_digit` masks them
    dates, ok = _ymd_to_dates(*_ymd(mat[:, 6:14].astype(np.int16) - _ZERO))
    out = np.full(len(ids), np.datetime64("NaT"), dtype="datetime64[ms]")
    out[pos] = np.where(is_digit & ok, dates, np.datetime64("NaT"))
    return pd.Series(out, index=ids.index)


def id_gender(ids: pd.Series) -> pd.Series:
    """Gender code (GB/T 2261.1) encoded in normalized 18-character IDs: the 17th
    digit (sequence) odd -> "1" male, even -> "2" female; <NA> otherwise."""
    pos, mat = _ascii18(to_arrow(ids))
    digit = mat[:, 16].astype(np.int16) - _ZERO
    codes = np.zeros(len(ids), dtype=np.uint8)
    is_digit = (digit >= 0) & (digit <= 9)
    codes[pos[is_digit]] = np.where(digit[is_digit] % 2 == 1, 1, 2)
    return coded_reasons(codes, ["1", "2"], ids.index)


def birth_date_mismatch(ids: pd.Series, births: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose birth date (compared as a day) differs from the one their ID encodes,
    and the encoded dates (datetime64[D], NaT where the ID encodes none). Rows where
    either side is unknown never differ."""
    encoded = id_birth_date(ids).to_numpy().astype("datetime64[D]")
    if not pd.api.types.is_datetime64_any_dtype(births):
        births = pd.to_datetime(births, errors="coerce")
    given = births.to_numpy().astype("datetime64[ms]").astype("datetime64[D]")
    return ~np.isnat(encoded) & ~np.isnat(given) & (encoded != given), encoded


_MALE_FEMALE = pa.array(["1", "2"])


def gender_mismatch(ids: pd.Series, genders: pd.Series) -> tuple[np.ndarray, pa.Array]:
    """Rows whose male/female gender (1/2) differs from the sex their ID encodes, and
    the encoded codes. Unknown (0), not stated (9) and missing values never differ."""
    given = to_arrow(genders)
    encoded = to_arrow(id_gender(ids))
    comparable = pc.and_(pc.fill_null(pc.is_in(given, value_set=_MALE_FEMALE), False), pc.is_valid(encoded))
    differ = pc.and_(comparable, pc.fill_null(pc.not_equal(encoded, given), False))
    return differ.to_numpy(zero_copy_only=False), encoded


# ---------------------------------------------------------------- credit code
def credit_code(values: pd.Series) -> Result:
    """Clean and validate unified social credit codes.

    Output: 18 upper-case characters; null where invalid with reason
    credit_code_format (length, alphabet 0-9 A-H J-N P-R T U W-Y, first 8 digits)
    or credit_code_checksum.
    """
    index = values.index
    n = len(values)
    arr = basic_clean(to_arrow(values), remove_spaces=True)
    arr = empty_to_null(pc.utf8_upper(pc.replace_substring(arr, "-", "")))
    reasons = np.full(n, None, dtype=object)
    notnull = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    length = pc.fill_null(pc.utf8_length(arr), 0).to_numpy(zero_copy_only=False)
    ascii_ = pc.fill_null(pc.string_is_ascii(arr), False).to_numpy(zero_copy_only=False)

    pos = np.flatnonzero(notnull & ascii_ & (length == 18))
    mat = _char_matrix(pc.take(arr, pa.array(pos)), 18)
    idx = _USCC_INDEX[mat]
    fmt_ok = (idx >= 0).all(axis=1) & (idx[:, :8] <= 9).all(axis=1)
    total = np.where(fmt_ok[:, None], idx[:, :17], 0).astype(np.int32) @ USCC_WEIGHTS
    check_ok = fmt_ok & (idx[:, 17] == (31 - total % 31) % 31)
    r = np.full(len(pos), None, dtype=object)
    r[~fmt_ok] = "credit_code_format"
    r[fmt_ok & ~check_ok] = "credit_code_checksum"
    reasons[pos] = r
    reasons[notnull & ~np.isin(np.arange(n), pos)] = "credit_code_format"
    out = _scatter(n, pos[check_ok], _strings(mat[check_ok]))
    return from_arrow(out, index), reasons_series(reasons, index)


def is_canonical_credit_code(values: pd.Series) -> np.ndarray:
    """True where a value is already a normalized unified social credit code: 18
    characters of the code alphabet (0-9 A-H J-N P-R T U W-Y), the first 8 of them
    digits, and a matching check character. Null and anything else: False."""
    arr = to_arrow(values)
    ok = pc.fill_null(pc.match_substring_regex(arr, r"^[0-9]{8}[0-9A-HJ-NPQRTUWXY]{10}$"), False).to_numpy(
        zero_copy_only=False
    )
    pos = np.flatnonzero(ok)
    idx = _USCC_INDEX[_char_matrix(pc.take(arr, pa.array(pos)), 18)]
    total = idx[:, :17].astype(np.int32) @ USCC_WEIGHTS
    ok[pos] = idx[:, 17] == (31 - total % 31) % 31
    return ok


def uscc_check_char(first17: str) -> str:
    """Check character for the first 17 characters of a credit code (scalar helper)."""
    idx = _USCC_INDEX[np.frombuffer(first17.encode(), dtype=np.uint8)]
    return USCC_ALPHABET[(31 - int(idx @ USCC_WEIGHTS) % 31) % 31]
