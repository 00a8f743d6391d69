"""Golden records by per-attribute survivorship, with the provenance of every value.

Each column of the shared table declares its rules (`survivorship:` in
schemas/shared/<table>.yml, applied in order; default trust, recent, frequent):
- trust: the source's trust rank for that attribute (`trust:` in the source YAML);
- recent: the latest delivery of the value as it stands (the record's `_logical_date`: its
  first delivery of its current content, etl.resolve.records, so a snapshot sent again
  unchanged does not outrank a department that delivered a change);
- complete: the longest value (e.g. the address with the most detail);
- frequent: the value most of the master's records hold.
The last tie-break is the smallest record id, so the same records give the same golden record.
Only non-null values compete. The provenance row names the record the value came from
(`rec_id`, its table, source and record key: the delivery its content came in, batch and
row, is its row in core.<entity>_record) and the rule that decided: the first rule on which the winner beat the runner-up (the best
record holding another value), `only_value` when every record with a value agrees,
`tie_break` when every rule tied.

An incremental run (`choose_incremental`) chooses again only the masters its delta
`touched` and gives what changes as rows to drop and rows to add (an `Increment`: the
kept golden records and provenance rows stay in their files, etl.resolve.store.Patch):
the result is the same as choosing every master again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etl.contracts import Contracts, SharedTable
from etl.frames import arrow_df, duck_df, isin
from etl.resolve.layers import Layered, relation

DEFAULT_RULES = ("trust", "recent", "frequent")
#: what names the record a value came from, fixed per rec_id (`<table>|<source>|<record key>`):
#: its delivery position (batch, row) is its row in core.<entity>_record, so a redelivery
#: of the same record changes the record table, never the provenance
LINEAGE = ["rec_id", "_table", "_source", "record_key"]
#: the columns of core.provenance, in order
PROVENANCE_COLUMNS = ["master_id", "attribute", *LINEAGE, "rule", "entity", "run_id"]


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


#: each rule as a key to minimise (the best record has the smallest key)
_MIN_KEY = {
    "trust": "-trust",
    "recent": "-epoch_us(_logical_date)",
    "complete": "-len",
    "frequent": "-freq",
}


def _attribute_sql(attr: str, chain: list[str]) -> str:
    """The winner of `attr` per master and the rule that decided, over view `recs`.

    Aggregates, not windows: the records are ranked by one key (a struct of the chain's
    rules, then the record id), so the winner is the record with the smallest key
    (`arg_min`) and the runner-up the smallest key among the master's records holding
    another value: hash aggregates over the records, where a window sorted them all (a
    third of the time at 400,000 persons). The master and the record id are compared as
    their integer codes (`_keyed`: `_m`, `_r`, in the order of the ids), not as text: 40 %
    less time at 400,000 persons."""
    key = ", ".join([f'"{r}" := {_MIN_KEY[r]}' for r in chain] + ["_r := _r"])
    decided = " ".join(f'when r2.key."{r}" is distinct from w.key."{r}" then \'{r}\'' for r in chain)
    lineage = ", ".join(LINEAGE)
    freq = ""
    if "frequent" in chain:
        freq = "left join (select _m, value, count(*) as freq from v group by all) f on f._m = x._m and f.value = x.value"
    return f"""with v as (
            select _m, _r, master_id, {lineage}, _logical_date, cast("{attr}" as varchar) as value
            from recs where "{attr}" is not null
        ),
        c as (
            select x._m, x._r, x.master_id, {", ".join("x." + c for c in LINEAGE)}, x.value,
                   struct_pack({key}) as key
            from (select v.*, coalesce(t.trust, 0) as trust, length(v.value) as len from v
                  left join trust_t t
                  on t._table = v._table and t._source = v._source and t.attribute = '{attr}') x
            {freq}
        ),
        w as (select _m, min(key) as key, arg_min(value, key) as won from c group by _m),
        -- the runner-up: the best record holding another value
        r2 as (select c._m, min(c.key) as key from c join w using (_m)
               where c.value <> w.won group by c._m)
        select c.master_id, '{attr}' as attribute, {", ".join("c." + c for c in LINEAGE)},
               case when r2.key is null then 'only_value' {decided} else 'tie_break' end as rule
        from w join c on c._m = w._m and c._r = w.key._r
        left join r2 on r2._m = w._m"""


def _codes(values: pd.Series, ordered: bool) -> pd.api.extensions.ExtensionArray | np.ndarray:
    """An integer code of each value (equal values one code), null where the value is null;
    `ordered`: the value's rank among the distinct values (0 the smallest, in the order
    DuckDB compares text: by code point), from the positions when the values ascend
    strictly (the records come ordered by rec_id, etl.resolve.records)."""
    if ordered and len(values) and values.notna().all():
        text = pa.array(values.array).cast(pa.string())
        if pc.all(pc.less(text[:-1], text[1:])).as_py() in (True, None):
            return np.arange(len(values), dtype="int32")
    codes, _ = pd.factorize(values, sort=ordered)
    if (codes >= 0).all():
        return codes.astype("int32")
    return pd.arrays.IntegerArray(codes.astype("int32"), codes < 0)


def _text_view(records: pd.DataFrame, attributes: list[str]) -> pd.DataFrame:
    """The columns survivorship reads, the attributes as their text (as pandas writes them:
    the value compared, counted and measured whatever its type), the master and the record
    id also as integer codes (`_m`, `_r`: `_codes`)."""
    out = records[["master_id", *LINEAGE, "_logical_date"]].copy()
    out["_m"] = _codes(records["master_id"], ordered=False)
    out["_r"] = _codes(records["rec_id"], ordered=True)
    for attr in attributes:
        col = records[attr]
        out[attr] = col if pd.api.types.is_string_dtype(col) else col.astype("string")
    return out


def _chosen_arrow(
    con: duckdb.DuckDBPyConnection,
    records: pd.DataFrame,
    table: SharedTable,
    attributes: list[str],
    trust: pd.DataFrame,
) -> pa.Table | None:
    """The choices of every attribute (the columns of `choose`, unordered; None when there
    are no attributes), one set-based query per attribute over the records as they are
    (registered once in `con`), each result kept as Arrow: one query of all attributes at
    once (a union) ran every attribute's aggregates at the same time and held them all
    (6.9 GB at 400,000 persons against 2.6 GB one at a time, in the same time)."""
    if not attributes:
        return None
    con.register("recs", _text_view(records, attributes))
    con.register("trust_t", trust)
    rules = {a: list(table.column(a).survivorship or DEFAULT_RULES) for a in attributes}
    return pa.concat_tables(
        [con.sql(_attribute_sql(a, chain)).to_arrow_table() for a, chain in rules.items()]
    )


#: the columns of `choose`'s frame, in order
CHOSEN_COLUMNS = ["master_id", "attribute", *LINEAGE, "rule"]


def _chosen_frame(chosen: pa.Table | None) -> pd.DataFrame:
    """The choices as `choose` gives them: ordered by master and attribute."""
    if chosen is None:
        return pd.DataFrame(columns=CHOSEN_COLUMNS)
    return arrow_df(chosen).sort_values(["master_id", "attribute"], ignore_index=True)


def choose(
    records: pd.DataFrame, table: SharedTable, attributes: list[str], trust: pd.DataFrame
) -> pd.DataFrame:
    """One row per (master_id, attribute) that has a value: the winning record and the rule."""
    con = duckdb.connect()
    try:
        chosen = _chosen_arrow(con, records, table, attributes, trust)
    finally:
        con.close()
    return _chosen_frame(chosen)


def _golden_frame(
    con: duckdb.DuckDBPyConnection, records: pd.DataFrame, attributes: list[str], id_column: str
) -> pd.DataFrame:
    """The golden table (see `golden`) from relation `chosen` of `con`: (master_id,
    attribute, rec_id) of every choice."""
    con.register("typed", records[["rec_id", "master_id", "_source", *attributes]])
    picks = ", ".join(f'any_value(r."{a}") filter (where c.attribute = \'{a}\') as "{a}"' for a in attributes)
    g = f"select c.master_id, {picks} from chosen c join typed r using (rec_id) group by c.master_id"
    if not attributes:  # nothing chosen: one row per master, no attribute
        g = "select master_id from typed where false"
    out = duck_df(
        con,
        f"""with m as (select master_id, count(*) as source_records, count(distinct _source) as sources
                       from typed group by master_id),
             g as ({g})
        select m.master_id, {"".join(f'g."{a}", ' for a in attributes)}m.source_records, m.sources
        from m left join g using (master_id) order by m.master_id""",
    )
    for attr in attributes:
        out[attr] = out[attr].astype(records[attr].dtype)
    for col in ("source_records", "sources"):
        out[col] = out[col].astype("int64")
    return out.rename(columns={"master_id": id_column})


def golden(
    records: pd.DataFrame, chosen: pd.DataFrame, attributes: list[str], id_column: str
) -> pd.DataFrame:
    """The golden table: one row per master, each attribute from its chosen record (typed)."""
    con = duckdb.connect()
    try:
        con.register("chosen", chosen[["master_id", "attribute", "rec_id"]])
        return _golden_frame(con, records, attributes, id_column)
    finally:
        con.close()


def survive(
    records: pd.DataFrame, table: SharedTable, attributes: list[str], trust: pd.DataFrame, id_column: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(`choose`, `golden`) of the records, in one DuckDB connection: the golden table
    reads the choices as DuckDB gave them (Arrow), never a frame of them. The frame of the
    choices is made once the connection is closed (its memory given back: 0.6 GB of the
    peak at 400,000 persons)."""
    con = duckdb.connect()
    try:
        chosen = _chosen_arrow(con, records, table, attributes, trust)
        if chosen is not None:
            con.register("chosen", chosen.select(["master_id", "attribute", "rec_id"]))
        gold = _golden_frame(con, records, attributes, id_column)
    finally:
        con.close()
    return _chosen_frame(chosen), gold


# ---------------------------------------------------------------- incremental survivorship
def rules_hash(table: SharedTable, attributes: list[str], trust: pd.DataFrame) -> str:
    """A digest of what survivorship decides by besides the records (each attribute's rules
    and the trust ranks): a base chosen under another digest is chosen again in full."""
    rules = {a: list(table.column(a).survivorship or DEFAULT_RULES) for a in attributes}
    ranks = sorted(
        map(list, trust[["_table", "_source", "attribute", "trust"]].astype(str).itertuples(index=False))
    )
    text = json.dumps({"rules": rules, "trust": ranks}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Base:
    """What the previous run chose from: its record table (rec_id, the master in column
    `id_column`, content_hash, _logical_date), a frame or its Parquet file (read by DuckDB,
    never into pandas). Its golden table and provenance are not read: their kept rows stay
    in their files (`store.Patch`), as an untouched master's choices are the same."""

    records: pd.DataFrame | Path | Layered
    id_column: str = "master_id"


@dataclass(frozen=True)
class Increment:
    """What an incremental survivorship changes against its base, as rows to drop and rows
    to add (etl.resolve.stage makes `store.Patch`es of them): `touched`, the masters chosen
    again (current or previous ones: a merged-away master's rows go), whose golden rows and
    provenance are dropped; `golden`, the golden rows of those that still exist (keyed
    `master_id`, typed as `golden` types them); `chosen`, their choices (as `choose` gives
    them: their provenance rows). Applied to the base, the same golden table and provenance
    as `choose` and `golden` over every record (tests/unit/test_resolve_golden.py,
    tests/integration/test_consolidate_incremental.py)."""

    touched: list[str]
    golden: pd.DataFrame
    chosen: pd.DataFrame


#: the masters `touched` finds, over views `cur` and `prev` (rec_id, master_id,
#: content_hash, _logical_date): `changed`, those that gained, lost or changed a record;
#: then the dates ranked only in the other masters a record of which was redelivered on
#: another date (`redated`: each holds the same records in both runs, so its ranks
#: compare record by record), not in every master of both runs (docs/performance.md;
#: tests/unit/test_resolve_golden.py compares it with ranking every master)
_TOUCHED = """
    with j as (select c.master_id as m_now, p.master_id as m_then,
                      c.master_id is distinct from p.master_id
                          or c.content_hash is distinct from p.content_hash as changed,
                      c._logical_date is distinct from p._logical_date as redated
               from cur c full join prev p using (rec_id)),
         changed as (select m_now as m from j where changed and m_now is not null
                     union select m_then from j where changed and m_then is not null),
         redated as (select distinct m_now as m from j where redated and not changed
                     and m_now not in (select m from changed)),
         c as (select rec_id, master_id,
                      dense_rank() over (partition by master_id order by _logical_date desc) as dr
               from cur where master_id in (select m from redated)),
         p as (select rec_id, master_id,
                      dense_rank() over (partition by master_id order by _logical_date desc) as dr
               from prev where master_id in (select m from redated))
    select m from changed
    union select c.master_id from c join p using (rec_id) where c.dr <> p.dr
    order by 1
"""


def touched(current: pd.DataFrame, base: Base) -> list[str]:
    """The masters, current or previous, whose survivorship may differ from the previous
    run's: one that gained, lost or changed a record (its content hash), or one whose records'
    order by delivery date changed (the rank of each record's logical date in its master:
    `recent` compares dates within a master only, so a redelivery that moves all of a
    master's records to a new date changes nothing). Every other master has the same records
    with the same values in the same date order, so every rule decides as before."""
    con = duckdb.connect()
    try:
        con.register("cur", current[["rec_id", "master_id", "content_hash", "_logical_date"]])
        cols = f'rec_id, "{base.id_column}" as master_id, content_hash, _logical_date'
        if isinstance(base.records, Layered):  # composed once, not per use in the query
            con.execute(f"create temp table prev as select {cols} from {relation(base.records)}")
        elif isinstance(base.records, Path):
            con.execute(f"create view prev as select {cols} from {relation(base.records)}")
        else:
            con.register("prev_t", base.records)
            con.execute(f"create view prev as select {cols} from prev_t")
        rows = con.execute(_TOUCHED).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def choose_incremental(
    records: pd.DataFrame, table: SharedTable, attributes: list[str], trust: pd.DataFrame, base: Base
) -> Increment:
    """Survivorship for the masters `touched` since `base`; the others keep the base's
    choices (an `Increment` of the golden table and the provenance). Its cost grows with
    the touched masters, plus one DuckDB query over the two record tables (`touched`)."""
    again = touched(records, base)
    sub = records[isin(records["master_id"], again)] if again else records.iloc[:0]
    chosen, gold = survive(sub, table, attributes, trust, "master_id")
    return Increment(touched=again, golden=gold, chosen=chosen)


__all__ = [
    "DEFAULT_RULES",
    "PROVENANCE_COLUMNS",
    "Base",
    "Increment",
    "choose",
    "choose_incremental",
    "golden",
    "rules_hash",
    "survive",
    "touched",
    "trust_table",
]
