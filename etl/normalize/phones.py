"""Phone numbers: mobile as 11 digits, landline as "area code-number".

Cleanup: NFKC, then spaces, dashes, dots and parentheses removed; a leading
+86 / 0086 / 86 (the last only before an 11-digit mobile) is dropped, and a
landline written internationally ("+86 10 1234 5678") gets its trunk 0 back.

- mobile: 1[3-9] followed by 9 digits -> "13812345678";
- landline: 0 + area code + 7-8 digit number. Area codes 010 and 020-029 have
  three digits, every other area code four ("0571"), so "057187654321" ->
  "0571-87654321". A dash written by the department is honoured when it agrees
  with that rule's lengths (3 or 4 digit area code, 7 or 8 digit number).
- anything else (no area code, extension, too short/long) -> invalid_phone.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etl.normalize._common import STRING, Result, basic_clean, empty_to_null, flagged, to_arrow

_NULL = pa.scalar(None, pa.string())


def phone(values: pd.Series) -> Result:
    """Mobile and landline numbers; see the module docstring."""
    index = values.index
    arr = empty_to_null(basic_clean(to_arrow(values), remove_spaces=True))
    notnull = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    s = pc.replace_substring_regex(arr, pattern=r"[()（）.]", replacement="")
    intl = pc.fill_null(pc.match_substring_regex(s, r"^(\+86|0086|\+0086)-?"), False)
    s = pc.replace_substring_regex(s, pattern=r"^(\+86|0086|\+0086)-?", replacement="")
    # a landline without its trunk 0 after an international prefix
    s = pc.if_else(
        pc.and_(
            intl,
            pc.invert(
                pc.fill_null(
                    pc.match_substring_regex(pc.replace_substring(s, "-", ""), r"^(0|1[3-9][0-9]{9}$)"), False
                )
            ),
        ),
        pc.binary_join_element_wise("0", s, ""),
        s,
    )
    s = pc.replace_substring_regex(s, pattern=r"^86(1[3-9][0-9]{9})$", replacement=r"\1")
    digits = pc.replace_substring(s, "-", "")
    mobile = pc.fill_null(pc.match_substring_regex(digits, r"^1[3-9][0-9]{9}$"), False)
    # landline: honour a written dash if lengths are plausible, else split by area-code rule
    dashed = pc.extract_regex(s, r"^(?P<a>0[0-9]{2,3})-(?P<n>[1-9][0-9]{6,7})$")
    short = pc.extract_regex(digits, r"^(?P<a>0[12][0-9])(?P<n>[1-9][0-9]{6,7})$")
    long_ = pc.extract_regex(digits, r"^(?P<a>0[3-9][0-9]{2})(?P<n>[1-9][0-9]{6,7})$")
    out = pc.if_else(mobile, digits, _NULL)
    for st in (dashed, short, long_):
        hit = pc.fill_null(pc.is_valid(st), False)
        joined = pc.binary_join_element_wise(pc.struct_field(st, "a"), pc.struct_field(st, "n"), "-")
        out = pc.if_else(pc.and_(hit, pc.is_null(out)), joined, out)
    ok = pc.is_valid(out).to_numpy(zero_copy_only=False)
    return pd.Series(pd.array(out, dtype=STRING), index=index), flagged(notnull & ~ok, "invalid_phone", index)
