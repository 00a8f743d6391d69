"""Helpers shared by the transforms: Arrow conversion and the basic text cleanup.

Every transform has the same contract (see etl.normalize.transforms):

    transform(values: pd.Series[str]) -> (normalized: pd.Series, reasons: pd.Series[string])

`reasons` holds a code of etl.quality.REASONS where a non-empty value could not
be normalized (the normalized value is then null), and <NA> elsewhere. Empty or
whitespace-only input is null without a reason. The index of the input is kept.

The hot paths work on Arrow arrays (pyarrow.compute runs RE2 and Unicode
normalization in C++), so no transform loops over values in Python; code lists
are mapped over the distinct values only (pd.factorize).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: pandas dtype of every string column in staging (Arrow storage, pd.NA as null).
STRING = pd.StringDtype("pyarrow")

#: Zero-width and invisible characters removed from identifiers and text
#: (zero-width space/non-joiner/joiner, word joiner, BOM).
ZERO_WIDTH_RE = "[\u200b\u200c\u200d\u2060\ufeff]"
#: Whitespace including no-break space U+00A0 and the ideographic space U+3000.
SPACE_RE = "[\\s\u00a0\u3000]"

Result = tuple[pd.Series, pd.Series]


def to_arrow(values: pd.Series) -> pa.Array:
    """The values as a pa.string() array (nulls kept, non-strings rendered with str())."""
    if isinstance(values.dtype, pd.StringDtype) or values.dtype == "str":
        arr = pa.array(values.array)
    else:
        obj = values.astype(object)
        arr = pa.array([None if _isna(v) else str(v) for v in obj], type=pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.string():
        arr = arr.cast(pa.string())
    return arr


def _isna(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA or v is pd.NaT


def from_arrow(arr: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    """A pandas string Series (STRING dtype) over an Arrow string array."""
    return pd.Series(pd.array(arr, dtype=STRING), index=index)


def basic_clean(arr: pa.Array, *, remove_spaces: bool) -> pa.Array:
    """NFKC (full width -> half width), zero-width characters removed, trimmed.

    remove_spaces=True also deletes every whitespace character inside the value
    (identifiers, codes); otherwise inner whitespace is left as is.

    Printable ASCII without blanks is already clean (NFKC leaves ASCII alone), and
    most delivered identifiers, codes and dates are: only the other values go
    through Unicode normalization and the regular expressions.
    """
    n = len(arr)
    pos = np.flatnonzero(~pc.fill_null(pc.ascii_is_alnum(arr), True).to_numpy(zero_copy_only=False))
    if len(pos):
        printable = pc.match_substring_regex(arr.take(pa.array(pos)), "^[!-~]*$")
        pos = pos[~pc.fill_null(printable, True).to_numpy(zero_copy_only=False)]
    if len(pos) == 0:
        return arr
    if len(pos) > n // 2:
        return _clean(arr, remove_spaces)
    dirty = np.zeros(n, dtype=bool)
    dirty[pos] = True
    return pc.replace_with_mask(arr, pa.array(dirty), _clean(arr.take(pa.array(pos)), remove_spaces))


def _clean(arr: pa.Array, remove_spaces: bool) -> pa.Array:
    arr = pc.utf8_normalize(arr, form="NFKC")
    arr = pc.replace_substring_regex(arr, pattern=ZERO_WIDTH_RE, replacement="")
    if remove_spaces:
        return pc.replace_substring_regex(arr, pattern=SPACE_RE + "+", replacement="")
    return pc.utf8_trim_whitespace(arr)


def empty_to_null(arr: pa.Array) -> pa.Array:
    """Empty strings become null (empty input is 'no value', never an error)."""
    return pc.if_else(pc.equal(pc.utf8_length(arr), 0), pa.scalar(None, pa.string()), arr)


def null_strings(n: int) -> pd.arrays.ArrowStringArray:
    """n nulls as a STRING array (built in Arrow: no Python objects)."""
    return pd.array(pa.nulls(n, pa.string()), dtype=STRING)


def object_to_arrow(values: np.ndarray) -> pa.Array:
    """An object array of str / None as a pa.string() array.

    Sparse arrays (reason codes: mostly None) are common on the hot path, so only
    the non-null entries are converted and scattered into an all-null array.
    """
    n = len(values)
    mask = values != None  # noqa: E711  (element-wise on an object array)
    k = int(np.count_nonzero(mask))
    if k == 0:
        return pa.nulls(n, pa.string())
    if k > n // 4:
        return pa.array(values, type=pa.string(), from_pandas=True)
    return pc.replace_with_mask(
        pa.nulls(n, pa.string()), pa.array(mask), pa.array(values[mask], type=pa.string())
    )


def coded_reasons(codes: np.ndarray, labels: list[str], index: pd.Index) -> pd.Series:
    """A STRING Series of reasons from small integer codes: 0 = no reason, k = labels[k - 1]."""
    codes = np.asarray(codes)
    indices = pa.array((codes.astype(np.int16) - 1).astype(np.int8), mask=codes == 0)
    arr = pa.DictionaryArray.from_arrays(indices, pa.array(labels, pa.string())).cast(pa.string())
    return pd.Series(pd.array(arr, dtype=STRING), index=index)


def flagged(mask: Any, code: str, index: pd.Index) -> pd.Series:
    """A STRING Series of reasons: `code` where mask is true, <NA> elsewhere (what
    reasons_series gives for such an object array, with no Python object per row)."""
    return coded_reasons(np.asarray(mask, dtype=bool).astype(np.uint8), [code], index)


def reasons_series(codes: np.ndarray, index: pd.Index) -> pd.Series:
    """A STRING Series from an object array of reason codes / None."""
    return pd.Series(pd.array(object_to_arrow(np.asarray(codes, dtype=object)), dtype=STRING), index=index)


def no_reasons(index: pd.Index) -> pd.Series:
    return pd.Series(null_strings(len(index)), index=index)


def map_distinct(
    values: pd.Series,
    fn: Callable[[str], tuple[Hashable | None, str | None]],
    dtype: Any = STRING,
) -> Result:
    """Apply a per-value function to the distinct non-null values only.

    fn(value) -> (normalized or None, reason or None). Suited to code lists and
    other low-cardinality columns: the Python work is proportional to the number
    of distinct values, not rows.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    out_u: list[Any] = []
    why_u: list[str | None] = []
    for u in uniques:
        v, r = fn(str(u))
        out_u.append(v)
        why_u.append(r)
    out_u.append(None)  # slot for the NA sentinel (-1)
    why_u.append(None)
    take = pa.array(np.where(codes < 0, len(uniques), codes))
    why = pa.array(why_u, type=pa.string()).take(take)
    if dtype is STRING:
        out = pd.array(pa.array(out_u, type=pa.string()).take(take), dtype=STRING)
    else:
        out = pd.array(np.asarray(out_u, dtype=object)[take.to_numpy()], dtype=dtype)
    return (
        pd.Series(out, index=values.index),
        pd.Series(pd.array(why, dtype=STRING), index=values.index),
    )
