"""Fast paths over pandas frames where pandas itself is slow.

`isin`: pandas 3's `Series.isin` on its pyarrow-backed strings (the default `str` dtype)
takes seconds for a few hundred thousand values (8.7 s for 200,000 in 800,000 on this
machine) where pyarrow's own `is_in` takes 0.3 s; the linkage asks it of every record on
every run. Tested against `Series.isin` (tests/unit/test_frames.py).

`lookup`: `keys.map(table)` for text keys (a Series indexed by unique text): pandas'
`map` builds a hash index of the table's keys first (0.3-0.5 s for the 790,000 person
records); pyarrow's `index_in` finds the positions instead. Tested against `Series.map`.

`duck_df`: a DuckDB result as pandas, as DuckDB's own `.df()` types it (dates and
timestamps as datetime64[us], integers and booleans holding nulls as pandas' nullable
Int64 / boolean, text as pandas' string), but through Arrow: `.df()` builds Python
objects for text and dates (6.6 s for the 790,000 person records at 400,000 persons,
2.7 s through Arrow). Tested against `.df()` (tests/unit/test_frames.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    import duckdb


def _arrow(values: pd.Series | pd.Index | np.ndarray | Iterable[object]) -> pa.Array:
    if isinstance(values, pd.Series | pd.Index) and isinstance(values.dtype, pd.StringDtype):
        got = pa.array(values.array)  # pyarrow-backed: no copy through Python objects
        if isinstance(got, pa.ChunkedArray):
            got = got.combine_chunks()
        return got.cast(pa.string())
    if isinstance(values, pd.Series | pd.Index):
        values = values.to_numpy(dtype=object)
    return pa.array([None if v is None or v is pd.NA or v != v else str(v) for v in values], type=pa.string())


def isin(series: pd.Series, among: pd.Series | pd.Index | np.ndarray | Iterable[object]) -> np.ndarray:
    """`series.isin(among)` for text, as a boolean array: a null is never in (as pandas
    has it for nulls unless `among` holds one; text keys here are never null)."""
    if len(series) == 0:
        return np.zeros(0, dtype=bool)
    if not isinstance(among, pd.Series | pd.Index | np.ndarray):
        among = list(among)
    got = pc.is_in(_arrow(series), value_set=pc.unique(_arrow(among)), skip_nulls=True)
    return np.asarray(got.fill_null(False), dtype=bool)


def _increasing(values: pa.Array) -> bool:
    """Whether text values are strictly increasing (no nulls): then they are unique."""
    if values.null_count:
        return False
    if len(values) < 2:
        return True
    return bool(pc.all(pc.greater(values[1:], values[:-1])).as_py())


def lookup(keys: pd.Series, table: pd.Series) -> pd.Series:
    """`keys.map(table)`, as pandas gives it (the table's text values taken at each key's
    position, missing where the table lacks the key), for text keys; `table`'s index is
    unique (a map over a duplicated index raises in pandas). Keys, index or values not
    pandas' text: pandas' map."""
    text = (isinstance(x.dtype, pd.StringDtype) for x in (keys, table, table.index))
    if len(keys) == 0 or len(table) == 0 or not all(text):
        return keys.map(table)  # text only: pandas types other results its own way
    at, index = _arrow(keys), _arrow(table.index)
    if not _increasing(index) and not table.index.is_unique:  # a strictly increasing one is unique
        raise ValueError("lookup: the table's index is not unique")
    if len(at) == len(index) and at.null_count == 0 and bool(pc.all(pc.equal(at, index)).as_py()):
        # the keys are the table's index in its order (the records and their content hashes)
        return pd.Series(table.array.copy(), index=keys.index, name=keys.name)
    pos = pc.index_in(at, value_set=index)
    indexer = np.asarray(pos.fill_null(-1), dtype=np.intp)
    values = pd.api.extensions.take(table.array, indexer, allow_fill=True)
    return pd.Series(values, index=keys.index, name=keys.name)


def duck_df(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> pd.DataFrame:
    """The result of `sql` on `con` as `con.execute(sql, params).df()` would give it."""
    return arrow_df(con.sql(sql, params=params).to_arrow_table())


def arrow_df(table: pa.Table) -> pd.DataFrame:
    """A DuckDB result fetched as Arrow (`to_arrow_table()`), as pandas as `duck_df` gives it."""
    columns, nullable = [], {}
    for i, f in enumerate(table.schema):
        col = table.column(i)
        if pa.types.is_date(f.type) or (
            pa.types.is_timestamp(f.type) and f.type.tz is None and f.type.unit != "us"
        ):
            col = col.cast(pa.timestamp("us"))
        elif pa.types.is_decimal(f.type):
            col = col.cast(pa.float64())
        elif col.null_count and pa.types.is_integer(f.type):
            width = f.type.bit_width
            nullable[f.name] = pd.api.types.pandas_dtype(
                f"Int{width}" if pa.types.is_signed_integer(f.type) else f"UInt{width}"
            )
        elif col.null_count and pa.types.is_boolean(f.type):
            nullable[f.name] = pd.BooleanDtype()
        columns.append(col)
    out = pa.table(columns, names=table.schema.names).to_pandas()
    for name, dtype in nullable.items():
        out[name] = out[name].astype(dtype)
    return out


__all__ = ["arrow_df", "duck_df", "isin", "lookup"]
