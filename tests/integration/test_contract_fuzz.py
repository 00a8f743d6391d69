"""A contract that passes the check either runs or fails with a GovbaseError naming the
source (and the file, when a file is the problem): never an unexpected exception.

Hypothesis generates source contracts (kind csv/json/xml/fixed_width/excel, delimiter,
declared and written encoding, header and skip rows, chunk size, field maps into a shared
table with transforms, several fields into one column with or without a combine rule,
schema-drift policy) and small files for them (written to a landing folder in code,
sometimes missing a declared field, with an undeclared one, ragged rows or another
encoding than declared). Each example ends in exactly one of three ways:
- the contract is refused when it loads (ContractError naming its file), as `govbase
  contracts` would refuse it;
- the run of all four stages succeeds and reconciles (every delivered row is loaded or
  quarantined);
- the run raises a GovbaseError naming the source (and, from extract, the file), and no
  reader fell into its "unexpected error" branch (meta.source_error kind internal).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
import xlsxwriter
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from etl import meta
from etl.config import Settings, get_settings
from etl.contracts import COMBINE_RULES, KNOWN_TRANSFORMS, load_contracts
from etl.errors import ContractError, GovbaseError
from etl.pipeline import run_source

pytestmark = pytest.mark.integration

REPO_SCHEMAS = get_settings().schemas_dir
REPO_EXPECTATIONS = get_settings().expectations_dir
DATE = "2026-11-01"
SOURCE = "fuzz_src"
TABLES = {
    name: [
        c["name"]
        for c in yaml.safe_load((REPO_SCHEMAS / "shared" / f"{name}.yml").read_text())["columns"]
        if c["name"] != "record_key"  # filled from the source's record_key, never mapped
    ]
    for name in ("person", "legal_entity", "economic_indicator")
}
#: unpivot patterns over delivered field names: good ones, and some a contract must refuse
UNPIVOT_PATTERNS = ["^(\\d{4})年$", "(\\d+)", "^(.)", "年$", "(", "^(\\d{4})?年$"]
#: delivered field names, valid as CSV/Excel headers, JSON keys (dotted: nested) and XML elements
FIELD_NAMES = [
    "id",
    "xm",
    "姓",
    "名",
    "地址",
    "电话",
    "出生日期",
    "性别",
    "状态",
    "zj.hm",
    "资本",
    "2019年",
    "2020年",
]
#: values as departments deliver them, good and bad
VALUES = [
    "11010519491231002X",
    "110105194912310021",
    "11010519491231002x",
    "１１０１０５１９４９１２３１００２Ｘ",
    "91350100M000100Y43",
    "张三",
    "欧阳",
    " 李 四 ",
    "",
    "   ",
    "1985-03-02",
    "1985年3月2日",
    "19850302",
    "2099-01-01",
    "1985-02-30",
    "男",
    "2",
    "13800138000",
    "+86 138-0013-8000",
    "abc",
    "100万元",
    "1.5亿",
    "-",
    "是",
    "北京市朝阳区建国路88号",
    "110105",
    "存续",
    "有限责任公司",
    'say "hi"',
    "a,b",
    "x\ty",
    "\u200b",
    "—",
    "1e400",
]
DELIMITERS = [",", "\t", "|", ";", "；", " ", "\x01", ", ", "||", "", "\n", '"', "a"]
ENCODINGS = ["auto", "utf-8", "utf-8-sig", "gbk", "gb18030"]
KINDS = ["csv", "json", "xml", "fixed_width", "excel"]
EXT = {"csv": "csv", "json": "jsonl", "xml": "xml", "fixed_width": "txt", "excel": "xlsx"}
TRANSFORMS = sorted(KNOWN_TRANSFORMS)


def _fields(draw: st.DrawFn, kind: str, names: list[str], columns: list[str]) -> list[dict[str, Any]]:
    fields = []
    start = 0
    for n in names:
        f: dict[str, Any] = {
            "name": n,
            "to": draw(st.sampled_from([*columns, None])),
            "transforms": draw(st.lists(st.sampled_from(TRANSFORMS), max_size=2)),
            "required": draw(st.booleans()),
        }
        if kind == "fixed_width":
            f["start"], f["width"] = start, draw(st.integers(1, 12))
            start += f["width"] + draw(st.integers(0, 2))
        fields.append(f)
    return fields


def _combine(draw: st.DrawFn, fields: list[dict[str, Any]], columns: list[str]) -> dict[str, Any]:
    combine = {}
    for col in columns:
        fed = [f for f in fields if f["to"] == col]
        if len(fed) > 1 and draw(st.integers(0, 4)):  # mostly a rule; sometimes none (refused)
            rule = draw(st.sampled_from(sorted(COMBINE_RULES)))
            entry: dict[str, Any] = {"rule": rule}
            if rule == "join":
                entry["separator"] = draw(st.sampled_from(["", " ", "-", "|"]))
            if rule != "first_non_empty":
                entry["transforms"] = draw(st.lists(st.sampled_from(TRANSFORMS), max_size=1))
            combine[col] = entry
    return combine


def _options(draw: st.DrawFn, kind: str, table: str, names: list[str], columns: list[str]) -> dict[str, Any]:
    """The contract's keys besides fields: per kind, per table, batch checks."""
    out: dict[str, Any] = {}
    if kind == "xml":
        out["record_tag"] = "record"
    if kind == "csv":
        out["delimiter"] = draw(st.sampled_from(DELIMITERS))
    if kind == "excel":
        out["sheet"] = draw(st.sampled_from([0, 1, "Sheet1", "人员"]))
    if table != "economic_indicator" and draw(st.integers(0, 9)):  # mostly declared: the table has the column
        out["record_key"] = draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
    if table == "economic_indicator" and draw(st.booleans()):
        out["unpivot"] = {
            "pattern": draw(st.sampled_from(UNPIVOT_PATTERNS)),
            "variable_to": draw(st.sampled_from(["period", "indicator_name", "value"])),
            "value_to": draw(st.sampled_from(["value", "unit", "period"])),
            "value_transforms": draw(st.lists(st.sampled_from(TRANSFORMS), max_size=1)),
        }
    if draw(st.integers(0, 3)) == 0:
        out["max_null_rate"] = {
            draw(st.sampled_from(columns)): draw(st.sampled_from([0.0, 0.5, 1.0, -1.0, 2.0]))
        }
    if draw(st.integers(0, 5)) == 0:
        out["volume_band"] = {"min_ratio": draw(st.sampled_from([0.0, 0.5, 3.0])), "max_ratio": 2.0}
    return out


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(KINDS))
    table = draw(st.sampled_from(sorted(TABLES)))
    names = draw(st.lists(st.sampled_from(FIELD_NAMES), min_size=1, max_size=5, unique=True))
    if kind == "xml":
        names = [n.replace(".", "_") for n in names]
    header_rows = draw(st.integers(0, 2)) if kind in ("csv", "excel", "fixed_width") else 1
    if header_rows == 2:
        names = [f"组/{n}" for n in names]
    # a few columns only, so that several fields often share one
    columns = draw(st.lists(st.sampled_from(TABLES[table]), min_size=1, max_size=3, unique=True))
    fields = _fields(draw, kind, names, columns)
    contract: dict[str, Any] = {
        "name": SOURCE,
        "department": "fuzz",
        "department_name": "测试局",
        "description": "generated",
        "table": table,
        "kind": kind,
        "location": f"*.{EXT[kind]}",
        "encoding": draw(st.sampled_from(ENCODINGS)),
        "header_rows": header_rows,
        "skip_rows": draw(st.integers(0, 2)) if kind in ("csv", "excel", "fixed_width") else 0,
        "schema_drift": draw(st.sampled_from(["fail", "warn"])),
        "chunk_rows": draw(st.sampled_from([1, 2, 100_000])),
        "fields": fields,
        **_options(draw, kind, table, names, columns),
    }
    combine = _combine(draw, fields, columns)
    if combine:
        contract["combine"] = combine
    return {"contract": contract, **_delivery(draw, contract)}


def _delivery(draw: st.DrawFn, contract: dict[str, Any]) -> dict[str, Any]:
    """The file's columns (a declared one may be missing, an undeclared one added), rows,
    encoding (sometimes not the declared one) and whether its first row is ragged."""
    delivered = [f["name"] for f in contract["fields"]]
    if len(delivered) > 1 and draw(st.integers(0, 5)) == 0:
        delivered.remove(draw(st.sampled_from(delivered)))
    if draw(st.integers(0, 5)) == 0:
        delivered.append("组/新字段" if contract["header_rows"] == 2 else "新字段")
    cell = st.sampled_from(VALUES)
    if contract["kind"] in ("json", "excel"):  # typed cells as those formats carry them
        cell = st.one_of(
            cell, st.sampled_from([0, 1.1, 110105194912310021, 45292, True, None, [1, "a"], {"k": 1}])
        )
    rows = draw(st.lists(st.lists(cell, min_size=len(delivered), max_size=len(delivered)), max_size=5))
    declared = contract["encoding"] if contract["encoding"] != "auto" else "utf-8"
    file_encoding = draw(
        st.sampled_from(["utf-8", "utf-8-sig", "gbk", "gb18030"])
        if draw(st.integers(0, 3)) == 0
        else st.just(declared)
    )
    return {
        "delivered": delivered,
        "rows": rows,
        "encoding": file_encoding,
        "ragged": draw(st.integers(0, 5)) == 0,
    }


def _encode(text: str, encoding: str) -> bytes:
    try:
        return text.encode(encoding)
    except UnicodeEncodeError:  # U+200B has no GBK code: such a file is GB18030
        return text.encode("gb18030")


def _csv(path: Path, c: dict[str, Any], cols: list[str], lines: list[list[Any]], encoding: str) -> None:
    buf = io.StringIO()
    csv.writer(buf, delimiter=c.get("delimiter", ","), lineterminator="\n").writerows(lines)
    path.write_bytes(_encode(buf.getvalue(), encoding))


def _excel(path: Path, c: dict[str, Any], cols: list[str], lines: list[list[Any]], encoding: str) -> None:
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet()
    for i, r in enumerate(lines):
        for j, v in enumerate(r):
            if isinstance(v, bool):
                ws.write_boolean(i, j, v)
            elif isinstance(v, int | float):
                ws.write_number(i, j, v)
            elif v is not None:
                ws.write_string(i, j, str(v))
    wb.close()


def _json(path: Path, c: dict[str, Any], cols: list[str], rows: list[list[Any]], encoding: str) -> None:
    lines = []
    for r in rows:
        obj: dict[str, Any] = {}
        for name, v in zip(cols, r, strict=False):
            *parents, leaf = name.split(".")
            at = obj
            for p in parents:
                at = at.setdefault(p, {})
            at[leaf] = v
        lines.append(json.dumps(obj, ensure_ascii=False))
    path.write_bytes(_encode("\n".join(lines) + "\n", encoding))


def _xml(path: Path, c: dict[str, Any], cols: list[str], rows: list[list[Any]], encoding: str) -> None:
    recs = "".join(
        "<record>" + "".join(f"<{n}>{escape(v)}</{n}>" for n, v in zip(cols, r, strict=False)) + "</record>\n"
        for r in rows
    )
    path.write_bytes(_encode(f'<?xml version="1.0"?>\n<root>\n{recs}</root>\n', encoding))


def _fixed_width(
    path: Path, c: dict[str, Any], cols: list[str], lines: list[list[Any]], encoding: str
) -> None:
    spans = {f["name"]: (f["start"], f["width"]) for f in c["fields"]}
    n_head = c.get("skip_rows", 0) + c.get("header_rows", 1)
    out = ["".join(str(x) for x in h) for h in lines[:n_head]]
    for r in lines[n_head:]:
        line = [" "] * max(a + w for a, w in spans.values())
        for name, v in zip(cols, r, strict=False):
            if name in spans:  # every declared field at its span
                a, w = spans[name]
                line[a : a + w] = list(v.replace("\n", " ").ljust(w)[:w])
        out.append("".join(line))
    path.write_bytes(_encode("\n".join(out) + "\n", encoding))


WRITERS = {"csv": _csv, "excel": _excel, "json": _json, "xml": _xml, "fixed_width": _fixed_width}


def write_delivery(path: Path, case: dict[str, Any]) -> None:
    c, cols, rows = case["contract"], case["delivered"], case["rows"]
    kind = c["kind"]
    if case["ragged"] and rows:
        rows = [rows[0][:-1], *rows[1:]] if kind != "fixed_width" else [[v[:1] for v in rows[0]], *rows[1:]]
    if kind in ("json", "xml"):  # no header or skipped lines
        WRITERS[kind](path, c, cols, rows, case["encoding"])
        return
    junk = [["说明：测试导出"]] * c.get("skip_rows", 0)
    header_rows = c.get("header_rows", 1)
    header: list[list[str]] = [cols] if header_rows == 1 else []
    if header_rows == 2:  # a merged group cell over the leaves
        header = [["组"] + [""] * (len(cols) - 1), [n.split("/", 1)[1] for n in cols]]
    WRITERS[kind](path, c, cols, [*junk, *header, *rows], case["encoding"])


def project(root: Path, contract: dict[str, Any]) -> tuple[Settings, Path]:
    """A project under `root` (the repository's shared tables, code lists and suites, and
    this one source contract) with its own GOVBASE_HOME; (settings, contract path)."""
    proj = root / "project"
    (proj / "schemas" / "sources").mkdir(parents=True)
    for sub in ("shared", "reference"):
        shutil.copytree(REPO_SCHEMAS / sub, proj / "schemas" / sub)
    shutil.copytree(REPO_EXPECTATIONS, proj / "expectations")
    contract_path = proj / "schemas" / "sources" / f"{SOURCE}.yml"
    contract_path.write_text(yaml.safe_dump(contract, allow_unicode=True), encoding="utf-8")
    return Settings(home=root / "home", project_dir=proj), contract_path


def run_case(case: dict[str, Any]) -> str:
    """'refused', 'ran' or 'failed' (asserting each is a clean way to end)."""
    with tempfile.TemporaryDirectory(prefix="govbase-fuzz-") as tmp:
        s, contract_path = project(Path(tmp), case["contract"])
        try:
            load_contracts(s.schemas_dir)
        except ContractError as exc:
            assert exc.file == str(contract_path), exc
            return "refused"
        landing = s.source_landing(SOURCE)
        landing.mkdir(parents=True)
        file_name = f"delivery_20261101.{EXT[case['contract']['kind']]}"
        write_delivery(landing / file_name, case)
        outcome = "ran"
        try:
            run_source(SOURCE, DATE, f"fuzz-{uuid.uuid4().hex[:8]}", settings=s)
        except GovbaseError as exc:
            message = str(exc)
            assert SOURCE in message, message
            assert "unexpected" not in message, message
            if message.startswith("extract failed"):
                assert file_name in message, message
            outcome = "failed"
        with meta.connect(s, read_only=True) as con:
            internal = con.execute("select problem from meta.source_error where kind = 'internal'").fetchall()
            assert not internal, internal
            if outcome == "ran":
                balanced = con.execute("select balanced from meta.reconciliation").fetchall()
                assert balanced == [(True,)], balanced
        return outcome


FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(case=cases())
def test_generated_contract_runs_or_fails_cleanly(case: dict[str, Any]) -> None:
    event(run_case(case))


@pytest.mark.slow
@settings(FUZZ, max_examples=400)
@given(case=cases())
def test_generated_contract_runs_or_fails_cleanly_many(case: dict[str, Any]) -> None:
    event(run_case(case))


def test_the_generator_reaches_every_ending() -> None:
    """The property is not vacuous: fixed cases end in each of the three ways."""
    base = {
        "name": SOURCE,
        "department": "fuzz",
        "department_name": "测试局",
        "description": "generated",
        "table": "person",
        "kind": "csv",
        "location": "*.csv",
        "record_key": ["id"],
        "fields": [
            {"name": "id", "to": "resident_id", "transforms": ["resident_id"]},
            {"name": "姓", "to": "name", "transforms": ["name"]},
            {"name": "名", "to": "name", "transforms": ["name"]},
        ],
        "combine": {"name": {"rule": "join", "separator": ""}},
    }
    rows = [["11010519491231002X", "张", "三"]]
    ok = {
        "contract": base,
        "delivered": ["id", "姓", "名"],
        "rows": rows,
        "encoding": "utf-8",
        "ragged": False,
    }
    assert run_case(ok) == "ran"
    assert run_case({**ok, "contract": {**base, "delimiter": ", "}}) == "refused"
    assert run_case({**ok, "contract": {k: v for k, v in base.items() if k != "combine"}}) == "refused"
    assert run_case({**ok, "delivered": ["id", "姓"], "rows": [r[:2] for r in rows]}) == "failed"


def test_disagreeing_fields_are_recorded_masked_and_the_row_loaded(tmp_path: Path) -> None:
    """first_non_empty through the real stages: the row loads with the first value, the
    other is a finding in meta.source_error naming source, file and row, masked."""
    contract = {
        "name": SOURCE,
        "department": "fuzz",
        "department_name": "测试局",
        "description": "two phone fields",
        "table": "person",
        "kind": "csv",
        "location": "*.csv",
        "record_key": ["id"],
        "fields": [
            {"name": "id", "to": "resident_id", "transforms": ["resident_id"]},
            {"name": "姓", "to": "name", "transforms": ["name"]},
            {"name": "名", "to": "name", "transforms": ["name"]},
            {"name": "手机", "to": "phone", "transforms": ["phone"]},
            {"name": "联系电话", "to": "phone", "transforms": ["phone"]},
        ],
        "combine": {"name": {"rule": "join", "separator": ""}, "phone": {"rule": "first_non_empty"}},
    }
    s, _ = project(tmp_path, contract)
    s.source_landing(SOURCE).mkdir(parents=True)
    (s.source_landing(SOURCE) / "p.csv").write_text(
        "id,姓,名,手机,联系电话\n"
        "11010519491231002X,张,三,13800138000,13800138000\n"
        "440524188001010014,欧阳,修,13800138000,13912345678\n"
        "110108198001010015,李,四,,13700137000\n",
        encoding="utf-8",
    )
    run_source(SOURCE, DATE, "run-1", settings=s)
    with meta.connect(s, read_only=True) as con:
        loaded = con.execute("select name, phone from staging.person order by _row_number").fetchall()
        notes = con.execute(
            "select source, file, row_number, kind, problem from meta.source_error order by row_number"
        ).fetchall()
    assert loaded == [("张三", "13800138000"), ("欧阳修", "13800138000"), ("李四", "13700137000")]
    assert notes == [
        (
            SOURCE,
            "p.csv",
            2,
            "field_disagreement",
            "phone: 联系电话=139****5678 differs from 手机=138****8000 (kept)",
        )
    ]


@pytest.mark.parametrize("skip_rows", [2, 3])
def test_lines_skipped_before_the_header_are_no_open_quote(skip_rows: int) -> None:
    """Found by the property test: with skip_rows >= 2 (more than max_field_lines = 1) a
    file that takes the csv-module path (it holds a quote) failed with an unexpected
    _OpenQuote: the skipped lines were counted as one record's lines."""
    contract = {
        "name": SOURCE,
        "department": "fuzz",
        "department_name": "测试局",
        "description": "an export with a title block",
        "table": "person",
        "kind": "csv",
        "location": "*.csv",
        "skip_rows": skip_rows,
        "record_key": ["id"],
        "fields": [
            {"name": "id", "to": "resident_id", "transforms": ["resident_id"]},
            {"name": "住址", "to": "address"},
        ],
    }
    rows = [["11010519491231002X", '北京市"朝阳区"建国路88号']]
    case = {
        "contract": contract,
        "delivered": ["id", "住址"],
        "rows": rows,
        "encoding": "utf-8",
        "ragged": False,
    }
    assert run_case(case) == "ran"
