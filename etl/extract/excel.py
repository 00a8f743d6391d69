"""Excel workbooks (.xlsx, .xls, .ods) through python-calamine.

Cells become text the way the sheet holds them, never repaired:
- text cells as they are;
- numbers in their shortest round-trip decimal form, integral ones without
  exponent or ".0" (a date serial 43831 stays "43831"); from 1e15 up, where
  Excel's 15 significant digits cannot hold every digit, in exponent form: an
  ID typed as a number stays "1.1010519491231e+17", never zero-filled into
  something that looks like an ID;
- cells formatted as dates, which calamine hands over as dates, are turned
  back into their 1900-system serial number text (45292, 45292.5);
- booleans as TRUE/FALSE, empty cells as "".
A row whose cells are all empty is not a record (skipped, counted). Non-empty
cells right of the header are kept in `_extra` and flag the row.

What calamine alone would pass on as a plausible value (.xlsx, from the sheet's
XML, `xlsx_cells`):
- an error cell (#DIV/0!, #N/A ...) keeps its error text and flags the row
  (`invalid_cell`), where calamine gives "";
- a formula whose value was never calculated (no cached value, or a workbook
  written by a library that asks Excel to recalculate on opening,
  `fullCalcOnLoad`, whose cached values are placeholders such as 0) flags the row;
- a merged range in the data rows holds its value in its first cell only: the
  value is filled into every cell of the range, as the sheet shows it, and one
  `merged_cell` warning per range says so.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from lxml import etree
from python_calamine import CalamineWorkbook

from etl.extract.common import (
    ReadContext,
    RowBuffer,
    check_columns,
    combine_header_rows,
    json_list,
    number_text,
    unnamed,
)

_EPOCH = datetime(1899, 12, 30)  # serial 0 in the 1900 system, counting Excel's phantom 1900-02-29
_LEAP_BUG_END = datetime(1900, 3, 1)


def _serial(value: datetime) -> str:
    delta = value - _EPOCH
    days = delta.days
    if value < _LEAP_BUG_END:
        days -= 1  # before Excel's phantom 29 Feb 1900 serials are one less
    frac = (delta.seconds + delta.microseconds / 1e6) / 86400
    return number_text(days + frac) if frac else str(days)


def cell_text(value: Any) -> str:
    """The text of one calamine cell value (see module docstring)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return _serial(value)
    if isinstance(value, date):
        return _serial(datetime(value.year, value.month, value.day))
    if isinstance(value, time):
        secs = value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
        return number_text(secs / 86400)
    if isinstance(value, timedelta):
        return number_text(value.total_seconds() / 86400)
    if value is None:
        return ""
    return str(value)


_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_REF = re.compile(r"([A-Z]+)(\d+)")


@dataclass
class SheetCells:
    """Cells of one .xlsx sheet that calamine's values do not show: (0-based row, col) ->
    error text, and -> the formula of a formula cell without a trustworthy cached value."""

    errors: dict[tuple[int, int], str] = field(default_factory=dict)
    uncalculated: dict[tuple[int, int], str] = field(default_factory=dict)


def _cell(ref: str) -> tuple[int, int]:
    m = _REF.match(ref)
    assert m, ref
    col = 0
    for ch in m.group(1):
        col = col * 26 + ord(ch) - 64
    return int(m.group(2)) - 1, col - 1


def _a1(row: int, col: int) -> str:
    letters = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return f"{letters}{row + 1}"


def xlsx_cells(path: Path, sheet: str | int, names: list[str]) -> SheetCells:
    """Error and uncalculated formula cells of one sheet of an .xlsx (streamed from its XML);
    empty for other workbooks (.xls, .ods) and anything not laid out as expected."""
    out = SheetCells()
    if not zipfile.is_zipfile(path):
        return out
    with zipfile.ZipFile(path) as zf:
        try:
            book = etree.fromstring(zf.read("xl/workbook.xml"))
            rels = etree.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
        except (KeyError, etree.XMLSyntaxError):
            return out
        calc = book.find(f"{_NS}calcPr")
        recalc = calc is not None and calc.get("fullCalcOnLoad") in ("1", "true")
        name = sheet if isinstance(sheet, str) else (names[sheet] if sheet < len(names) else None)
        rid = next((s.get(_REL) for s in book.iter(f"{_NS}sheet") if s.get("name") == name), None)
        target = next((r.get("Target") for r in rels if r.get("Id") == rid), None)
        if not target:
            return out
        member = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
        try:
            fh = zf.open(member)
        except KeyError:
            return out
        with fh:
            for _, c in etree.iterparse(fh, tag=f"{_NS}c", huge_tree=True, resolve_entities=False):
                f, v = c.find(f"{_NS}f"), c.find(f"{_NS}v")
                ref = c.get("r")
                if ref and c.get("t") == "e":
                    out.errors[_cell(ref)] = v.text if v is not None and v.text else "#ERROR"
                elif ref and f is not None and (recalc or v is None or not v.text):
                    out.uncalculated[_cell(ref)] = f.text or "(shared formula)"
                c.clear()
    return out


def _open_sheet(ctx: ReadContext) -> tuple[Any, Any]:
    """(workbook, sheet) of the source, or SourceError (unreadable, missing_sheet)."""
    assert ctx.path is not None
    src = ctx.source
    try:
        wb = CalamineWorkbook.from_path(str(ctx.path))
    except Exception as exc:  # calamine raises ZipError, XmlError, CalamineError, OSError ...
        raise ctx.error(f"unreadable workbook: {type(exc).__name__}: {exc}", kind="unreadable") from None
    try:
        sheet = (
            wb.get_sheet_by_name(src.sheet)
            if isinstance(src.sheet, str)
            else wb.get_sheet_by_index(src.sheet)
        )
    except Exception as exc:
        raise ctx.error(
            f"no sheet {src.sheet!r} (sheets: {', '.join(wb.sheet_names)}): {exc}", kind="missing_sheet"
        ) from None
    return wb, sheet


def _header(ctx: ReadContext, rows: Iterator[list[Any]]) -> list[str]:
    """The column names from the header rows (consumed from `rows`), or the declared fields."""
    src = ctx.source
    if not src.header_rows:
        return list(src.field_names)
    header = [[cell_text(c) for c in r] for _, r in zip(range(src.header_rows), rows, strict=False)]
    if len(header) < src.header_rows or not any(c != "" for r in header for c in r):
        raise ctx.error("empty sheet: no header row", kind="empty")
    if src.header_rows == 1:
        columns = [c if c != "" else unnamed(i + 1) for i, c in enumerate(header[0])]
    else:
        columns = combine_header_rows(header)
    # trailing header cells left empty are the sheet's used range, not columns
    while columns and columns[-1].startswith("_unnamed_"):
        columns.pop()
    return columns


def _add_row(
    ctx: ReadContext, buf: RowBuffer, values: list[str], sheet_row: int, problem: str | None
) -> None:
    """Add one non-blank sheet row (`sheet_row` as Excel numbers it), flagging cell problems
    and cells right of the header."""
    ncols = len(buf.columns)
    overflow = values[ncols:]
    buf.lines.append(sheet_row)
    if problem:
        problem = ctx.flag(buf.next_row, problem, "invalid_cell", line=sheet_row)
    if len(values) < ncols:
        buf.add([*values, *([""] * (ncols - len(values)))], problem)
    elif any(overflow):
        ragged = ctx.flag(buf.next_row, f"ragged: cells right of the {ncols} header columns", line=sheet_row)
        buf.add(values[:ncols], f"{ragged}; {problem}" if problem else ragged, json_list(overflow))
    else:
        buf.add(values[:ncols], problem)


def read(ctx: ReadContext, chunk_rows: int) -> Iterator[pa.Table]:
    """Yield the sheet's data rows in chunks of `chunk_rows` (see module docstring)."""
    assert ctx.path is not None
    src = ctx.source
    wb, sheet = _open_sheet(ctx)
    try:
        rows = sheet.iter_rows()
    except Exception as exc:
        raise ctx.error(f"unreadable sheet: {type(exc).__name__}: {exc}", kind="unreadable") from None
    # calamine's rows start at the sheet's first row, its columns at the used range's first
    # column (col0); merged ranges and the XML's cells are absolute
    col0 = sheet.start[1] if sheet.start else 0
    for _ in range(src.skip_rows):
        next(rows, None)
    columns = _header(ctx, rows)
    buf = RowBuffer(columns, check_columns(ctx, columns))
    blank = 0
    data_start = src.skip_rows + src.header_rows  # 0-based sheet row of the first record
    cells = xlsx_cells(ctx.path, src.sheet, list(wb.sheet_names))
    marked = {r for r, _ in cells.errors} | {r for r, _ in cells.uncalculated}
    fill = _merged_fill(ctx, sheet, data_start)
    for index, row_cells in enumerate(rows, start=data_start):
        values = [cell_text(c) for c in row_cells]
        for (_, c), value in fill.get(index, {}).items():
            if 0 <= c - col0 < len(values):
                values[c - col0] = value
        problem = _cell_problems(values, index, cells, col0) if index in marked else None
        if not any(values):
            blank += 1
            continue
        _add_row(ctx, buf, values, index + 1, problem)
        if len(buf) >= chunk_rows:
            yield buf.take()
    ctx.delivered = buf.total
    if blank:
        ctx.notes.append(f"{blank} blank row(s) skipped")
    if buf.total == 0:
        ctx.warn("empty sheet: header only, no data rows", kind="empty")
    if len(buf) or buf.total == 0:
        yield buf.take()


def _cell_problems(values: list[str], index: int, cells: SheetCells, col0: int) -> str | None:
    """The invalid_cell text of sheet row `index` (0-based); error cells get their error text."""
    parts = []
    for (r, c), err in sorted(cells.errors.items()):
        if r == index:
            if 0 <= c - col0 < len(values):
                values[c - col0] = err
            parts.append(f"{_a1(r, c)} holds the error {err}")
    for (r, c), formula in sorted(cells.uncalculated.items()):
        if r == index:
            parts.append(f"{_a1(r, c)} holds the formula ={formula} whose value was never calculated")
    return "invalid_cell: " + "; ".join(parts) if parts else None


def _merged_fill(ctx: ReadContext, sheet: Any, data_start: int) -> dict[int, dict[tuple[int, int], str]]:
    """Sheet row -> {(row, col): value} for the cells of merged ranges in the data rows other
    than the range's first cell (which holds the value), warning once per range."""
    try:
        ranges = sheet.merged_cell_ranges or []
    except Exception:  # a workbook kind calamine keeps no merge list for
        return {}
    out: dict[int, dict[tuple[int, int], str]] = {}
    if not ranges:
        return out
    table = sheet.to_python(skip_empty_area=False)  # from the sheet's first cell, A1
    for (r0, c0), (r1, c1) in ranges:
        if r1 < data_start or (r0 == r1 and c0 == c1):
            continue
        top = table[r0][c0] if r0 < len(table) and c0 < len(table[r0]) else ""
        value = cell_text(top)
        for r in range(max(r0, data_start), r1 + 1):
            for c in range(c0, c1 + 1):
                if (r, c) != (r0, c0):
                    out.setdefault(r, {})[(r, c)] = value
        ctx.warn(
            f"merged cell {_a1(r0, c0)}:{_a1(r1, c1)}: its value is filled into each of its cells",
            kind="merged_cell",
            line=r0 + 1,
        )
    return out
