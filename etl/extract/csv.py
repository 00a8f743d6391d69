"""CSV (and any delimited text) over strictly decoded text.

Two readers give the same rows (tests/unit/test_extract_csv_fast.py checks it):
- the fast path, for files with no quote character, no NUL byte and no carriage
  return except in CRLF line endings, and an ASCII delimiter (what legacy exports
  usually are): then a physical line is a record and its fields are what lies
  between delimiters, so big decoded blocks are cut by pyarrow.csv (quoting off)
  with no Python object per value; rows of another field count (ragged) are rare:
  pyarrow hands them over with their record numbers, and they are cut one by one
  and put back in place;
- Python's csv module (strict), for everything else (quoted fields,
  records spanning up to the source's `max_field_lines` lines). A quote left open is no
  reason to take the rows after it into one field: the line where it opened is
  kept, flagged `unbalanced_quote`, and the lines after it are read again.

Both readers give each record its physical line (`_line`, for messages) and
count the records the file delivers from its lines (`ReadContext.delivered`:
non-blank lines after the header, less the lines inside accepted multi-line
fields), which the extract checks against the rows written.

pyarrow.csv is not the whole reader: it does not decode GBK (the text is decoded
strictly first, with the error's byte and line), and its invalid-row handler can
only skip a ragged row, which this layer keeps in place with its row number.

Header rows: `header_rows` lines after `skip_rows` name the columns (several
rows combine as "<group>/<leaf>"); with 0 header rows the declared fields name
the columns in order. Blank lines are not records: skipped, counted in the
batch message. `_row_number` counts the records after the header.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from etl.background import prefetch
from etl.extract.common import (
    LINE,
    RAW_TEXT,
    ReadContext,
    RowBuffer,
    check_columns,
    combine_header_rows,
    json_list,
    unnamed,
)
from etl.extract.encoding import iter_decoded_blocks, iter_lines

_FIELD_LIMIT = 256 * 1024 * 1024
#: decoded in blocks of this many bytes on the fast path
FAST_BLOCK_BYTES = 16 * 1024 * 1024
_SCAN_BYTES = 16 * 1024 * 1024


def read(ctx: ReadContext, chunk_rows: int) -> Iterator[pa.Table]:
    """Yield the file's records in chunks of about `chunk_rows` (see module docstring)."""
    assert ctx.path is not None and ctx.codec is not None
    delimiter = ctx.source.delimiter
    # pyarrow.csv takes an ASCII delimiter only; others ("；") go through the csv module
    if (
        len(delimiter) == 1
        and delimiter.isascii()
        and delimiter not in '"\r\n'
        and fast_path_applies(ctx.path)
    ):
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


class _OpenQuote(Exception):
    """A quoted field still open after the source's max_field_lines lines."""


class _Feed:
    """The decoded physical lines for csv.reader, numbered from the file's first line.

    Keeps the lines of the record being read (`record`: reset before each record),
    so that a record whose quoting breaks can be read again from its second line
    (`back`); raises _OpenQuote when one record asks for more than `max_lines`
    lines. `count` and `blank` count the file's lines and its blank ones, each once.
    """

    def __init__(self, lines: Iterator[str], max_lines: int) -> None:
        self._lines = lines
        self.max_lines = max_lines
        self.count = 0
        self.blank = 0
        self.back: list[tuple[int, str]] = []  # lines to hand out again, the next one last
        self.record: list[tuple[int, str]] = []

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        if self.back:
            item = self.back.pop()
        else:
            text = next(self._lines)
            self.count += 1
            if text == "\n" or text == "\r\n":
                self.blank += 1
            item = (self.count, text)
        self.record.append(item)
        if len(self.record) > self.max_lines:
            raise _OpenQuote
        return item[1]


def _unquoted(line: str, delimiter: str) -> list[str]:
    """The fields of one physical line cut at every delimiter, quotes kept as characters."""
    if line.endswith("\n"):
        line = line[:-2] if line.endswith("\r\n") else line[:-1]
    return line.split(delimiter)


def _csv_header(ctx: ReadContext, reader: Iterator[list[str]], feed: _Feed) -> list[str]:
    src = ctx.source
    if not src.header_rows:
        return list(src.field_names)
    header_rows: list[list[str]] = []
    for _ in range(src.header_rows):
        feed.record = []
        try:
            header_rows.append(next(reader))
        except StopIteration:
            break
        except (csv.Error, _OpenQuote) as exc:
            line = feed.record[0][0] if feed.record else feed.count
            raise ctx.error(
                f"malformed header: {exc or 'a quote left open'}", kind="malformed", line=line
            ) from None
    if len(header_rows) < src.header_rows or not any(header_rows):
        raise ctx.error("empty file: no header row", kind="empty")
    if src.header_rows == 1:
        return [c if c != "" else unnamed(i + 1) for i, c in enumerate(header_rows[0])]
    return combine_header_rows(header_rows)


def _padded(fields: list[str], ncols: int) -> tuple[list[str | None], str | None]:
    """`fields` cut or padded (null) to `ncols`, and the overflow as a JSON list (or None)."""
    extra = json_list(fields[ncols:]) if len(fields) > ncols else None
    return [*fields[:ncols], *([None] * (ncols - len(fields)))], extra


def _add_ragged(ctx: ReadContext, buf: RowBuffer, fields: list[str], line: int) -> None:
    """Add a record of another field count than the header's, flagged (its line not yet
    appended to buf.lines: the caller does, as for every record)."""
    ncols = len(buf.columns)
    problem = ctx.flag(buf.next_row, f"ragged: expected {ncols} fields, got {len(fields)}", line=line)
    values, extra = _padded(fields, ncols)
    buf.add(values, problem, extra)


def _keep_unquoted(
    ctx: ReadContext, buf: RowBuffer, feed: _Feed, record: list[tuple[int, str]], exc: Exception
) -> None:
    """A record whose quoting broke: keep the line where it opened as a flagged row cut
    without quoting, and hand the lines after it to the reader again."""
    src = ctx.source
    line, text = record[0]
    feed.back.extend(reversed(record[1:]))
    if isinstance(exc, _OpenQuote):
        why = f"a quote opened on this line is still open after {src.max_field_lines} line(s)"
    elif "unexpected end of data" in str(exc):
        why = "a quote opened on this line is not closed before the end of the file"
    else:
        why = f"malformed quoting ({exc})"
    problem = ctx.flag(
        buf.next_row, f"unbalanced_quote: {why}; the line is read without quoting", "unbalanced_quote", line
    )
    buf.lines.append(line)
    values, extra = _padded(_unquoted(text, src.delimiter), len(buf.columns))
    buf.add(values, problem, extra)


def read_with_csv_module(ctx: ReadContext, chunk_rows: int) -> Iterator[pa.Table]:
    """The general reader: Python's csv module (strict) over strictly decoded lines.

    A record whose quoting breaks (a quote still open after `max_field_lines`
    lines or at the end of the file, a quote followed by text) is not taken as
    the csv module would take it: the line where it opened is kept as a
    flagged row, cut at every delimiter with its quotes as characters
    (`unbalanced_quote`), and the lines after it are read again as records.
    """
    assert ctx.path is not None and ctx.codec is not None
    src = ctx.source
    csv.field_size_limit(_FIELD_LIMIT)
    with ctx.path.open("rb") as fh:
        feed = _Feed(iter_lines(fh, ctx.codec), src.max_field_lines)
        for _ in range(src.skip_rows):
            feed.record = []  # skipped lines are no record: they never count as a quote left open
            next(feed, None)
        reader = csv.reader(feed, delimiter=src.delimiter, strict=True)
        columns = _csv_header(ctx, reader, feed)
        head_lines, head_blank = feed.count, feed.blank
        null_columns = check_columns(ctx, columns)
        ncols = len(columns)
        buf = RowBuffer(columns, null_columns)
        append, line_append = buf.rows.append, buf.lines.append
        blank = 0
        continued = 0  # non-blank lines inside accepted multi-line records
        while True:
            record: list[tuple[int, str]] = []
            feed.record = record
            try:
                fields = next(reader)
            except StopIteration:
                break
            except (csv.Error, _OpenQuote) as exc:
                _keep_unquoted(ctx, buf, feed, record, exc)
                reader = csv.reader(feed, delimiter=src.delimiter, strict=True)  # a fresh state
                continue
            n = len(fields)
            if len(record) > 1:
                continued += sum(t != "\n" and t != "\r\n" for _, t in record[1:])
            if n == ncols:
                append(fields)
            elif n == 0:
                blank += 1
                continue
            else:
                _add_ragged(ctx, buf, fields, record[0][0])
            line_append(record[0][0])
            if len(buf.rows) >= chunk_rows:
                yield buf.take()
    ctx.delivered = (feed.count - head_lines) - (feed.blank - head_blank) - continued
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


#: pyarrow.csv parses in blocks of this many bytes; a line longer than a block is
#: parsed again with one block for the whole text
_PARSE_BLOCK_BYTES = 1 << 20


def _parse(data: bytes, delimiter: str, ncols: int) -> tuple[pa.Table, list[tuple[int, str]]]:
    """The records of `data` (UTF-8, lines are records, no quoting) with `ncols` fields,
    cut by pyarrow.csv, and the others as (record number in `data`, text): pyarrow's
    InvalidRow.number counts records from 1, blank lines left out, as `_row_number` does."""
    names = [f"f{j}" for j in range(ncols)]
    convert = pacsv.ConvertOptions(column_types=dict.fromkeys(names, RAW_TEXT), check_utf8=False)
    if data.startswith(codecs.BOM_UTF8):
        # pyarrow drops a byte-order mark at the start of its input; here it is a
        # delivered character (U+FEFF starting the block's first line). A blank line in
        # front keeps it: blank lines are no records, so record numbers do not move.
        data = b"\n" + data
    block = _PARSE_BLOCK_BYTES
    odd: list[tuple[int, str]] = []

    def keep(row: pacsv.InvalidRow) -> str:
        if row.number is None or row.number < 1:  # never in a serial read: fail, never misplace
            return "error"
        odd.append((row.number, row.text))
        return "skip"

    while True:
        odd.clear()
        try:
            table = pacsv.read_csv(
                pa.BufferReader(data),
                # one thread: the row numbers of ragged rows are only known in a serial
                # read, and the decode thread has the other core
                read_options=pacsv.ReadOptions(use_threads=False, column_names=names, block_size=block),
                parse_options=pacsv.ParseOptions(
                    delimiter=delimiter, quote_char=False, invalid_row_handler=keep
                ),
                convert_options=convert,
            )
        except pa.ArrowInvalid as exc:
            if "straddl" not in str(exc) or block > len(data):
                raise
            block = len(data) + 1
            continue
        return table, odd


def _interleave(regular: pa.Array | pa.ChunkedArray, odd: pa.Array, odd_pos: np.ndarray) -> pa.Array:
    """`regular` with the values of `odd` put in at the (ascending) positions `odd_pos`
    of the result: slices of both, concatenated in bulk (no per-value copy, as a take
    would make)."""
    pieces: list[pa.Array | pa.ChunkedArray] = []
    start = 0  # of the next regular slice
    for k, pos in enumerate(odd_pos.tolist()):
        before = pos - k - start  # regular values between the previous odd one and this one
        if before:
            pieces.append(regular.slice(start, before))
            start += before
        pieces.append(odd.slice(k, 1))
    pieces.append(regular.slice(start))
    return pa.concat_arrays(
        [c for p in pieces for c in (p.chunks if isinstance(p, pa.ChunkedArray) else [p])]
    )


class _Cutter:
    """Cuts the decoded text of the fast path into tables of records (see `read_fast`),
    counting records, blank lines and the delivered records (from the bytes) as it goes."""

    def __init__(
        self, ctx: ReadContext, columns: list[str], null_columns: list[str], lines_before: int
    ) -> None:
        self.ctx, self.columns, self.null_columns = ctx, columns, null_columns
        self.delimiter = ctx.source.delimiter
        self.taken = 0  # records so far
        self.blank = 0
        self.lines_before = lines_before  # physical lines before the text being cut
        self.delivered = 0  # non-blank data lines, counted from the bytes (not by pyarrow)

    def cut(self, text: str) -> pa.Table:
        """The records of `text` (whole lines, each ending in "\\n") as one table."""
        ncols = len(self.columns)
        data = text.encode("utf-8")
        table, odd = _parse(data, self.delimiter, ncols)
        m = table.num_rows
        n = m + len(odd)
        nlines = data.count(b"\n")  # every line ends with "\n"
        self.blank += nlines - n  # the lines pyarrow gave no record for
        lines = _record_lines(data, nlines, n, self.lines_before)
        self.delivered += len(lines)
        if len(lines) != n:  # pyarrow lost or invented a line: the extract fails on `delivered`
            lines = np.resize(lines, n)
        self.lines_before += nlines
        numbers = np.arange(self.taken + 1, self.taken + n + 1, dtype=np.int64)
        self.taken += n
        cols: list[pa.Array | pa.ChunkedArray] = list(table.columns)
        errors: pa.Array = pa.nulls(n, RAW_TEXT)
        extras: pa.Array = pa.nulls(n, RAW_TEXT)
        if odd:
            # ragged rows one by one, then back in delivered order among the regular ones
            odd_pos = np.array([number - 1 for number, _ in odd], dtype=np.int64)
            odd_vals: list[list[str | None]] = [[] for _ in range(ncols)]
            odd_err, odd_extra = [], []
            for pos, (_, line) in zip(odd_pos, odd, strict=True):
                fields = line.split(self.delimiter)
                k = len(fields)
                problem = self.ctx.flag(
                    int(numbers[pos]), f"ragged: expected {ncols} fields, got {k}", line=int(lines[pos])
                )
                odd_err.append(problem)
                odd_extra.append(json_list(fields[ncols:]) if k > ncols else None)
                padded = fields[:ncols] + [None] * (ncols - k)
                for j in range(ncols):
                    odd_vals[j].append(padded[j])
            cols = [_interleave(cols[j], pa.array(odd_vals[j], RAW_TEXT), odd_pos) for j in range(ncols)]
            errors = _interleave(pa.nulls(m, RAW_TEXT), pa.array(odd_err, RAW_TEXT), odd_pos)
            extras = _interleave(pa.nulls(m, RAW_TEXT), pa.array(odd_extra, RAW_TEXT), odd_pos)
        arrays = [*cols, *(pa.nulls(n, RAW_TEXT) for _ in self.null_columns)]
        arrays += [pa.array(numbers), errors, extras, pa.array(lines, pa.int64())]
        return pa.Table.from_arrays(
            arrays, names=[*self.columns, *self.null_columns, "_row_number", "_row_error", "_extra", LINE]
        )


def _take_head(text: str, head: list[str], skip: int) -> str:
    """Move whole lines from the start of `text` to `head` until it holds `skip`; the rest."""
    while len(head) < skip:
        nl = text.find("\n")
        if nl < 0:
            break
        head.append(text[: nl + 1])
        text = text[nl + 1 :]
    return text


def read_fast(ctx: ReadContext, chunk_rows: int) -> Iterator[pa.Table]:
    """The fast path (module docstring): same rows, numbers and flags as the csv module gives."""
    assert ctx.path is not None and ctx.codec is not None
    src = ctx.source
    skip = src.skip_rows + src.header_rows
    cutter: _Cutter | None = None
    head: list[str] = []  # the first `skip` physical lines
    carry = ""
    pending: list[pa.Table] = []
    pending_rows = 0

    def start(lines: list[str]) -> _Cutter:
        columns = _header(ctx, lines)
        return _Cutter(ctx, columns, check_columns(ctx, columns), skip)

    # Decoding holds the GIL, cutting mostly does not: the next block is decoded on a
    # thread while this one is cut.
    with (
        ctx.path.open("rb") as fh,
        closing(prefetch(iter_decoded_blocks(fh, ctx.codec, FAST_BLOCK_BYTES), "govbase-decode")) as blocks,
    ):
        for block in blocks:
            text = carry + block if carry else block
            if cutter is None:
                text = _take_head(text, head, skip)
                if len(head) < skip:
                    carry = text
                    continue
                cutter = start(head[src.skip_rows :])
            last = text.rfind("\n")
            if last < 0:
                carry = text
                continue
            carry = text[last + 1 :]
            table = cutter.cut(text[: last + 1])
            pending.append(table)
            pending_rows += table.num_rows
            if pending_rows >= chunk_rows:
                yield from _slices(pa.concat_tables(pending), chunk_rows)
                pending, pending_rows = [], 0
    if cutter is None:  # fewer physical lines than skip + header rows
        cutter = start([h for h in [*head, carry][src.skip_rows :] if h])
    elif carry:
        pending.append(cutter.cut(carry + "\n"))
    ctx.delivered = cutter.delivered
    if cutter.blank:
        ctx.notes.append(f"{cutter.blank} blank line(s) skipped")
    if cutter.taken == 0:
        ctx.warn("empty file: header only, no data rows", kind="empty")
        yield RowBuffer(cutter.columns, cutter.null_columns).take()
        return
    if pending:
        yield from _slices(pa.concat_tables(pending), chunk_rows)


def _record_lines(data: bytes, nlines: int, records: int, before: int) -> np.ndarray:
    """The physical line numbers of the non-blank lines of `data` (lines ending in "\\n"; a
    blank one is empty or a lone "\\r"), the first line of `data` being line `before + 1`.

    Counted from the bytes, not by the parser: two byte counts say whether `data` has
    any blank line (a blank line follows a "\\n", or starts `data`); only then is each
    line looked at (numpy over the newline positions).
    """
    if not (records != nlines or data.startswith((b"\n", b"\r\n")) or b"\n\n" in data or b"\n\r\n" in data):
        return np.arange(before + 1, before + nlines + 1, dtype=np.int64)
    a = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(a == 10)
    starts = np.concatenate(([0], ends[:-1] + 1))
    length = ends - starts
    first = a[np.minimum(starts, len(a) - 1)]
    blank = (length == 0) | ((length == 1) & (first == 13))
    return before + 1 + np.flatnonzero(~blank).astype(np.int64)


def _slices(table: pa.Table, chunk_rows: int) -> Iterator[pa.Table]:
    for start in range(0, table.num_rows, chunk_rows):
        yield table.slice(start, chunk_rows)
