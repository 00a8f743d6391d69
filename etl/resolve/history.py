"""SCD2 history of the golden records: `core.<entity>_history`.

One row per master and version: the golden attributes, `valid_from`, `valid_to` (null while
current) and `is_current`. A run dates its versions by its data date (the latest logical
date among the entity's staged records), so the base can be asked what it said on a past
date: a version is valid on D when valid_from <= D and (valid_to is null or D < valid_to).
A master whose golden record changed gets its current version closed and a new one opened;
an unchanged master keeps its version; a master that no longer exists (merged into another)
has its version closed. Nothing is overwritten.

`scd2` builds the whole history in pandas from the previous one and the golden table (the
first run). Later runs compute only the history's patch (etl.resolve.store.Patch, key
(`<entity>_id`, is_current)): `scd2_patch` for a golden table that arrives as a patch of
its previous file (the masters it drops or adds are the touched ones), `scd2_frame_patch`
for a whole golden table (every golden record hashed and compared with the current
versions' hashes, two columns DuckDB reads; the differing, new and gone masters are the
touched ones). Only the touched masters' current versions are read (by DuckDB, from the
previous history file), compared and closed or kept, their new versions opened; the
other masters' versions never leave the file. Applied, the patch gives the history
`scd2` would (row order aside).
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
from etl.resolve.layers import Layered, base_file, relation
from etl.resolve.store import Patch


def _hash(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    as_text = frame[columns].astype("string").fillna("\x00")
    return pd.util.hash_pandas_object(as_text, index=False).astype("uint64").astype("string")


def scd2(previous: pd.DataFrame | None, golden: pd.DataFrame, id_col: str, as_of: dt.date) -> pd.DataFrame:
    """The history after this run: `previous` history (or None) and the run's golden table."""
    now = _versions(golden, [c for c in golden.columns if c != id_col], as_of)
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


def _columns(con: duckdb.DuckDBPyConnection, file: Path | Layered) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            f"describe select * from read_parquet({meta.sql_literal(str(base_file(file)))})"
        ).fetchall()
    ]


def _versions(golden: pd.DataFrame, attrs: list[str], as_of: dt.date) -> pd.DataFrame:
    """The golden rows as versions opened on `as_of` (hashed over `attrs`, as `scd2` does)."""
    now = golden.assign(_version_hash=_hash(golden, attrs), valid_from=pd.Timestamp(as_of))
    now["valid_to"] = pd.Series(pd.NaT, index=now.index, dtype="datetime64[us]")
    now["is_current"] = True
    return now


def _patch_of(
    con: duckdb.DuckDBPyConnection,
    previous: Path | Layered,
    columns: list[str],
    now: pd.DataFrame,
    touched: set[str],
    id_col: str,
    as_of: dt.date,
) -> Patch:
    """The history patch for the masters `touched` (their new versions `now`): their
    current versions read by DuckDB from `previous`, kept when the hash is the same, else
    closed (dropped and added closed) with the new version opened; as `scd2` does."""
    ids = pa.table({id_col: pa.array(sorted(touched), type=pa.string())})
    con.register("_history_touched", ids)
    try:
        cur = duck_df(
            con,
            f"select * from {relation(previous)} "
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


def scd2_patch(
    con: duckdb.DuckDBPyConnection,
    previous: Path | Layered,
    golden_file: Path | Layered,
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
    add = as_datetimes(patch.add[golden_cols]) if len(patch.add) else pd.DataFrame(columns=golden_cols)
    touched = {str(v) for f in (patch.drop, patch.add) if len(f) for v in f[id_col].dropna()}
    return _patch_of(con, previous, columns, _versions(add, attrs, as_of), touched, id_col, as_of)


def scd2_frame_patch(
    con: duckdb.DuckDBPyConnection,
    previous: Path | Layered,
    golden: pd.DataFrame,
    id_col: str,
    as_of: dt.date,
) -> Patch | None:
    """The patch of the history file `previous` that gives what `scd2` would give for the
    whole golden table `golden`: every golden record hashed (as `scd2` does), compared with
    the current versions' hashes (two columns, read by DuckDB); only the masters whose hash
    differs, that are new or that are gone are read and versioned (`scd2_patch`'s key and
    rows). None when the golden table has a column the history lacks."""
    columns = _columns(con, previous)
    if not set(golden.columns) <= set(columns):
        return None
    now = _versions(golden, [c for c in golden.columns if c != id_col], as_of)
    cur = duck_df(
        con,
        f'select "{id_col}", _version_hash from {relation(previous)} where is_current',
    )
    had = cur.set_index(id_col)["_version_hash"]
    same = (now[id_col].map(had) == now["_version_hash"]).fillna(False).astype(bool).to_numpy()
    changed = now[~same]
    touched = {str(v) for v in changed[id_col]} | {
        str(v) for v in cur[id_col][~isin(cur[id_col], now[id_col])]
    }
    return _patch_of(con, previous, columns, changed, touched, id_col, as_of)


def as_of_sql(entity: str, day: str) -> tuple[str, list[str]]:
    """SQL (and its parameter) for the versions of core.<entity>_history valid on `day`."""
    return (
        f"select * exclude (_version_hash) from core.{entity}_history "
        "where valid_from <= cast(? as date) and (valid_to is null or cast(? as date) < valid_to)",
        [day, day],
    )


__all__ = ["as_of_sql", "scd2", "scd2_frame_patch", "scd2_patch"]
