"""Newline-delimited JSON: one object per line, nested objects flattened to dotted paths.

Values as text exactly as delivered: strings as they are, numbers as their
literal text ("1.10" stays "1.10", "1e400" stays "1e400"), true/false as
"true"/"false", null and absent keys as null. Arrays are kept as compact JSON
text. A line that is not a JSON object fails the file, naming the line: it
usually means a truncated or corrupted delivery, and the department must resend
it. Blank lines are not records.

Rows kept but flagged (quarantined with the reason, values as delivered):
- duplicate_json_key: an object names a key twice (json.loads would keep the last);
- wrong_json_type: a declared field mapped to a column holds another JSON type
  than the column takes. Text is always taken (the transforms read text); a
  number only for integer and decimal columns, true/false only for boolean
  ones; a list or an object for none (an object where a field is declared would
  otherwise flatten away and leave the field null). Fields kept raw only
  (`to: null`) and undeclared keys are not checked;
- unreadable_record: nested deeper than MAX_DEPTH levels (or than Python's
  recursion allows): the values are null, the line goes to `_extra` as delivered.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from etl.extract.common import DictBuffer, ReadContext, check_new_columns
from etl.extract.encoding import iter_lines

#: objects nested deeper than this are no record govbase reads (delivered records nest 2-3 levels)
MAX_DEPTH = 32
#: JSON types a column type takes besides text (see module docstring)
_TAKES: dict[str, tuple[type, ...]] = {"boolean": (bool,)}


class _Number(str):
    """A JSON number kept as its literal text."""


class _Object(dict[str, Any]):
    """A JSON object; `dupes` names the keys it repeats."""

    dupes: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        obj.dupes = tuple(sorted({k for k, _ in pairs if k in seen or seen.add(k)}))  # type: ignore[func-returns-value]
    return obj


def _loads(line: str) -> Any:
    return json.loads(
        line, parse_float=_Number, parse_int=_Number, parse_constant=_Number, object_pairs_hook=_object
    )


class _TooDeep(Exception):
    pass


def _type_name(value: Any) -> str:
    if isinstance(value, _Number):
        return "number"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, list):
        return "list"
    return "object" if isinstance(value, dict) else type(value).__name__


def _problems(obj: dict[str, Any], types: dict[str, str], depth: int = 0) -> list[tuple[str, str]]:
    """(reason code, what) of one record: duplicate keys at any level, declared fields of a
    type their column does not take (module docstring)."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[str, Any, int]] = [("", obj, 0)]
    while stack:
        prefix, o, d = stack.pop()
        if d > MAX_DEPTH:
            raise _TooDeep
        if isinstance(o, _Object) and o.dupes:
            out.append(("duplicate_json_key", ", ".join(prefix + k for k in o.dupes)))
        if isinstance(o, dict):
            stack.extend((f"{prefix}{k}.", v, d + 1) for k, v in o.items() if isinstance(v, dict | list))
        elif isinstance(o, list):
            stack.extend((prefix, v, d + 1) for v in o if isinstance(v, dict | list))
    for name, column_type in types.items():
        value: Any = obj
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None or (isinstance(value, str) and not isinstance(value, _Number)):
            continue
        if isinstance(value, _Number):
            ok = column_type in ("integer", "decimal")
        else:
            ok = isinstance(value, _TAKES.get(column_type, ()))
        if not ok:
            out.append(
                (
                    "wrong_json_type",
                    f"{name} is a JSON {_type_name(value)}, not what its {column_type} column takes",
                )
            )
    return out


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


def _parse(ctx: ReadContext, line: str, line_no: int, row: int) -> tuple[Any, bool]:
    """(the line's object, whether it nests too deep); raises SourceError (invalid_json)
    for a line that is no JSON object."""
    try:
        obj = _loads(line)
    except json.JSONDecodeError as exc:
        raise ctx.error(
            f"not valid JSON: {exc.msg} at column {exc.colno}", kind="invalid_json", row=row, line=line_no
        ) from None
    except RecursionError:
        return None, True
    if not isinstance(obj, dict):
        raise ctx.error(
            f"a JSON {_type_name(obj)}, not an object", kind="invalid_json", row=row, line=line_no
        )
    return obj, False


def _flag_text(problems: list[tuple[str, str]]) -> tuple[str, str]:
    """(the _row_error text, its first reason code) of a record's problems."""
    by_kind: dict[str, list[str]] = {}
    for kind, what in problems:
        by_kind.setdefault(kind, []).append(what)
    return "; ".join(f"{k}: {', '.join(v)}" for k, v in by_kind.items()), next(iter(by_kind))


def _add(ctx: ReadContext, buf: DictBuffer, seen: set[str], line: str, line_no: int, row: int) -> None:
    """Parse one non-blank line and add its record (flagged where module docstring says)."""
    obj, too_deep = _parse(ctx, line, line_no, row)
    try:
        if too_deep:
            raise _TooDeep
        problems = _problems(obj, ctx.types)
        record = flatten(obj)
    except (_TooDeep, RecursionError):
        why = f"unreadable_record: nested deeper than {MAX_DEPTH} levels; kept whole in _extra"
        buf.add({}, row, ctx.flag(row, why, "unreadable_record", line_no), line.rstrip("\r\n"), line_no)
        return
    new = buf.new_keys(record)
    if new:
        check_new_columns(ctx, new, row=row)
    seen.update(record)
    error = None
    if problems:
        text, kind = _flag_text(problems)
        error = ctx.flag(row, text, kind, line_no)
    buf.add(record, row, error, None, line_no)


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
            _add(ctx, buf, seen, line, line_no, row)
            if len(buf) >= chunk_rows:
                yield buf.take()
    ctx.delivered = row
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
