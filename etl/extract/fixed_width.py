"""Fixed-width text: each declared field is `width` characters from `start` (after decoding).

Values are sliced exactly, padding kept. A line shorter than the record is
kept and flagged (fields past its end are null, a field cut by its end keeps
what is there); characters past the record end go to `_extra`, and the line is
flagged unless they are only spaces. The line terminator ("\\n" or "\\r\\n") is
not data. Blank lines are not records.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from etl.extract.common import ReadContext, RowBuffer
from etl.extract.encoding import iter_lines


def read(ctx: ReadContext, chunk_rows: int) -> Iterator[pa.Table]:
    """Yield the file's records in chunks of `chunk_rows` (see module docstring)."""
    assert ctx.path is not None and ctx.codec is not None
    src = ctx.source
    spans = [(f.start or 0, (f.start or 0) + (f.width or 0)) for f in src.fields]
    record_len = max(end for _, end in spans)
    buf = RowBuffer(src.field_names)
    line_append = buf.lines.append
    blank = 0
    line_no = src.skip_rows + src.header_rows
    with ctx.path.open("rb") as fh:
        lines = iter_lines(fh, ctx.codec)
        for _ in range(src.skip_rows + src.header_rows):
            next(lines, None)
        for line in lines:
            line_no += 1
            if line.endswith("\n"):
                line = line[:-2] if line.endswith("\r\n") else line[:-1]
            if not line:
                blank += 1
                continue
            n = len(line)
            line_append(line_no)
            if n == record_len:
                buf.rows.append([line[a:b] for a, b in spans])
            else:
                values: list[str | None] = [line[a:b] if a < n else None for a, b in spans]
                error = extra = None
                if n < record_len:
                    error = ctx.flag(
                        buf.next_row,
                        f"short line: expected {record_len} characters, got {n}",
                        "ragged",
                        line_no,
                    )
                else:
                    extra = line[record_len:]
                    if extra.strip(" "):
                        error = ctx.flag(
                            buf.next_row,
                            f"long line: expected {record_len} characters, got {n}",
                            "ragged",
                            line_no,
                        )
                buf.add(values, error, extra)
            if len(buf.rows) >= chunk_rows:
                yield buf.take()
    ctx.delivered = line_no - src.skip_rows - src.header_rows - blank  # every non-blank line is one
    if blank:
        ctx.notes.append(f"{blank} blank line(s) skipped")
    if buf.total == 0:
        ctx.warn("empty file: no data lines", kind="empty")
    if len(buf) or buf.total == 0:
        yield buf.take()
