"""normalize(raw, source, table): raw text -> typed staging rows plus row errors.

Pure: no I/O (the reference code lists are read once per process on first use).
"""

from __future__ import annotations

import datetime as dt
import inspect
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.extensions import take

from etl.contracts import RECORD_KEY, FieldMap, SharedTable, Source
from etl.normalize import combine
from etl.normalize._common import STRING, basic_clean, flagged, null_strings, to_arrow
from etl.normalize.identifiers import birth_date_mismatch, gender_mismatch
from etl.normalize.record_key import record_keys
from etl.normalize.transforms import DEFAULT_FOR_TYPE, TRANSFORMS
from etl.quality import ROW_ERRORS

LINEAGE = ("_source", "_batch_id", "_row_number")
#: `column` of an error about the whole row (reason malformed_row).
ROW = "_row"
#: Unpivot cells holding one of these (after NFKC and trimming) are "no figure"
#: placeholders of statistical yearbooks and produce no row, like empty cells.
PLACEHOLDERS = frozenset({"", "-", "--", "—", "——", "...", "……", "…"})

ERROR_COLUMNS = ("_row_number", "column", "raw_value", "reason", "detail")


@dataclass(frozen=True)
class NormalizeResult:
    """staged: the table's columns (typed) + lineage; errors: one row per (row, column)
    problem (the row is quarantined); findings: same schema, facts about rows that are
    kept (a combined field that disagreed with the value kept: raw_value and detail
    masked by the column's mask kind)."""

    staged: pd.DataFrame
    errors: pd.DataFrame
    findings: pd.DataFrame = field(default_factory=lambda: empty_errors())


def empty_errors() -> pd.DataFrame:
    """An errors frame with no rows and the documented schema."""
    return pd.DataFrame(
        {
            "_row_number": pd.Series([], dtype="Int64"),
            "column": pd.Series([], dtype=STRING),
            "raw_value": pd.Series([], dtype=STRING),
            "reason": pd.Series([], dtype=STRING),
            "detail": pd.Series([], dtype=STRING),
        }
    )


def _errors(
    row_numbers: pd.Series,
    column: str,
    raw: pd.Series,
    reasons: pd.Series,
    detail: str | pd.Series | Callable[[np.ndarray], Any],
) -> pd.DataFrame:
    """One error row per position where `reasons` is set. `detail` may be a function of
    those positions, so that per-row detail text is only built for the failing rows."""
    mask = reasons.notna().to_numpy()
    if not mask.any():
        return empty_errors()
    # Errors are few: select the failing positions first, convert only those.
    pos = np.flatnonzero(mask)
    k = len(pos)
    if isinstance(detail, pd.Series):
        det = detail.iloc[pos].to_numpy(dtype=object)
    elif callable(detail):
        det = np.asarray(detail(pos), dtype=object)
    else:
        det = np.full(k, detail, dtype=object)
    return pd.DataFrame(
        {
            "_row_number": pd.array(row_numbers.to_numpy()[pos], dtype="Int64"),
            "column": pd.array(np.full(k, column, dtype=object), dtype=STRING),
            "raw_value": pd.array(raw.iloc[pos].astype(object).to_numpy(), dtype=STRING),
            "reason": pd.array(reasons.iloc[pos].to_numpy(dtype=object), dtype=STRING),
            "detail": pd.array(det, dtype=STRING),
        }
    )


def _dtype(kind: str) -> Any:
    return {
        "string": STRING,
        "integer": "Int64",
        "decimal": "float64",
        "date": "datetime64[ms]",
        "timestamp": "datetime64[ms]",
        "boolean": "boolean",
    }[kind]


def _nulls(kind: str, n: int) -> pd.Series:
    """n nulls of a column type, built without a Python object per row."""
    dtype = _dtype(kind)
    if kind == "string":
        return pd.Series(null_strings(n))
    if kind in ("date", "timestamp"):
        return pd.Series(np.full(n, np.datetime64("NaT"), dtype=dtype))
    if kind == "decimal":
        return pd.Series(np.full(n, np.nan))
    if kind == "boolean":
        return pd.Series(pd.arrays.BooleanArray(np.zeros(n, dtype=bool), np.ones(n, dtype=bool)))
    return pd.Series(pd.arrays.IntegerArray(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)))


#: Text a transform returns unchanged and without a reason: Han ideographs (the
#: basic block and extension A, which NFKC leaves alone) and ASCII letters and digits.
CLEAN_TEXT = r"^[0-9A-Za-z\x{3400}-\x{4DBF}\x{4E00}-\x{9FFF}]+$"

#: Per transform, a pattern its fixed points match: values already in normal form.
#: Most delivered values are, so `_run` passes only the others to the transform.
#: tests/unit/test_normalize.py checks every claim against the transform itself.
FIXPOINTS: dict[str, str] = {
    "name": CLEAN_TEXT,
    "address": CLEAN_TEXT,
    "text": CLEAN_TEXT,
    "phone": r"^1[3-9][0-9]{9}$",
}


def _call(name: str, values: pd.Series, today: dt.date | None) -> tuple[pd.Series, pd.Series]:
    fn = TRANSFORMS[name]
    if today is not None and "today" in inspect.signature(fn).parameters:
        return fn(values, today=today)  # type: ignore[call-arg]
    return fn(values)


def _run(name: str, values: pd.Series, today: dt.date | None) -> tuple[pd.Series, pd.Series]:
    pattern = FIXPOINTS.get(name)
    if pattern is None or len(values) < _DISTINCT_MIN_ROWS:
        return _call(name, values, today)
    arr = to_arrow(values)
    clean = pc.fill_null(pc.match_substring_regex(arr, pattern), False)
    dirty = pc.invert(clean)
    todo = np.flatnonzero(dirty.to_numpy(zero_copy_only=False))
    if len(todo) > len(values) // 2:
        return _call(name, values, today)
    if len(todo):
        out, why = _call(name, pd.Series(pd.array(arr.take(pa.array(todo)), dtype=STRING)), today)
        arr = pc.replace_with_mask(arr, dirty, to_arrow(out))
        reasons = pc.replace_with_mask(pa.nulls(len(arr), pa.string()), dirty, to_arrow(why))
    else:
        reasons = pa.nulls(len(arr), pa.string())
    return (
        pd.Series(pd.array(arr, dtype=STRING), index=values.index),
        pd.Series(pd.array(reasons, dtype=STRING), index=values.index),
    )


class Memo:
    """One field's transform results over the distinct values already seen in a batch.

    A batch is normalized chunk by chunk; a column that repeats (dates, code lists)
    brings mostly the same distinct values in every chunk. With a Memo passed to
    `apply_transforms`, each distinct value is transformed once per batch, not once
    per chunk. Up to `limit` values are kept; past that the memo stops growing and new
    values are transformed as they come. A Memo belongs to one field of one batch
    (same transforms, kind and `today`), and to one thread at a time.
    """

    def __init__(self, limit: int = 1_000_000) -> None:
        self.limit = limit
        self.keys: pa.Array = pa.array([], pa.string())
        self._results: tuple[Any, Any, Any] | None = None

    def results(
        self, uniques: pa.Array, compute: Callable[[pa.Array], tuple[pd.Series, pd.Series, pd.Series]]
    ) -> tuple[np.ndarray, tuple[Any, Any, Any]]:
        """(positions of `uniques` in the returned result arrays, (values, reasons, failed))."""
        uniques = uniques.cast(pa.string())
        known = pc.index_in(uniques, value_set=self.keys)
        if self._results is not None and known.null_count == 0:
            return known.to_numpy(zero_copy_only=False).astype(np.int64), self._results
        fresh_mask = pc.is_null(known)
        fresh = uniques.filter(fresh_mask)
        out = tuple(x.array for x in compute(fresh))
        merged = (
            tuple(type(a)._concat_same_type([a, b]) for a, b in zip(self._results, out, strict=True))
            if self._results is not None
            else out
        )
        pos = pc.fill_null(known, 0).to_numpy(zero_copy_only=False).astype(np.int64)
        pos[fresh_mask.to_numpy(zero_copy_only=False)] = len(self.keys) + np.arange(len(fresh))
        if len(self.keys) + len(fresh) <= self.limit:
            self.keys = pa.concat_arrays([self.keys, fresh])
            self._results = merged
        return pos, merged


def apply_transforms(
    values: pd.Series,
    transforms: list[str],
    kind: str,
    today: dt.date | None = None,
    memo: Memo | None = None,
    sizes: list[int] | None = None,
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Run a field's transforms in order; then coerce to the column type.

    Returns (values of the column dtype, reasons, name of the transform that
    failed). A field without transforms keeps its text (empty -> null); a
    non-string column gets its type's default parser (DEFAULT_FOR_TYPE).

    Transforms are functions of one value, so a column with many repeated values
    (code lists, dates, names) is transformed over its distinct values only and
    the results are spread back (same output, a fraction of the work). With a
    `memo` (one per field and batch), a distinct value seen in an earlier chunk is
    not transformed again.

    `sizes`: if given, the number of values each run of the chain is handed is
    appended to it, in order (none when a memo holds them all): the work the
    distinct-value path and the memo leave, observable without timing.
    """

    def run(v: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
        if sizes is not None:
            sizes.append(len(v))
        return _apply_chain(v, transforms, kind, today)

    n = len(values)
    by_nature = bool(set(transforms) & REPETITIVE)
    if n >= _DISTINCT_MIN_ROWS and (by_nature or _repetitive(values)):
        enc = to_arrow(values).dictionary_encode()
        uniques = enc.dictionary
        # With a memo, a column repetitive by nature takes this path even when one chunk
        # looks mostly distinct (40,000 days in 100,000 rows): the next chunks repeat them.
        if len(uniques) <= n * _DISTINCT_MAX_RATIO or (memo is not None and by_nature):

            def chain(u: pa.Array) -> tuple[pd.Series, pd.Series, pd.Series]:
                return run(pd.Series(pd.array(u, dtype=STRING)))

            codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
            if memo is not None:
                pos, (u_vals, u_why, u_failed) = memo.results(uniques, chain)
                codes = np.where(codes >= 0, pos[np.maximum(codes, 0)], -1)
            else:
                u_vals, u_why, u_failed = (x.array for x in chain(uniques))
            # a null input gives null, no reason (what the chain gives for null)
            return (
                pd.Series(take(u_vals, codes, allow_fill=True), index=values.index),
                pd.Series(take(u_why, codes, allow_fill=True), index=values.index),
                pd.Series(take(u_failed, codes, allow_fill=True), index=values.index),
            )
    return run(values)


#: Transforms whose input repeats a lot by nature (code lists; dates: some 40,000
#: days in a century): always run over the distinct values. A sample cannot tell a
#: column of 200,000 distinct dates in 1M rows from a column of unique IDs.
REPETITIVE = frozenset(
    {
        "date",
        "date_1904",
        "gender",
        "marital_status",
        "ethnicity",
        "region",
        "boolean",
        "entity_status",
        "entity_type",
    }
)


def _repetitive(values: pd.Series) -> bool:
    """Whether a sample suggests few distinct values (cheap; only decides the strategy)."""
    step = max(1, len(values) // _DISTINCT_SAMPLE)
    sample = to_arrow(values.iloc[::step])
    return bool(pc.count_distinct(sample).as_py() <= len(sample) * _DISTINCT_MAX_RATIO)


_DISTINCT_SAMPLE = 4_096
#: Below this many rows a column is transformed value by value as it is.
_DISTINCT_MIN_ROWS = 2_048
#: ... and above this share of distinct values, too (identifiers, phones, addresses).
_DISTINCT_MAX_RATIO = 0.5


def _apply_chain(
    values: pd.Series, transforms: list[str], kind: str, today: dt.date | None = None
) -> tuple[pd.Series, pd.Series, pd.Series]:
    chain = list(transforms)
    if kind != "string" and (not chain or chain[-1] not in _OUTPUT_KIND.get(kind, ())):
        chain.append(DEFAULT_FOR_TYPE[kind])
    reasons = pd.Series(null_strings(len(values)), index=values.index)
    failed = pd.Series(null_strings(len(values)), index=values.index)
    current = values
    if not chain:
        s = values.astype(STRING)
        current = s.where(s.str.strip().str.len() > 0)
    for name in chain:
        current, why = _run(name, current.astype(STRING) if current.dtype != STRING else current, today)
        new = why.notna() & reasons.isna()
        reasons = reasons.mask(new, why)
        failed = failed.mask(new, name)
    return current.astype(_dtype(kind)), reasons, failed


# transforms whose output already has the column type
_OUTPUT_KIND: dict[str, tuple[str, ...]] = {
    "integer": ("integer",),
    "decimal": ("decimal", "amount_cny"),
    "date": ("date", "date_1904"),
    "timestamp": ("date", "date_1904"),
    "boolean": ("boolean",),
}


def _lineage(raw: pd.DataFrame, source: Source) -> pd.DataFrame:
    n = len(raw)
    rn = raw["_row_number"] if "_row_number" in raw else pd.Series(np.arange(1, n + 1))
    src = raw["_source"] if "_source" in raw else pd.Series(pd.array([source.name] * n, dtype=STRING))
    batch = raw["_batch_id"] if "_batch_id" in raw else pd.Series(null_strings(n))
    return pd.DataFrame(
        {
            "_source": src.astype(STRING).array,
            "_batch_id": batch.astype(STRING).array,
            "_row_number": pd.to_numeric(rn).astype("Int64").array,
        }
    )


def _field_values(raw: pd.DataFrame, fm: FieldMap) -> pd.Series:
    if fm.name in raw.columns:
        return raw[fm.name].reset_index(drop=True)
    return pd.Series(null_strings(len(raw)))


def _detail(field: str, failed: pd.Series) -> Callable[[np.ndarray], list[str]]:
    """Error detail "<delivered field> (<transform that failed>)", built for failing rows only."""
    return lambda pos: [
        f"{field} ({'' if f is None or f is pd.NA else f})" for f in failed.iloc[pos].tolist()
    ]


_PARALLEL_MIN_ROWS = 20_000
_THREADS = min(4, os.cpu_count() or 1)


def _map_fields(
    raw: pd.DataFrame,
    source: Source,
    fields: list[FieldMap],
    table: SharedTable,
    row_numbers: pd.Series,
    today: dt.date | None,
    memos: dict[str, Memo] | None = None,
) -> tuple[dict[str, pd.Series], list[pd.DataFrame], list[pd.DataFrame]]:
    """(column values, value errors, findings) of the mapped `fields`; several fields
    into one column by the source's `combine` rule for it (contracts.Combine)."""
    errs: list[pd.DataFrame] = []
    mapped = [fm for fm in fields if fm.to is not None]
    # one memo per field, made here: a field's thread only ever touches its own
    field_memo = {fm.name: memos.setdefault(fm.name, Memo()) for fm in mapped} if memos is not None else {}

    def one(fm: FieldMap) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
        raw_values = _field_values(raw, fm)
        rule = source.combine.get(fm.to)  # type: ignore[arg-type]
        # parts to be joined stay text: the column's type is taken by the combined value
        kind = "string" if rule and rule.rule != "first_non_empty" else table.column(fm.to).type  # type: ignore[arg-type]
        return (
            raw_values,
            *apply_transforms(raw_values, fm.transforms, kind, today, field_memo.get(fm.name)),
        )

    # Fields are independent and Arrow compute releases the GIL: two at a time.
    if len(raw) >= _PARALLEL_MIN_ROWS and len(mapped) > 1:
        with ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="govbase-normalize") as pool:
            outcomes = list(pool.map(one, mapped))
    else:
        outcomes = [one(fm) for fm in mapped]
    by_column: dict[str, list[tuple[FieldMap, tuple[pd.Series, pd.Series, pd.Series, pd.Series]]]] = {}
    for fm, (raw_values, values, reasons, failed) in zip(mapped, outcomes, strict=True):
        assert fm.to is not None
        errs.append(_errors(row_numbers, fm.to, raw_values, reasons, _detail(fm.name, failed)))
        by_column.setdefault(fm.to, []).append((fm, (raw_values, values, reasons, failed)))
    cols: dict[str, pd.Series] = {}
    findings: list[pd.DataFrame] = []
    for column, outs in by_column.items():
        if len(outs) == 1:
            cols[column] = outs[0][1][1]
            continue
        cols[column], more_errs, more_findings = _combine(
            source, table, column, outs, row_numbers, today, memos
        )
        errs += more_errs
        findings += more_findings
    return cols, errs, findings


def _combine(
    source: Source,
    table: SharedTable,
    column: str,
    outs: list[tuple[FieldMap, tuple[pd.Series, pd.Series, pd.Series, pd.Series]]],
    row_numbers: pd.Series,
    today: dt.date | None,
    memos: dict[str, Memo] | None,
) -> tuple[pd.Series, list[pd.DataFrame], list[pd.DataFrame]]:
    """One column from several fields (each already through its own transforms)."""
    rule = source.combine[column]
    col = table.column(column)
    names = [fm.name for fm, _ in outs]
    values = [o[1] for _, o in outs]
    if rule.rule == "first_non_empty":
        kept, found = combine.first_non_empty(values, names, col.mask)
        return kept, [], [_errors(row_numbers, column, shown, why, det) for why, shown, det in found]
    failed = [o[2] for _, o in outs]
    if rule.rule == "join":
        assert rule.separator is not None
        text = combine.join(values, failed, rule.separator)
        why = pd.Series(null_strings(len(text)))
        shown = text
    else:  # date_parts
        text, why = combine.date_parts(values, failed)
        shown = combine.delivered([o[0] for _, o in outs])
    memo = memos.setdefault(f"\x00combine {column}", Memo()) if memos is not None else None
    out, reasons, failed_t = apply_transforms(text, rule.transforms, col.type, today, memo)
    reasons = why.where(why.notna(), reasons)
    step = failed_t.where(why.isna(), rule.rule)
    errs = [_errors(row_numbers, column, shown, reasons, _detail("+".join(names), step))]
    return out, errs, []


def _assemble(table: SharedTable, cols: dict[str, pd.Series], lineage: pd.DataFrame) -> pd.DataFrame:
    n = len(lineage)
    data = {}
    for c in table.columns:
        s = cols.get(c.name)
        data[c.name] = (s.reset_index(drop=True) if s is not None else _nulls(c.type, n)).astype(
            _dtype(c.type)
        )
    staged = pd.DataFrame(data, index=pd.RangeIndex(n))
    for k in LINEAGE:
        staged[k] = lineage[k].array
    if "alive" in staged.columns and "death_date" in staged.columns:
        # a recorded death proves the person is not alive; no death date proves nothing
        staged["alive"] = staged["alive"].mask(staged["alive"].isna() & staged["death_date"].notna(), False)
    return staged


def _malformed(raw: pd.DataFrame, row_numbers: pd.Series) -> pd.DataFrame:
    if "_row_error" not in raw.columns:
        return empty_errors()
    row_error = raw["_row_error"].reset_index(drop=True).astype(STRING)
    noted = np.flatnonzero(row_error.notna().to_numpy())  # a few rows: only they are looked at
    blank = noted[(row_error.iloc[noted].str.strip().str.len() == 0).to_numpy()]
    row_error.iloc[blank] = None
    reasons = flagged(row_error.notna().to_numpy(), "malformed_row", row_error.index)
    # a reader's own code ("control_character: ...") where it gave one (etl.quality.ROW_ERRORS)
    noted = np.flatnonzero(row_error.notna().to_numpy())
    codes = row_error.iloc[noted].str.split(":", n=1).str[0]
    own = codes.isin(ROW_ERRORS).to_numpy()
    if own.any():
        reasons = reasons.astype(object)
        reasons.iloc[noted[own]] = codes[own].to_numpy()
        reasons = reasons.astype(STRING)
    return _errors(row_numbers, ROW, row_error, reasons, row_error.fillna(""))


def consistency(staged: pd.DataFrame) -> pd.DataFrame:
    """Cross-field findings on staged rows (same schema as NormalizeResult.errors).

    - resident_id_birth_mismatch (column birth_date): the birth date differs from
      the one encoded in resident_id;
    - resident_id_gender_mismatch (column gender): gender 1/2 differs from the
      sex encoded in the sequence digit (odd male, even female); 0 and 9 never
      disagree. Rows where either side is null are not findings.
    Works on any frame with resident_id plus birth_date and/or gender, and a
    _row_number column (else the position + 1 is used).
    """
    if "resident_id" not in staged.columns:
        return empty_errors()
    rn = staged["_row_number"] if "_row_number" in staged else pd.Series(np.arange(1, len(staged) + 1))
    rn = rn.reset_index(drop=True)
    ids = staged["resident_id"].reset_index(drop=True).astype(STRING)
    out = [empty_errors()]
    if "birth_date" in staged.columns:
        given = staged["birth_date"].reset_index(drop=True)
        bad, encoded = birth_date_mismatch(ids, given)
        if bad.any():
            pos = np.flatnonzero(bad)
            raw = pd.Series(null_strings(len(given)), index=given.index)
            days = pd.to_datetime(given.iloc[pos]).to_numpy().astype("datetime64[D]")
            raw.iloc[pos] = np.datetime_as_string(days, unit="D")
            reasons = flagged(bad, "resident_id_birth_mismatch", given.index)
            out.append(
                _errors(
                    rn,
                    "birth_date",
                    raw,
                    reasons,
                    lambda p: [
                        "resident_id encodes " + d for d in np.datetime_as_string(encoded[p], unit="D")
                    ],
                )
            )
    if "gender" in staged.columns:
        g = staged["gender"].reset_index(drop=True).astype(STRING)
        bad, encoded_g = gender_mismatch(ids, g)
        if bad.any():
            reasons = flagged(bad, "resident_id_gender_mismatch", g.index)
            enc_g = encoded_g
            out.append(
                _errors(
                    rn,
                    "gender",
                    g,
                    reasons,
                    lambda p: ["resident_id encodes " + str(v) for v in enc_g.take(pa.array(p)).to_pylist()],
                )
            )
    return pd.concat(out, ignore_index=True)


def _sort(errors: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [e for e in errors if len(e)]
    if not parts:
        return empty_errors()
    df = pd.concat(parts, ignore_index=True)
    return df.sort_values("_row_number", kind="stable").reset_index(drop=True)


def _is_placeholder(values: pd.Series) -> np.ndarray:
    arr = pc.fill_null(basic_clean(to_arrow(values), remove_spaces=True), "")
    return pc.is_in(arr, value_set=pa.array(sorted(PLACEHOLDERS), pa.string())).to_numpy(zero_copy_only=False)


def _unpivot(
    raw: pd.DataFrame,
    source: Source,
    table: SharedTable,
    today: dt.date | None,
    memos: dict[str, Memo] | None = None,
) -> NormalizeResult:
    up = source.unpivot
    assert up is not None
    pattern = re.compile(up.pattern)
    raw = raw.reset_index(drop=True)
    lineage = _lineage(raw, source)
    rn = lineage["_row_number"]
    id_fields = [f for f in source.fields if f.to is not None and not pattern.search(f.name)]
    cols, errs, findings = _map_fields(raw, source, id_fields, table, rn, today, memos)
    errs.append(_malformed(raw, rn))
    value_cols = [c for c in raw.columns if not str(c).startswith("_") and pattern.search(str(c))]
    n, k = len(raw), len(value_cols)
    if k:
        cells = pd.Series(raw[value_cols].to_numpy(dtype=object).reshape(-1))  # row-major: row, then column
        rows = np.repeat(np.arange(n), k)
        variables = np.tile([pattern.search(str(c)).group(1) for c in value_cols], n)  # type: ignore[union-attr]
        names = np.tile(np.asarray(value_cols, dtype=object), n)
        keep = ~_is_placeholder(cells)
        cells, rows, variables, names = (
            cells[keep].reset_index(drop=True),
            rows[keep],
            variables[keep],
            names[keep],
        )
    else:
        cells, rows = pd.Series([], dtype=object), np.array([], dtype=np.int64)
        variables = names = np.array([], dtype=object)
    kind = table.column(up.value_to).type
    memo = memos.setdefault("\x00unpivot values", Memo()) if memos is not None else None
    values, reasons, failed = apply_transforms(cells, up.value_transforms, kind, today, memo)
    long_rn = rn.iloc[rows].reset_index(drop=True)
    detail = pd.Series(names, dtype=STRING) + " (" + failed.fillna("") + ")"
    errs.append(_errors(long_rn, up.value_to, cells, reasons, detail))
    long_cols = {c: s.iloc[rows].reset_index(drop=True) for c, s in cols.items()}
    long_cols[up.variable_to] = pd.Series(variables, dtype=STRING)
    long_cols[up.value_to] = values.reset_index(drop=True)
    staged = _assemble(table, long_cols, lineage.iloc[rows].reset_index(drop=True))
    return NormalizeResult(staged=staged, errors=_sort(errs), findings=_sort(findings))


def normalize(
    raw: pd.DataFrame,
    source: Source,
    table: SharedTable,
    *,
    today: dt.date | None = None,
    memos: dict[str, Memo] | None = None,
) -> NormalizeResult:
    """Normalize one batch of raw rows of `source` into `table`'s staging shape.

    Input: raw text as extracted (delivered field names as columns, plus
    _source, _batch_id, _row_number, _row_error; missing lineage is filled with
    the source name, null and 1..n).
    Output grain: one staged row per raw row, same order (unpivot sources: one
    row per raw row x non-empty value column, row-major; empty cells and the
    PLACEHOLDERS "—", "-", "…" give no row: they are not figures). Columns: the
    table's columns in contract order, typed (string: pandas string dtype;
    date: datetime64[ms], written as DATE by the normalize stage (etl.datetypes);
    decimal: float64; integer: Int64; boolean: boolean),
    null where this source maps nothing, then _source, _batch_id, _row_number.
    `record_key` (tables with that column): the source's declared record_key fields,
    delivered text trimmed, joined with "|" (etl.normalize.record_key).
    Errors: one row per (row, column) problem, reasons from etl.quality.REASONS:
    each value that could not be normalized (its staged value is null), one
    malformed_row per raw row whose _row_error is set (column "_row"; its values
    are still normalized), and the cross-field findings of `consistency`.
    Several fields mapped to one column make it by the source's `combine` rule
    (contracts.Combine); a later field of a first_non_empty column that holds
    another value is a finding (`findings`, reason field_disagreement, values
    masked): the row is kept, the value not lost without a trace.
    `today` bounds dates (date_out_of_range); default: the current date.
    `memos`: pass the same (initially empty) dict for every chunk of one batch, and
    repeated values are transformed once per batch instead of once per chunk (Memo).
    Side effects: none (besides filling `memos`).
    """
    if source.unpivot is not None:
        return _unpivot(raw, source, table, today, memos)
    raw = raw.reset_index(drop=True)
    lineage = _lineage(raw, source)
    rn = lineage["_row_number"]
    cols, errs, findings = _map_fields(raw, source, source.fields, table, rn, today, memos)
    if source.record_key and RECORD_KEY in table.column_names:
        cols[RECORD_KEY] = record_keys(raw, source.record_key)
    staged = _assemble(table, cols, lineage)
    errs.append(_malformed(raw, rn))
    errs.append(consistency(staged))
    return NormalizeResult(staged=staged, errors=_sort(errs), findings=_sort(findings))
