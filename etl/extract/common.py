"""What every reader shares: the read context, the column check against the
contract, chunk building and the raw Parquet writer.

Raw layer contract (one Parquet file per batch):
- one column per delivered field, named as delivered (dotted paths for nested
  JSON, "@name" for XML record attributes, "<group>/<leaf>" for two-row Excel
  and CSV headers), every value `string`, exactly as delivered: no trimming, no
  type inference, an empty value stays "";
- null means "not delivered": an absent JSON key or XML element, a SQL NULL,
  the missing trailing fields of a short (ragged) row, a declared optional
  field absent from the delivery;
- then `_source`, `_batch_id`, `_row_number` (int64, 1-based ordinal of the
  data record in the file), `_file_sha256`, `_row_error` (null, or why a kept
  row is suspect, e.g. "ragged: expected 9 fields, got 10") and `_extra`
  (null, or what did not fit the columns: a JSON array of overflow fields, the
  overflow characters of a long fixed-width line, repeated XML elements).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from etl.background import BackgroundWriter
from etl.contracts import Source
from etl.errors import SourceError
from etl.extract.encoding import Detected

META_COLUMNS = ("_source", "_batch_id", "_row_number", "_file_sha256", "_row_error", "_extra")
#: the physical line (an Excel sheet's row number) of each record, as a reader hands a chunk
#: over; used for messages (meta.source_error.line_number) and dropped before the raw file
LINE = "_line"


@dataclass
class ReadContext:
    """One file (or SQL pull) being read; readers report problems through it.

    `warnings` are recorded in meta.source_error without failing the batch
    (schema drift under policy warn, an empty delivery); `flagged` are the rows
    kept but flagged, also recorded there one row each, with the physical line
    of each (`lines`, by record number) where the reader knows it.
    `delivered`: the records the file delivers, counted from its physical lines
    apart from the parser (readers of line-based text set it); the extract
    fails a file whose parser gave another number of rows.
    """

    source: Source
    file: str  # as named in messages and meta: path relative to landing/<source>, or the SQL table
    path: Path | None = None
    codec: str | None = None
    detected: Detected | None = None  # how `codec` was chosen (files only)
    warnings: list[SourceError] = field(default_factory=list)
    flagged: list[tuple[int, str, str]] = field(default_factory=list)  # (row, kind, problem)
    lines: dict[int, int] = field(default_factory=dict)  # record number -> physical line, flagged rows
    notes: list[str] = field(default_factory=list)  # short facts for the batch message
    delivered: int | None = None
    types: dict[str, str] = field(default_factory=dict)  # declared field -> type of its column

    def error(
        self, problem: str, *, kind: str, row: int | None = None, line: int | None = None
    ) -> SourceError:
        return SourceError(self.source.name, problem, file=self.file, row=row, kind=kind, line=line)

    def warn(self, problem: str, *, kind: str, row: int | None = None, line: int | None = None) -> None:
        self.warnings.append(self.error(problem, kind=kind, row=row, line=line))

    def flag(self, row: int, problem: str, kind: str = "ragged", line: int | None = None) -> str:
        """Note a row kept but suspect; returns `problem` for its `_row_error`."""
        self.flagged.append((row, kind, problem))
        if line is not None:
            self.lines[row] = line
        return problem


def unnamed(position: int) -> str:
    """Name of a header cell left empty (1-based position)."""
    return f"_unnamed_{position}"


def combine_header_rows(rows: Sequence[Sequence[str]]) -> list[str]:
    """Column names from several header rows: "<group>/<leaf>".

    Every row but the last is forward-filled to the right (a merged group cell
    holds its text only in its first cell); empty levels are left out. A column
    with no text of its own in any row (only forward-filled group text, e.g.
    the sheet's used range beyond the table) is `_unnamed_<position>`.
    """
    width = max((len(r) for r in rows), default=0)
    levels: list[list[str]] = []
    own = [False] * width  # the column has a header cell of its own
    for i, row in enumerate(rows):
        cells = [row[j] if j < len(row) else "" for j in range(width)]
        for j, c in enumerate(cells):
            own[j] = own[j] or c != ""
        if i < len(rows) - 1:
            last = ""
            for j, c in enumerate(cells):
                if c == "":
                    cells[j] = last
                else:
                    last = c
        levels.append(cells)
    names = []
    for j in range(width):
        parts = [lv[j] for lv in levels if lv[j] != ""]
        names.append("/".join(parts) if parts and own[j] else unnamed(j + 1))
    return names


def check_columns(ctx: ReadContext, delivered: Sequence[str]) -> list[str]:
    """Check delivered column names against the contract; return the optional declared ones absent.

    Raises SourceError (kind duplicate_column, missing_column, schema_drift)
    when the file can't be taken; records a schema_drift warning when new
    columns are kept under policy `warn`.
    """
    src = ctx.source
    seen: set[str] = set()
    dupes = sorted({c for c in delivered if c in seen or seen.add(c)})  # type: ignore[func-returns-value]
    if dupes:
        raise ctx.error(f"duplicate column name(s): {', '.join(dupes)}", kind="duplicate_column")
    clash = [c for c in delivered if c in META_COLUMNS]
    if clash:
        raise ctx.error(f"column name(s) reserved for lineage: {', '.join(clash)}", kind="schema_drift")
    present = set(delivered)
    missing = [f.name for f in src.fields if f.required and f.name not in present]
    if missing:
        raise ctx.error(f"missing declared column(s): {', '.join(missing)}", kind="missing_column")
    check_new_columns(ctx, [c for c in delivered if c not in set(src.field_names)])
    return [f.name for f in src.fields if not f.required and f.name not in present]


def check_new_columns(ctx: ReadContext, new: Sequence[str], row: int | None = None) -> None:
    """Apply the source's schema_drift policy to columns the contract does not declare."""
    if not new:
        return
    names = ", ".join(new)
    if ctx.source.schema_drift == "fail":
        raise ctx.error(
            f"schema drift: undeclared column(s) {names} (policy fail; declare them in the contract)",
            kind="schema_drift",
            row=row,
        )
    ctx.warn(
        f"schema drift: undeclared column(s) {names} kept in raw (policy warn)", kind="schema_drift", row=row
    )


class RowBuffer:
    """Rows of one chunk, as lists aligned to fixed `columns` (csv, excel, fixed width, sql).

    Records are numbered 1, 2, ... in the order added, across chunks. The hot
    path appends to `rows` directly (a clean row); `add` also takes the row's
    flag and overflow. A reader that knows the physical line of each record
    appends it to `lines` (one per row, or none at all): the chunk then carries
    it as `_line`. `take()` empties the same `rows` and `lines` lists, so a
    bound `rows.append` stays valid.
    """

    def __init__(self, columns: Sequence[str], null_columns: Sequence[str] = ()) -> None:
        self.columns = list(columns)
        self.null_columns = list(null_columns)
        self.rows: list[Sequence[str | None]] = []
        self.lines: list[int] = []
        self.taken = 0
        self._flags: dict[int, tuple[str | None, str | None]] = {}

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def next_row(self) -> int:
        """The row number the next added row gets."""
        return self.taken + len(self.rows) + 1

    @property
    def total(self) -> int:
        return self.taken + len(self.rows)

    def add(self, values: Sequence[str | None], error: str | None = None, extra: str | None = None) -> None:
        if error is not None or extra is not None:
            self._flags[len(self.rows)] = (error, extra)
        self.rows.append(values)

    def take(self) -> pa.Table:
        n = len(self.rows)
        arrays = _columns(self.rows, len(self.columns))
        arrays += [pa.nulls(n, pa.string()) for _ in self.null_columns]
        errors: list[str | None] = [None] * n
        extras: list[str | None] = [None] * n
        for i, (err, extra) in self._flags.items():
            errors[i], extras[i] = err, extra
        numbers = list(range(self.taken + 1, self.taken + n + 1))
        table = _with_row_meta(self.columns + self.null_columns, arrays, numbers, errors, extras)
        if self.lines and len(self.lines) == n:
            table = table.append_column(LINE, pa.array(self.lines, pa.int64()))
        self.lines.clear()
        self.rows.clear()
        self._flags = {}
        self.taken += n
        return table


def _columns(rows: Sequence[Sequence[str | None]], width: int) -> list[pa.Array]:
    """Transpose equal-length rows into `width` string arrays.

    Converting the rows once as a list array and slicing its flat values by
    stride is ~5x faster than transposing in Python (the extract hot path).
    """
    n = len(rows)
    nested = pa.array(rows, type=pa.list_(pa.string()))
    if isinstance(nested, pa.Array) and len(nested.flatten()) == n * width:
        flat = nested.flatten()
        return [flat.take(pa.array(np.arange(j, n * width, width))) for j in range(width)]
    # more than 2 GiB of text in one chunk (a chunked result) or a row of another length: the plain way
    cols = [list(c) for c in zip(*rows, strict=True)] if n else [[] for _ in range(width)]
    return [pa.array(c, type=pa.string()) for c in cols]


class DictBuffer:
    """Rows of one chunk as dicts (json, xml); columns are the declared fields then new keys in order seen."""

    def __init__(self, declared: Iterable[str]) -> None:
        self.columns: list[str] = list(declared)
        self._known = set(self.columns)
        self.rows: list[dict[str, str | None]] = []
        self.row_numbers: list[int] = []
        self.row_errors: list[str | None] = []
        self.extras: list[str | None] = []
        self.lines: list[int] = []

    def __len__(self) -> int:
        return len(self.rows)

    def new_keys(self, record: dict[str, Any]) -> list[str]:
        """Keys of `record` not seen before (and remember them)."""
        new = [k for k in record if k not in self._known]
        for k in new:
            self._known.add(k)
            self.columns.append(k)
        return new

    def add(
        self,
        record: dict[str, str | None],
        row: int,
        error: str | None = None,
        extra: str | None = None,
        line: int | None = None,
    ) -> None:
        self.rows.append(record)
        self.row_numbers.append(row)
        self.row_errors.append(error)
        self.extras.append(extra)
        if line is not None:
            self.lines.append(line)

    def take(self) -> pa.Table:
        arrays = [pa.array([r.get(c) for r in self.rows], type=pa.string()) for c in self.columns]
        table = _with_row_meta(self.columns, arrays, self.row_numbers, self.row_errors, self.extras)
        if self.lines and len(self.lines) == len(self.rows):
            table = table.append_column(LINE, pa.array(self.lines, pa.int64()))
        self.rows, self.row_numbers, self.row_errors, self.extras, self.lines = [], [], [], [], []
        return table


def _with_row_meta(
    names: list[str],
    arrays: list[pa.Array],
    row_numbers: list[int],
    errors: list[str | None],
    extras: list[str | None],
) -> pa.Table:
    arrays = [
        *arrays,
        pa.array(row_numbers, type=pa.int64()),
        pa.array(errors, type=pa.string()),
        pa.array(extras, type=pa.string()),
    ]
    return pa.Table.from_arrays(arrays, names=[*names, "_row_number", "_row_error", "_extra"])


#: Excel keeps 15 significant digits. A number at or beyond this size cannot carry
#: all its digits (an 18-digit ID typed as a number), so it is written in exponent
#: form, as Excel shows it, instead of with invented trailing zeros.
_EXACT_LIMIT = 1e15


def number_text(value: float) -> str:
    """Shortest round-trip decimal text of a float: integral values below 1e15 without
    exponent or '.0'; larger magnitudes in exponent form ("1.1010519491231e+17")."""
    if value != value or value in (float("inf"), float("-inf")):
        return repr(value)
    if abs(value) >= _EXACT_LIMIT:
        return repr(value)
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def json_list(values: Sequence[str]) -> str:
    """Overflow fields as a JSON array of strings (non-ASCII kept readable)."""
    return json.dumps(list(values), ensure_ascii=False)


#: Raw text is mostly distinct per row (IDs, names, addresses): dictionary pages and
#: min/max statistics of delivered text cost write time and buy nothing, except
#: statistics on _row_number (a quarantined row is looked up by its number).
RAW_PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "use_dictionary": ["_source", "_batch_id", "_file_sha256"],
    "write_statistics": ["_row_number"],
}


#: The type of text in the raw layer: large_string, which is what pandas' string dtype
#: holds, so a raw batch read into pandas (normalize) casts nothing. Parquet keeps the
#: Arrow type in its metadata and reads it back as written.
RAW_TEXT = pa.large_string()


def raw_text(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A text column as RAW_TEXT (other types unchanged)."""
    return column.cast(RAW_TEXT) if column.type == pa.string() else column


def constant_strings(value: str | None, n: int) -> pa.Array:
    """n copies of one string (or n nulls) as RAW_TEXT, built from buffers: no Python
    object per row."""
    if value is None:
        return pa.nulls(n, RAW_TEXT)
    data = value.encode()
    offsets = np.arange(n + 1, dtype=np.int64) * len(data)
    return pa.Array.from_buffers(RAW_TEXT, n, [None, pa.py_buffer(offsets), pa.py_buffer(data * n)])


class RawWriter:
    """Writes the chunks of one batch to a Parquet file, adding the constant lineage columns.

    Writes to `<final>.tmp` and renames on `close()`, so a reader never sees a
    partial batch. When a chunk brings columns not in the file yet (new JSON
    keys or XML elements kept under schema_drift: warn) the writer starts a new
    part; `close()` then streams the parts into one file with the union schema,
    missing columns null.
    """

    def __init__(self, final: Path, *, source: str, batch_id: str, sha256: str | None) -> None:
        self.final = final
        self.tmp = final.with_name(final.name + ".tmp")
        self.source, self.batch_id, self.sha256 = source, batch_id, sha256
        self.rows = 0
        self._parts: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        # encoding and compression overlap the reader's next chunk (etl.background)
        self._bg = BackgroundWriter("govbase-raw-writer")

    def _order(self, table: pa.Table) -> pa.Table:
        n = table.num_rows
        data = [c for c in table.column_names if c not in META_COLUMNS]
        const = {
            "_source": constant_strings(self.source, n),
            "_batch_id": constant_strings(self.batch_id, n),
            "_file_sha256": constant_strings(self.sha256, n),
        }
        cols = [raw_text(table[c]) for c in data]
        for name in META_COLUMNS:
            cols.append(const[name] if name in const else raw_text(table[name]))
        return pa.Table.from_arrays(cols, names=[*data, *META_COLUMNS])

    def write(self, table: pa.Table) -> None:
        table = self._order(table)
        if self._schema is not None and table.schema != self._schema:
            missing = [f for f in self._schema if f.name not in table.column_names]
            if not missing and set(table.column_names) == set(self._schema.names):
                table = table.select(self._schema.names)
            elif missing and set(table.column_names) < set(self._schema.names):
                for f in missing:
                    table = table.append_column(f, pa.nulls(table.num_rows, f.type))
                table = table.select(self._schema.names)
            else:
                self._close_part()
        if self._writer is None:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            part = self.tmp.with_name(f"{self.tmp.name}.{len(self._parts)}")
            self._parts.append(part)
            self._schema = table.schema
            self._writer = pq.ParquetWriter(part, table.schema, **RAW_PARQUET_OPTIONS)
        self._bg.submit(self._writer.write_table, table)
        self.rows += table.num_rows

    def _close_part(self) -> None:
        try:
            self._bg.wait()
        finally:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def close(self, empty_columns: Sequence[str] = ()) -> None:
        """Finish the file. With no chunk written, writes an empty file with `empty_columns`."""
        if not self._parts:
            empty = _with_row_meta(
                list(empty_columns), [pa.array([], pa.string()) for _ in empty_columns], [], [], []
            )
            self.write(empty)
        try:
            self._close_part()
        finally:
            self._bg.close()
        if len(self._parts) == 1:
            self._parts[0].replace(self.final)
            return
        names: list[str] = []
        for part in self._parts:
            for n in pq.read_schema(part).names:
                if n not in names and n not in META_COLUMNS:
                    names.append(n)
        schema = pa.schema(
            [pa.field(n, RAW_TEXT) for n in names]
            + [f for f in self._order(_with_row_meta([], [], [], [], [])).schema]
        )
        with pq.ParquetWriter(self.tmp, schema, **RAW_PARQUET_OPTIONS) as out:
            for part in self._parts:
                pf = pq.ParquetFile(part)
                for rb in pf.iter_batches():
                    t = pa.Table.from_batches([rb])
                    for f in schema:
                        if f.name not in t.column_names:
                            t = t.append_column(f, pa.nulls(t.num_rows, f.type))
                    out.write_table(t.select(schema.names))
                part.unlink()
        self.tmp.replace(self.final)

    def abort(self) -> None:
        """Drop everything written (the batch failed)."""
        # the batch is dropped anyway; the reader's error is the one to report
        with contextlib.suppress(Exception):
            self._close_part()
        with contextlib.suppress(Exception):
            self._bg.close()
        for path in [*self._parts, self.tmp]:
            with contextlib.suppress(OSError):  # a folder that cannot be written holds no part
                path.unlink(missing_ok=True)
