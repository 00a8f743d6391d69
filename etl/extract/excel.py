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
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import pyarrow as pa
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


def read(ctx: ReadContext, chunk_rows: int) -> Iterator[pa.Table]:
    """Yield the sheet's data rows in chunks of `chunk_rows` (see module docstring)."""
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
    try:
        rows = sheet.iter_rows()
    except Exception as exc:
        raise ctx.error(f"unreadable sheet: {type(exc).__name__}: {exc}", kind="unreadable") from None
    for _ in range(src.skip_rows):
        next(rows, None)
    if src.header_rows:
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
    else:
        columns = list(src.field_names)
    null_columns = check_columns(ctx, columns)
    ncols = len(columns)
    buf = RowBuffer(columns, null_columns)
    blank = 0
    for cells in rows:
        values = [cell_text(c) for c in cells]
        if not any(values):
            blank += 1
            continue
        overflow = values[ncols:]
        if len(values) < ncols:
            buf.add([*values, *([""] * (ncols - len(values)))])
        elif any(overflow):
            problem = ctx.flag(buf.next_row, f"ragged: cells right of the {ncols} header columns")
            buf.add(values[:ncols], problem, json_list(overflow))
        else:
            buf.add(values[:ncols])
        if len(buf) >= chunk_rows:
            yield buf.take()
    if blank:
        ctx.notes.append(f"{blank} blank row(s) skipped")
    if buf.total == 0:
        ctx.warn("empty sheet: header only, no data rows", kind="empty")
    if len(buf) or buf.total == 0:
        yield buf.take()
