"""Extraction of file sources into raw Parquet: one test per reader behaviour and per bad input.

Fixtures are built in code (real GBK / GB18030 / BOM bytes, real xlsx through
xlsxwriter) under each test's own GOVBASE_HOME.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import xlsxwriter

from etl.config import Settings
from etl.contracts import Contracts, Source
from etl.extract import BatchResult, ExtractFailed, extract, extract_source, raw_batches
from etl.meta import connect

pytestmark = pytest.mark.integration  # every extract records itself in the DuckDB catalog

META = ["_source", "_batch_id", "_row_number", "_file_sha256", "_row_error", "_extra"]


def source(name: str = "t_src", kind: str = "csv", fields: list[str] | None = None, **kw: Any) -> Source:
    """A small source contract; `fields` are declared names (prefix '?' for optional)."""
    names = fields or ["id", "name", "city"]
    field_maps = []
    for f in names:
        fm: dict[str, Any] = {"name": f.lstrip("?"), "to": None, "required": not f.startswith("?")}
        if kind == "fixed_width":
            fm.update(kw.pop(f"_span_{f}"))
        field_maps.append(fm)
    base: dict[str, Any] = {
        "name": name,
        "department": "test",
        "department_name": "测试",
        "description": "test source",
        "table": "person",
        "kind": kind,
        "fields": field_maps,
    }
    if kind != "sql":
        base["location"] = {
            "csv": "*.csv",
            "excel": "*.xlsx",
            "json": "*.jsonl",
            "xml": "*.xml",
            "fixed_width": "*.txt",
        }[kind]
    base.update(kw)
    return Source.model_validate(base)


def land(settings: Settings, src: Source, name: str, data: bytes) -> Path:
    folder = settings.source_landing(src.name)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def rows(res: BatchResult) -> list[dict[str, Any]]:
    assert res.raw_path is not None, res.message
    return pq.read_table(res.raw_path).to_pylist()


def one(settings: Settings, src: Source, **kw: Any) -> BatchResult:
    results = extract_source(settings, src, **kw)
    assert len(results) == 1, results
    return results[0]


def source_errors(settings: Settings, src: str) -> list[tuple[Any, ...]]:
    with connect(settings) as con:
        return con.execute(
            "select file, row_number, kind, problem from meta.source_error where source = ? order by row_number",
            [src],
        ).fetchall()


def source_error_lines(settings: Settings, src: str) -> list[tuple[Any, ...]]:
    """(file, line_number, row_number, kind) of the source's errors: a decode failure has a
    physical line and no record number, a flagged row both."""
    with connect(settings) as con:
        return con.execute(
            "select file, line_number, row_number, kind from meta.source_error where source = ? "
            "order by line_number, row_number",
            [src],
        ).fetchall()


# ---------------------------------------------------------------- csv
def test_csv_gbk_values_exactly_as_delivered(settings: Settings) -> None:
    src = source(encoding="gbk", max_field_lines=2)  # "多\n行": a field may hold one line break
    text = 'id,name,city\n 1 ,张三,"北京,朝阳"\n2,,"多\n行"\n3,"",  \n'
    land(settings, src, "a.csv", text.encode("gbk"))
    res = one(settings, src)
    assert (res.status, res.rows, res.encoding, res.flagged_rows) == ("extracted", 3, "gbk", 0)
    out = rows(res)
    assert [r["id"] for r in out] == [" 1 ", "2", "3"]
    assert [r["name"] for r in out] == ["张三", "", ""]
    assert [r["city"] for r in out] == ["北京,朝阳", "多\n行", "  "]
    assert [r["_row_number"] for r in out] == [1, 2, 3]
    assert all(
        r["_source"] == "t_src" and r["_batch_id"] == res.batch_id and r["_file_sha256"] == res.sha256
        for r in out
    )
    assert list(out[0]) == ["id", "name", "city", *META]
    assert res.raw_path is not None and res.raw_path.parent.name.startswith("load_date=")
    assert pq.read_schema(res.raw_path).field("id").type == "large_string"  # text as delivered


def test_csv_auto_reads_gb18030_and_bom(settings: Settings) -> None:
    gb = source(name="t_gb")
    land(settings, gb, "a.csv", "id,name,city\n1,𠀀䶮,鿏\n".encode("gb18030"))
    bom = source(name="t_bom")
    land(settings, bom, "a.csv", "id,name,city\n1,李四,上海\n".encode("utf-8-sig"))
    declared_utf8_with_bom = source(name="t_bom8", encoding="utf-8")
    land(settings, declared_utf8_with_bom, "a.csv", "id,name,city\n1,王五,广州\n".encode("utf-8-sig"))
    r1, r2, r3 = one(settings, gb), one(settings, bom), one(settings, declared_utf8_with_bom)
    assert (r1.encoding, rows(r1)[0]["name"], rows(r1)[0]["city"]) == ("gb18030", "𠀀䶮", "鿏")
    assert (r2.encoding, rows(r2)[0]["id"], rows(r2)[0]["name"]) == ("utf-8-sig", "1", "李四")
    assert (r3.encoding, rows(r3)[0]["id"]) == ("utf-8-sig", "1")


def test_csv_ragged_rows_kept_flagged_and_recorded(settings: Settings) -> None:
    src = source()
    land(settings, src, "a.csv", "id,name,city\n1,a,x\n2,b,y,extra,更多\n3,c\n4,d,z\n".encode())
    res = one(settings, src)
    assert (res.status, res.rows, res.flagged_rows) == ("extracted", 4, 2)
    out = rows(res)
    assert out[1]["city"] == "y" and json.loads(out[1]["_extra"]) == ["extra", "更多"]
    assert out[1]["_row_error"] == "ragged: expected 3 fields, got 5"
    assert out[2]["city"] is None and out[2]["_row_error"] == "ragged: expected 3 fields, got 2"
    assert out[0]["_row_error"] is None and out[3]["_extra"] is None
    errs = source_errors(settings, "t_src")
    assert [(e[0], e[1], e[2]) for e in errs] == [("a.csv", 2, "ragged"), ("a.csv", 3, "ragged")]


def test_csv_two_header_rows_and_blank_lines(settings: Settings) -> None:
    src = source(fields=["人员/姓名", "人员/性别", "单位/名称"], header_rows=2)
    land(settings, src, "a.csv", "人员,,单位\n姓名,性别,名称\n\n张三,男,某公司\n\n".encode())
    res = one(settings, src)
    assert res.rows == 1 and "2 blank line(s) skipped" in (res.message or "")
    assert rows(res)[0]["单位/名称"] == "某公司" and rows(res)[0]["_row_number"] == 1


def test_csv_chunks_give_the_same_rows(settings: Settings) -> None:
    src = source(chunk_rows=2)
    body = "".join(f"{i},名{i},c{i}\n" for i in range(1, 8))
    land(settings, src, "a.csv", ("id,name,city\n" + body).encode("utf-8"))
    seen: list[tuple[str, int]] = []
    res = one(settings, src, progress=lambda s, n: seen.append((s, n)))
    assert [r["_row_number"] for r in rows(res)] == list(range(1, 8))
    assert [r["name"] for r in rows(res)][-1] == "名7"
    assert seen == [("extract", 2), ("extract", 2), ("extract", 2), ("extract", 1)]
    assert pq.ParquetFile(res.raw_path).metadata.num_row_groups >= 3


def test_same_file_skipped_unless_full_refresh(settings: Settings) -> None:
    src = source()
    land(settings, src, "a.csv", b"id,name,city\n1,a,b\n")
    first = one(settings, src)
    again = one(settings, src)
    assert again.status == "skipped" and first.batch_id in (again.message or "") and again.raw_path is None
    land(settings, src, "b.csv", b"id,name,city\n1,a,b\n")  # same bytes under another name: same delivery
    assert [r.status for r in extract_source(settings, src)] == ["skipped", "skipped"]
    refreshed = extract_source(settings, src, full_refresh=True)
    assert [r.status for r in refreshed] == ["extracted", "extracted"]
    assert len(raw_batches(settings, "t_src")) == 3
    assert len(raw_batches(settings, "t_src", run_id=refreshed[0].run_id)) == 2


def test_changed_file_is_extracted_again(settings: Settings) -> None:
    src = source()
    path = land(settings, src, "a.csv", b"id,name,city\n1,a,b\n")
    one(settings, src)
    path.write_bytes(b"id,name,city\n1,a,b\n2,c,d\n")
    res = one(settings, src)
    assert (res.status, res.rows) == ("extracted", 2)


# ---------------------------------------------------------------- bad input
def test_undecodable_bytes_fail_the_file_naming_offset_and_line(settings: Settings) -> None:
    src = source(encoding="gbk")
    land(settings, src, "a.csv", "id,name,city\n1,张三,x\n".encode("gbk") + b"2,\xff\xfe,y\n")
    res = one(settings, src)
    assert res.status == "failed" and res.raw_path is None
    assert "byte offset 24" in (res.message or "") and "line 3" in (res.message or "")
    assert source_error_lines(settings, "t_src") == [("a.csv", 3, None, "decode")]
    assert not list((settings.layer("raw") / "t_src").rglob("*.parquet*")), "no partial raw file"


def test_auto_encoding_neither_utf8_nor_gb18030(settings: Settings) -> None:
    src = source()
    land(settings, src, "a.csv", b"id,name,city\n1,\x81\x20,x\n")
    res = one(settings, src)
    assert res.status == "failed" and "byte offset 15" in (res.message or "")


@pytest.mark.parametrize("bad_line", [2, 3000])
def test_auto_file_neither_utf8_nor_gb18030_is_reported_by_the_read(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, bad_line: int
) -> None:
    """An auto CSV that is not UTF-8 is read as GB18030 without decoding it a second
    time to detect; a bad byte met by the read is reported exactly as the auto rule's
    own check reports it (both offsets, the line)."""
    import etl.extract.encoding as enc

    src = source()
    good = "".join(f"{i},张{i},城\n" for i in range(1, 5000)).encode("gb18030")
    lines = good.split(b"\n")
    data = b"id,name,city\n" + b"\n".join([*lines[: bad_line - 2], b"7,\x81\x20,x", *lines[bad_line - 2 :]])
    path = land(settings, src, "a.csv", data)
    with pytest.raises(enc.DecodeFailure) as rule:
        enc.detect_encoding(path, "auto")  # the full check, as before
    decoded_as: list[str] = []
    real = enc.validate
    monkeypatch.setattr(enc, "validate", lambda p, codec: (decoded_as.append(codec), real(p, codec))[1])
    res = one(settings, src)
    assert res.status == "failed" and str(rule.value) in (res.message or "")
    assert "neither UTF-8 nor GB18030" in str(rule.value) and rule.value.line == bad_line
    assert source_errors(settings, src.name) == [("a.csv", None, "decode", str(rule.value))]
    assert source_error_lines(settings, src.name) == [("a.csv", bad_line, None, "decode")]
    assert decoded_as == ["utf-8"]  # detection stopped at the first non-UTF-8 byte


def test_auto_gb18030_file_is_decoded_once(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import etl.extract.encoding as enc

    src = source()
    land(settings, src, "a.csv", "id,name,city\n1,𠀀䶮,鿏\n".encode("gb18030"))
    decoded_as: list[str] = []
    real = enc.validate
    monkeypatch.setattr(enc, "validate", lambda p, codec: (decoded_as.append(codec), real(p, codec))[1])
    res = one(settings, src)
    assert (res.status, res.encoding, rows(res)[0]["name"]) == ("extracted", "gb18030", "𠀀䶮")
    assert decoded_as == ["utf-8"]


def test_one_bad_file_does_not_stop_the_others(settings: Settings, contracts: Contracts) -> None:
    src = source(encoding="gbk")
    land(settings, src, "a_bad.csv", b"id,name,city\n1,\xff\xff,x\n")
    land(settings, src, "b_good.csv", "id,name,city\n1,好,x\n".encode("gbk"))
    results = extract_source(settings, src)
    assert [(r.file, r.status) for r in results] == [("a_bad.csv", "failed"), ("b_good.csv", "extracted")]
    with pytest.raises(ExtractFailed) as exc:
        extract_source(settings, src, raise_on_failure=True)
    assert "a_bad.csv" in str(exc.value) and len(exc.value.results) == 2
    assert [r.status for r in exc.value.results] == ["failed", "skipped"]


def test_zero_byte_file_fails_header_only_is_an_empty_batch(settings: Settings) -> None:
    src = source()
    land(settings, src, "a_zero.csv", b"")
    land(settings, src, "b_header.csv", b"id,name,city\n")
    zero, header = extract_source(settings, src)
    assert (zero.status, zero.message) == ("failed", "empty file (0 bytes)")
    assert (header.status, header.rows) == ("extracted", 0) and "header only" in (header.message or "")
    assert pq.read_schema(header.raw_path).names == ["id", "name", "city", *META]
    assert {e[2] for e in source_errors(settings, "t_src")} == {"empty"}


def test_missing_required_column_fails_optional_becomes_null(settings: Settings) -> None:
    src = source(fields=["id", "name", "?note"])
    land(settings, src, "a.csv", b"id,note\n1,x\n")
    land(settings, src, "b.csv", b"id,name\n1,x\n")
    missing, ok = extract_source(settings, src)
    assert missing.status == "failed" and "missing declared column(s): name" in (missing.message or "")
    assert ok.status == "extracted" and rows(ok)[0]["note"] is None
    assert source_errors(settings, "t_src")[0][2] == "missing_column"


def test_schema_drift_fail_and_warn(settings: Settings) -> None:
    strict = source(name="t_strict")
    land(settings, strict, "a.csv", b"id,name,city,new_col\n1,a,b,c\n")
    res = one(settings, strict)
    assert res.status == "failed" and "undeclared column(s) new_col" in (res.message or "")
    lax = source(name="t_lax", schema_drift="warn")
    land(settings, lax, "a.csv", b"id,name,city,new_col\n1,a,b,c\n")
    res = one(settings, lax)
    assert (
        res.status == "extracted" and rows(res)[0]["new_col"] == "c" and "schema drift" in (res.message or "")
    )
    assert source_errors(settings, "t_lax")[0][2] == "schema_drift"


def test_symlink_outside_landing_refused(settings: Settings, tmp_path: Path) -> None:
    src = source()
    outside = tmp_path / "secret.csv"
    outside.write_bytes(b"id,name,city\n1,a,b\n")
    folder = settings.source_landing(src.name)
    folder.mkdir(parents=True)
    (folder / "a.csv").symlink_to(outside)
    inside = land(settings, src, "real.txt", b"id,name,city\n1,a,b\n")
    (folder / "b.csv").symlink_to(inside)  # a link staying inside is fine
    refused, ok = extract_source(settings, src)
    assert refused.status == "failed" and "outside landing/t_src" in (refused.message or "")
    assert ok.status == "extracted"
    assert source_errors(settings, "t_src")[0][2] == "unsafe_path"


def test_location_escaping_landing_refused(settings: Settings) -> None:
    src = source().model_copy(update={"location": "../other/*.csv"})  # bypasses the contract check on purpose
    res = one(settings, src)
    assert res.status == "failed" and "leaves the landing folder" in (res.message or "")


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files whatever their mode"
)
def test_unreadable_file(settings: Settings) -> None:
    src = source()
    path = land(settings, src, "a.csv", b"id,name,city\n1,a,b\n")
    path.chmod(0)
    res = one(settings, src)
    assert res.status == "failed" and "unreadable" in (res.message or "")


def test_extract_many_sources_and_unknown_name(settings: Settings, contracts: Contracts) -> None:
    from etl.errors import ContractError

    with pytest.raises(ContractError):
        extract(settings, contracts, ["no_such_source"])
    assert (
        extract(settings, contracts, ["ps_hukou", "tax_registration"]) == []
    )  # nothing landed: nothing to do


# ---------------------------------------------------------------- fixed width
def test_fixed_width_slices_characters_after_decoding(settings: Settings) -> None:
    spans = {
        "_span_id": {"start": 0, "width": 4},
        "_span_name": {"start": 4, "width": 3},
        "_span_amt": {"start": 7, "width": 5},
    }
    src = source(kind="fixed_width", fields=["id", "name", "amt"], encoding="gb18030", header_rows=0, **spans)
    lines = ["0001张三 00100", "0002𠀀䶮鿏  050", "0003李", "0004王五 00200XY", "0005赵六 00300  ", ""]
    land(settings, src, "a.txt", "\r\n".join(lines).encode("gb18030"))
    res = one(settings, src)
    out = rows(res)
    assert [r["name"] for r in out] == ["张三 ", "𠀀䶮鿏", "李", "王五 ", "赵六 "]
    assert out[1]["amt"] == "  050" and out[2]["amt"] is None
    assert out[2]["_row_error"] == "short line: expected 12 characters, got 5"
    assert (out[3]["_extra"], out[3]["_row_error"]) == ("XY", "long line: expected 12 characters, got 14")
    assert (out[4]["_extra"], out[4]["_row_error"]) == ("  ", None)
    assert res.flagged_rows == 2


# ---------------------------------------------------------------- excel
def _xlsx(path: Path) -> None:
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet()
    ws.merge_range(0, 0, 0, 1, "人员信息")
    ws.write_string(0, 2, "参保信息")
    ws.write_row(1, 0, ["公民身份号码", "姓名", "参保日期"])
    ws.write_number(2, 0, 110105194912310002)  # an ID typed as a number: Excel keeps 15 digits
    ws.write_string(2, 1, "张三")
    ws.write_number(2, 2, 43831)  # a date serial
    ws.write_string(3, 0, "11010519491231002X")
    ws.write_string(3, 1, " 李四 ")
    ws.write_datetime(
        3, 2, __import__("datetime").datetime(2024, 1, 1, 12), wb.add_format({"num_format": "yyyy-mm-dd"})
    )
    ws.write_string(5, 0, "110105194912310010")  # row 5 left blank
    ws.write_number(5, 2, 0.1)
    ws.write_string(5, 4, "stray")  # right of the header
    wb.close()


def test_excel_grouped_header_and_cells_as_the_sheet_holds_them(settings: Settings) -> None:
    src = source(
        kind="excel", fields=["人员信息/公民身份号码", "人员信息/姓名", "参保信息/参保日期"], header_rows=2
    )
    folder = settings.source_landing(src.name)
    folder.mkdir(parents=True)
    _xlsx(folder / "a.xlsx")
    res = one(settings, src)
    assert res.status == "extracted", res.message
    out = rows(res)
    assert [r["人员信息/公民身份号码"] for r in out] == [
        "1.1010519491231e+17",
        "11010519491231002X",
        "110105194912310010",
    ]
    assert [r["人员信息/姓名"] for r in out] == ["张三", " 李四 ", ""]
    assert [r["参保信息/参保日期"] for r in out] == ["43831", "45292.5", "0.1"]
    assert [r["_row_number"] for r in out] == [1, 2, 3]
    assert out[2]["_extra"] == '["", "stray"]' and out[2]["_row_error"].startswith("ragged")


def test_corrupt_xlsx_is_unreadable(settings: Settings) -> None:
    src = source(kind="excel")
    land(settings, src, "a.xlsx", b"PK\x03\x04 this is not a workbook")
    res = one(settings, src)
    assert res.status == "failed" and "unreadable workbook" in (res.message or "")
    assert source_errors(settings, "t_src")[0][2] == "unreadable"


# ---------------------------------------------------------------- json
def test_json_flattened_literal_text_and_nulls(settings: Settings) -> None:
    src = source(
        kind="json", fields=["record_id", "patient.id_card", "patient.name", "vital.alive", "?vital.death"]
    )
    lines = [
        {
            "record_id": 1,
            "patient": {"id_card": "11010519491231002X", "name": "张三"},
            "vital": {"alive": True},
        },
        {
            "record_id": "2",
            "patient": {"id_card": None, "name": ""},
            "vital": {"alive": False, "death": "2020-01-01"},
        },
    ]
    text = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines)
    text += (
        '\n\n{"record_id": 1.10, "patient": {"id_card": "x", "name": "y", "tags": [1, "a"]}, "vital": {}}\n'
    )
    land(settings, src, "a.jsonl", text.encode("utf-8"))
    res = one(settings, src.model_copy(update={"schema_drift": "warn"}))
    out = rows(res)
    assert [r["record_id"] for r in out] == ["1", "2", "1.10"]
    assert [r["patient.id_card"] for r in out] == ["11010519491231002X", None, "x"]
    assert [r["patient.name"] for r in out] == ["张三", "", "y"]
    assert [r["vital.alive"] for r in out] == ["true", "false", None]
    assert [r["vital.death"] for r in out] == [None, "2020-01-01", None]
    assert out[2]["patient.tags"] == '[1,"a"]' and "patient.tags" in (res.message or "")
    assert "vital" not in out[2], "an empty object adds no column"


def test_json_invalid_line_fails_naming_the_line(settings: Settings) -> None:
    src = source(kind="json", fields=["id"])
    land(settings, src, "a.jsonl", b'{"id": "1"}\n\n{"id": "2"\n')
    res = one(settings, src)
    assert res.status == "failed" and "line 3 (record 2): not valid JSON" in (res.message or "")
    assert source_errors(settings, "t_src")[0][1:3] == (2, "invalid_json")


def test_json_missing_required_everywhere_and_drift_fail(settings: Settings) -> None:
    src = source(kind="json", fields=["id", "name"])
    land(settings, src, "a.jsonl", b'{"id": "1"}\n')
    land(settings, src, "b.jsonl", b'{"id": "1", "name": "a"}\n{"id": "2", "name": "b", "new": 1}\n')
    missing, drift = extract_source(settings, src)
    assert missing.status == "failed" and "name" in (missing.message or "")
    assert drift.status == "failed" and "undeclared column(s) new" in (drift.message or "")


# ---------------------------------------------------------------- xml
def test_xml_gbk_records_attributes_and_empty_elements(settings: Settings) -> None:
    src = source(
        kind="xml",
        record_tag="record",
        fields=["@id", "xm", "sfzh", "?hyzk"],
        encoding="gbk",
        schema_drift="warn",
    )
    xml = (
        '<?xml version="1.0" encoding="GBK"?>\n<records>\n'
        '<record id="1"><xm> 张三 </xm><sfzh/><hyzk>20</hyzk></record>\n'
        '<record id="2"><xm>李四</xm><sfzh>11010519491231002X</sfzh><dz><sheng>北京</sheng></dz></record>\n'
        '<record id="3"><xm>王五</xm><xm>王5</xm><sfzh>1</sfzh></record>\n</records>\n'
    )
    land(settings, src, "a.xml", xml.encode("gbk"))
    res = one(settings, src)
    out = rows(res)
    assert [r["@id"] for r in out] == ["1", "2", "3"]
    assert [r["xm"] for r in out] == [" 张三 ", "李四", "王五"]
    assert [r["sfzh"] for r in out] == ["", "11010519491231002X", "1"]
    assert [r["hyzk"] for r in out] == ["20", None, None]
    assert out[1]["dz.sheng"] == "北京"
    assert out[2]["_row_error"] == "repeated element(s): xm" and json.loads(out[2]["_extra"]) == {
        "xm": ["王5"]
    }


def test_xml_malformed_and_undecodable(settings: Settings) -> None:
    src = source(kind="xml", record_tag="record", fields=["xm"], encoding="gbk")
    land(settings, src, "a.xml", "<r><record><xm>张三</xm></record><record><xm>".encode("gbk"))
    land(settings, src, "b.xml", b"<r>\n<record><xm>\xff\xff</xm></record></r>")
    malformed, undecodable = extract_source(settings, src)
    assert malformed.status == "failed" and "malformed XML" in (malformed.message or "")
    assert undecodable.status == "failed" and "byte offset 16 (line 2)" in (undecodable.message or "")


def test_xml_root_without_records_is_an_empty_batch(settings: Settings) -> None:
    src = source(kind="xml", record_tag="record", fields=["xm"])
    land(settings, src, "a.xml", b"<records></records>")
    res = one(settings, src)
    assert (res.status, res.rows) == ("extracted", 0) and "empty file" in (res.message or "")


def test_xml_entities_are_not_resolved(settings: Settings, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET")
    src = source(kind="xml", record_tag="record", fields=["xm"])
    xml = f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]><r><record><xm>&x;</xm></record></r>'
    land(settings, src, "a.xml", xml.encode())
    res = one(settings, src)
    assert res.status == "extracted" and "SECRET" not in str(rows(res)) and rows(res)[0]["xm"] == "&x;"


# ---------------------------------------------------------------- dated deliveries
def test_a_run_takes_the_drops_delivered_by_its_logical_date(settings: Settings) -> None:
    from datetime import date

    src = source(location="d_*.csv", file_date_pattern=r"_(\d{8})\.")
    for day in ("20240501", "20240502", "20240503"):
        land(settings, src, f"d_{day}.csv", f"id,name,city\n{day},x,y\n".encode())
    land(settings, src, "d_undated.csv", b"id,name,city\n0,x,y\n")
    first = extract_source(settings, src, logical_date=date(2024, 5, 1))
    assert sorted(r.file for r in first) == ["d_20240501.csv", "d_undated.csv"]
    second = extract_source(settings, src, logical_date=date(2024, 5, 2))
    assert [(r.file, r.status) for r in second if r.status == "extracted"] == [
        ("d_20240502.csv", "extracted")
    ]
    everything = extract_source(settings, src)  # no logical date: every file not yet extracted
    assert [r.file for r in everything if r.status == "extracted"] == ["d_20240503.csv"]


def test_files_not_due_yet_are_named_with_their_dates_and_the_logical_date(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Files match the location but all are dated after the logical date: the run says
    how many, their dates and the logical date, not that no file matches."""
    from datetime import date

    from etl.extract import nothing_due

    src = source(location="d_*.csv", file_date_pattern=r"_(\d{8})\.")
    assert nothing_due(settings, src, date(2024, 5, 1)) == (
        f"source t_src: no file matches d_*.csv under {settings.source_landing('t_src')}"
    )
    for day in ("20240510", "20240503"):
        land(settings, src, f"d_{day}.csv", f"id,name,city\n{day},x,y\n".encode())
    with caplog.at_level("WARNING", logger="etl.extract"):
        assert extract_source(settings, src, logical_date=date(2024, 5, 1)) == []
    why = nothing_due(settings, src, date(2024, 5, 1))
    assert why == (
        f"source t_src: 2 file(s) match d_*.csv under {settings.source_landing('t_src')}, "
        "none due by the logical date 2024-05-01: dated 2024-05-03, 2024-05-10"
    )
    assert why in caplog.text and "no file matches" not in caplog.text
    assert not settings.duckdb_path.exists()  # nothing was extracted, nothing recorded
    assert nothing_due(settings, src, date(2024, 5, 3)) is None  # one is due
