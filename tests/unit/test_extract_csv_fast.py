"""The fast CSV path against Python's csv module (the reference) on generated files.

Both readers must give the same raw rows (values, row numbers, ragged flags and
overflow), the same notes and warnings, and the same errors; the fast path must
be taken exactly when the file allows it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.contracts import Source
from etl.errors import SourceError
from etl.extract import csv as csv_reader
from etl.extract.common import ReadContext
from etl.extract.encoding import DecodeFailure

pytestmark = pytest.mark.unit

FIELDS = ["公民身份号码", "姓名", "住址"]


def _source(**kw: Any) -> Source:
    base: dict[str, Any] = {
        "name": "t_csv",
        "department": "test",
        "department_name": "测试",
        "description": "test source",
        "table": "person",
        "kind": "csv",
        "location": "*.csv",
        "schema_drift": "warn",
        "fields": [{"name": f, "to": None, "required": False} for f in FIELDS],
    }
    base.update(kw)
    return Source.model_validate(base)


def _read(reader: Any, src: Source, path: Path, codec: str, chunk_rows: int) -> tuple[Any, ...]:
    ctx = ReadContext(source=src, file=path.name, path=path, codec=codec)
    try:
        tables = list(reader(ctx, chunk_rows))
    except (SourceError, DecodeFailure) as exc:
        return ("error", type(exc).__name__, str(exc))
    table = pa.concat_tables(tables) if tables else None
    rows = table.to_pylist() if table is not None else []
    names = table.column_names if table is not None else []
    return (names, rows, ctx.flagged, ctx.lines, ctx.delivered, ctx.notes, [str(w) for w in ctx.warnings])


# a field: text without the delimiter, quotes, CR or LF; some Chinese, some blanks
FIELD = st.text(
    alphabet=st.sampled_from(list("0123456789Xx 张王李号路市\u3000\u200b\ufeff\tａ-·.()（）")), max_size=8
)
ROW = st.lists(FIELD, min_size=0, max_size=5)  # 3 fields is regular; others ragged or blank


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(ROW, max_size=40),
    header=st.sampled_from([0, 1, 2]),
    skip=st.sampled_from([0, 1]),
    crlf=st.booleans(),
    final_newline=st.booleans(),
    encoding=st.sampled_from(["utf-8", "gbk", "gb18030", "utf-8-sig"]),
    chunk_rows=st.sampled_from([1, 3, 100_000]),
)
def test_fast_path_gives_what_the_csv_module_gives(
    tmp_path: Path,
    rows: list[list[str]],
    header: int,
    skip: int,
    crlf: bool,
    final_newline: bool,
    encoding: str,
    chunk_rows: int,
) -> None:
    src = _source(header_rows=header, skip_rows=skip)
    eol = "\r\n" if crlf else "\n"
    lines = ["导出时间 2026-11-01"] * skip
    if header == 1:
        lines.append(",".join(FIELDS))
    elif header == 2:
        lines += ["身份,基本,", "公民身份号码,姓名,住址"]
    lines += [",".join(r) for r in rows]
    text = eol.join(lines) + (eol if final_newline and lines else "")
    path = tmp_path / "f.csv"
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:  # GBK lacks U+200B: deliver it as GB18030
        data, encoding = text.encode("gb18030"), "gb18030"
    path.write_bytes(data)
    codec = encoding
    assert csv_reader.fast_path_applies(path)
    fast = _read(csv_reader.read_fast, src, path, codec, chunk_rows)
    slow = _read(csv_reader.read_with_csv_module, src, path, codec, chunk_rows)
    assert fast == slow


@pytest.mark.parametrize(
    ("data", "applies"),
    [
        (b"a,b\nc,d\n", True),
        (b"a,b\r\nc,d\r\n", True),
        (b'a,"b"\n', False),  # quoting: the csv module
        (b"a,b\rc,d\n", False),  # a lone carriage return
        (b"a,b\nc,d\r", False),  # ... at the very end
        (b"a,\x00b\n", False),  # NUL
    ],
)
def test_fast_path_taken_only_when_lines_are_records(tmp_path: Path, data: bytes, applies: bool) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    assert csv_reader.fast_path_applies(path) is applies


def test_fast_path_across_decode_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines cut by the decode block boundary, and a character cut in the middle (GBK)."""
    monkeypatch.setattr(csv_reader, "FAST_BLOCK_BYTES", 7)
    src = _source()
    rows = [f"1101051949123100{i % 10}X,张三{i},北京市东城区{i}号" for i in range(50)]
    rows[10] = "ragged,row,with,five,fields"
    rows[20] = ""
    path = tmp_path / "f.csv"
    path.write_bytes(("公民身份号码,姓名,住址\n" + "\n".join(rows) + "\n").encode("gbk"))
    fast = _read(csv_reader.read_fast, src, path, "gbk", 8)
    slow = _read(csv_reader.read_with_csv_module, src, path, "gbk", 8)
    assert fast == slow
    _, got, flagged, lines, delivered, notes, _ = fast
    assert delivered == 49 and lines == {11: 12}  # the blank line 22 counts as no record
    assert [r["_line"] for r in got][9:12] == [11, 12, 13] and got[-1]["_line"] == 51
    assert len(got) == 49 and got[10]["_row_error"] == "ragged: expected 3 fields, got 5"
    assert got[10]["_extra"] == '["five", "fields"]'
    assert flagged == [(11, "ragged", "ragged: expected 3 fields, got 5")]
    assert notes == ["1 blank line(s) skipped"]


def test_fast_path_reports_undecodable_bytes_like_the_csv_module(tmp_path: Path) -> None:
    src = _source()
    path = tmp_path / "f.csv"
    path.write_bytes("公民身份号码,姓名,住址\n1,张三,北京\n".encode("gbk") + b"2,\xff\xfe,x\n")
    fast = _read(csv_reader.read_fast, src, path, "gbk", 100)
    slow = _read(csv_reader.read_with_csv_module, src, path, "gbk", 100)
    assert fast[0] == "error" and fast == slow
    assert "line 3" in fast[2]


def test_fast_path_lines_longer_than_the_parse_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pyarrow.csv cannot parse a line longer than its block: such text is parsed again
    in one block, with the same rows and ragged rows in place."""
    monkeypatch.setattr(csv_reader, "_PARSE_BLOCK_BYTES", 64)
    src = _source()
    rows = [f"11010519491231000{i % 10},张三{i},北京市东城区{i}号" for i in range(20)]
    rows[5] = "110105194912310005,张三," + "长" * 500  # 1.5 KB of address
    rows[7] = "ragged," + "很长" * 100
    path = tmp_path / "f.csv"
    path.write_bytes(("公民身份号码,姓名,住址\n" + "\n".join(rows) + "\n").encode("gbk"))
    fast = _read(csv_reader.read_fast, src, path, "gbk", 100)
    assert fast == _read(csv_reader.read_with_csv_module, src, path, "gbk", 100)
    _, got, flagged, _, _, _, _ = fast
    assert len(got) == 20 and got[5]["住址"] == "长" * 500
    assert flagged == [(8, "ragged", "ragged: expected 3 fields, got 2")]


def test_fast_path_keeps_a_byte_order_mark_that_starts_a_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyarrow.csv drops U+FEFF at the start of its input; a delivered U+FEFF starting
    a line that starts a decode block (or a BOM in a file declared utf-8) is kept."""
    src = _source(header_rows=0)
    path = tmp_path / "f.csv"
    path.write_bytes("".join(f"\ufeff{i},张三{i},北京\n" for i in range(30)).encode("utf-8"))
    for block in (7, 40, 16 * 1024 * 1024):
        monkeypatch.setattr(csv_reader, "FAST_BLOCK_BYTES", block)
        fast = _read(csv_reader.read_fast, src, path, "utf-8", 8)
        assert fast == _read(csv_reader.read_with_csv_module, src, path, "utf-8", 8)
        assert [r["公民身份号码"] for r in fast[1]] == [f"\ufeff{i}" for i in range(30)]


def test_non_ascii_delimiter_is_read_by_the_csv_module(tmp_path: Path) -> None:
    src = _source(delimiter="；")
    path = tmp_path / "f.csv"
    path.write_bytes("公民身份号码；姓名；住址\n1；张三；北京\n2；李四\n".encode("gbk"))
    assert csv_reader.fast_path_applies(path)  # the file would allow it; the delimiter does not
    got = _read(csv_reader.read, src, path, "gbk", 100)
    assert got == _read(csv_reader.read_with_csv_module, src, path, "gbk", 100)
    assert [r["姓名"] for r in got[1]] == ["张三", "李四"] and got[2] == [
        (2, "ragged", "ragged: expected 3 fields, got 2")
    ]


# fields with quotes, delimiters and line breaks: what the csv module path must read
QFIELD = st.text(alphabet=st.sampled_from(list('0123456789张王路 ",\n\r')), max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.lists(QFIELD, min_size=3, max_size=3), max_size=20),
    encoding=st.sampled_from(["utf-8", "gbk"]),
)
def test_quoted_files_round_trip_through_the_csv_module(
    tmp_path: Path, rows: list[list[str]], encoding: str
) -> None:
    """Rows written by a CSV writer (quotes doubled, fields with line breaks quoted) come
    back exactly, and the records counted from the lines equal the rows."""
    import csv
    import io

    buf = io.StringIO()
    # "\r\n" as terminator: the writer then quotes fields holding "\r" or "\n" (a lone
    # "\r" before "\n" is a CRLF line ending, not data)
    csv.writer(buf, lineterminator="\r\n").writerows([FIELDS, *rows])
    path = tmp_path / "f.csv"
    path.write_bytes(buf.getvalue().encode(encoding))
    # the lines one record spans: its fields' line breaks ("\r\n" and a lone "\r" or "\n" each one)
    most = max([1, *(sum(f.count("\n") for f in r) + 1 for r in rows)])
    src = _source(max_field_lines=most)
    out = _read(csv_reader.read, src, path, encoding, 7)
    _, got, flagged, _, delivered, _, _ = out
    assert [[g[f] for f in FIELDS] for g in got] == rows, flagged
    assert delivered == len(rows) and flagged == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.lists(QFIELD.filter(lambda f: "\n" not in f and "\r" not in f), min_size=1, max_size=4),
        min_size=1,
        max_size=20,
    ),
    max_lines=st.sampled_from([1, 2, 5]),
)
def test_stray_quotes_never_lose_a_line(tmp_path: Path, rows: list[list[str]], max_lines: int) -> None:
    """Lines joined without any quoting rules (stray quotes anywhere): every non-blank line
    is a record or inside an accepted multi-line field, and the rows equal the records the
    lines deliver, so the extract's check holds; no row holds more lines than allowed."""
    lines = [",".join(r) for r in rows]
    path = tmp_path / "f.csv"
    path.write_bytes(("\n".join([",".join(FIELDS), *lines]) + "\n").encode())
    src = _source(max_field_lines=max_lines)
    out = _read(csv_reader.read, src, path, "utf-8", 5)
    assert out[0] != "error", out
    _, got, _, _, delivered, _, _ = out
    assert len(got) == delivered
    nonblank = sum(1 for line in lines if line)
    assert delivered <= nonblank and (max_lines > 1 or delivered == nonblank)
    for g in got:
        assert all(v is None or v.count("\n") < max_lines for k, v in g.items() if k in FIELDS)
