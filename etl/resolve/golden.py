"""Golden records by per-attribute survivorship, with the provenance of every value.

Each column of the shared table declares its rules (`survivorship:` in
schemas/shared/<table>.yml, applied in order; default trust, recent, frequent):
- trust: the source's trust rank for that attribute (`trust:` in the source YAML);
- recent: the latest delivery (logical date);
- complete: the longest value (e.g. the address with the most detail);
- frequent: the value most of the master's records hold.
The last tie-break is the smallest record id, so the same records give the same golden record.
Only non-null values compete. The provenance row names the record the value came from and
the rule that decided: the first rule on which the winner beat the runner-up (the best
record holding another value), `only_value` when every record with a value agrees,
`tie_break` when every rule tied.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from etl.contracts import Contracts, SharedTable

DEFAULT_RULES = ("trust", "recent", "frequent")
_ORDER = {
    "trust": "trust desc",
    "recent": "_logical_date desc",
    "complete": "len desc",
    "frequent": "freq desc",
}
_KEY = {"trust": "trust", "recent": "_logical_date", "complete": "len", "frequent": "freq"}
LINEAGE = ["rec_id", "_table", "_source", "_batch_id", "_row_number", "record_key"]


def trust_table(contracts: Contracts, inputs: dict[str, dict[str, str]]) -> pd.DataFrame:
    """(_table, _source, attribute) -> trust, from the source YAMLs' field maps."""
    rows = []
    for src in contracts.sources.values():
        columns = inputs.get(src.table)
        if not columns:
            continue
        by_col = src.trust_by_column()
        for attr, col in columns.items():
            if col in by_col:
                rows.append(
                    {"_table": src.table, "_source": src.name, "attribute": attr, "trust": by_col[col]}
                )
    return pd.DataFrame(rows, columns=["_table", "_source", "attribute", "trust"])


def _long(records: pd.DataFrame, attributes: list[str]) -> pd.DataFrame:
    parts = []
    for attr in attributes:
        part = records[["master_id", *LINEAGE, "_logical_date", attr]].rename(columns={attr: "value"})
        part = part[part["value"].notna()]
        parts.append(part.assign(attribute=attr, value=part["value"].astype("string")))
    return pd.concat(parts, ignore_index=True)


def choose(
    records: pd.DataFrame, table: SharedTable, attributes: list[str], trust: pd.DataFrame
) -> pd.DataFrame:
    """One row per (master_id, attribute) that has a value: the winning record and the rule."""
    long = _long(records, attributes)
    con = duckdb.connect()
    try:
        con.register("long", long)
        con.register("trust_t", trust)
        rules = {a: list(table.column(a).survivorship or DEFAULT_RULES) for a in attributes}
        ranked = []
        for attr, chain in rules.items():
            order = ", ".join([_ORDER[r] for r in chain] + ["rec_id"])
            decided = " ".join(f"when r2.{_KEY[r]} is distinct from r1.{_KEY[r]} then '{r}'" for r in chain)
            ranked.append(
                f"""select * from (
                with c as (
                    select l.*, coalesce(t.trust, 0) as trust, length(l.value) as len,
                           count(*) over (partition by master_id, value) as freq
                    from long l left join trust_t t using (_table, _source, attribute)
                    where l.attribute = '{attr}'
                ), r as (select *, row_number() over (partition by master_id order by {order}) as rn from c),
                r1 as (select * from r where rn = 1),
                -- the runner-up: the best record holding another value
                r2 as (
                    select r.* from r join r1 w on r.master_id = w.master_id and r.value <> w.value
                    qualify row_number() over (partition by r.master_id order by r.rn) = 1
                )
                select r1.master_id, r1.attribute, {", ".join("r1." + c for c in LINEAGE)},
                       case when r2.rec_id is null then 'only_value' {decided} else 'tie_break' end as rule
                from r1 left join r2 on r2.master_id = r1.master_id)"""
            )
        return con.execute(" union all ".join(ranked) + " order by master_id, attribute").df()
    finally:
        con.close()


def golden(
    records: pd.DataFrame, chosen: pd.DataFrame, attributes: list[str], id_column: str
) -> pd.DataFrame:
    """The golden table: one row per master, each attribute from its chosen record (typed)."""
    masters = records.groupby("master_id").agg(
        source_records=("rec_id", "size"), sources=("_source", "nunique")
    )
    out = pd.DataFrame(index=masters.index)
    by_rec = records.set_index("rec_id")
    for attr in attributes:
        pick = chosen[chosen["attribute"] == attr].set_index("master_id")["rec_id"]
        vals = by_rec[attr].reindex(pick.to_numpy())
        out[attr] = pd.Series(vals.to_numpy(), index=pick.index).reindex(out.index)
        out[attr] = out[attr].astype(records[attr].dtype)
    out = out.join(masters).reset_index().rename(columns={"master_id": id_column})
    return out.sort_values(id_column, ignore_index=True)


__all__ = ["DEFAULT_RULES", "choose", "golden", "trust_table"]
