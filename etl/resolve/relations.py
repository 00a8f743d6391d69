"""Relations keyed by master ids.

- core.legal_representative: one row per organisation x representative person (the person
  master its records' legal representative resolved to), with how many records say so;
- core.employment: one row per person x employer x insurance type x start date, from
  social insurance, the latest delivery winning;
- core.person_source: one row per person master x source: which departments hold a record
  of the person (the island-breaking view), how many, first and last delivery.
The golden legal_entity gains `legal_rep_person_id`: the person master of the record its
legal_rep_name was chosen from.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pandas as pd
import pyarrow as pa

from etl.config import Settings
from etl.contracts import Contracts
from etl.datetypes import core_dates
from etl.frames import duck_df, lookup
from etl.meta import sql_literal
from etl.resolve.records import _columns, record_key_sql
from etl.resolve.store import Patch, core_file, patched

#: the column relations add to the golden organisations
REP_COLUMN = "legal_rep_person_id"


def _employment(con: duckdb.DuckDBPyConnection, persons: pd.DataFrame, orgs: pd.DataFrame) -> pd.DataFrame:
    cols = _columns(con, "staging", "employment")
    if not cols:
        return pd.DataFrame(columns=["person_id", "legal_entity_id", "insurance_type", "start_date"])
    rows = con.execute(
        f"select 'employment|' || _source || '|' || {record_key_sql(cols)} as rec_id, insurance_type, "
        "cast(start_date as date) as start_date, monthly_wage, _source, _logical_date from staging.employment"
    ).df()
    p = persons[persons["_table"] == "employment"].set_index("rec_id")["master_id"]
    o = orgs[orgs["_table"] == "employment"].set_index("rec_id")["master_id"]
    rows = rows.assign(person_id=lookup(rows["rec_id"], p), legal_entity_id=lookup(rows["rec_id"], o))
    rows = rows.dropna(subset=["person_id"]).sort_values(["_logical_date", "rec_id"], ascending=[False, True])
    keys = ["person_id", "legal_entity_id", "insurance_type", "start_date"]
    rows = rows.drop_duplicates(keys)
    out = rows[[*keys, "monthly_wage", "_source", "rec_id"]].rename(columns={"_source": "source"})
    return out.sort_values(keys, ignore_index=True)


def _rep_choices(
    con: duckdb.DuckDBPyConnection, settings: Settings | None, prov: pd.DataFrame | Patch
) -> pd.DataFrame:
    """The provenance rows of the organisations' legal_rep_name (master_id, rec_id)."""
    if not isinstance(prov, Patch):
        rows = prov[(prov["entity"] == "legal_entity") & (prov["attribute"] == "legal_rep_name")]
        return rows[["master_id", "rec_id"]]
    if settings is None:
        raise ValueError("relations of a patched provenance need the settings naming its home")
    sql = patched(con, settings, "provenance", prov)
    return duck_df(
        con,
        f"select master_id, rec_id from ({sql}) where entity = 'legal_entity' and attribute = 'legal_rep_name'",
    )


def file_columns(con: duckdb.DuckDBPyConnection, settings: Settings, table: str) -> list[str]:
    """The columns of core.<table>'s current file, in order (none before its first run)."""
    file = core_file(con, settings, table)
    if file is None:
        return []
    got = con.execute(f"describe select * from read_parquet({sql_literal(str(file))})").fetchall()
    return [r[0] for r in got]


def _whole_golden(
    con: duckdb.DuckDBPyConnection,
    settings: Settings | None,
    contracts: Contracts,
    gold: pd.DataFrame | Patch,
) -> pd.DataFrame:
    """The golden organisations as a frame (without `legal_rep_person_id`, which relations
    derives again): a patch applied to its current file by DuckDB, typed as its added rows
    (as a full run's survivorship types them)."""
    if not isinstance(gold, Patch):
        return gold.drop(columns=REP_COLUMN, errors="ignore").copy()
    if settings is None:
        raise ValueError("relations of a patched golden table need the settings naming its home")
    add = gold.add.drop(columns=REP_COLUMN, errors="ignore")
    rows = add
    if REP_COLUMN in file_columns(con, settings, "legal_entity"):  # the added rows need it too
        rows = add.assign(**{REP_COLUMN: pd.Series(pd.NA, index=add.index, dtype="string")})
    sql = patched(con, settings, "legal_entity", Patch(gold.key, gold.drop, rows), core_dates(contracts))
    out = duck_df(con, f"select * from ({sql}) order by legal_entity_id")
    for col in add.columns:
        out[col] = out[col].astype(add[col].dtype)
    return out[list(add.columns)]


def relations(
    con: duckdb.DuckDBPyConnection,
    contracts: Contracts,
    persons: pd.DataFrame,
    orgs: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame | Patch],
    settings: Settings | None = None,
) -> dict[str, pd.DataFrame]:
    """The relation tables, and legal_entity with legal_rep_person_id (replaces
    tables['legal_entity'], a whole frame). tables['provenance'] and tables['legal_entity']
    may be `Patch`es of their current files (an incremental run; `settings` then names the
    home): the patched provenance is read by DuckDB for the organisations' legal_rep_name
    choices only, the patched golden organisations whole (a few per cent of the persons)."""
    reps = persons[persons["_table"] == "legal_entity"][["rec_id", "master_id"]].rename(
        columns={"master_id": "person_id"}
    )
    org_rec = orgs[orgs["_table"] == "legal_entity"][["rec_id", "master_id", "_source"]].rename(
        columns={"master_id": "legal_entity_id"}
    )
    both = org_rec.merge(reps, on="rec_id")
    legal_rep = (
        both.groupby(["legal_entity_id", "person_id"])
        .agg(records=("rec_id", "size"), sources=("_source", "nunique"))
        .reset_index()
        .sort_values(["legal_entity_id", "person_id"], ignore_index=True)
    )
    chosen = _rep_choices(con, settings, tables["provenance"])
    rep_of = chosen.set_index("master_id")["rec_id"].map(reps.set_index("rec_id")["person_id"])
    gold = _whole_golden(con, settings, contracts, tables["legal_entity"])
    gold["legal_rep_person_id"] = gold["legal_entity_id"].map(rep_of).astype("string")
    return {
        "legal_entity": gold,
        "legal_representative": legal_rep,
        "employment": _employment(con, persons, orgs),
        "person_source": person_source(persons, contracts),
    }


def person_source(persons: pd.DataFrame, contracts: Contracts) -> pd.DataFrame:
    """core.person_source: per person master and source, its records and the span of their
    deliveries, ordered by person and source. Grouped by DuckDB over the records as Arrow
    (pandas' groupby of the 790,000 person records took longer); typed as pandas' groupby
    typed it (tests/unit/test_resolve_relations.py)."""
    departments = pd.DataFrame(
        [(s.name, s.department) for s in contracts.sources.values()], columns=["source", "department"]
    )
    cols = ["master_id", "_source", "_first_delivery", "_last_delivery"]
    local = duckdb.connect()
    try:
        local.register("p", pa.Table.from_pandas(persons[cols], preserve_index=False))
        local.register("d", pa.Table.from_pandas(departments.astype("string"), preserve_index=False))
        out = duck_df(
            local,
            "select g.person_id, g.source, d.department, g.records, g.first_delivery, g.last_delivery "
            "from (select master_id as person_id, _source as source, count(*) as records, "
            "min(_first_delivery) as first_delivery, max(_last_delivery) as last_delivery "
            "from p group by all) g left join d using (source) order by g.person_id, g.source",
        )
    finally:
        local.close()
    for col, src in (
        ("person_id", "master_id"),
        ("source", "_source"),
        ("first_delivery", "_first_delivery"),
        ("last_delivery", "_last_delivery"),
    ):
        out[col] = out[col].astype(persons[src].dtype)
    out["department"] = out["department"].astype("str")  # as Series.map gave it
    out["records"] = out["records"].astype("int64")
    return out


__all__ = ["file_columns", "person_source", "relations"]
