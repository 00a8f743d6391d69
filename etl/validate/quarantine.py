"""Quarantine assembly: the reasons of each failing row and its raw values as delivered."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd


def aggregate_reasons(reasons: pd.DataFrame) -> pd.DataFrame:
    """One row per (_batch_id, _row_number): its distinct reasons and failed expectations
    in order of appearance (comma-separated) and its details ("; "-separated)."""
    import duckdb

    r = reasons.assign(
        _row_number=reasons["_row_number"].astype("int64"),
        _batch_id=reasons["_batch_id"].astype(str),
        _pos=np.arange(len(reasons)),
    )
    con = duckdb.connect()
    con.register("r", r)
    out = con.execute(
        """
        with first_reason as (
            select _batch_id, _row_number, reason, min(_pos) as p from r group by all),
        first_expectation as (
            select _batch_id, _row_number, expectation, min(_pos) as p from r group by all),
        a as (select _batch_id, _row_number, string_agg(reason, ',' order by p) as reasons
              from first_reason group by all),
        b as (select _batch_id, _row_number, string_agg(expectation, ',' order by p) as failed_expectations
              from first_expectation group by all),
        c as (select _batch_id, _row_number, coalesce(string_agg(detail, '; ' order by _pos), '') as details
              from r group by all)
        select a._batch_id, a._row_number, reasons, failed_expectations, details
        from a join b using (_batch_id, _row_number) join c using (_batch_id, _row_number)
        order by a._batch_id, a._row_number
        """
    ).df()
    con.close()
    return out


def raw_lookup(raws: list[Path], keys: pd.DataFrame) -> pd.Series:
    """The raw values (as delivered) of the given (_batch_id, _row_number) rows, as JSON text."""
    if keys.empty:
        return pd.Series([], dtype="string")
    import duckdb

    con = duckdb.connect()
    con.register("keys", keys[["_batch_id", "_row_number"]].drop_duplicates())
    listing = ", ".join("'" + str(p).replace("'", "''") + "'" for p in raws)
    df = con.execute(
        f"select r.* from read_parquet([{listing}], union_by_name = true, hive_partitioning = false) r "
        "join keys k on r._batch_id = k._batch_id and r._row_number = k._row_number"
    ).df()
    con.close()
    df["raw"] = raw_json(df)
    return df.set_index(["_batch_id", "_row_number"])["raw"]


def raw_json(raw: pd.DataFrame) -> list[str]:
    """Each raw row as delivered, as JSON text: its delivered fields plus _row_error and
    _extra, nulls (not delivered) left out."""
    data_cols = [c for c in raw.columns if not c.startswith("_") or c in ("_row_error", "_extra")]
    return [
        json.dumps(
            {c: v for c, v in zip(data_cols, vals, strict=True) if v is not None and v == v},
            ensure_ascii=False,
        )
        for vals in raw[data_cols].itertuples(index=False, name=None)
    ]
