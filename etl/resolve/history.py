"""SCD2 history of the golden records: `core.<entity>_history`.

One row per master and version: the golden attributes, `valid_from`, `valid_to` (null while
current) and `is_current`. A run dates its versions by its data date (the latest logical
date among the entity's staged records), so the base can be asked what it said on a past
date: a version is valid on D when valid_from <= D and (valid_to is null or D < valid_to).
A master whose golden record changed gets its current version closed and a new one opened;
an unchanged master keeps its version; a master that no longer exists (merged into another)
has its version closed. Nothing is overwritten.

`scd2` builds the whole history in pandas from the previous one and the golden table;
`scd2_patch`, for a golden table that arrives as a patch of its previous file
(etl.resolve.store.Patch), computes only the history's patch: the current versions of the
masters the golden patch drops or adds are read (by DuckDB, from the previous history
file), compared and closed or kept, their new versions opened; the other masters' golden
records are unchanged, so their versions are too, and never leave the file. Applied, the
patch gives the history `scd2` would (row order aside).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from etl import meta
from etl.datetypes import as_datetimes
from etl.frames import duck_df, isin
from etl.resolve.store import Patch


def _hash(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    as_text = frame[columns].astype("string").fillna("\x00")
    return pd.util.hash_pandas_object(as_text, index=False).astype("uint64").astype("string")


def scd2(previous: pd.DataFrame | None, golden: pd.DataFrame, id_col: str, as_of: dt.date) -> pd.DataFrame:
    """The history after this run: `previous` history (or None) and the run's golden table."""
    attrs = [c for c in golden.columns if c != id_col]
    now = golden.assign(_version_hash=_hash(golden, attrs), valid_from=pd.Timestamp(as_of))
    now["valid_to"] = pd.Series(pd.NaT, index=now.index, dtype="datetime64[us]")
    now["is_current"] = True
    if previous is None or previous.empty:
        return now.sort_values(id_col, ignore_index=True)
    cur = previous[previous["is_current"]]
    old = previous[~previous["is_current"]]
    new_hash = now.set_index(id_col)["_version_hash"]
    same = cur[id_col].map(new_hash) == cur["_version_hash"]
    kept = cur[same.fillna(False).astype(bool)]
    closed = cur[~same.fillna(False).astype(bool)].assign(valid_to=pd.Timestamp(as_of), is_current=False)
    opened = now[~isin(now[id_col], kept[id_col])]
    out = pd.concat([old, closed, kept, opened], ignore_index=True)
    out["valid_from"] = pd.to_datetime(out["valid_from"])
    out["valid_to"] = pd.to_datetime(out["valid_to"])
    return out.sort_values([id_col, "valid_from", "is_current"], ignore_index=True)


def _columns(con: duckdb.DuckDBPyConnection, file: Path) -> list[str]:
    return [
        r[0]
        for r in con.execute(f"describe select * from read_parquet({meta.sql_literal(str(file))})").fetchall()
    ]


def scd2_patch(
    con: duckdb.DuckDBPyConnection,
    previous: Path,
    golden_file: Path,
    patch: Patch,
    id_col: str,
    as_of: dt.date,
) -> Patch | None:
    """The patch of the history file `previous` that gives what `scd2` would give for the
    golden table `golden_file` (its previous file) patched by `patch` (key: `id_col`; one
    row per master). Its key is (`id_col`, is_current): it drops the current versions it
    closes and adds them closed, with the new versions. None when it cannot say: the
    golden table has a column the history lacks (a new attribute: `scd2` then)."""
    if tuple(patch.key) != (id_col,):
        raise ValueError(f"a golden patch is keyed by {id_col}, not {', '.join(patch.key)}")
    golden_cols = _columns(con, golden_file)
    columns = _columns(con, previous)
    if not set(golden_cols) <= set(columns):
        return None
    attrs = [c for c in golden_cols if c != id_col]  # the order the versions were hashed in
    # hashed as `scd2` hashes the in-memory golden table (dates as datetime64)
    now = as_datetimes(patch.add[golden_cols]) if len(patch.add) else pd.DataFrame(columns=golden_cols)
    now = now.assign(_version_hash=_hash(now, attrs), valid_from=pd.Timestamp(as_of))
    now["valid_to"] = pd.Series(pd.NaT, index=now.index, dtype="datetime64[us]")
    now["is_current"] = True
    touched = {str(v) for f in (patch.drop, patch.add) if len(f) for v in f[id_col].dropna()}
    ids = pa.table({id_col: pa.array(sorted(touched), type=pa.string())})
    con.register("_history_touched", ids)
    try:
        cur = duck_df(
            con,
            f"select * from read_parquet({meta.sql_literal(str(previous))}) "
            f'where is_current and "{id_col}" in (select "{id_col}" from _history_touched)',
        )
    finally:
        con.unregister("_history_touched")
    new_hash = now.set_index(id_col)["_version_hash"]
    same = (cur[id_col].map(new_hash) == cur["_version_hash"]).fillna(False).astype(bool)
    kept = cur[same]
    closed = cur[~same].assign(valid_to=pd.Timestamp(as_of), is_current=False)
    opened = now[~isin(now[id_col], kept[id_col])]
    add = (
        pd.concat([f for f in (closed, opened) if len(f)], ignore_index=True)
        if len(closed) + len(opened)
        else cur.iloc[:0]
    )
    add = add.reindex(columns=columns)
    drop = pd.DataFrame({id_col: closed[id_col].astype("string"), "is_current": True})
    return Patch(key=(id_col, "is_current"), drop=drop, add=add)


def as_of_sql(entity: str, day: str) -> tuple[str, list[str]]:
    """SQL (and its parameter) for the versions of core.<entity>_history valid on `day`."""
    return (
        f"select * exclude (_version_hash) from core.{entity}_history "
        "where valid_from <= cast(? as date) and (valid_to is null or cast(? as date) < valid_to)",
        [day, day],
    )


__all__ = ["as_of_sql", "scd2", "scd2_patch"]
