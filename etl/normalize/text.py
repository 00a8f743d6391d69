"""Free text: person and organisation names, addresses, plain text.

All three apply NFKC (full-width letters, digits and punctuation to half width),
remove zero-width characters and trim. None of them can fail: they never
produce a reason.

- name: whitespace next to a Chinese character is removed ("张 三" -> "张三",
  "北京 ABC 公司" -> "北京ABC公司"); other whitespace runs collapse to one space
  (so Latin names keep their word breaks). Middle-dot variants (・ • ‧ ∙ ⋅ and a
  "." between two Chinese characters) become "·" as in 阿依古丽·买买提.
- address: whitespace runs collapse to one space.
- text: only NFKC, zero-width removal and trim.
"""

from __future__ import annotations

import pandas as pd
import pyarrow.compute as pc

from etl.normalize._common import (
    SPACE_RE,
    Result,
    basic_clean,
    empty_to_null,
    from_arrow,
    no_reasons,
    to_arrow,
)

_HAN = r"[\p{Han}·]"
_DOTS = "[\u30fb\u2022\u2027\u2219\u22c5\uff65\u00b7]"


def name(values: pd.Series) -> Result:
    """Names: see the module docstring."""
    arr = basic_clean(to_arrow(values), remove_spaces=False)
    arr = pc.replace_substring_regex(arr, pattern=_DOTS, replacement="·")
    arr = pc.replace_substring_regex(arr, pattern=r"(\p{Han})\.(\p{Han})", replacement=r"\1·\2")
    arr = pc.replace_substring_regex(arr, pattern=f"({_HAN}){SPACE_RE}+", replacement=r"\1")
    arr = pc.replace_substring_regex(arr, pattern=f"{SPACE_RE}+({_HAN})", replacement=r"\1")
    arr = pc.replace_substring_regex(arr, pattern=f"{SPACE_RE}+", replacement=" ")
    # NFKC made brackets ASCII; registered Chinese names use the full-width ones (（有限合伙）).
    arr = pc.replace_substring(pc.replace_substring(arr, "(", "（"), ")", "）")
    return from_arrow(empty_to_null(arr), values.index), no_reasons(values.index)


def address(values: pd.Series) -> Result:
    """Addresses: NFKC, zero-width removed, whitespace runs collapsed, trimmed."""
    arr = basic_clean(to_arrow(values), remove_spaces=False)
    arr = pc.replace_substring_regex(arr, pattern=f"{SPACE_RE}+", replacement=" ")
    return from_arrow(empty_to_null(arr), values.index), no_reasons(values.index)


def text(values: pd.Series) -> Result:
    """Plain text: NFKC, zero-width removed, trimmed."""
    arr = basic_clean(to_arrow(values), remove_spaces=False)
    return from_arrow(empty_to_null(arr), values.index), no_reasons(values.index)
