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

import duckdb
import pandas as pd

from etl.contracts import Contracts
from etl.resolve.records import _columns, record_key_sql


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
    rows = rows.assign(person_id=rows["rec_id"].map(p), legal_entity_id=rows["rec_id"].map(o))
    rows = rows.dropna(subset=["person_id"]).sort_values(["_logical_date", "rec_id"], ascending=[False, True])
    keys = ["person_id", "legal_entity_id", "insurance_type", "start_date"]
    rows = rows.drop_duplicates(keys)
    out = rows[[*keys, "monthly_wage", "_source", "rec_id"]].rename(columns={"_source": "source"})
    return out.sort_values(keys, ignore_index=True)


def relations(
    con: duckdb.DuckDBPyConnection,
    contracts: Contracts,
    persons: pd.DataFrame,
    orgs: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
) -> dict[str, pd.DataFrame]:
    """The relation tables, and legal_entity with legal_rep_person_id (replaces tables['legal_entity'])."""
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
    prov = tables["provenance"]
    chosen = prov[(prov["entity"] == "legal_entity") & (prov["attribute"] == "legal_rep_name")]
    rep_of = chosen.set_index("master_id")["rec_id"].map(reps.set_index("rec_id")["person_id"])
    gold = tables["legal_entity"].copy()
    gold["legal_rep_person_id"] = gold["legal_entity_id"].map(rep_of).astype("string")
    department = {s.name: s.department for s in contracts.sources.values()}
    person_source = (
        persons.groupby(["master_id", "_source"])
        .agg(
            records=("rec_id", "size"),
            first_delivery=("_logical_date", "min"),
            last_delivery=("_logical_date", "max"),
        )
        .reset_index()
        .rename(columns={"master_id": "person_id", "_source": "source"})
    )
    person_source.insert(2, "department", person_source["source"].map(department))
    return {
        "legal_entity": gold,
        "legal_representative": legal_rep,
        "employment": _employment(con, persons, orgs),
        "person_source": person_source.sort_values(["person_id", "source"], ignore_index=True),
    }


__all__ = ["relations"]
