"""Coded values: gender, marital status, ethnicity, entity status and type,
boolean flags, and administrative division codes.

Code lists are mapped over the distinct values only (pd.factorize), after NFKC,
trimming, removing zero-width characters and case folding, so the cost is the
number of distinct values, not rows. An unknown non-empty value is null with
reason invalid_code (invalid_region for region).

Every code list is read from schemas/reference/<list>.csv (etl.reference): a
value is recognised by its code, its name or one of its aliases (after the key
folding above), else by a keyword of the list found inside it (the longest
keyword wins: 股份有限公司 before 有限公司, 吊销 before 注销 on a tie by file order).
A sub-code (a row with a parent) is recorded as its parent. What each list holds
is data, decided in the CSV files:
- gender (GB/T 2261.1): 1/男/男性/M/male -> "1", 2/女/女性/F/female -> "2", 0, 9.
- marital_status (GB/T 2261.2): the person table carries the top-level codes
  10/20/30/40/90 only; the sub-codes 21/22/23 (初婚/再婚/复婚) have parent 20:
  remarriage is marriage history, not a status. Legacy codes 1/2/3/4/9 are aliases.
- ethnicity (GB/T 3304): two-digit codes, also read without the leading zero ("1"
  -> "01") and names without the final 族 (汉族, 汉), 97 其他, 98 外国血统中国籍人士.
- entity_status, entity_type: aliases and keywords; tax statuses outside the list
  (非正常, 停业, 清算) and ownership-only types (国有企业, 集体企业, 外商投资企业) are
  invalid_code: the lists classify registration status and legal form.
- boolean: 是/否, Y/N, yes/no, 1/0, true/false, T/F, 在世/死亡 (for alive); not a code
  list of the standards, so it stays here.
- region: 6 digits (full width accepted) listed in regions.csv (current codes).
"""

from __future__ import annotations

import re
import unicodedata

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etl.normalize import reference
from etl.normalize._common import (
    STRING,
    Result,
    basic_clean,
    empty_to_null,
    flagged,
    from_arrow,
    map_distinct,
    to_arrow,
)

_ZW = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_WS = re.compile(r"[\s\u00a0\u3000]+")


def _key(value: str) -> str:
    """Matching key of a delivered code or name: NFKC, no blanks, lower case."""
    return _WS.sub("", _ZW.sub("", unicodedata.normalize("NFKC", value))).lower()


def _lookup(table: dict[str, str]) -> dict[str, str]:
    return {_key(k): v for k, v in table.items()}


def _clean(values: pd.Series) -> pd.Series:
    """Cleaned values with empty -> null, for map_distinct."""
    return from_arrow(empty_to_null(basic_clean(to_arrow(values), remove_spaces=False)), values.index)


def _by_table(values: pd.Series, table: dict[str, str], reason: str = "invalid_code") -> Result:
    def fn(v: str) -> tuple[str | None, str | None]:
        code = table.get(_key(v))
        return (code, None) if code is not None else (None, reason)

    return map_distinct(_clean(values), fn)


BOOLEAN = _lookup(
    {
        "是": "1", "否": "0", "y": "1", "n": "0", "yes": "1", "no": "0", "1": "1", "0": "0",
        "true": "1", "false": "0", "t": "1", "f": "0", "在世": "1", "死亡": "0", "已故": "0",
    }
)  # fmt: skip


def _by_list(values: pd.Series, name: str, extra: dict[str, str] | None = None) -> Result:
    """Map over list `name` of schemas/reference: its codes, names and aliases (a sub-code
    to its parent), then its keywords found inside the value, longest first."""
    table = _lookup({**(extra or {}), **reference.spellings(name)})
    rules = [(_key(word), code) for word, code in reference.keywords(name)]

    def fn(v: str) -> tuple[str | None, str | None]:
        k = _key(v)
        code = table.get(k)
        if code is None:
            code = next((c for word, c in rules if word in k), None)
        return (code, None) if code is not None else (None, "invalid_code")

    return map_distinct(_clean(values), fn)


def gender(values: pd.Series) -> Result:
    """Gender names or codes -> GB/T 2261.1 code (gender.csv)."""
    return _by_list(values, "gender")


def marital_status(values: pd.Series) -> Result:
    """Marital status names or codes -> GB/T 2261.2 top-level code (marital_status.csv)."""
    return _by_list(values, "marital_status")


def ethnicity(values: pd.Series) -> Result:
    """Ethnicity names or codes -> GB/T 3304 two-digit code (ethnicity.csv); a code
    without its leading zero ("1") and a name without its final 族 (汉) are read too."""
    derived: dict[str, str] = {}
    for code, name in reference.names("ethnicity").items():
        if code.isdigit():
            derived[str(int(code))] = code  # "1" -> "01"
        if name.endswith("族") and len(name) >= 2:
            derived[name[:-1]] = code  # 汉族 -> 汉, 蒙古族 -> 蒙古
    return _by_list(values, "ethnicity", derived)


def entity_status(values: pd.Series) -> Result:
    """Registration status names -> status code (entity_status.csv)."""
    return _by_list(values, "entity_status")


def entity_type(values: pd.Series) -> Result:
    """Enterprise type names -> entity type code (entity_type.csv)."""
    return _by_list(values, "entity_type")


def boolean(values: pd.Series) -> Result:
    """是/否, Y/N, yes/no, 1/0, true/false, 在世/死亡 -> pandas boolean."""
    codes, reasons = _by_table(values, BOOLEAN)
    out = pd.Series(pd.array([None] * len(values), dtype="boolean"), index=values.index)
    out[codes == "1"] = True
    out[codes == "0"] = False
    return out, reasons


def region(values: pd.Series) -> Result:
    """Administrative division code (GB/T 2260), 6 digits, listed in regions.csv; else invalid_region."""
    arr = empty_to_null(basic_clean(to_arrow(values), remove_spaces=True))
    valid = reference.region_codes()
    notnull = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    six = pc.fill_null(pc.match_substring_regex(arr, r"^[0-9]{6}$"), False).to_numpy(zero_copy_only=False)
    listed = pc.fill_null(pc.is_in(arr, value_set=pa.array(sorted(valid), pa.string())), False)
    ok = six & listed.to_numpy(zero_copy_only=False)
    out = from_arrow(arr, values.index).where(pd.Series(ok, index=values.index))
    return out.astype(STRING), flagged(notnull & ~ok, "invalid_region", values.index)
