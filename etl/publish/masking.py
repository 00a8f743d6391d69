"""Masking, vectorized by kind (110105********002X, 张*明, 138****1234) and by content.

Masking by kind follows the declared mask of the shared column a value maps to. That is
not enough for department-facing output: a ragged row shifts a resident ID into a column
declared `none`, a free-text field quotes a phone number. So every masked value also goes
through `mask_content`, which masks anything shaped like personal data wherever it sits:

- resident IDs of 18 characters (17 digits and a digit or X) whose check character is right,
  or whose birth-date part is a real date (a typo still names a person): 110105********002X;
- old 15-digit resident IDs (6 address digits, YYMMDD, 3 sequence digits): 110105******123;
- mobile phones (1[3-9] and 9 digits, optionally after +86/0086/86): 138****1234;
- unified social credit codes whose registration authority and entity type are "92"
  (工商 / 个体工商户, GB 32100-2015: an individual business, i.e. a person): the 9-character
  organisation code is masked, 92110105*********X. No other entity type marks a natural person
  (91 enterprises, 93 farmers' cooperatives, 5x/1x/Nx organisations stay readable).

Full-width digits and letters, and spaces, hyphens or invisible characters between the
characters of a number, do not hide it: the separators are kept, the characters masked.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import pandas as pd

from etl.normalize.identifiers import MIN_YEAR, RIC_WEIGHTS, USCC_ALPHABET, is_canonical_credit_code

#: full-width ASCII (U+FF01..U+FF5E) and the ideographic space to ASCII, one char for one
#: char, so positions found in the folded text are positions in the original
_FOLD = {**{0xFF01 + i: 0x21 + i for i in range(0x5E)}, 0x3000: 0x20}
_SEP = r"[\s\-\u00ad\u200b-\u200d\u2060\ufeff]*"  # what may sit between the characters of a number
_D = "[0-9]"
_USCC = "[" + USCC_ALPHABET + USCC_ALPHABET.lower() + "]"


def _spaced(*parts: str) -> str:
    return _SEP.join(parts)


# A credit code is bounded by anything but its own alphabet; IDs and phones only by digits
# (and an ID's X), so "ID11010519491231002X" or "tel13812341234" are still found.
_USCC92 = re.compile(r"(?<![0-9A-Za-z])" + _spaced("9", "2", *[_USCC] * 16) + r"(?![0-9A-Za-z])")
_RIC18 = re.compile(r"(?<![0-9])" + _spaced(*[_D] * 17, "[0-9Xx]") + r"(?![0-9Xx])")
_RIC15 = re.compile(r"(?<![0-9])" + _spaced(*[_D] * 15) + r"(?![0-9Xx])")
_PHONE = re.compile(
    r"(?<![0-9])(?:(?:\+|00)?86" + _SEP + ")?" + _spaced("1", "[3-9]", *[_D] * 9) + r"(?![0-9])"
)
_SIGNIFICANT = re.compile(r"[0-9A-Za-z]")


def _real_date(ymd: str) -> bool:
    try:
        return dt.date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:8])).year >= MIN_YEAR
    except ValueError:
        return False


def _is_ric18(chars: str) -> bool:
    total = sum(int(c) * int(w) for c, w in zip(chars[:17], RIC_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == chars[17].upper() or _real_date(chars[6:14])


def _is_ric15(chars: str) -> bool:
    return _real_date("19" + chars[6:12])


#: (pattern, is the match personal data, which of its significant characters to star), in
#: order: credit codes first, so an all-digit one is not taken for an ID
_RULES: list[tuple[re.Pattern[str], Callable[[str], bool], range]] = [
    (_USCC92, lambda _: True, range(8, 17)),
    (_RIC18, _is_ric18, range(6, 14)),
    (_RIC15, _is_ric15, range(6, 12)),
    (_PHONE, lambda _: True, range(3, 7)),  # of the 11 digits after any +86: see _mask_match
]


def _mask_match(original: str, folded: str, start: int, end: int, hide: range, phone: bool) -> str:
    """The matched span of `original` with its significant characters at `hide` starred."""
    positions = [m.start() for m in _SIGNIFICANT.finditer(folded, start, end)]
    if phone:  # a country prefix comes first: count the 11 digits of the number itself
        positions = positions[-11:]
    starred = {positions[i] for i in hide}
    return "".join("*" if i in starred else original[i] for i in range(start, end))


def _mask_text(text: str) -> str:
    for pattern, is_personal, hide in _RULES:
        folded = text.translate(_FOLD)
        pieces, done, pos = [], 0, 0
        while (m := pattern.search(folded, pos)) is not None:
            chars = "".join(_SIGNIFICANT.findall(m.group()))
            if pattern is _PHONE:
                chars = chars[-11:]
            if not is_personal(chars):
                pos = m.start() + 1  # an overlapping later start may still be one
                continue
            pieces += [text[done : m.start()], _mask_match(text, folded, *m.span(), hide, pattern is _PHONE)]
            done = pos = m.end()
        text = "".join([*pieces, text[done:]])
    return text


#: a cheap test that a text could hold one of the shapes above (9+ digits or letters in a row,
#: counting separators): most cells fail it and skip the per-pattern scan
_CANDIDATE = re.compile(r"(?:[0-9０-９A-Za-zＡ-Ｚａ-ｚ]" + _SEP + "){11}")


def mask_content(values: pd.Series) -> pd.Series:
    """Mask personal data found by its shape inside each text of `values` (see the module
    docstring); other text, and nulls, stay as they are. Non-text Series are returned unchanged."""
    if not (pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values)):
        return values
    s = values.astype("string")
    maybe = s.str.contains(_CANDIDATE, na=False)
    if not maybe.any():
        return s
    out = s.copy()
    out[maybe] = s[maybe].map(_mask_text)
    return out


def mask_frame(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with `mask_content` applied to every text column (numbers stay numbers)."""
    return df.apply(mask_content) if len(df.columns) else df


def mask(values: pd.Series, kind: str) -> pd.Series:
    """Mask a string Series by the contract's mask kind, then by content; nulls stay null.

    Kind `credit_code` masks an individual business's code (92...: 92110105*********X) and
    keeps an organisation's whole, also where its digits look like an ID to `mask_content`
    (524403050409830LJ7 holds a "15-digit ID"); a value that is no valid credit code, or is
    also a plausible resident ID (right check character, known region, real birth date), is
    masked by content like any text."""
    s = values.astype("string")
    if kind != "credit_code":
        return mask_content(_mask_kind(s, kind))
    from etl.publish.classify import _has_ric  # classify builds on this module

    organisation = pd.Series(is_canonical_credit_code(s), index=s.index) & ~s.str.startswith("92").fillna(
        False
    )
    organisation &= ~s.where(organisation, "").map(_has_ric).astype(bool)
    out = mask_content(_mask_kind(s, kind))
    return out.where(~organisation, s)


def _mask_kind(s: pd.Series, kind: str) -> pd.Series:
    if kind == "none":
        return s
    if kind == "credit_code":  # only an individual business's code (92...) names a person
        person = s.str.match(r"^92").fillna(False).astype(bool)
        starred = s.str.slice(0, 8) + s.str.slice(8, 17).str.replace(r".", "*", regex=True) + s.str.slice(17)
        return s.where(~person, starred)
    if kind == "resident_id":
        return s.str.slice(0, 6) + s.str.slice(6, -4).str.replace(r".", "*", regex=True) + s.str.slice(-4)
    if kind == "name":
        n = s.str.len()
        two = s.str.slice(0, 1) + "*"
        longer = s.str.slice(0, 1) + s.str.slice(1, -1).str.replace(r".", "*", regex=True) + s.str.slice(-1)
        return longer.where(n > 2, two.where(n == 2, "*")).where(s.notna())
    if kind == "phone":
        mobile = s.str.slice(0, 3) + "****" + s.str.slice(-4)
        return mobile.where(s.str.len() >= 8, "****").where(s.notna())
    if kind == "date":  # keep the year only
        return (s.str.slice(0, 4) + "-**-**").where(s.notna())
    if kind == "address":
        return (s.str.slice(0, 6) + "****").where(s.notna())
    return pd.Series("***", index=s.index, dtype="string").where(s.notna())
