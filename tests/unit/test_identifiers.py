"""Resident ID and credit code transforms, against python-stdnum as the oracle."""

from __future__ import annotations

import datetime as dt
import unicodedata

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric, uscc

from etl.normalize import identifiers
from etl.normalize.identifiers import (
    USCC_ALPHABET,
    credit_code,
    id_birth_date,
    id_gender,
    resident_id,
    uscc_check_char,
)

pytestmark = pytest.mark.unit
TODAY = dt.date(2026, 1, 1)


def _plain(s: pd.Series) -> list[object]:
    return [None if pd.isna(x) else x for x in s]


def _ric(values: list[str | None]) -> tuple[list[object], list[object]]:
    v, r = resident_id(pd.Series(values, dtype="str"), today=TODAY)
    return _plain(v), _plain(r)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("11010519491231002X", "11010519491231002X"),
        ("11010519491231002x", "11010519491231002X"),
        ("１１０１０５１９４９１２３１００２Ｘ", "11010519491231002X"),
        ("110105 19491231 002X", "11010519491231002X"),
        ("\ufeff110105\u200b19491231\u3000002X\u00a0", "11010519491231002X"),
        ("110105491231002", "11010519491231002X"),  # old 15-digit number
        ("360426199101010071", "360426199101010071"),  # stdnum doctest
    ],
)
def test_resident_id_repairs(raw: str, expected: str) -> None:
    assert _ric([raw]) == ([expected], [None])


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("11010519491231002Y", "resident_id_format"),
        ("1101051949123100", "resident_id_format"),
        ("11010519491231002XX", "resident_id_format"),
        ("11010519491231003X", "resident_id_checksum"),
        ("1.10105194912310E+17", "resident_id_destroyed"),
        ("1.1010519491231E+17", "resident_id_destroyed"),
        ("110105194912310000", "resident_id_destroyed"),
        ("110105194902300020", "invalid_date"),  # 30 February, valid check
        ("110105210001010015", "date_out_of_range"),  # born in 2100
        ("110105491331002", "invalid_date"),  # 15-digit, month 13
    ],
)
def test_resident_id_rejects(raw: str, reason: str) -> None:
    values, reasons = _ric([raw])
    assert values == [None] and reasons == [reason]


def test_valid_id_ending_in_000_is_kept() -> None:
    # a checksum-valid ID ending in "000" is not an Excel casualty
    bodies = (f"{region}19800101{seq:03d}" for region in range(110100, 110200) for seq in range(0, 1000, 100))
    ids = [b + ric.calc_check_digit(b + "0") for b in bodies]
    ending = [i for i in ids if i.endswith("000")]
    assert ending, "need an example"
    assert _ric(ending[:1]) == (ending[:1], [None])


def test_empty_is_null_without_reason() -> None:
    assert _ric(["", "   ", None]) == ([None] * 3, [None] * 3)


def test_python_string_dtype_input_and_index_kept() -> None:
    s = pd.Series(["11010519491231002X", None], index=[10, 20], dtype="string[python]")
    v, _ = resident_id(s)
    assert list(v.index) == [10, 20] and _plain(v) == ["11010519491231002X", None]


def test_id_birth_date_and_gender() -> None:
    s = pd.Series(["11010519491231002X", "360426199101010071", None, "bad"], dtype="string")
    assert id_birth_date(s).tolist()[:2] == [pd.Timestamp("1949-12-31"), pd.Timestamp("1991-01-01")]
    assert id_birth_date(s).isna().tolist() == [False, False, True, True]
    assert _plain(id_gender(s)) == ["2", "1", None, None]


# ---------------------------------------------------------------- property tests vs stdnum
#: division codes stdnum accepts for any birth year (in use since before loc.dat's tables start)
REGIONS = ["110101", "110102", "110105", "110106", "120101", "120110", "140121", "150121", "152201", "152501"]
FULLWIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def _oracle_clean(v: str) -> str:
    """The lenient pre-cleaning govbase adds over stdnum: NFKC, no blanks or zero-width."""
    v = unicodedata.normalize("NFKC", v)
    return "".join(ch for ch in v if not ch.isspace() and ch not in "\u200b\u200c\u200d\u2060\ufeff")


def _corrupt(rng: np.random.Generator, valid: list[str]) -> list[str]:
    out = []
    for v in valid:
        kind = rng.integers(8)
        if kind == 0:
            out.append(v)
        elif kind == 1:  # one digit changed
            i = int(rng.integers(17))
            out.append(v[:i] + str((int(v[i]) + int(rng.integers(1, 10))) % 10) + v[i + 1 :])
        elif kind == 2:  # check changed
            out.append(v[:17] + "0123456789X"[int(rng.integers(11))])
        elif kind == 3:  # adjacent transposition
            i = int(rng.integers(17))
            out.append(v[:i] + v[i + 1] + v[i] + v[i + 2 :])
        elif kind == 4:  # wrong length
            out.append(v[: int(rng.integers(10, 18))] if rng.integers(2) else v + str(rng.integers(10)))
        elif kind == 5:
            out.append(v.lower())
        elif kind == 6:
            out.append(v.translate(FULLWIDTH))
        else:  # spaces / zero-width inside
            i = int(rng.integers(1, 17))
            out.append(v[:i] + rng.choice([" ", "\u200b", "\u3000"]) + v[i:])
    return out


def _valid_ids(rng: np.random.Generator, n: int) -> list[str]:
    days = rng.integers(0, (dt.date(2020, 12, 31) - dt.date(1900, 1, 1)).days, n)
    births = (np.datetime64("1900-01-01") + days.astype("timedelta64[D]")).astype(str)
    regions = rng.choice(REGIONS, n)
    seqs = rng.integers(0, 1000, n)
    out = []
    for reg, b, s in zip(regions, births, seqs, strict=True):
        body = f"{reg}{b.replace('-', '')}{s:03d}"
        out.append(body + ric.calc_check_digit(body + "0"))
    return out


def test_resident_id_agrees_with_stdnum_on_100k() -> None:
    rng = np.random.default_rng(20240601)
    values = _corrupt(rng, _valid_ids(rng, 100_000))
    out, reasons = resident_id(pd.Series(values, dtype="str"), today=TODAY)
    mine = (reasons.isna() & out.notna()).to_numpy()
    oracle = np.array([ric.is_valid(_oracle_clean(v)) for v in values])
    # every corrupted 18-char value: same verdict as stdnum
    length = np.array([len(_oracle_clean(v)) for v in values])
    assert (mine[length != 15] == oracle[length != 15]).all()
    # old 15-digit values (truncations) never pass as 18 without conversion: checked separately
    assert oracle.sum() > 30_000 and (~oracle).sum() > 30_000
    # the validation check of staged values: valid and already in normal form
    canonical = identifiers.is_canonical_resident_id(pd.Series(values, dtype="str"))
    strict = np.array([ric.is_valid(v) and v == ric.compact(v) and v == v.upper() for v in values])
    assert (canonical == strict).all()
    assert strict.sum() > 10_000 and (~strict).sum() > 50_000
    # what normalization outputs always passes it
    assert identifiers.is_canonical_resident_id(out.dropna()).all()
    # where valid, the output is stdnum's compact form
    ok = np.flatnonzero(mine & (length == 18))
    assert all(out.iloc[i] == ric.compact(_oracle_clean(values[i])) for i in ok[:5000])


def test_address_code_not_checked_unlike_stdnum() -> None:
    # documented difference: stdnum rejects 370102 (历下区) for a 1919 birth; govbase keeps it
    assert not ric.is_valid("37010219190724051X")
    assert _ric(["37010219190724051X"]) == (["37010219190724051X"], [None])


def test_fifteen_digit_conversion_agrees_with_stdnum() -> None:
    rng = np.random.default_rng(7)
    old = [v[:6] + v[8:17] for v in _valid_ids(rng, 20_000) if v[6:8] == "19"]
    out, reasons = resident_id(pd.Series(old, dtype="str"), today=TODAY)
    assert reasons.isna().all()
    assert all(ric.is_valid(v) for v in out)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_check_character_matches_stdnum(body: str) -> None:
    check = ric.calc_check_digit(body + "0")
    _, r = resident_id(pd.Series([body + check]), today=dt.date(9999, 1, 1))
    assert pd.isna(r.iloc[0]) or r.iloc[0] in ("invalid_date", "date_out_of_range")
    for wrong in "0123456789X":
        if wrong != check:
            _, r2 = resident_id(pd.Series([body + wrong]), today=dt.date(9999, 1, 1))
            assert r2.iloc[0] in ("resident_id_checksum", "resident_id_destroyed")
            break


# ---------------------------------------------------------------- credit code
@pytest.mark.parametrize(
    ("raw", "expected", "reason"),
    [
        ("91110000600037341L", "91110000600037341L", None),
        ("91110000600037341l", "91110000600037341L", None),
        ("９１１１００００６０００３７３４１Ｌ", "91110000600037341L", None),
        ("9111 0000-6000\u200b37341L", "91110000600037341L", None),
        ("91110000600037341K", None, "credit_code_checksum"),
        ("A1110000600037341L", None, "credit_code_format"),
        ("9111000060003734IL", None, "credit_code_format"),  # I is not in the alphabet
        ("9111000060003734", None, "credit_code_format"),
        ("", None, None),
    ],
)
def test_credit_code(raw: str, expected: str | None, reason: str | None) -> None:
    v, r = credit_code(pd.Series([raw], dtype="str"))
    assert v.iloc[0] == expected if expected else pd.isna(v.iloc[0])
    assert r.iloc[0] == reason if reason else pd.isna(r.iloc[0])


def _valid_codes(rng: np.random.Generator, n: int) -> list[str]:
    out = []
    for _ in range(n):
        head = "".join(rng.choice(list("0123456789"), 8))
        org = "".join(rng.choice(list(USCC_ALPHABET), 9))
        body = head + org
        out.append(body + uscc_check_char(body))
    return out


def test_credit_code_agrees_with_stdnum_on_100k() -> None:
    rng = np.random.default_rng(31)
    valid = _valid_codes(rng, 100_000)
    values = []
    for v in valid:
        kind = rng.integers(7)
        if kind == 0:
            values.append(v)
        elif kind == 1:
            i = int(rng.integers(17))
            values.append(v[:i] + str(rng.choice(list(USCC_ALPHABET.replace(v[i], "")))) + v[i + 1 :])
        elif kind == 2:
            values.append(v[:17] + str(rng.choice(list(USCC_ALPHABET))))
        elif kind == 3:
            i = int(rng.integers(17))
            values.append(v[:i] + v[i + 1] + v[i] + v[i + 2 :])
        elif kind == 4:
            values.append(v[:-1] if rng.integers(2) else v + "1")
        elif kind == 5:
            values.append(v.lower())
        else:
            i = int(rng.integers(18))
            values.append(v[:i] + str(rng.choice(list("IOSVZ"))) + v[i + 1 :])
    out, reasons = credit_code(pd.Series(values, dtype="str"))
    mine = (reasons.isna() & out.notna()).to_numpy()
    oracle = np.array([uscc.is_valid(unicodedata.normalize("NFKC", v)) for v in values])
    assert (mine == oracle).all()
    assert oracle.sum() > 20_000 and (~oracle).sum() > 40_000
    canonical = identifiers.is_canonical_credit_code(pd.Series(values, dtype="str"))
    strict = np.array([uscc.is_valid(v) and v == uscc.compact(v) for v in values])
    assert (canonical == strict).all()
    assert strict.sum() > 10_000 and (~strict).sum() > 50_000
    assert identifiers.is_canonical_credit_code(out.dropna()).all()


@pytest.mark.unit
def test_id_helpers_keep_the_index_of_their_input() -> None:
    """Validation hands these a filtered frame: the answer must align on the index."""
    ids = pd.Series(["11010519491231002X", "11010519491231002X"], dtype="string", index=[7, 9])
    assert identifiers.id_birth_date(ids).notna().all()
    assert identifiers.id_gender(ids).tolist() == ["2", "2"]


def test_all_digits_equals_the_plain_check() -> None:
    rng = np.random.default_rng(3)
    chars = rng.integers(0, 256, size=(6000, 17), dtype=np.uint8)
    chars[::2] = rng.integers(ord("0"), ord("9") + 1, size=(3000, 17), dtype=np.uint8)
    chars[1::4, 5] = ord("/")  # the neighbours of the digits in ASCII
    chars[2::4, 9] = ord(":")
    want = ((chars >= ord("0")) & (chars <= ord("9"))).all(axis=1)
    assert (identifiers._all_digits(chars) == want).all()
    assert 1000 < want.sum() < 5000


@pytest.mark.parametrize("position", [3, 7, 16])
@pytest.mark.parametrize("char", ["/", ":"])
def test_an_id_with_a_neighbour_of_the_digits_is_no_id(position: int, char: str) -> None:
    valid = "11010519491231002X"
    bad = pd.Series([valid[:position] + char + valid[position + 1 :]], dtype="str")
    out, reasons = identifiers.resident_id(bad)
    assert out.isna().all() and reasons.tolist() == ["resident_id_format"]
    assert not identifiers.is_canonical_resident_id(bad).any()
    # the encoded birth date reads characters 7-14 only
    assert id_birth_date(bad).isna().all() == (6 <= position < 14)
