"""Coded values: gender, marital status, ethnicity, entity status and type,
boolean flags, and administrative division codes.

Code lists are mapped over the distinct values only (pd.factorize), after NFKC,
trimming, removing zero-width characters and case folding, so the cost is the
number of distinct values, not rows. An unknown non-empty value is null with
reason invalid_code (invalid_region for region).

Decisions:
- gender (GB/T 2261.1): 1/男/男性/M/male -> "1", 2/女/女性/F/female -> "2",
  0/未知/未知的性别/unknown -> "0", 9/未说明/未说明的性别 -> "9".
- marital_status (GB/T 2261.2): the person table carries the top-level codes
  10/20/30/40/90 only, so the sub-codes 21/22/23 and the names 初婚/再婚/复婚
  map to 20 (married): remarriage is marriage history, not a status. The
  one-digit legacy codes 1/2/3/4/9 map to 10/20/30/40/90.
- ethnicity (GB/T 3304): two-digit codes 01-56 (a one-digit "1" -> "01"),
  names with or without 族 (汉族, 汉, 蒙古族, 蒙古), 97 其他 and 98 外国血统中国籍人士.
- entity_status: active | revoked | cancelled | moved_out (schemas/reference/
  entity_status.csv with its aliases), then by keyword: 吊销 -> revoked (checked
  before 注销, since 吊销未注销 is revoked), 注销 -> cancelled, 迁出 -> moved_out,
  存续/在业/开业/在营/在册 -> active. Tax statuses outside the list (非正常, 停业,
  清算) are invalid_code: they are not registration statuses.
- entity_type: limited_company | joint_stock | sole_proprietorship | partnership |
  individual_business | public_institution | social_organisation (entity_type.csv
  aliases), then by keyword (股份有限公司 before 有限责任公司/有限公司, 合伙, 独资, 个体,
  事业单位, 社会团体/民办非企业/基金会/社会服务机构). Ownership-only types (国有企业,
  集体企业, 外商投资企业) are invalid_code: the list classifies legal form.
- boolean: 是/否, Y/N, yes/no, 1/0, true/false, T/F, 在世/死亡 (for alive).
- region: 6 digits (full width accepted) listed in regions.csv (current codes);
  without the file, 6 digits with a valid province prefix.
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


GENDER = _lookup(
    {
        "1": "1", "男": "1", "男性": "1", "m": "1", "male": "1",
        "2": "2", "女": "2", "女性": "2", "f": "2", "female": "2",
        "0": "0", "未知": "0", "未知的性别": "0", "unknown": "0",
        "9": "9", "未说明": "9", "未说明的性别": "9", "not stated": "9",
    }
)  # fmt: skip

MARITAL_STATUS = _lookup(
    {
        "10": "10", "1": "10", "未婚": "10", "single": "10", "unmarried": "10",
        "20": "20", "2": "20", "已婚": "20", "有配偶": "20", "married": "20",
        "21": "20", "初婚": "20", "22": "20", "再婚": "20", "23": "20", "复婚": "20",
        "30": "30", "3": "30", "丧偶": "30", "widowed": "30",
        "40": "40", "4": "40", "离婚": "40", "divorced": "40",
        "90": "90", "9": "90", "未说明": "90", "未说明的婚姻状况": "90", "not stated": "90",
    }
)  # fmt: skip

BOOLEAN = _lookup(
    {
        "是": "1", "否": "0", "y": "1", "n": "0", "yes": "1", "no": "0", "1": "1", "0": "0",
        "true": "1", "false": "0", "t": "1", "f": "0", "在世": "1", "死亡": "0", "已故": "0",
    }
)  # fmt: skip

#: Entity type codes (schemas/reference/entity_type.csv).
ENTITY_TYPE_CODES = (
    "limited_company", "joint_stock", "sole_proprietorship", "partnership",
    "individual_business", "public_institution", "social_organisation",
)  # fmt: skip

_STATUS_RULES = [
    ("吊销", "revoked"),
    ("注销", "cancelled"),
    ("迁出", "moved_out"),
    ("非正常", None),
    ("存续", "active"),
    ("在业", "active"),
    ("开业", "active"),
    ("在营", "active"),
    ("在册", "active"),
]
_TYPE_RULES = [
    ("股份有限公司", "joint_stock"),
    ("有限责任公司", "limited_company"),
    ("有限公司", "limited_company"),
    ("合伙", "partnership"),
    ("独资企业", "sole_proprietorship"),
    ("个体", "individual_business"),
    ("事业单位", "public_institution"),
    ("社会团体", "social_organisation"),
    ("民办非企业", "social_organisation"),
    ("基金会", "social_organisation"),
    ("社会服务机构", "social_organisation"),
]


def _by_aliases_then_rules(
    values: pd.Series, aliases: dict[str, str], rules: list[tuple[str, str | None]]
) -> Result:
    table = _lookup(aliases)

    def fn(v: str) -> tuple[str | None, str | None]:
        k = _key(v)
        code = table.get(k)
        if code is None:
            code = next((c for word, c in rules if word in k), None)
        return (code, None) if code is not None else (None, "invalid_code")

    return map_distinct(_clean(values), fn)


def gender(values: pd.Series) -> Result:
    """Gender names or codes -> GB/T 2261.1 code ("0", "1", "2", "9")."""
    return _by_table(values, GENDER)


def marital_status(values: pd.Series) -> Result:
    """Marital status names or codes -> GB/T 2261.2 top-level code (10/20/30/40/90)."""
    return _by_table(values, MARITAL_STATUS)


def _ethnicity_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for code, name in reference.ethnicity_codes().items():
        table[code] = code
        table[str(int(code))] = code  # "1" -> "01"
        table[name] = code
        if name.endswith("族") and len(name) >= 2:
            table[name[:-1]] = code  # 汉族 -> 汉, 蒙古族 -> 蒙古
    table.update({"97": "97", "其他": "97", "98": "98", "外国血统中国籍人士": "98", "外国血统": "98"})
    return _lookup(table)


def ethnicity(values: pd.Series) -> Result:
    """Ethnicity names or codes -> GB/T 3304 two-digit code."""
    return _by_table(values, _ethnicity_table())


def entity_status(values: pd.Series) -> Result:
    """Registration status names -> active | revoked | cancelled | moved_out."""
    return _by_aliases_then_rules(values, reference.entity_status_aliases(), _STATUS_RULES)


def entity_type(values: pd.Series) -> Result:
    """Enterprise type names -> entity type code (see ENTITY_TYPE_CODES)."""
    return _by_aliases_then_rules(values, reference.entity_type_aliases(), _TYPE_RULES)  # type: ignore[arg-type]


def boolean(values: pd.Series) -> Result:
    """是/否, Y/N, yes/no, 1/0, true/false, 在世/死亡 -> pandas boolean."""
    codes, reasons = _by_table(values, BOOLEAN)
    out = pd.Series(pd.array([None] * len(values), dtype="boolean"), index=values.index)
    out[codes == "1"] = True
    out[codes == "0"] = False
    return out, reasons


def region(values: pd.Series) -> Result:
    """Administrative division code (GB/T 2260), 6 digits, listed in regions.csv
    (or with a valid province prefix when the file is absent); else invalid_region."""
    arr = empty_to_null(basic_clean(to_arrow(values), remove_spaces=True))
    valid = reference.region_codes()
    notnull = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    six = pc.fill_null(pc.match_substring_regex(arr, r"^[0-9]{6}$"), False).to_numpy(zero_copy_only=False)
    if valid is not None:
        listed = pc.fill_null(pc.is_in(arr, value_set=pa.array(sorted(valid), pa.string())), False)
        ok = six & listed.to_numpy(zero_copy_only=False)
    else:
        prefix = pc.utf8_slice_codeunits(arr, 0, 2)
        in_prov = pc.fill_null(
            pc.is_in(prefix, value_set=pa.array(sorted(reference.PROVINCE_PREFIXES), pa.string())), False
        )
        ok = six & in_prov.to_numpy(zero_copy_only=False)
    out = from_arrow(arr, values.index).where(pd.Series(ok, index=values.index))
    return out.astype(STRING), flagged(notnull & ~ok, "invalid_region", values.index)
