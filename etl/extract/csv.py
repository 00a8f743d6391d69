"""CSV (and any delimited text): Python's csv module over strictly decoded lines.

Why not pyarrow.csv: its invalid-row handler can only skip or abort a ragged
row, and this layer must keep it; Python's csv keeps every field of every row
as text and is fast enough (see bench/extract_memory.py for the measured rate).

Header rows: `header_rows` lines after `skip_rows` name the columns (several
rows combine as "<group>/<leaf>"); with 0 header rows the declared fields name
the columns in order. Blank lines are not records: skipped, counted in the
batch message. `_row_number` counts the records after the header.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

import pyarrow as pa

from etl.extract.common import ReadContext, RowBuffer, check_columns, combine_header_rows, json_list, unnamed
from etl.extract.encoding import iter_lines

_FIELD_LIMIT = 256 * 1024 * 1024


def read(ctx: ReadContext, chunk_rows: int) -> Iterator[pa.Table]:
    """Yield the file's records in chunks of `chunk_rows` (see module docstring)."""
    assert ctx.path is not None and ctx.codec is not None
    src = ctx.source
    csv.field_size_limit(_FIELD_LIMIT)
    with ctx.path.open("rb") as fh:
        lines = iter_lines(fh, ctx.codec)
        for _ in range(src.skip_rows):
            next(lines, None)
        reader = csv.reader(lines, delimiter=src.delimiter)
        try:
            if src.header_rows:
                header_rows = [row for _, row in zip(range(src.header_rows), reader, strict=False)]
                if len(header_rows) < src.header_rows or not any(header_rows):
                    raise ctx.error("empty file: no header row", kind="empty")
                if src.header_rows == 1:
                    columns = [c if c != "" else unnamed(i + 1) for i, c in enumerate(header_rows[0])]
                else:
                    columns = combine_header_rows(header_rows)
            else:
                columns = list(src.field_names)
            null_columns = check_columns(ctx, columns)
            ncols = len(columns)
            buf = RowBuffer(columns, null_columns)
            append = buf.rows.append
            blank = 0
            for fields in reader:
                n = len(fields)
                if n == ncols:
                    append(fields)
                elif n == 0:
                    blank += 1
                    continue
                elif n > ncols:
                    problem = ctx.flag(buf.next_row, f"ragged: expected {ncols} fields, got {n}")
                    buf.add(fields[:ncols], problem, json_list(fields[ncols:]))
                else:
                    problem = ctx.flag(buf.next_row, f"ragged: expected {ncols} fields, got {n}")
                    buf.add([*fields, *([None] * (ncols - n))], problem)
                if len(buf.rows) >= chunk_rows:
                    yield buf.take()
        except csv.Error as exc:
            raise ctx.error(
                f"malformed CSV at line {reader.line_num}: {exc}", kind="malformed", row=None
            ) from None
    if blank:
        ctx.notes.append(f"{blank} blank line(s) skipped")
    if buf.total == 0:
        ctx.warn("empty file: header only, no data rows", kind="empty")
    if len(buf) or buf.total == 0:
        yield buf.take()
