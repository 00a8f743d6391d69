"""Security grading checked against the data: detect personal data by content.

`classify` samples every declared column of every staged and core table and looks at what
the values are, not what the contract says they are. Kinds and the level each warrants:

- resident_id (L4): 18 characters whose check character is right (GB 11643), found anywhere
  in the text (reuses the masking module's patterns, so full-width digits do not hide one);
- credit_code_person (L3): a unified social credit code of an individual business (92...),
  i.e. a natural person; other credit codes name organisations and warrant nothing;
- mobile (L3): 1[3-9] and 9 digits; landline (L3): a 3-4 digit area code starting 0, a
  hyphen, 7-8 digits;
- person_name (L3): the whole value is 2-4 CJK characters starting with a common surname
  (`SURNAMES`, the ~100 most frequent, covering ~85% of the population). Precision: a short
  place or organisation word starting with such a character (王府, 张家港) also matches, so
  a name finding needs `MIN_SHARE` of the values, not a few; a value ending like a division
  (吕梁市, 周口市, 黄浦区) or a unit of measure (万人, 亿元) is not taken for a name;
- address (L3): CJK text naming a division and a street part (省/市/区/县 ... 路/街/号/村/室);
- birth_date (L3): text holding a date of 1900-2029 (YYYY-MM-DD, YYYY/MM/DD, YYYY年M月D日).
  DATE-typed columns are not judged by content (an establishment date looks the same).

A column is a finding when at least `MIN_SHARE` of its sampled non-null values (and at
least `MIN_HITS` values) are of a kind warranting a higher level than it declares. Findings
carry masked examples only; they are kept in `meta.classification_finding` per run, and every
scan, with or without findings, in `meta.classification_run` (so "none found" is a result too).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import pandas as pd

from etl.contracts import Contracts, SharedTable
from etl.publish.masking import _FOLD, _PHONE, _RIC18, _USCC92, _is_ric18, mask_content

SAMPLE_ROWS = 10_000
MIN_SHARE = 0.01
MIN_HITS = 3
LEVELS = ("L1", "L2", "L3", "L4")
#: the most frequent Chinese surnames (about 85% of the population)
SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_NAME = re.compile(r"^[\u4e00-\u9fff]{2,4}$")
#: endings of division names and units that a 2-4 character name does not have
_NOT_NAME = re.compile(r"(?:[省市区县州盟旗镇乡]|万人|万户|亿元|万元|千元|万吨)$")
_LANDLINE = re.compile(r"(?<![0-9])0[1-9][0-9]{1,2}-[0-9]{7,8}(?![0-9])")
_ADDRESS = re.compile(r"[\u4e00-\u9fff]+(?:省|市|区|县|旗)[\u4e00-\u9fff0-9]*(?:路|街|道|巷|号|村|室|弄|组)")
_DATE = re.compile(r"(?<![0-9])(?:19|20)[0-9]{2}(?:[-/.](?:0?[1-9]|1[0-2])[-/.]|年(?:0?[1-9]|1[0-2])月)")


def _has_ric(text: str) -> bool:
    for m in _RIC18.finditer(text.translate(_FOLD)):
        chars = re.sub(r"[^0-9Xx]", "", m.group())
        total = sum(
            int(c) * w
            for c, w in zip(chars[:17], (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2), strict=True)
        )
        if "10X98765432"[total % 11] == chars[17].upper() and _plausible_ric(chars):
            return True
    return False


def _plausible_ric(chars: str) -> bool:
    """A real birth date and a known region: a credit code's digits (91510900...) pass the
    check character about one time in eleven, but its "region" 915109 is none."""
    from stdnum.cn import ric

    try:
        ric.get_birth_date(chars)
        ric.get_birth_place(chars)
    except Exception:  # stdnum raises its own ValidationError subclasses and ValueError
        return False
    return True


def _search(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    return lambda text: pattern.search(text.translate(_FOLD)) is not None


def _is_name(text: str) -> bool:
    return bool(_NAME.match(text)) and text[0] in SURNAMES and not _NOT_NAME.search(text)


#: kind -> (the level it warrants, detector on one text)
DETECTORS: dict[str, tuple[str, Callable[[str], bool]]] = {
    "resident_id": ("L4", _has_ric),
    "credit_code_person": ("L3", _search(_USCC92)),
    "mobile": ("L3", _search(_PHONE)),
    "landline": ("L3", _search(_LANDLINE)),
    "person_name": ("L3", _is_name),
    "address": ("L3", _search(_ADDRESS)),
    "birth_date": ("L3", _search(_DATE)),
}
_ = _is_ric18  # the masking module's looser test (a real date also counts) is for masking, not grading


@dataclass(frozen=True)
class Finding:
    """A column whose content warrants a higher level than it declares."""

    schema: str
    table: str
    column: str
    declared: str
    kind: str
    warranted: str
    share: float
    sampled: int
    examples: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}.{self.column}"

    def message(self) -> str:
        return (
            f"{self.qualified} is declared {self.declared} but {self.share:.1%} of {self.sampled} sampled "
            f"values look like {self.kind} (warrants {self.warranted}), e.g. {', '.join(self.examples)}"
        )


def classify_values(values: pd.Series) -> dict[str, float]:
    """Share of the non-null values of `values` detected as each kind (kinds with hits only)."""
    texts = values.dropna().astype(str)
    texts = texts[texts.str.strip() != ""]
    if not len(texts):
        return {}
    out = {}
    for kind, (_, detect) in DETECTORS.items():
        hits = int(texts.map(detect).sum())
        if hits >= MIN_HITS:
            out[kind] = hits / len(texts)
    return out


def judge_column(schema: str, table: SharedTable, column: str, values: pd.Series) -> list[Finding]:
    """Findings for one sampled column (text columns only; DATE and numbers are not judged)."""
    col = table.column(column)
    if col.type != "string":
        return []
    texts = values.dropna().astype(str)
    findings = []
    for kind, share in classify_values(texts).items():
        warranted, detect = DETECTORS[kind]
        if share < MIN_SHARE or LEVELS.index(warranted) <= LEVELS.index(col.security_level):
            continue
        hits = texts[texts.map(detect)].drop_duplicates().sort_values().head(3)
        examples = mask_content(hits.astype("string"))
        if kind == "person_name":  # a name has no shape mask_content knows
            examples = hits.str.slice(0, 1) + "*" + hits.str.slice(-1)
        findings.append(
            Finding(
                schema,
                table.name,
                column,
                col.security_level,
                kind,
                warranted,
                round(share, 4),
                len(texts),
                tuple(str(e) for e in examples),
            )
        )
    return findings


def _relations(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return [
        (s, t)
        for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('staging', 'core') order by 1, 2"
        ).fetchall()
    ]


def classify(con: duckdb.DuckDBPyConnection, contracts: Contracts) -> list[Finding]:
    """Sample every declared column of staging.<table> and core.<table> and judge it."""
    findings: list[Finding] = []
    for schema, name in _relations(con):
        table = contracts.tables.get(name)
        if table is None:
            continue
        present = {r[0] for r in con.execute(f"describe {schema}.{name}").fetchall()}
        cols = [c for c in table.column_names if c in present and table.column(c).type == "string"]
        if not cols:
            continue
        quoted = ", ".join(f'"{c}"' for c in cols)
        sample = con.execute(
            f"select {quoted} from {schema}.{name} using sample reservoir({SAMPLE_ROWS} rows) repeatable (13)"
        ).df()
        for c in cols:
            findings.extend(judge_column(schema, table, c, sample[c]))
    return findings


DDL = """
create table if not exists meta.classification_finding (
    run_id      varchar not null,
    schema_name varchar not null,
    table_name  varchar not null,
    column_name varchar not null,
    declared    varchar not null,
    kind        varchar not null,
    warranted   varchar not null,
    share       double not null,
    sampled     bigint not null,
    examples    varchar not null,   -- masked
    found_at    timestamp not null
);
create table if not exists meta.classification_run (   -- one row per scan, findings or none
    run_id        varchar primary key,
    findings      bigint not null,
    classified_at timestamp not null
)
"""


def record(con: duckdb.DuckDBPyConnection, run_id: str, findings: list[Finding]) -> None:
    """Keep a run's findings in meta (replacing an earlier attempt of the same run)."""
    from etl import meta

    con.execute(DDL)
    con.execute("delete from meta.classification_finding where run_id = ?", [run_id])
    con.execute(
        "insert or replace into meta.classification_run values (?, ?, ?)", [run_id, len(findings), meta.now()]
    )
    for f in findings:
        con.execute(
            "insert into meta.classification_finding values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                f.schema,
                f.table,
                f.column,
                f.declared,
                f.kind,
                f.warranted,
                f.share,
                f.sampled,
                "; ".join(f.examples),
                meta.now(),
            ],
        )
