"""SCD2 history of the golden records: `core.<entity>_history`.

One row per master and version: the golden attributes, `valid_from`, `valid_to` (null while
current) and `is_current`. A run dates its versions by its data date (the latest logical
date among the entity's staged records), so the base can be asked what it said on a past
date: a version is valid on D when valid_from <= D and (valid_to is null or D < valid_to).
A master whose golden record changed gets its current version closed and a new one opened;
an unchanged master keeps its version; a master that no longer exists (merged into another)
has its version closed. Nothing is overwritten.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from etl.frames import isin


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


def as_of_sql(entity: str, day: str) -> tuple[str, list[str]]:
    """SQL (and its parameter) for the versions of core.<entity>_history valid on `day`."""
    return (
        f"select * exclude (_version_hash) from core.{entity}_history "
        "where valid_from <= cast(? as date) and (valid_to is null or cast(? as date) < valid_to)",
        [day, day],
    )


__all__ = ["as_of_sql", "scd2"]
