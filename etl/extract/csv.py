"""CSV (and any delimited text) over strictly decoded text.

Two readers give the same rows (tests/unit/test_extract_csv_fast.py checks it):
- the fast path, for files with no quote character, no NUL byte and no carriage
  return except in CRLF line endings (what legacy exports usually are): then a
  physical line is a record and its fields are what lies between delimiters, so
  lines and fields are cut by Arrow compute over the UTF-8 bytes of big decoded
  blocks, with no Python object per value; rows of another field count (ragged)
  are rare and handled one by one;
- Python's csv module, for everything else (quoted fields, fields spanning
  lines).

Why not pyarrow.csv: its invalid-row handler can only skip or abort a ragged
row, and this layer must keep it in place with its row number.

Header rows: `header_rows` lines after `skip_rows` name the columns (several
rows combine as "<group>/<leaf>"); with 0 header rows the declared fields name
the columns in order. Blank lines are not records: skipped, counted in the
batch message. `_row_number` counts the records after the header.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.background import prefetch
from etl.extract.common import ReadContext, RowBuffer, check_columns, combine_header_rows, json_list, unnamed
from etl.extract.encoding import iter_decoded_blocks, iter_lines

_FIELD_LIMIT = 256 * 1024 * 1024
#: decoded in blocks of this many bytes on the fast path
FAST_BLOCK_BYTES = 16 * 1024 * 1024
_SCAN_BYTES = 16 * 1024 * 1024


def read(ctx: ReadContext, chunk_rows: int) -> Iterator[pa.Table]:
    """Yield the file's records in chunks of about `chunk_rows` (see module docstring)."""
    assert ctx.path is not None and ctx.codec is not None
    delimiter = ctx.source.delimiter
    if len(delimiter) == 1 and delimiter not in '"\r\n' and fast_path_applies(ctx.path):
        yield from read_fast(ctx, chunk_rows)
    else:
        yield from read_with_csv_module(ctx, chunk_rows)


def fast_path_applies(path: Path) -> bool:
    """No quote character, no NUL byte, every carriage return part of a CRLF.

    Checked on the raw bytes: in UTF-8, GBK and GB18030 these ASCII bytes never
    occur inside a multi-byte character.
    """
    prev_cr = False
    with path.open("rb") as fh:
        while block := fh.read(_SCAN_BYTES):
            if b'"' in block or b"\x00" in block:
                return False
            if prev_cr and not block.startswith(b"\n"):
                return False
            if b"\r" in block:  # CRLF files only: count the pairs
                body = block[:-1] if block.endswith(b"\r") else block
                if body.count(b"\r") != body.count(b"\r\n"):
                    return False
            prev_cr = block.endswith(b"\r")
    return not prev_cr


def read_with_csv_module(ctx: ReadContext, chunk_rows: int) -> Iterator[pa.Table]:
    """The general reader: Python's csv module over strictly decoded lines."""
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


def _header(ctx: ReadContext, lines: list[str]) -> list[str]:
    """Column names from the header lines (as the csv module reads them), checked."""
    src = ctx.source
    if not src.header_rows:
        return list(src.field_names)
    header_rows = list(csv.reader(lines, delimiter=src.delimiter))
    if len(header_rows) < src.header_rows or not any(header_rows):
        raise ctx.error("empty file: no header row", kind="empty")
    if src.header_rows == 1:
        return [c if c != "" else unnamed(i + 1) for i, c in enumerate(header_rows[0])]
    return combine_header_rows(header_rows)


def _lines(text: str) -> tuple[pa.Array, np.ndarray]:
    """The lines of `text` (which ends with a newline), each keeping its "\\n", and
    which of them are blank ("\\n" or "\\r\\n" alone), from their byte lengths."""
    data = text.encode("utf-8")
    raw = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(raw == 10) + 1
    offsets = np.concatenate([[0], ends]).astype(np.int32 if len(data) < 2**31 else np.int64)
    typ = pa.string() if offsets.dtype == np.int32 else pa.large_string()
    lines = pa.Array.from_buffers(typ, len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    size = np.diff(offsets)
    blank = (size == 1) | ((size == 2) & (raw[offsets[:-1]] == 13))
    return lines, blank


def read_fast(ctx: ReadContext, chunk_rows: int) -> Iterator[pa.Table]:
    """The fast path (module docstring): same rows, numbers and flags as the csv module gives."""
    assert ctx.path is not None and ctx.codec is not None
    src = ctx.source
    delimiter = src.delimiter
    skip = src.skip_rows + src.header_rows
    columns: list[str] | None = None
    null_columns: list[str] = []
    head: list[str] = []  # the first `skip` physical lines
    carry = ""
    taken = 0  # records so far
    blank = 0
    pending: list[pa.Table] = []
    pending_rows = 0

    def cut(text: str) -> pa.Table:
        nonlocal taken, blank
        assert columns is not None
        ncols = len(columns)
        lines, is_blank = _lines(text)
        split = pc.split_pattern(lines, delimiter)
        values = split.values  # every field of every line; split.offsets index into it
        starts = split.offsets.to_numpy(zero_copy_only=False)[:-1]
        counts = pc.list_value_length(split).to_numpy(zero_copy_only=False)
        if is_blank.any():
            blank += int(is_blank.sum())
            kept = np.flatnonzero(~is_blank)
            starts, counts = starts[kept], counts[kept]
        else:
            kept = None
        n = len(counts)
        regular = counts == ncols
        numbers = np.arange(taken + 1, taken + n + 1, dtype=np.int64)
        taken += n
        errors: pa.Array = pa.nulls(n, pa.string())
        extras: pa.Array = pa.nulls(n, pa.string())
        if regular.all():
            # field j of every row, straight from the split values: no filtering, no copy
            # of the list array
            cols = [values.take(pa.array(starts + j)) for j in range(ncols)]
        else:
            # regular rows by position, ragged ones one by one, then back in delivered order
            reg_starts = starts[regular]
            m = len(reg_starts)
            odd_pos = np.flatnonzero(~regular)
            odd_lines = odd_pos if kept is None else kept[odd_pos]
            odd_vals: list[list[str | None]] = [[] for _ in range(ncols)]
            odd_err, odd_extra = [], []
            for pos, fields in zip(odd_pos, split.take(pa.array(odd_lines)).to_pylist(), strict=True):
                fields[-1] = fields[-1].rstrip("\r\n")
                k = len(fields)
                problem = ctx.flag(int(numbers[pos]), f"ragged: expected {ncols} fields, got {k}")
                odd_err.append(problem)
                odd_extra.append(json_list(fields[ncols:]) if k > ncols else None)
                padded = fields[:ncols] + [None] * (ncols - k)
                for j in range(ncols):
                    odd_vals[j].append(padded[j])
            order = np.empty(n, dtype=np.int64)
            order[np.flatnonzero(regular)] = np.arange(m)
            order[odd_pos] = m + np.arange(len(odd_pos))
            idx = pa.array(order)
            cols = [
                pa.concat_arrays(
                    [values.take(pa.array(reg_starts + j)), pa.array(odd_vals[j], pa.string())]
                ).take(idx)
                for j in range(ncols)
            ]
            none = [None] * m
            errors = pa.array(none + odd_err, pa.string()).take(idx)
            extras = pa.array(none + odd_extra, pa.string()).take(idx)
        # the line ending sits at the end of the last field (ragged rows were stripped above)
        cols[-1] = pc.utf8_rtrim(cols[-1], characters="\r\n")
        cols = [c.cast(pa.string()) for c in cols]
        arrays = [*cols, *(pa.nulls(n, pa.string()) for _ in null_columns)]
        arrays += [pa.array(numbers), errors, extras]
        return pa.Table.from_arrays(
            arrays, names=[*columns, *null_columns, "_row_number", "_row_error", "_extra"]
        )

    # Decoding holds the GIL, cutting mostly does not: the next block is decoded on a
    # thread while this one is cut.
    with (
        ctx.path.open("rb") as fh,
        closing(prefetch(iter_decoded_blocks(fh, ctx.codec, FAST_BLOCK_BYTES), "govbase-decode")) as blocks,
    ):
        for block in blocks:
            text = carry + block if carry else block
            while columns is None and len(head) < skip:
                nl = text.find("\n")
                if nl < 0:
                    break
                head.append(text[: nl + 1])
                text = text[nl + 1 :]
            if columns is None:
                if len(head) < skip:
                    carry = text
                    continue
                columns = _header(ctx, head[src.skip_rows :])
                null_columns = check_columns(ctx, columns)
            last = text.rfind("\n")
            if last < 0:
                carry = text
                continue
            carry = text[last + 1 :]
            table = cut(text[: last + 1])
            pending.append(table)
            pending_rows += table.num_rows
            if pending_rows >= chunk_rows:
                yield from _slices(pa.concat_tables(pending), chunk_rows)
                pending, pending_rows = [], 0
    if columns is None:
        # fewer physical lines than skip + header rows
        head.append(carry)
        carry = ""
        columns = _header(ctx, [h for h in head[src.skip_rows :] if h])
        null_columns = check_columns(ctx, columns)
    if carry:
        pending.append(cut(carry + "\n"))
    if blank:
        ctx.notes.append(f"{blank} blank line(s) skipped")
    if taken == 0:
        ctx.warn("empty file: header only, no data rows", kind="empty")
        yield RowBuffer(columns, null_columns).take()
        return
    if pending:
        yield from _slices(pa.concat_tables(pending), chunk_rows)


def _slices(table: pa.Table, chunk_rows: int) -> Iterator[pa.Table]:
    for start in range(0, table.num_rows, chunk_rows):
        yield table.slice(start, chunk_rows)
