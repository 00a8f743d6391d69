"""What a delivery says about its department's conformance to the standard, kept per run.

At validation, each delivery (source, run) records in meta:
- `meta.field_profile`: per delivered field, the records of the delivery and how many hold a
  non-empty value in the field (counted over the raw batch: every delivered value as text);
- `meta.field_defect`: per shared column and reason, the delivered rows with that defect on
  that column: a value error of normalization (its column) or a failed row-level expectation
  (each of its columns; a cross-field check counts for every column it reads); row-level
  reader errors (ragged rows, open quotes ...) are column `_row`. Column `*` counts the
  distinct rows with the reason over all columns (a row with the reason on two columns once).

These counts hold no values. The conformance reports (etl.publish.conformance) read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from etl.contracts import Source
from etl.validate.quarantine import drop_echoes

DDL = """
create table if not exists meta.field_profile (
    run_id       varchar not null,
    source       varchar not null,
    table_name   varchar not null,
    logical_date date,
    field        varchar not null,   -- as delivered
    column_name  varchar,            -- the shared column it feeds; null: kept in raw only
    records      bigint not null,    -- records of the delivery
    filled       bigint not null,    -- records with a non-empty value in the field
    validated_at timestamp not null
);
create table if not exists meta.field_defect (
    run_id       varchar not null,
    source       varchar not null,
    table_name   varchar not null,
    logical_date date,
    column_name  varchar not null,   -- shared column; _row: the whole row; *: any column
    reason       varchar not null,
    rows         bigint not null,
    validated_at timestamp not null
);
"""
ROW = "_row"
ANY = "*"


def column_defects(value_errors: pd.DataFrame, failures: pd.DataFrame) -> pd.DataFrame:
    """(column_name, reason, rows): distinct delivered rows per column and reason, plus ANY."""
    parts = []
    if len(value_errors):
        parts.append(value_errors[["_batch_id", "_row_number", "column", "reason"]])
    fails = drop_echoes(failures, value_errors)
    if len(fails):
        per = fails.assign(column=fails["columns"].astype(str).str.split(",")).explode("column")
        parts.append(per[["_batch_id", "_row_number", "column", "reason"]])
    if not parts:
        return pd.DataFrame({"column_name": [], "reason": [], "rows": []})
    d = pd.concat(parts, ignore_index=True).astype({"_batch_id": str, "column": str, "reason": str})
    d["_row_number"] = d["_row_number"].astype("int64")
    d["column"] = d["column"].str.strip().replace({"": ROW, "nan": ROW, "None": ROW})
    d = d.drop_duplicates()
    per_column = d.groupby(["column", "reason"]).size().rename("rows").reset_index()
    anywhere = d.drop_duplicates(["_batch_id", "_row_number", "reason"]).groupby("reason").size()
    any_rows = anywhere.rename("rows").reset_index().assign(column=ANY)
    out = pd.concat([per_column, any_rows], ignore_index=True).rename(columns={"column": "column_name"})
    return out[["column_name", "reason", "rows"]].sort_values(["column_name", "reason"], ignore_index=True)


def delivered_fields(source: Source, raw_columns: list[str]) -> list[tuple[str, str | None]]:
    """(field, shared column) of every delivered field the raw batch holds: the declared ones,
    then undeclared ones an unpivot pattern takes (their values go to its value column)."""
    declared = [f.name for f in source.fields]
    names = [f for f in declared if f in raw_columns]
    if source.unpivot is not None:
        names += [
            c for c in raw_columns if c not in declared and not c.startswith("_") and source.column_of(c)
        ]
    return [(f, source.column_of(f)) for f in names]


def field_profile(source: Source, raw_files: list[Path]) -> pd.DataFrame:
    """(field, column_name, records, filled) over the raw Parquet files of one delivery."""
    if not raw_files:
        return pd.DataFrame({"field": [], "column_name": [], "records": [], "filled": []})
    listing = ", ".join("'" + str(p).replace("'", "''") + "'" for p in raw_files)
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    try:
        rel = f"read_parquet([{listing}], union_by_name = true)"
        columns = [r[0] for r in con.execute(f"describe select * from {rel}").fetchall()]
        fields = delivered_fields(source, columns)
        quoted = ['"' + f.replace('"', '""') + '"' for f, _ in fields]
        counts = ", ".join(f"count(nullif(trim(cast({q} as varchar)), ''))" for q in quoted)
        row = con.execute(f"select count(*){', ' + counts if counts else ''} from {rel}").fetchall()[0]
    finally:
        con.close()
    return pd.DataFrame(
        {
            "field": [f for f, _ in fields],
            "column_name": [c for _, c in fields],
            "records": [int(row[0])] * len(fields),
            "filled": [int(n) for n in row[1:]],
        }
    )


def record(
    con: duckdb.DuckDBPyConnection,
    keys: Mapping[str, Any],
    profile: pd.DataFrame,
    defects: pd.DataFrame,
    validated_at: Any,
) -> None:
    """Keep one delivery's profile and defects (replacing an earlier attempt of the same run).
    `keys`: run_id, source, table_name, logical_date."""
    con.execute(DDL)
    for table, frame in (("field_profile", profile), ("field_defect", defects)):
        con.execute(
            f"delete from meta.{table} where run_id = ? and source = ?", [keys["run_id"], keys["source"]]
        )
        if not len(frame):
            continue
        full = frame.assign(**keys, validated_at=validated_at)
        con.register("_frame", full)
        cols = ", ".join(full.columns)
        con.execute(f"insert into meta.{table} ({cols}) select {cols} from _frame")
        con.unregister("_frame")


__all__ = ["ANY", "DDL", "ROW", "column_defects", "delivered_fields", "field_profile", "record"]
