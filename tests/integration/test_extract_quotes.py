"""CSV quoting gone wrong, and the values no reader passes on unflagged.

A quote left open must not swallow the rows after it: the line where it opened is
kept as a flagged row read without quoting, the lines after it are read again, and
the rows the reader gives equal the records the file's lines deliver.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from etl.config import Settings
from etl.contracts import Source
from etl.extract import BatchResult, extract_source
from etl.meta import connect

pytestmark = pytest.mark.integration  # every extract records itself in the DuckDB catalog

HEADER = "id,name,city\n"


def source(**kw: Any) -> Source:
    base: dict[str, Any] = {
        "name": "t_q",
        "department": "test",
        "department_name": "测试",
        "description": "test source",
        "table": "person",
        "kind": "csv",
        "location": "*.csv",
        "fields": [{"name": f, "to": None} for f in ("id", "name", "city")],
    }
    base.update(kw)
    return Source.model_validate(base)


def run(settings: Settings, src: Source, data: bytes) -> tuple[BatchResult, list[dict[str, Any]]]:
    folder = settings.source_landing(src.name)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.csv").write_bytes(data)
    [res] = extract_source(settings, src)
    out = pq.read_table(res.raw_path).to_pylist() if res.raw_path else []
    return res, out


def errors(settings: Settings, src: Source) -> list[tuple[Any, ...]]:
    with connect(settings) as con:
        return con.execute(
            "select line_number, row_number, kind from meta.source_error where source = ? "
            "order by line_number, row_number, kind",
            [src.name],
        ).fetchall()


def body(n: int) -> list[str]:
    return [f"{i},张{i},北京{i}\n" for i in range(1, n + 1)]


def test_a_quote_never_closed_swallows_no_row(settings: Settings) -> None:
    """1,980 rows, a stray quote opening a field in row 100: 1,979 rows as delivered, the
    opening line kept flagged at its line, nothing vanishes."""
    lines = body(1980)
    lines[99] = '100,"张100,北京100\n'
    src = source()
    res, out = run(settings, src, (HEADER + "".join(lines)).encode())
    assert (res.status, res.rows, res.delivered) == ("extracted", 1980, 1980)
    assert [r["id"] for r in out] == [str(i) for i in range(1, 1981)]
    bad = out[99]
    assert (bad["name"], bad["city"]) == ('"张100', "北京100")
    assert bad["_row_error"] == (
        "unbalanced_quote: a quote opened on this line is still open after 1 line(s); "
        "the line is read without quoting"
    )
    assert errors(settings, src) == [(101, 100, "unbalanced_quote")]
    assert all(r["_row_error"] is None for i, r in enumerate(out) if i != 99)


def test_two_stray_quotes_lose_no_row_and_make_no_huge_value(settings: Settings) -> None:
    lines = body(1980)
    lines[99] = '100,"张100,北京100\n'
    lines[899] = '900,张900",北京900\n'  # the quote that would have closed it, 800 lines on
    src = source()
    res, out = run(settings, src, (HEADER + "".join(lines)).encode())
    assert (res.rows, res.delivered) == (1980, 1980)
    assert max(len(r["city"] or "") for r in out) < 10
    assert out[899]["name"] == '张900"'  # a quote inside an unquoted field is a delivered character


def test_open_quote_at_the_end_of_the_file(settings: Settings) -> None:
    src = source(max_field_lines=50)
    lines = body(5)
    lines[3] = '4,"张4,北京4\n'
    res, out = run(settings, src, (HEADER + "".join(lines)).encode())
    assert (res.rows, res.delivered) == (5, 5)
    assert out[3]["_row_error"].startswith(
        "unbalanced_quote: a quote opened on this line is not closed before the end of the file"
    )
    assert [r["id"] for r in out] == ["1", "2", "3", "4", "5"]


def test_text_after_a_closing_quote(settings: Settings) -> None:
    src = source()
    res, out = run(settings, src, (HEADER + '1,"张"三,北京\n2,李四,上海\n').encode())
    assert out[0]["name"] == '"张"三' and out[0]["_row_error"].startswith(
        "unbalanced_quote: malformed quoting"
    )
    assert out[1]["_row_error"] is None and res.rows == res.delivered == 2


def test_declared_multiline_fields_and_line_numbers_after_them(settings: Settings) -> None:
    """With max_field_lines 3 a field spanning 3 lines is one record; a ragged row after it
    is reported at its physical line and its record number, which now differ."""
    src = source(max_field_lines=3)
    text = HEADER + '1,张三,"北京\n朝阳\n望京"\n2,李四\n3,王五,"上\n海"\n'
    res, out = run(settings, src, text.encode())
    assert (res.rows, res.delivered) == (3, 3)
    assert out[0]["city"] == "北京\n朝阳\n望京" and out[2]["city"] == "上\n海"
    assert errors(settings, src) == [(5, 2, "ragged")]


def test_a_field_over_max_field_lines_is_reported_where_it_opened(settings: Settings) -> None:
    src = source(max_field_lines=2)
    text = HEADER + '1,张三,"北京\n朝阳\n望京"\n2,李四,上海\n'
    res, out = run(settings, src, text.encode())
    # line 2 opens a quote still open after 2 lines: flagged; 朝阳 and 望京" are read again
    assert [r["id"] for r in out] == ["1", "朝阳", '望京"', "2"]
    assert out[0]["_row_error"].startswith(
        "unbalanced_quote: a quote opened on this line is still open after 2"
    )
    assert (res.rows, res.delivered) == (4, 4)
    assert errors(settings, src)[0] == (2, 1, "unbalanced_quote")


@pytest.mark.parametrize("quoted", [False, True])
def test_a_field_longer_than_max_field_chars_flags_its_row(settings: Settings, quoted: bool) -> None:
    src = source(max_field_chars=50)
    city = '"' + "长" * 60 + '"' if quoted else "长" * 60
    _, out = run(settings, src, (HEADER + f"1,张三,{city}\n2,李四,上海\n").encode("utf-8"))
    assert out[0]["city"] == "长" * 60
    assert out[0]["_row_error"] == "field_too_long: city holds 60 characters (max_field_chars 50)"
    assert out[1]["_row_error"] is None
    assert errors(settings, src) == [(2, 1, "field_too_long")]


@pytest.mark.parametrize(
    ("char", "code"),
    [("\x00", "U+0000"), ("\u202e", "U+202E"), ("\u2066", "U+2066"), ("\u200f", "U+200F")],
)
def test_control_characters_flag_the_row_and_are_kept(settings: Settings, char: str, code: str) -> None:
    src = source()
    text = HEADER + f"1,张{char}三,北京\n2,李四,“上海”—…\n"
    _, out = run(settings, src, text.encode("utf-8"))
    assert out[0]["name"] == f"张{char}三"
    assert out[0]["_row_error"] == f"control_character: {code} in name"
    assert out[1]["_row_error"] is None, "quotes, dashes and ellipses share the first byte: not flagged"
    assert errors(settings, src) == [(2, 1, "control_character")]


def test_a_ragged_row_with_a_control_character_gets_both_reasons(settings: Settings) -> None:
    src = source()
    res, out = run(settings, src, (HEADER + "1,张\u202e三\n").encode())
    assert out[0]["_row_error"] == "ragged: expected 3 fields, got 2; control_character: U+202E in name"
    assert res.flagged_rows == 1


def test_delivered_counts_the_lines_not_the_parser(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that loses a line (here: one made to) fails the file instead of balancing."""
    from etl.extract import csv as csv_reader

    real = csv_reader._parse

    def lossy(data: bytes, delimiter: str, ncols: int) -> Any:
        table, odd = real(data, delimiter, ncols)
        return table.slice(1), odd

    monkeypatch.setattr(csv_reader, "_parse", lossy)
    src = source()
    res, _ = run(settings, src, (HEADER + "".join(body(10))).encode())
    assert res.status == "failed"
    assert "delivers 10 record(s) by its lines, the reader gave 9" in (res.message or "")
