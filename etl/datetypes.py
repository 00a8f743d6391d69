"""Contract `date` columns are DATE in every layer, never TIMESTAMP.

Normalization computes dates as pandas datetime64 (midnight), and frames read back
from DuckDB (`.df()`) hold DATE columns as datetime64 too: written as they are, they
would land as TIMESTAMP. Every place that writes rows therefore casts the date columns
to Arrow date32 first (a DuckDB DATE, a Parquet DATE):

- normalize, its staged rows (and so validate's good rows and the staging partitions);
- replay, the partition it writes again;
- consolidate, every core table (`core_dates`: the contract date columns, plus the
  dates a core table adds: `_logical_date`, `valid_from`/`valid_to` of the history,
  `first_delivery`/`last_delivery` of person_source);
- the department shares (a masked date keeps its year only and is text).

The staging views cast the contract date columns to DATE as well (`date_view`), so that
partitions written before dates were typed (TIMESTAMP) and after (DATE) read alike.
Real timestamps (loaded_at, run times) stay TIMESTAMP.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pandas as pd
import pyarrow as pa

from etl.contracts import Contracts, SharedTable

#: the pandas dtype of a DATE column (Arrow date32)
DATE = pd.ArrowDtype(pa.date32())

#: date columns of core tables that are no contract column
CORE_DATES = frozenset({"_logical_date", "valid_from", "valid_to", "first_delivery", "last_delivery"})


def date_columns(table: SharedTable) -> list[str]:
    """The columns of a shared table whose contract type is date."""
    return [c.name for c in table.columns if c.type == "date"]


def core_dates(contracts: Contracts) -> frozenset[str]:
    """Names that are DATE wherever a core table holds them: every contract date column
    of every shared table (core tables name attributes as their shared table does) and
    CORE_DATES."""
    return CORE_DATES | {c for t in contracts.tables.values() for c in date_columns(t)}


def as_dates(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """`frame` with each of `columns` it holds as DATE (from datetime64, date objects or
    a mix of both; a time of day is dropped). Other columns are left as they are."""
    todo = [c for c in columns if c in frame.columns and frame[c].dtype != DATE]
    if not todo:
        return frame
    out = frame.copy()
    for c in todo:
        col = out[c]
        if col.dtype == object:
            col = pd.to_datetime(col)
        out[c] = col.astype(DATE)
    return out


def as_datetimes(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its DATE columns as datetime64 (midnight): how the in-memory code of
    consolidation compares and combines dates (the frames it reads from DuckDB hold them so)."""
    todo = [c for c in frame.columns if isinstance(frame[c].dtype, pd.ArrowDtype) and frame[c].dtype == DATE]
    if not todo:
        return frame
    out = frame.copy(deep=False)  # copy-on-write: the other columns are not copied
    for c in todo:
        out[c] = out[c].astype("datetime64[us]")
    return out


def arrow_dates(data: pa.Table, columns: Iterable[str]) -> pa.Table:
    """An Arrow table with each of `columns` it holds cast to date32."""
    for c in columns:
        i = data.schema.get_field_index(c)
        if i < 0 or pa.types.is_date32(data.schema.field(i).type):
            continue
        data = data.set_column(i, pa.field(c, pa.date32()), data.column(i).cast(pa.date32()))
    return data


def date_view(con: duckdb.DuckDBPyConnection, body: str, columns: Iterable[str]) -> str:
    """`body` (a SELECT) with each of `columns` it yields cast to DATE, whatever type the
    files under it store (TIMESTAMP in partitions written before dates were typed)."""
    present = {r[0] for r in con.execute(f"describe {body}").fetchall()}
    casts = [f'cast("{c}" as date) as "{c}"' for c in columns if c in present]
    if not casts:
        return body
    return f"select * replace ({', '.join(casts)}) from ({body})"


__all__ = [
    "CORE_DATES",
    "DATE",
    "arrow_dates",
    "as_dates",
    "as_datetimes",
    "core_dates",
    "date_columns",
    "date_view",
]
