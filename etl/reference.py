"""Reference data: administrative divisions (GB/T 2260) and small code lists.

The CSV files under schemas/reference/ are generated once by this module and
committed, so runtime never depends on rebuilding them:

    .venv/bin/python -m etl.reference      # rewrites schemas/reference/*.csv

regions.csv is built from python-stdnum's ``stdnum/cn/loc.dat`` (a copy of the
Wikipedia tables of GB/T 2260 codes with their validity years). Codes whose
current name carries an end year (``[-2010]崇文区``) are abolished and left
out. Columns:

- code: 6 digits
- name: current name
- level: province | prefecture | county
- province, prefecture: names of the enclosing divisions ("" when none)
- valid_from: first year the code was in use (0 = before the tables start);
  an 18-digit resident ID whose birth year precedes it fails stdnum's check
- placeholder: True for grouping rows that are not places (市辖区, 县,
  省直辖县级行政区划 ...), which no person lives in
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd

from etl.publish.csvfile import write_csv

_ENTRY = re.compile(r"^\[(\d*)-(\d*)\](.*)$")
_PLACEHOLDERS = (
    "市辖区",
    "县",
    "省直辖县级行政区划",
    "自治区直辖县级行政区划",
    "省直辖行政单位",
    "省直辖县级行政单位",
)

#: GB/T 3304 ethnicity codes (two digits) and names.
ETHNICITIES: list[tuple[str, str]] = [
    ("01", "汉族"),
    ("02", "蒙古族"),
    ("03", "回族"),
    ("04", "藏族"),
    ("05", "维吾尔族"),
    ("06", "苗族"),
    ("07", "彝族"),
    ("08", "壮族"),
    ("09", "布依族"),
    ("10", "朝鲜族"),
    ("11", "满族"),
    ("12", "侗族"),
    ("13", "瑶族"),
    ("14", "白族"),
    ("15", "土家族"),
    ("16", "哈尼族"),
    ("17", "哈萨克族"),
    ("18", "傣族"),
    ("19", "黎族"),
    ("20", "傈僳族"),
    ("21", "佤族"),
    ("22", "畲族"),
    ("23", "高山族"),
    ("24", "拉祜族"),
    ("25", "水族"),
    ("26", "东乡族"),
    ("27", "纳西族"),
    ("28", "景颇族"),
    ("29", "柯尔克孜族"),
    ("30", "土族"),
    ("31", "达斡尔族"),
    ("32", "仫佬族"),
    ("33", "羌族"),
    ("34", "布朗族"),
    ("35", "撒拉族"),
    ("36", "毛南族"),
    ("37", "仡佬族"),
    ("38", "锡伯族"),
    ("39", "阿昌族"),
    ("40", "普米族"),
    ("41", "塔吉克族"),
    ("42", "怒族"),
    ("43", "乌孜别克族"),
    ("44", "俄罗斯族"),
    ("45", "鄂温克族"),
    ("46", "德昂族"),
    ("47", "保安族"),
    ("48", "裕固族"),
    ("49", "京族"),
    ("50", "塔塔尔族"),
    ("51", "独龙族"),
    ("52", "鄂伦春族"),
    ("53", "赫哲族"),
    ("54", "门巴族"),
    ("55", "珞巴族"),
    ("56", "基诺族"),
]

#: GB/T 2261.1 gender and GB/T 2261.2 marital status (code, name).
GENDERS: list[tuple[str, str]] = [("0", "未知的性别"), ("1", "男"), ("2", "女"), ("9", "未说明的性别")]
MARITAL_STATUSES: list[tuple[str, str]] = [
    ("10", "未婚"),
    ("20", "已婚"),
    ("21", "初婚"),
    ("22", "再婚"),
    ("23", "复婚"),
    ("30", "丧偶"),
    ("40", "离婚"),
    ("90", "未说明的婚姻状况"),
]

#: Legal-entity type codes (the slugs of schemas/shared/legal_entity.yml) with the
#: names departments deliver; the first alias is the registry's own name.
ENTITY_TYPES: list[tuple[str, str, str]] = [
    (
        "limited_company",
        "有限责任公司",
        "有限责任公司|有限公司|私营有限责任公司|其他有限责任公司|有限责任公司(自然人投资或控股)",
    ),
    ("joint_stock", "股份有限公司", "股份有限公司|股份有限公司(非上市)|股份有限公司(上市)|私营股份有限公司"),
    ("sole_proprietorship", "个人独资企业", "个人独资企业|私营独资企业"),
    ("partnership", "合伙企业", "合伙企业|普通合伙企业|有限合伙企业|私营合伙企业"),
    ("individual_business", "个体工商户", "个体工商户|个体经营|个体户"),
    ("public_institution", "事业单位", "事业单位|事业单位法人"),
    ("social_organisation", "社会团体", "社会团体|社会团体法人|民办非企业单位|社会服务机构|基金会"),
]

#: Registration status codes with the names departments deliver.
ENTITY_STATUSES: list[tuple[str, str, str]] = [
    ("active", "存续", "存续|在业|开业|正常|存续(在营、开业、在册)"),
    ("revoked", "吊销", "吊销|吊销，未注销|吊销未注销"),
    ("cancelled", "注销", "注销|已注销|注销登记"),
    ("moved_out", "迁出", "迁出|已迁出"),
]

#: GB/T 4754-2017 sections.
INDUSTRY_SECTIONS: list[tuple[str, str]] = [
    ("A", "农、林、牧、渔业"),
    ("B", "采矿业"),
    ("C", "制造业"),
    ("D", "电力、热力、燃气及水生产和供应业"),
    ("E", "建筑业"),
    ("F", "批发和零售业"),
    ("G", "交通运输、仓储和邮政业"),
    ("H", "住宿和餐饮业"),
    ("I", "信息传输、软件和信息技术服务业"),
    ("J", "金融业"),
    ("K", "房地产业"),
    ("L", "租赁和商务服务业"),
    ("M", "科学研究和技术服务业"),
    ("N", "水利、环境和公共设施管理业"),
    ("O", "居民服务、修理和其他服务业"),
    ("P", "教育"),
    ("Q", "卫生和社会工作"),
    ("R", "文化、体育和娱乐业"),
    ("S", "公共管理、社会保障和社会组织"),
    ("T", "国际组织"),
]


def _loc_dat() -> Path:
    return Path(str(resources.files("stdnum") / "cn" / "loc.dat"))


def build_regions(loc_dat: Path | None = None) -> pd.DataFrame:
    """Parse loc.dat into one row per current division code (see module doc)."""
    rows: list[dict[str, object]] = []
    province_code = ""
    for raw in (loc_dat or _loc_dat()).read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        if not raw.startswith(" "):
            province_code = raw.split(" ", 1)[0]
            continue
        suffix, rest = raw.strip().split(" ", 1)
        value = rest.split('"')[1]
        entries = [_ENTRY.match(part) for part in value.split(",")]
        last = entries[-1]
        if last is not None and last.group(2):
            continue  # abolished
        name = last.group(3) if last is not None else value.split(",")[-1]
        valid_from = _valid_from(entries)
        code = province_code + suffix
        level = "province" if suffix == "0000" else "prefecture" if suffix.endswith("00") else "county"
        rows.append({"code": code, "name": name, "level": level, "valid_from": valid_from})
    df = pd.DataFrame(rows)
    names = dict(zip(df["code"], df["name"], strict=True))
    df["province"] = [names.get(c[:2] + "0000", "") for c in df["code"]]
    df["prefecture"] = [
        names.get(c[:4] + "00", "") if lvl == "county" else (n if lvl == "prefecture" else "")
        for c, n, lvl in zip(df["code"], df["name"], df["level"], strict=True)
    ]
    df["placeholder"] = df["name"].isin(_PLACEHOLDERS)
    df["province"] = df["province"].str.replace(r"^\[\d*-\d*\]", "", regex=True)
    return df[["code", "name", "level", "province", "prefecture", "valid_from", "placeholder"]]


def _valid_from(entries: list[re.Match[str] | None]) -> int:
    """First year of the contiguous validity period that reaches today (0 = always).

    "[1983-1987]城区,[2003-]吴兴区" -> 2003: stdnum rejects an ID born 1990 there.
    """
    last = entries[-1]
    if last is None or not last.group(1):
        return 0
    start = int(last.group(1))
    for entry in reversed(entries[:-1]):
        if entry is None:
            return 0
        end = int(entry.group(2)) if entry.group(2) else 9999
        if end < start - 1:
            break
        start = int(entry.group(1)) if entry.group(1) else 0
        if start == 0:
            break
    return start


def reference_dir(project_dir: Path) -> Path:
    return project_dir / "schemas" / "reference"


def write_reference(project_dir: Path) -> list[Path]:
    """(Re)write every CSV under schemas/reference/ of project_dir."""
    out = reference_dir(project_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    regions = out / "regions.csv"
    write_csv(build_regions(), regions, audience="programs")
    written.append(regions)
    tables: dict[str, tuple[list[str], list[tuple[str, ...]]]] = {
        "ethnicity.csv": (["code", "name"], list(ETHNICITIES)),
        "gender.csv": (["code", "name"], list(GENDERS)),
        "marital_status.csv": (["code", "name"], list(MARITAL_STATUSES)),
        "entity_type.csv": (["code", "name", "aliases"], list(ENTITY_TYPES)),
        "entity_status.csv": (["code", "name", "aliases"], list(ENTITY_STATUSES)),
        "industry.csv": (["code", "name"], list(INDUSTRY_SECTIONS)),
    }
    for fname, (header, data) in tables.items():
        path = out / fname
        written.append(write_csv(pd.DataFrame(data, columns=header), path, audience="programs"))
    return written


@lru_cache(maxsize=4)
def _regions_cached(path: str) -> pd.DataFrame:
    return pd.read_csv(
        path, dtype={"code": str, "name": str, "province": str, "prefecture": str}, keep_default_na=False
    )


def load_regions(project_dir: Path) -> pd.DataFrame:
    """schemas/reference/regions.csv as a DataFrame (cached; do not mutate)."""
    return _regions_cached(str(reference_dir(project_dir) / "regions.csv"))


if __name__ == "__main__":  # pragma: no cover
    from etl.config import get_settings

    for p in write_reference(get_settings().project_dir):
        print(p)
