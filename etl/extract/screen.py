"""Values no reader may pass on unflagged, whatever the source kind.

Every chunk a reader yields goes through `screen` before it is written to raw.
A row holding one of these keeps its values exactly as delivered and gets a
`_row_error` (so it is quarantined with the reason, see etl.quality.ROW_ERRORS),
recorded in meta.source_error with its record number and physical line:

- control_character: a NUL (U+0000) or a bidirectional control (U+200E, U+200F,
  U+202A-U+202E, U+2066-U+2069) in a value. Not stripped: a bidirectional
  override makes a name display as another text ("Trojan Source"), and a NUL
  cuts it in C-string consumers; which text was meant is the department's to say;
- field_too_long: a value of more characters than the source's `max_field_chars`
  (mostly a quote left open that swallowed the rows after it).

Both checks run on the Arrow buffers (numpy over the UTF-8 bytes, lengths from
the offsets), so a clean chunk costs a few passes over its bytes, no Python
object per value.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.extract.common import LINE, META_COLUMNS, ReadContext

#: second and third UTF-8 byte of the bidirectional controls (first byte 0xE2)
_BIDI_TAILS = {
    0x80: {0x8E: "U+200E", 0x8F: "U+200F", 0xAA: "U+202A", 0xAB: "U+202B", 0xAC: "U+202C"}
    | {0xAD: "U+202D", 0xAE: "U+202E"},
    0x81: {0xA6: "U+2066", 0xA7: "U+2067", 0xA8: "U+2068", 0xA9: "U+2069"},
}


def _chunks(col: pa.ChunkedArray | pa.Array) -> list[pa.Array]:
    return list(col.chunks) if isinstance(col, pa.ChunkedArray) else [col]


def _control_rows(arr: pa.Array) -> dict[int, str]:
    """Positions in `arr` (a string chunk) holding a control character -> its code point."""
    if len(arr) == 0 or arr.null_count == len(arr):
        return {}
    large = pa.types.is_large_string(arr.type)
    bufs = arr.buffers()
    if bufs[2] is None:
        return {}
    offsets = np.frombuffer(bufs[1], dtype=np.int64 if large else np.int32)
    offsets = offsets[arr.offset : arr.offset + len(arr) + 1]
    lo, hi = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(bufs[2], dtype=np.uint8)[lo:hi]
    found: dict[int, str] = {}
    if not data.all():  # a zero byte: NUL
        for p in np.flatnonzero(data == 0).tolist():
            found.setdefault(p, "U+0000")
    for p in np.flatnonzero(data[:-2] == 0xE2).tolist():
        name = _BIDI_TAILS.get(int(data[p + 1]), {}).get(int(data[p + 2]))
        if name:
            found.setdefault(p, name)
    if not found:
        return {}
    pos = np.array(sorted(found), dtype=np.int64)
    rows = np.searchsorted(offsets - lo, pos, side="right") - 1
    out: dict[int, str] = {}
    for r, p in zip(rows.tolist(), pos.tolist(), strict=True):
        out.setdefault(r, found[p])
    return out


def _long_rows(arr: pa.Array, limit: int) -> dict[int, int]:
    """Positions in `arr` holding more than `limit` characters -> their length."""
    if len(arr) == 0:
        return {}
    nbytes = pc.binary_length(arr)
    top = pc.max(nbytes).as_py()
    if top is None or top <= limit:  # characters <= bytes: nothing can be longer
        return {}
    chars = pc.utf8_length(arr)
    over = np.flatnonzero(pc.fill_null(pc.greater(chars, limit), False).to_numpy(zero_copy_only=False))
    return {int(i): int(chars[int(i)].as_py()) for i in over}


def screen(ctx: ReadContext, table: pa.Table) -> pa.Table:
    """`table` (a reader's chunk) with suspect rows flagged (module docstring), without `_line`."""
    limit = ctx.source.max_field_chars
    problems: dict[int, list[tuple[str, str]]] = {}
    for name in table.column_names:
        if name in META_COLUMNS or name == LINE or name.startswith("_row") or name == "_extra":
            continue
        col = table[name]
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            continue
        start = 0
        for chunk in _chunks(col):
            for i, code in _control_rows(chunk).items():
                problems.setdefault(start + i, []).append(("control_character", f"{code} in {name}"))
            for i, n in _long_rows(chunk, limit).items():
                problems.setdefault(start + i, []).append(
                    ("field_too_long", f"{name} holds {n} characters (max_field_chars {limit})")
                )
            start += len(chunk)
    lines = table[LINE] if LINE in table.column_names else None
    if LINE in table.column_names:
        table = table.drop_columns([LINE])
    if not problems:
        return table
    numbers = table["_row_number"]
    errors = table["_row_error"].to_pylist()
    for i in sorted(problems):
        by_kind: dict[str, list[str]] = {}
        for kind, what in problems[i]:
            by_kind.setdefault(kind, []).append(what)
        text = "; ".join(f"{k}: {', '.join(v)}" for k, v in by_kind.items())
        line = lines[i].as_py() if lines is not None else None
        ctx.flag(int(numbers[i].as_py()), text, next(iter(by_kind)), line)
        errors[i] = f"{errors[i]}; {text}" if errors[i] else text
    at = table.column_names.index("_row_error")
    return table.set_column(at, "_row_error", pa.array(errors, table.schema.field("_row_error").type))
