"""Newline-delimited JSON: one object per line, nested objects flattened to dotted paths.

Values as text exactly as delivered: strings as they are, numbers as their
literal text ("1.10" stays "1.10"), true/false as "true"/"false", null and
absent keys as null. Arrays are kept as compact JSON text. A line that is not a
JSON object fails the file, naming the line: it usually means a truncated or
corrupted delivery, and the department must resend it. Blank lines are not records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from etl.extract.common import DictBuffer, ReadContext, check_new_columns
from etl.extract.encoding import iter_lines


class _Number(str):
    """A JSON number kept as its literal text."""


def _loads(line: str) -> Any:
    return json.loads(line, parse_float=_Number, parse_int=_Number, parse_constant=_Number)


def _scalar(value: Any) -> str | None:
    if value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return str(value)
    return _compact(value)


def _compact(value: Any) -> str:
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(_compact(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{_compact(v)}" for k, v in value.items())
            + "}"
        )
    return "null" if value is None else ("true" if value else "false")


def flatten(
    obj: dict[str, Any], prefix: str = "", out: dict[str, str | None] | None = None
) -> dict[str, str | None]:
    """{"patient": {"id_card": "1"}} -> {"patient.id_card": "1"}; leaves as text (see module docstring)."""
    out = {} if out is None else out
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flatten(value, name + ".", out)  # an empty object adds nothing: its leaves are absent (null)
        else:
            out[name] = _scalar(value)
    return out


def read(ctx: ReadContext, chunk_rows: int) -> Iterator[pa.Table]:
    """Yield the file's records in chunks of `chunk_rows` (see module docstring)."""
    assert ctx.path is not None and ctx.codec is not None
    src = ctx.source
    buf = DictBuffer(src.field_names)
    seen: set[str] = set()
    row = blank = 0
    with ctx.path.open("rb") as fh:
        for line_no, line in enumerate(iter_lines(fh, ctx.codec), start=1):
            if not line.strip():
                blank += 1
                continue
            row += 1
            try:
                obj = _loads(line)
            except json.JSONDecodeError as exc:
                raise ctx.error(
                    f"line {line_no} is not valid JSON: {exc.msg} at column {exc.colno}",
                    kind="invalid_json",
                    row=row,
                ) from None
            if not isinstance(obj, dict):
                raise ctx.error(
                    f"line {line_no} is a JSON {type(obj).__name__}, not an object",
                    kind="invalid_json",
                    row=row,
                )
            record = flatten(obj)
            new = buf.new_keys(record)
            if new:
                check_new_columns(ctx, new, row=row)
            seen.update(record)
            buf.add(record, row)
            if len(buf) >= chunk_rows:
                yield buf.take()
    if row:
        missing = [f.name for f in src.fields if f.required and f.name not in seen]
        if missing:
            raise ctx.error(
                f"missing declared field(s) in every record: {', '.join(missing)}", kind="missing_column"
            )
    if blank:
        ctx.notes.append(f"{blank} blank line(s) skipped")
    if row == 0:
        ctx.warn("empty file: no records", kind="empty")
    if len(buf) or row == 0:
        yield buf.take()
