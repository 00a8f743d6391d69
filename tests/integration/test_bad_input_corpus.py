"""The bad-input corpus: kinds of broken delivery, two or three variants each, run through
the whole ingest (extract, normalize, validate, load) in a real warehouse.

Each variant is a small file built here, of realistic rows with valid resident IDs
(ground truth: every base row is good, so every quarantined row is the injected
defect). It asserts its exact outcome, one of:
- a failed file: the error's kind and text, naming the file and the physical line;
- quarantined rows: record number -> reason code (and the detail's start);
and always the balance: records delivered (counted from the file's lines) =
loaded + quarantined, and a failed file publishes nothing.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import xlsxwriter

from etl.config import Settings
from etl.errors import GovbaseError
from etl.meta import connect
from etl.pipeline import STAGES, run_stage

pytestmark = pytest.mark.integration

_REPO = Path(__file__).resolve().parents[2]
_W = [2 ** (17 - i) % 11 for i in range(17)]
_NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强", "周婷", "吴刚", "徐丽", "孙浩"]
_STREETS = ["朝阳路", "建国门外大街", "中山北路", "人民南路", "解放西路", "长江路"]

CSV_FIELDS = ["公民身份号码", "姓名", "性别", "出生日期", "住址", "人员编号"]


def resident_id(i: int) -> tuple[str, str, str]:
    """(ID, gender code, birth date) of person i: valid checksum, birth and gender agree."""
    born = dt.date(1950, 1, 1) + dt.timedelta(days=97 * i)
    gender = "1" if i % 2 else "2"
    seq = f"{(i % 49) * 2 + (1 if gender == '1' else 2):03d}"
    body = f"110105{born:%Y%m%d}{seq}"
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, _W, strict=True)) % 11]
    return body + check, gender, born.isoformat()


def person(i: int) -> list[str]:
    rid, gender, born = resident_id(i)
    address = f"北京市东城区{_STREETS[i % len(_STREETS)]}{i + 1}号"
    return [rid, _NAMES[i % len(_NAMES)], gender, born, address, f"P{i:08d}"]


def csv_text(rows: list[list[str]] | None = None, n: int = 12, header: list[str] | None = None) -> str:
    rows = rows if rows is not None else [person(i) for i in range(n)]
    return ",".join(header or CSV_FIELDS) + "\n" + "".join(",".join(r) + "\n" for r in rows)


def csv_lines(n: int = 12) -> list[str]:
    return [",".join(person(i)) + "\n" for i in range(n)]


def jsonl(records: list[Any]) -> bytes:
    return "".join(
        (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records
    ).encode()


def json_record(i: int) -> dict[str, Any]:
    rid, gender, born = resident_id(i)
    return {
        "record_id": f"HR{i:09d}",
        "patient": {"id_card": rid, "name": _NAMES[i % len(_NAMES)], "sex": gender, "birth_date": born},
        "vital_status": {"alive": True},
    }


def xlsx(build: Callable[[Any], None]) -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_numbers": False})
    ws = wb.add_worksheet()
    ws.write_row(0, 0, CSV_FIELDS)
    build(ws)
    wb.close()
    return buf.getvalue()


def xlsx_rows(ws: Any, n: int = 12, skip: tuple[int, ...] = ()) -> None:
    for i in range(n):
        if i not in skip:
            for j, v in enumerate(person(i)):
                ws.write_string(i + 1, j, v)


# ------------------------------------------------------------------ the corpus sources
_CSV = {
    "table": "person",
    "kind": "csv",
    "location": "*.csv",
    "schema_drift": "fail",
    "fields": [
        {"name": "公民身份号码", "to": "resident_id", "transforms": ["resident_id"]},
        {"name": "姓名", "to": "name", "transforms": ["name"]},
        {"name": "性别", "to": "gender", "transforms": ["gender"]},
        {"name": "出生日期", "to": "birth_date", "transforms": ["date"]},
        {"name": "住址", "to": "address", "transforms": ["address"]},
        {"name": "人员编号", "to": None},
    ],
    "record_key": ["人员编号"],
}
SOURCES: dict[str, dict[str, Any]] = {
    "bad_csv": {**_CSV, "encoding": "utf-8"},
    "bad_gbk": {**_CSV, "encoding": "gbk"},
    "bad_auto": {**_CSV, "encoding": "auto"},
    "bad_xlsx": {**_CSV, "kind": "excel", "location": "*.xlsx"},
    "bad_json": {
        "table": "person",
        "kind": "json",
        "location": "*.jsonl",
        "encoding": "auto",
        "schema_drift": "warn",
        "record_key": ["record_id"],
        "fields": [
            {"name": "record_id", "to": None},
            {"name": "patient.id_card", "to": "resident_id", "transforms": ["resident_id"]},
            {"name": "patient.name", "to": "name", "transforms": ["name"]},
            {"name": "patient.sex", "to": "gender", "transforms": ["gender"]},
            {"name": "patient.birth_date", "to": "birth_date", "transforms": ["date"]},
            {"name": "vital_status.alive", "to": "alive", "transforms": ["boolean"]},
        ],
    },
    "bad_xml": {
        "table": "person",
        "kind": "xml",
        "location": "*.xml",
        "encoding": "auto",
        "record_tag": "record",
        "record_key": ["djbh"],
        "fields": [
            {"name": "djbh", "to": None},
            {"name": "sfzh", "to": "resident_id", "transforms": ["resident_id"]},
            {"name": "xm", "to": "name", "transforms": ["name"]},
        ],
    },
    "bad_fixed": {
        "table": "person",
        "kind": "fixed_width",
        "location": "*.txt",
        "encoding": "gb18030",
        "header_rows": 0,
        "record_key": ["JLBH"],
        "fields": [
            {"name": "JLBH", "to": None, "start": 0, "width": 6},
            {"name": "sfzh", "to": "resident_id", "transforms": ["resident_id"], "start": 6, "width": 18},
            {"name": "xm", "to": "name", "transforms": ["name"], "start": 24, "width": 4},
        ],
    },
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder: the repository's shared tables, reference data and suites, and the
    corpus sources (written as YAML, as a department's contract is)."""
    import yaml

    root = tmp_path_factory.mktemp("corpus_project")
    for part in ("schemas/shared", "schemas/reference", "expectations"):
        shutil.copytree(_REPO / part, root / part)
    (root / "schemas" / "sources").mkdir()
    for name, body in SOURCES.items():
        doc = {
            "name": name,
            "department": "test",
            "department_name": "测试部门",
            "description": f"bad-input corpus source {name}",
            **body,
        }
        (root / "schemas" / "sources" / f"{name}.yml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    return root


@dataclass
class Outcome:
    """What one run of one delivery came to, read back from the warehouse catalog."""

    failed: str | None  # the error of the failed stage, if any
    status: str | None  # the extract batch's status
    delivered: int
    loaded: int
    quarantined: int
    errors: list[tuple[Any, ...]] = field(default_factory=list)  # (kind, line, record, problem)
    reasons: dict[int, tuple[str, str]] = field(default_factory=dict)  # record -> (reason, detail)
    balanced: bool | None = None
    recon_status: str | None = None


def ingest(project: Path, home: Path, source: str, name: str, data: bytes) -> Outcome:
    settings = Settings(home=home, project_dir=project)
    landing = settings.source_landing(source)
    landing.mkdir(parents=True, exist_ok=True)
    (landing / name).write_bytes(data)
    failed = None
    for stage in STAGES:
        try:
            run_stage(stage, source, "2026-11-01", "run-corpus", settings=settings)
        except GovbaseError as exc:
            failed = str(exc)
            break
    with connect(settings) as con:
        b = con.execute(
            "select status, coalesce(delivered, 0) from meta.extract_batch where source = ?", [source]
        ).fetchall()
        errs = con.execute(
            "select kind, line_number, row_number, problem from meta.source_error where source = ? "
            "order by line_number nulls first, row_number, kind",
            [source],
        ).fetchall()
        rec = con.execute(
            "select coalesce(loaded, 0), coalesce(quarantined, 0), balanced, status "
            "from meta.reconciliation where source = ?",
            [source],
        ).fetchall()
        reasons: dict[int, tuple[str, str]] = {}
        if con.execute(
            "select count(*) from information_schema.tables where table_schema = 'quarantine' "
            "and table_name = 'person'"
        ).fetchall()[0][0]:
            for row_number, text, details in con.execute(
                "select _row_number, reasons, details from quarantine.person where _source = ? "
                "order by _row_number",
                [source],
            ).fetchall():
                reasons[int(row_number)] = (text.split(",")[0], details or "")
    status, delivered = b[0] if b else (None, 0)
    loaded, quarantined, balanced, rstatus = rec[0] if rec else (0, 0, None, None)
    return Outcome(failed, status, delivered, loaded, quarantined, errs, reasons, balanced, rstatus)


# ------------------------------------------------------------------ the variants
@dataclass(frozen=True)
class Case:
    kind: str
    variant: str
    source: str
    file: str
    data: bytes
    #: ("fail", error kind, text the error holds), ("quarantine", {record: (reason, detail start)}),
    #: or ("ok", warning kind or None): everything loaded
    expect: tuple[Any, ...]


CASES: list[Case] = []


def case(kind: str, variant: str, source: str, data: bytes | str, expect: tuple[Any, ...]) -> None:
    file = {"bad_xlsx": "a.xlsx", "bad_json": "a.jsonl", "bad_xml": "a.xml", "bad_fixed": "a.txt"}.get(
        source, "a.csv"
    )
    enc = "gbk" if source == "bad_gbk" else "utf-8"
    CASES.append(
        Case(kind, variant, source, file, data.encode(enc) if isinstance(data, str) else data, expect)
    )


def q(**rows: tuple[str, str]) -> tuple[str, dict[int, tuple[str, str]]]:
    """Quarantine expectation: q(r5=("reason", "detail start")) for record 5."""
    return ("quarantine", {int(k[1:]): v for k, v in rows.items()})


def row(i: int, col: int | None = None, value: str = "") -> str:
    """The CSV line of person i, field `col` replaced by `value`."""
    f = person(i)
    if col is not None:
        f[col] = value
    return ",".join(f) + "\n"


def edit(edits: dict[int, str], n: int = 12, eol: str = "\n") -> str:
    """The corpus CSV (header + n persons) with line i+2 (person i) replaced."""
    lines = [row(i) for i in range(n)]
    for i, text in edits.items():
        lines[i] = text
    return (",".join(CSV_FIELDS) + "\n" + "".join(lines)).replace("\n", eol)


def utf8_row(i: int) -> bytes:
    """Person i's line in UTF-8 whose Chinese (李四) also decodes as GBK, into other characters."""
    rid, gender, born = resident_id(i)
    return f"{rid},李四,{gender},{born},No. {i} Dongcheng,P{i:08d}\n".encode()


def xml(records: list[str]) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<records>\n' + "".join(records) + "</records>\n"
    ).encode()


def xml_record(i: int, extra: str = "") -> str:
    return f"  <record><djbh>DJ{i:06d}</djbh><sfzh>{resident_id(i)[0]}</sfzh><xm>{_NAMES[i % 12]}</xm>{extra}</record>\n"


def fixed(i: int) -> str:
    return f"{i:06d}{resident_id(i)[0]}{_NAMES[i % 12]:\u3000<4}\n"


def with_blank_json(recs: list[Any]) -> bytes:
    return jsonl([*recs[:2], "", *recs[2:]])


def _build() -> None:
    p = person
    other_check = lambda rid: rid[:17] + ("0" if rid[17] != "0" else "1")  # noqa: E731
    # fmt: off
    # -- quoting: the line where a quote opened is kept, flagged; no row vanishes
    case("unbalanced_quote", "never closed", "bad_csv", edit({4: row(4, 1, '"' + p(4)[1])}),
         q(r5=("unbalanced_quote", "unbalanced_quote: a quote opened on this line is still open after 1 line(s)")))
    case("unbalanced_quote", "closed 5 lines on", "bad_gbk", edit({2: row(2, 4, '"' + p(2)[4]), 7: row(7, 4, p(7)[4] + '"')}),
         q(r3=("unbalanced_quote", "unbalanced_quote: a quote opened on this line is still open")))
    case("unbalanced_quote", "text after a closing quote", "bad_csv", edit({6: row(6, 1, '"' + p(6)[1] + '"x')}),
         q(r7=("unbalanced_quote", "unbalanced_quote: malformed quoting")))
    case("quoted_fields", "quoted, a delimiter inside", "bad_csv", edit({3: row(3, 4, '"北京市,东城区"')}), ("ok", None))
    case("quoted_fields", "doubled quotes inside", "bad_gbk", edit({3: row(3, 4, '"北京市""东城区""1号"')}), ("ok", None))
    # -- ragged rows (CRLF files too: line numbers stay physical)
    case("ragged_row", "extra field", "bad_csv", edit({3: row(3, 4, p(3)[4] + ",多余")}),
         q(r4=("malformed_row", "ragged: expected 6 fields, got 7")))
    case("ragged_row", "missing field", "bad_gbk", edit({9: ",".join(p(9)[:5]) + "\n"}),
         q(r10=("malformed_row", "ragged: expected 6 fields, got 5")))
    case("ragged_row", "CRLF file", "bad_csv", edit({9: ",".join(p(9)[:5]) + "\n"}, eol="\r\n"),
         q(r10=("malformed_row", "ragged: expected 6 fields, got 5")))
    # -- invisible characters: kept as delivered, the row quarantined
    for code, ch in (("U+202E", "\u202e"), ("U+0000", "\x00"), ("U+2066", "\u2066")):
        case("control_character", code, "bad_csv", edit({5: row(5, 1, p(5)[1][0] + ch + p(5)[1][1:])}),
             q(r6=("control_character", f"control_character: {code} in 姓名")))
    case("control_character_json", "U+202E in a JSON name", "bad_json",
         jsonl([json_record(0), {**json_record(1), "patient": {**json_record(1)["patient"], "name": "张\u202e三"}}]),
         q(r2=("control_character", "control_character: U+202E in patient.name")))
    case("control_character_json", "NUL escaped in JSON", "bad_json",
         jsonl([json_record(0), '{"record_id": "HR1", "patient": {"id_card": "' + resident_id(1)[0] + '", "name": "张\\u0000三"}}']),
         q(r2=("control_character", "control_character: U+0000 in patient.name")))
    # -- over-long values
    case("field_too_long", "unquoted", "bad_csv", edit({1: row(1, 4, "长" * 10_001)}),
         q(r2=("field_too_long", "field_too_long: 住址 holds 10001 characters (max_field_chars 10000)")))
    case("field_too_long", "quoted", "bad_gbk", edit({1: row(1, 4, '"' + "长" * 10_050 + '"')}),
         q(r2=("field_too_long", "field_too_long: 住址 holds 10050 characters")))
    # -- identifiers and dates
    case("bad_resident_id", "checksum", "bad_csv", edit({2: row(2, 0, other_check(p(2)[0]))}),
         q(r3=("resident_id_checksum", "")))
    case("bad_resident_id", "too short", "bad_gbk", edit({2: row(2, 0, p(2)[0][:16])}), q(r3=("resident_id_format", "")))
    case("bad_resident_id", "letters", "bad_csv", edit({2: row(2, 0, "11010519AB0101001X")}), q(r3=("resident_id_format", "")))
    case("excel_destroyed_id", "exponent form", "bad_csv", edit({4: row(4, 0, "1.10105195101E+17")}),
         q(r5=("resident_id_destroyed", "")))
    case("excel_destroyed_id", "zero-filled", "bad_csv", edit({4: row(4, 0, p(4)[0][:15] + "000")}),
         q(r5=("resident_id_destroyed", "")))
    case("id_birth_mismatch", "birth a day later", "bad_csv",
         edit({6: row(6, 3, (dt.date.fromisoformat(p(6)[3]) + dt.timedelta(days=1)).isoformat())}),
         q(r7=("resident_id_birth_mismatch", "")))
    case("id_birth_mismatch", "birth a year earlier", "bad_gbk",
         edit({6: row(6, 3, str(int(p(6)[3][:4]) - 1) + p(6)[3][4:])}), q(r7=("resident_id_birth_mismatch", "")))
    case("id_gender_mismatch", "male ID, female", "bad_csv", edit({1: row(1, 2, "2")}), q(r2=("resident_id_gender_mismatch", "")))
    case("id_gender_mismatch", "female ID, male", "bad_gbk", edit({2: row(2, 2, "1")}), q(r3=("resident_id_gender_mismatch", "")))
    case("bad_date", "30 February", "bad_csv", edit({0: row(0, 3, "1990-02-30")}), q(r1=("invalid_date", "")))
    case("bad_date", "words", "bad_gbk", edit({0: row(0, 3, "不详")}), q(r1=("invalid_date", "")))
    case("bad_code", "gender 5", "bad_csv", edit({8: row(8, 2, "5")}), q(r9=("invalid_code", "")))
    case("bad_code", "gender as a word", "bad_gbk", edit({8: row(8, 2, "X")}), q(r9=("invalid_code", "")))
    # -- several defects in one delivery: each row its own reason, the rest loaded
    case("several_defects", "quote, NUL and checksum", "bad_csv",
         edit({1: row(1, 1, '"' + p(1)[1]), 4: row(4, 4, "北京\x00市"), 8: row(8, 0, other_check(p(8)[0]))}),
         q(r2=("unbalanced_quote", "unbalanced_quote"), r5=("control_character", "control_character: U+0000 in 住址"),
           r9=("resident_id_checksum", "")))
    case("several_defects", "ragged, bidi and a bad date (GB18030)", "bad_auto",
         edit({0: row(0, 4, p(0)[4] + ",多"), 5: row(5, 1, "李\u202d四"), 10: row(10, 3, "1990-13-01")}).encode("gb18030"),
         q(r1=("malformed_row", "ragged: expected 6 fields, got 7"), r6=("control_character", "control_character: U+202D"),
           r11=("invalid_date", "")))
    # -- files that fail as a whole, naming file and line
    case("empty_file", "0 bytes", "bad_csv", b"", ("fail", "empty", "empty file (0 bytes)"))
    case("empty_file", "blank lines only", "bad_csv", b"\n\n", ("fail", "empty", "empty file: no header row"))
    case("missing_column", "住址 absent", "bad_csv",
         csv_text([[*p(i)[:4], p(i)[5]] for i in range(3)], header=[*CSV_FIELDS[:4], "人员编号"]),
         ("fail", "missing_column", "missing declared column(s): 住址"))
    case("missing_column", "renamed", "bad_gbk", csv_text(header=[*CSV_FIELDS[:4], "地址", "人员编号"]),
         ("fail", "missing_column", "missing declared column(s): 住址"))
    case("schema_drift", "new column", "bad_csv", csv_text([[*p(i), "x"] for i in range(3)], header=[*CSV_FIELDS, "备注"]),
         ("fail", "schema_drift", "undeclared column(s) 备注"))
    case("schema_drift", "column renamed to a new name", "bad_gbk",
         csv_text([p(i) for i in range(3)], header=[*CSV_FIELDS[:5], "编号"]),
         ("fail", "missing_column", "missing declared column(s): 人员编号"))
    case("duplicate_column", "姓名 twice", "bad_csv", csv_text(header=[*CSV_FIELDS[:4], "姓名", "人员编号"]),
         ("fail", "duplicate_column", "duplicate column name(s): 姓名"))
    case("duplicate_column", "reserved lineage name", "bad_csv", csv_text(header=[*CSV_FIELDS[:5], "_row_number"]),
         ("fail", "schema_drift", "reserved for lineage: _row_number"))
    case("bad_encoding", "invalid GBK byte", "bad_gbk", csv_text().encode("gbk") + b"\xff\xfe,x\n",
         ("fail", "decode", "line 14: undecodable bytes b'\\xff' at byte offset"))
    case("bad_encoding", "UTF-16", "bad_auto", csv_text().encode("utf-16"), ("fail", "decode", "UTF-16LE byte order mark"))
    case("bad_encoding", "neither UTF-8 nor GB18030", "bad_auto", csv_text(n=3).encode() + b"9,\x81\x20,x\n",
         ("fail", "decode", "neither UTF-8 nor GB18030"))
    case("mixed_encoding", "UTF-8 line in GBK", "bad_gbk", csv_text(n=6).encode("gbk") + utf8_row(6) + row(7).encode("gbk"),
         ("fail", "mixed_encoding", "line 8: UTF-8 text at byte offset"))
    case("mixed_encoding", "UTF-8 line in auto (GB18030)", "bad_auto", csv_text(n=3).encode("gbk") + utf8_row(3),
         ("fail", "mixed_encoding", "line 5: UTF-8 text at byte offset"))
    # -- JSON
    recs = [json_record(i) for i in range(6)]
    dup = json.dumps(recs[2], ensure_ascii=False).replace('"name":', '"name": "假名", "name":', 1)
    case("json_duplicate_key", "patient.name twice", "bad_json", jsonl([*recs[:2], dup, *recs[3:]]),
         q(r3=("duplicate_json_key", "duplicate_json_key: patient.name")))
    dup_top = json.dumps(recs[1], ensure_ascii=False).replace('"record_id":', '"record_id": "HRX", "record_id":', 1)
    case("json_duplicate_key", "record_id twice", "bad_json", jsonl([recs[0], dup_top, *recs[2:]]),
         q(r2=("duplicate_json_key", "duplicate_json_key: record_id")))

    def patient(i: int, **kw: Any) -> dict[str, Any]:
        r = json_record(i)
        r["patient"].update(kw)
        return r

    case("json_wrong_type", "number for a name", "bad_json", jsonl([*recs[:3], patient(3, name=123), *recs[4:]]),
         q(r4=("wrong_json_type", "wrong_json_type: patient.name is a JSON number, not what its string column takes")))
    case("json_wrong_type", "list for a name", "bad_json", jsonl([*recs[:3], patient(3, name=["张", "三"]), *recs[4:]]),
         q(r4=("wrong_json_type", "wrong_json_type: patient.name is a JSON list")))
    case("json_wrong_type", "object for a date", "bad_json", jsonl([*recs[:3], patient(3, birth_date={"y": 1990}), *recs[4:]]),
         q(r4=("wrong_json_type", "wrong_json_type: patient.birth_date is a JSON object")))
    case("json_boolean_for_text", "true as a name", "bad_json", jsonl([*recs[:3], patient(3, name=True), *recs[4:]]),
         q(r4=("wrong_json_type", "wrong_json_type: patient.name is a JSON true/false")))
    case("json_boolean_for_text", "string 'true' for alive is text", "bad_json",
         jsonl([*recs[:3], {**recs[3], "vital_status": {"alive": "true"}}, *recs[4:]]), ("ok", None))
    case("json_number_literal", "1e400 as a name", "bad_json", jsonl([*recs[:3], '{"record_id": "HR3", "patient": {"id_card": "'
         + resident_id(3)[0] + '", "name": 1e400}}', *recs[4:]]),
         q(r4=("wrong_json_type", "wrong_json_type: patient.name is a JSON number")))
    digits = next(i for i in range(3, 40) if resident_id(i)[0].isdigit())  # an ID without X: a valid JSON number
    case("json_number_literal", "an 18-digit ID as a JSON number", "bad_json", jsonl([*recs[:3], '{"record_id": "HR3", "patient": {"id_card": '
         + resident_id(digits)[0] + "}}", *recs[4:]]),
         q(r4=("wrong_json_type", "wrong_json_type: patient.id_card is a JSON number")))
    case("json_nested_too_deep", "5000 levels", "bad_json",
         jsonl([recs[0], '{"record_id": "HR9", "x": ' + "[" * 5000 + "]" * 5000 + "}", *recs[1:]]),
         q(r2=("unreadable_record", "unreadable_record: nested deeper than 32 levels")))
    case("json_nested_too_deep", "40 objects deep", "bad_json", jsonl(['{"a": ' * 40 + "1" + "}" * 40, *recs]),
         q(r1=("unreadable_record", "unreadable_record: nested deeper than 32 levels")))
    case("json_invalid_line", "truncated line", "bad_json", with_blank_json([*recs[:2], '{"record_id": "HR', *recs[2:]]),
         ("fail", "invalid_json", "line 4 (record 3): not valid JSON"))
    case("json_invalid_line", "an array line", "bad_json", jsonl([*recs[:2], "[1, 2]"]),
         ("fail", "invalid_json", "line 3: a JSON list, not an object"))
    # -- Excel
    case("xlsx_uncalculated_formula", "=1+1 cached 0", "bad_xlsx", xlsx(lambda ws: (xlsx_rows(ws), ws.write_formula(3, 4, "=1+1"))),
         q(r3=("invalid_cell", "invalid_cell: E4 holds the formula =1+1 whose value was never calculated")))
    case("xlsx_uncalculated_formula", "a formula for the name", "bad_xlsx",
         xlsx(lambda ws: (xlsx_rows(ws), ws.write_formula(7, 1, '="张"&"三"'))),
         q(r7=("invalid_cell", "invalid_cell: B8 holds the formula =\"张\"&\"三\"")))
    case("xlsx_error_cell", "#DIV/0!", "bad_xlsx", xlsx(lambda ws: (xlsx_rows(ws), ws.write_formula(5, 4, "=1/0", None, "#DIV/0!"))),
         q(r5=("invalid_cell", "invalid_cell: E6 holds the error #DIV/0!")))
    case("xlsx_error_cell", "#N/A", "bad_xlsx", xlsx(lambda ws: (xlsx_rows(ws), ws.write_formula(2, 1, "=NA()", None, "#N/A"))),
         q(r2=("invalid_cell", "invalid_cell: B3 holds the error #N/A")))
    case("xlsx_number_id", "18-digit ID as a number", "bad_xlsx",
         xlsx(lambda ws: (xlsx_rows(ws), ws.write_number(4, 0, float(p(3)[0][:17] + "0")))), q(r4=("resident_id_destroyed", "")))
    case("xlsx_number_id", "15-digit ID as a number", "bad_xlsx",
         xlsx(lambda ws: (xlsx_rows(ws), ws.write_number(4, 0, float(p(3)[0][:6] + p(3)[0][8:17])))), ("ok", None))
    case("xlsx_merged_cell", "address merged over 2 rows", "bad_xlsx",
         xlsx(lambda ws: (xlsx_rows(ws, skip=(4, 5)), *(ws.write_string(r, j, v) for r in (5, 6) for j, v in enumerate(p(r - 1)) if j != 4),
                          ws.merge_range(5, 4, 6, 4, "北京市东城区朝阳路1号"))), ("ok", "merged_cell"))
    case("xlsx_merged_cell", "address merged over 3 rows", "bad_xlsx",
         xlsx(lambda ws: (xlsx_rows(ws, skip=(1, 2, 3)), *(ws.write_string(r, j, v) for r in (2, 3, 4) for j, v in enumerate(p(r - 1)) if j != 4),
                          ws.merge_range(2, 4, 4, 4, "北京市东城区朝阳路1号"))), ("ok", "merged_cell"))
    # -- XML
    xr = [xml_record(i) for i in range(6)]
    case("xml_malformed", "unclosed element", "bad_xml", xml([*xr[:3], "  <record><djbh>DJ9</djbh><xm>张三</record>\n", *xr[3:]]),
         ("fail", "malformed", "line 6"))
    case("xml_malformed", "undefined entity", "bad_xml", xml([*xr[:2], "  <record><djbh>DJ9</djbh><xm>&bogus;</xm></record>\n"]),
         ("fail", "malformed", "record 3: malformed XML"))
    case("xml_repeated_element", "two names", "bad_xml", xml([*xr[:2], xml_record(2, "<xm>李四</xm>"), *xr[3:]]),
         q(r3=("malformed_row", "repeated element(s): xm")))
    case("xml_repeated_element", "two IDs", "bad_xml", xml([*xr[:4], xml_record(4, f"<sfzh>{resident_id(5)[0]}</sfzh>")]),
         q(r5=("malformed_row", "repeated element(s): sfzh")))
    # -- fixed width
    fw = [fixed(i) for i in range(6)]
    case("fixed_width_line", "short line", "bad_fixed", "".join([*fw[:2], fw[2][:26] + "\n", *fw[3:]]).encode("gb18030"),
         q(r3=("malformed_row", "short line: expected 28 characters, got 26")))
    case("fixed_width_line", "long line", "bad_fixed", "".join([*fw[:2], fw[2][:-1] + "多余\n", *fw[3:]]).encode("gb18030"),
         q(r3=("malformed_row", "long line: expected 28 characters, got 30")))
    # -- what is fine: blank lines, a byte order mark, a header only
    case("blank_lines", "between rows", "bad_csv", edit({3: "\n" + row(3), 7: "\n\n" + row(7)}), ("ok", None))
    case("blank_lines", "CRLF blank lines", "bad_gbk", edit({3: "\n" + row(3)}, eol="\r\n"), ("ok", None))
    case("byte_order_mark", "UTF-8 BOM, declared utf-8", "bad_csv", b"\xef\xbb\xbf" + edit({}).encode(), ("ok", None))
    case("byte_order_mark", "UTF-8 BOM, auto", "bad_auto", b"\xef\xbb\xbf" + edit({}).encode(), ("ok", None))
    # fmt: on


_build()


@pytest.mark.parametrize("c", CASES, ids=[f"{c.kind}-{c.variant}" for c in CASES])
def test_bad_input(project: Path, tmp_path: Path, c: Case) -> None:
    out = ingest(project, tmp_path / "home", c.source, c.file, c.data)
    if c.expect[0] == "fail":
        _, kind, text = c.expect
        assert out.status == "failed" and out.failed is not None, out
        assert f"of {c.source}: file {c.file}: " in out.failed and text in out.failed, out.failed
        assert [e[0] for e in out.errors] == [kind], out.errors
        assert (out.loaded, out.quarantined) == (0, 0), "a failed file publishes nothing"
        return
    assert out.failed is None, out.failed
    if c.expect[0] == "quarantine":
        want = c.expect[1]
        got = {k: (v[0], v[1][: len(want[k][1])] if k in want else v[1]) for k, v in out.reasons.items()}
        assert got == want, out.reasons
        flagged = {e[2] for e in out.errors if e[0] not in ("schema_drift", "empty", "merged_cell")}
        assert flagged <= set(want), out.errors  # every row the extract flagged is quarantined
    else:
        assert out.reasons == {}, out.reasons
        warned = [e[0] for e in out.errors]
        assert warned == ([c.expect[1]] if c.expect[1] else []), out.errors
    # the balance: every delivered record loaded or quarantined, counted apart from the parser
    assert out.delivered > 0 and out.delivered == out.loaded + out.quarantined, out
    assert out.balanced and out.recon_status == "ok", out


def test_the_corpus_is_broad() -> None:
    kinds: dict[str, int] = {}
    for c in CASES:
        kinds[c.kind] = kinds.get(c.kind, 0) + 1
    assert len(kinds) >= 30 and min(kinds.values()) >= 2, kinds


# ------------------------------------------------------------------ a warehouse that cannot be written
@pytest.mark.parametrize("taken", ["raw", "raw/bad_csv"])
def test_raw_layer_that_cannot_be_written_stops_the_extract_clearly(
    project: Path, tmp_path: Path, taken: str
) -> None:
    """A path of the raw layer taken by a file (as root, permissions cannot be taken away):
    the extract stops with a WarehouseWriteError naming the path, records the failure in
    the ledger, writes no batch; once the path is free, the rerun extracts and balances."""
    home = tmp_path / "home"
    settings = Settings(home=home, project_dir=project)
    (settings.warehouse / taken).parent.mkdir(parents=True, exist_ok=True)
    (settings.warehouse / taken).write_text("not a folder")
    landing = settings.source_landing("bad_csv")
    landing.mkdir(parents=True)
    (landing / "a.csv").write_bytes(csv_text().encode())
    with pytest.raises(GovbaseError) as err:
        run_stage("extract", "bad_csv", "2026-11-01", "run-1", settings=settings)
    assert type(err.value).__name__ == "WarehouseWriteError"
    assert str(err.value).startswith("cannot write the warehouse: ") and str(
        settings.warehouse / taken
    ) in str(err.value)
    with connect(settings) as con:
        ledger = con.execute("select status, message from meta.run_ledger where stage = 'extract'").fetchall()
        batches = con.execute("select count(*) from meta.extract_batch").fetchall()[0][0]
    assert ledger[0][0] == "failed" and "cannot write the warehouse" in ledger[0][1]
    assert batches == 0, "the file is not recorded as extracted (nor as a failed delivery)"
    (settings.warehouse / taken).unlink()
    out = ingest(project, tmp_path / "home", "bad_csv", "a.csv", csv_text().encode())
    assert (out.failed, out.delivered, out.loaded, out.quarantined) == (None, 12, 12, 0)


def test_reports_that_cannot_be_written_are_a_clear_error(project: Path, tmp_path: Path) -> None:
    from etl.pipeline import run_publish

    settings = Settings(home=tmp_path / "home", project_dir=project)
    out = ingest(project, settings.home, "bad_csv", "a.csv", edit({2: row(2, 0, "123")}).encode())
    assert out.quarantined == 1  # a rejection report has a row to write
    settings.reports_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.reports_dir.write_text("not a folder")
    with pytest.raises(
        GovbaseError, match=r"^cannot write the reports, Data Docs and data dictionary: .*reports"
    ):
        run_publish("2026-11-01", "run-corpus", settings=settings)
