"""Quarantine assembly: one row per failing source row, with its reasons and its raw values.

Inputs are the value errors of normalization (one row per value that could not be
normalized: _batch_id, _row_number, column, raw_value, reason, detail) and the
row-level expectation failures of validation (_batch_id, _row_number, reason,
expectation, columns). `assemble` turns them into the rows of quarantine.<table>:
keyed by (_batch_id, _row_number), echoes of value errors dropped, reasons and
failed expectations aggregated in order, and the delivered row as raw JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from etl.workdir import read_arrow

#: the columns of quarantine.<table>, in order
COLUMNS = [
    "_source",
    "_batch_id",
    "_row_number",
    "_run_id",
    "_logical_date",
    "reasons",
    "failed_expectations",
    "details",
    "raw",
]
VALUE_ERROR_COLUMNS = ["_batch_id", "_row_number", "column", "raw_value", "reason", "detail"]
FAILURE_COLUMNS = ["_batch_id", "_row_number", "reason", "expectation", "columns"]
REASON_COLUMNS = ["_batch_id", "_row_number", "reason", "expectation", "detail"]


def keyed(frame: pd.DataFrame, fails: pd.DataFrame) -> pd.DataFrame:
    """Row-level failures (a `position` into `frame` each) with the (_batch_id,
    _row_number) of their rows in `frame` instead of their positions."""
    keys = frame.iloc[fails["position"].to_numpy()][["_batch_id", "_row_number"]].reset_index(drop=True)
    return pd.concat([keys, fails.drop(columns="position").reset_index(drop=True)], axis=1)


def assemble(
    value_errors: pd.DataFrame,
    failures: pd.DataFrame,
    *,
    known_raw: pd.Series,
    raw_files: list[Path],
    source: str,
    run_id: str,
    logical_date: str,
) -> pd.DataFrame:
    """The quarantine rows (COLUMNS) of one batch.

    known_raw: raw JSON by (_batch_id, _row_number) already at hand (kept while
    normalizing); rows not in it (failing expectations only) are looked up in the
    raw Parquet `raw_files`.
    """
    reasons = reasons_of(value_errors, drop_echoes(failures, value_errors))
    if not len(reasons):
        return pd.DataFrame(columns=COLUMNS)
    quarantine = aggregate_reasons(reasons)
    keys = pd.MultiIndex.from_frame(quarantine[["_batch_id", "_row_number"]])
    missing = quarantine[~keys.isin(list(known_raw.index))]
    if len(missing):  # rows failing expectations only: look them up in the raw batch
        known_raw = pd.concat([known_raw, raw_lookup(raw_files, missing)])
    quarantine["raw"] = known_raw.reindex(keys).to_numpy()
    quarantine.insert(0, "_source", source)
    quarantine["_run_id"] = run_id
    quarantine["_logical_date"] = pd.Timestamp(logical_date).date()
    return quarantine[COLUMNS]


def drop_echoes(failures: pd.DataFrame, value_errors: pd.DataFrame) -> pd.DataFrame:
    """`failures` without those on a column whose value could not be normalized: such a
    row fails expectations on that column as a consequence (it is null), and the
    quarantine reports the cause, not the echo."""
    if not (len(failures) and len(value_errors)):
        return failures
    gf = failures.reset_index(drop=True)
    per_column = gf.assign(_i=np.arange(len(gf)), column=gf["columns"].astype(str).str.split(",")).explode(
        "column"
    )
    per_column["_row_number"] = per_column["_row_number"].astype("int64")
    per_column["_batch_id"] = per_column["_batch_id"].astype(str)
    errs = (
        value_errors[["_batch_id", "_row_number", "column"]]
        .astype({"_batch_id": str, "column": str})
        .drop_duplicates()
    )
    echoes = per_column[["_i", "_batch_id", "_row_number", "column"]].merge(
        errs, on=["_batch_id", "_row_number", "column"]
    )["_i"]
    return gf[~np.isin(np.arange(len(gf)), echoes.to_numpy())]


def reasons_of(value_errors: pd.DataFrame, failures: pd.DataFrame) -> pd.DataFrame:
    """One row (REASON_COLUMNS) per value error (expectation `normalize:<column>`, with its
    detail), then one per expectation failure."""
    parts = []
    if len(value_errors):
        parts.append(
            value_errors.assign(expectation="normalize:" + value_errors["column"].astype(str))[REASON_COLUMNS]
        )
    if len(failures):
        parts.append(failures.assign(detail=None)[REASON_COLUMNS])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=REASON_COLUMNS)


def known_raw_rows(path: Path) -> pd.Series:
    """The raw JSON normalize kept (WorkDir.raw_rows) by (_batch_id, _row_number)."""
    if not path.exists():
        return pd.Series([], dtype="string")
    kept = read_arrow(path)
    kept["_batch_id"] = kept["_batch_id"].astype(str)
    return kept.drop_duplicates(["_batch_id", "_row_number"]).set_index(["_batch_id", "_row_number"])["raw"]


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
