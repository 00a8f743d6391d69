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
row, is its row in core.<entity>_record) and the rule that decided: the first rule on
which the winner beat the runner-up (the best record holding another value), `only_value` when every record with a value agrees,
`tie_break` when every rule tied.

How it is computed (`survive`): in numpy, not SQL. The records become integer arrays once
(`_Records`: the master and the record id as codes in the order of the ids, minus the
logical date, the (table, source) a trust rank is looked up by); per attribute, the
records holding a value are sorted once by master, then each rule's key, then the record
id (`np.lexsort`): the winner is the first of its master, the runner-up the first holding
another value, and the rule that decided the first key on which the two differ. The
choices land in a (master, attribute) matrix of record positions, read in its order for
the provenance rows (no sort: already ordered by master and attribute) and taken from the
typed records for the golden table. At 400,000 persons (789,882 records, 3.86M choices)
this took 5-6.5 s of CPU where the DuckDB queries it replaced (one aggregate query per
attribute, a join back to the records for the golden table, then a pandas sort of the
choices) took 21-23 s, on the same loaded machine (docs/performance.md, 2026-12-03 evening);
tests/unit/test_resolve_golden_equivalence.py keeps those queries as the reference.

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
from etl.frames import isin
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


#: where a rule has no key (a record without a logical date), the worst key: it ranks last
_WORST = np.iinfo(np.int64).max


@dataclass(frozen=True)
class _Records:
    """What survivorship reads of the records besides the attributes, as integer arrays
    (one entry per record): `master`, the master's code in the order of the ids
    (`masters`, ascending, the golden table's rows); `order`, the record id's rank (the
    last tie-break, in the order DuckDB compares text: by code point); `recent`, minus the
    logical date in microseconds (`_WORST` when missing); `origin`, the code of the
    record's (_table, _source) among `origins` (a record missing either has the origin
    (None, None), which no trust rank names: 0)."""

    master: np.ndarray
    masters: pd.Index
    order: np.ndarray
    recent: np.ndarray
    origin: np.ndarray
    origins: list[tuple[object, object]]


def _records(records: pd.DataFrame) -> _Records:
    master, masters = pd.factorize(records["master_id"], sort=True)
    if (master < 0).any():  # a code of -1 would index the last master's row
        raise ValueError("survivorship: a record without a master_id (ids are assigned before survivorship)")
    order, _ = pd.factorize(records["rec_id"], sort=True)
    dates = records["_logical_date"]
    epoch = dates.to_numpy(dtype="datetime64[us]").astype("int64")
    recent = np.where(dates.isna().to_numpy(), _WORST, -epoch)
    table, tables = pd.factorize(records["_table"])
    source, sources = pd.factorize(records["_source"])
    pair = np.where((table < 0) | (source < 0), -1, table.astype("int64") * max(len(sources), 1) + source)
    origin, pairs = pd.factorize(pair)
    origins = [
        (None, None) if p < 0 else (tables[p // len(sources)], sources[p % len(sources)]) for p in pairs
    ]
    return _Records(master.astype("int64"), pd.Index(masters), order.astype("int64"), recent, origin, origins)


def _values(col: pd.Series, lengths: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(which records hold a value, the code of each one's value: equal values one code,
    the length of each one's text or None when not asked) of an attribute. Survivorship
    compares values as their text (as pandas writes them): text, dates, booleans and
    integers have one text per value, so their values are coded as they are; other types
    (floats: 0.0 and -0.0 are one value of two texts) through their text."""
    kind = col.dtype.kind if not isinstance(col.dtype, pd.StringDtype) else "U"
    text = col if kind in "UMbiu" and (kind == "U" or not lengths) else col.astype("string")
    has = text.notna().to_numpy()
    codes, _ = pd.factorize(text[has])
    if not lengths:
        return has, codes, None
    held = pa.array(text[has].astype("string").array)
    length = pc.utf8_length(held.combine_chunks() if isinstance(held, pa.ChunkedArray) else held)
    return has, codes, np.asarray(length, dtype="int64")


def _keys(
    recs: _Records, col: pd.Series, attr: str, chain: list[str], trust: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(the records holding a value, their values' codes, their key per rule of `chain`: a
    key to minimise, the best record has the smallest)."""
    has, codes, lengths = _values(col, "complete" in chain)
    keys = []
    for rule in chain:
        if rule == "trust":
            rows = trust[trust["attribute"] == attr]
            ranks = {
                (t, s): r for t, s, r in zip(rows["_table"], rows["_source"], rows["trust"], strict=True)
            }
            by = [ranks.get(o) for o in recs.origins]
            by_origin = np.array([0 if r is None or pd.isna(r) else -int(r) for r in by] + [0], dtype="int64")
            keys.append(by_origin[recs.origin[has]])  # (None, None): no rank, 0
        elif rule == "recent":
            keys.append(recs.recent[has])
        elif rule == "complete":
            keys.append(-lengths)  # type: ignore[operator]
        else:  # frequent: how many of the master's records hold the value
            pair, _ = pd.factorize(recs.master[has] * (int(codes.max(initial=0)) + 1) + codes)
            keys.append(-np.bincount(pair)[pair])
    return has, codes, keys


def _winners(
    recs: _Records, has: np.ndarray, codes: np.ndarray, keys: list[np.ndarray], chain: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(each master holding a value (its code), the position of its winning record, the rule
    that decided: an index of `chain`, len(chain) for a tie break, -1 for an only value).
    One sort of the records by master then key (then record id): the winner is the first
    of its master, the runner-up the first holding another value."""
    where = np.flatnonzero(has)
    master = recs.master[has]
    ranked = np.lexsort((recs.order[has], *reversed(keys), master))
    m, v = master[ranked], codes[ranked]
    first = np.flatnonzero(np.r_[True, m[1:] != m[:-1]]) if len(m) else np.zeros(0, dtype=np.intp)
    group = np.cumsum(np.r_[True, m[1:] != m[:-1]]) - 1 if len(m) else first
    other = np.flatnonzero(v != v[first][group])
    runner = np.full(len(first), -1, dtype=np.intp)
    starts = np.r_[True, group[other][1:] != group[other][:-1]] if len(other) else np.zeros(0, dtype=bool)
    runner[group[other][starts]] = other[starts]
    rule = np.full(len(first), len(chain), dtype=np.int64)
    won, ran = ranked[first], ranked[np.maximum(runner, 0)]
    for i in reversed(range(len(chain))):  # the first rule on which the two differ
        rule[keys[i][won] != keys[i][ran]] = i
    rule[runner < 0] = -1
    return m[first], where[won], rule


def _choices(
    records: pd.DataFrame, recs: _Records, table: SharedTable, attributes: list[str], trust: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """(per master and attribute (in the order of the attributes' names), the position of the
    winning record (-1: no value) and the rule that decided (its name's index in `_RULES`))."""
    won = np.full((len(recs.masters), len(attributes)), -1, dtype=np.intp)
    rule = np.zeros(won.shape, dtype=np.int64)
    for j, attr in enumerate(sorted(attributes)):
        chain = list(table.column(attr).survivorship or DEFAULT_RULES)
        has, codes, keys = _keys(recs, records[attr], attr, chain, trust)
        masters, at, decided = _winners(recs, has, codes, keys, chain)
        names = np.array([_RULES.index(r) for r in [*chain, "tie_break", "only_value"]], dtype=np.int64)
        won[masters, j], rule[masters, j] = at, names[decided]
    return won, rule


#: the rules a provenance row names
_RULES = ["trust", "recent", "complete", "frequent", "tie_break", "only_value"]
#: the columns of `choose`'s frame, in order
CHOSEN_COLUMNS = ["master_id", "attribute", *LINEAGE, "rule"]


def _text(values: pd.Series | pd.Index) -> pa.Array:
    """The values as one Arrow array (pandas' text is pyarrow-backed: no copy)."""
    got = pa.array(values.array)
    return got.combine_chunks() if isinstance(got, pa.ChunkedArray) else got


def _chosen_frame(
    records: pd.DataFrame, recs: _Records, attributes: list[str], won: np.ndarray, rule: np.ndarray
) -> pd.DataFrame:
    """The choices as `choose` gives them: ordered by master and attribute (the order of
    `won`'s cells), typed as DuckDB's text comes to pandas."""
    if not attributes:
        return pd.DataFrame(columns=CHOSEN_COLUMNS)
    master, attr = np.nonzero(won >= 0)
    at = won[master, attr]
    cols = {
        "master_id": _text(recs.masters).cast(pa.string()).take(master),
        "attribute": pa.array(sorted(attributes), pa.string()).take(attr),
    }
    for c in LINEAGE:
        cols[c] = _text(records[c]).take(at)
    cols["rule"] = pa.array(_RULES, pa.string()).take(rule[master, attr])
    return pa.table(cols).to_pandas()


def _golden_frame(
    records: pd.DataFrame, recs: _Records, attributes: list[str], won: np.ndarray, id_column: str
) -> pd.DataFrame:
    """The golden table: one row per master (in the order of the ids), each attribute the
    value of its chosen record, as the records type it (null where none holds one), the
    master's records and distinct sources counted."""
    out = {id_column: pa.table({"m": _text(recs.masters).cast(pa.string())}).to_pandas()["m"]}
    for j, attr in enumerate(sorted(attributes)):
        out[attr] = pd.Series(pd.api.extensions.take(records[attr].array, won[:, j], allow_fill=True))
    source, _ = pd.factorize(records["_source"])
    counted = pd.unique(recs.master[source >= 0] * (int(source.max(initial=0)) + 1) + source[source >= 0])
    n = len(recs.masters)
    out["source_records"] = pd.Series(np.bincount(recs.master, minlength=n).astype("int64"))
    out["sources"] = pd.Series(
        np.bincount(counted // (int(source.max(initial=0)) + 1), minlength=n).astype("int64")
    )
    return pd.DataFrame(out)[[id_column, *attributes, "source_records", "sources"]]


def choose(
    records: pd.DataFrame, table: SharedTable, attributes: list[str], trust: pd.DataFrame
) -> pd.DataFrame:
    """One row per (master_id, attribute) that has a value: the winning record and the rule."""
    return survive(records, table, attributes, trust, "master_id")[0]


def golden(
    records: pd.DataFrame, chosen: pd.DataFrame, attributes: list[str], id_column: str
) -> pd.DataFrame:
    """The golden table: one row per master, each attribute from its chosen record (typed),
    from a `choose` frame."""
    recs = _records(records)
    won = np.full((len(recs.masters), len(attributes)), -1, dtype=np.intp)
    pos = pd.Series(np.arange(len(records)), index=pd.Index(records["rec_id"]))
    master = recs.masters.get_indexer(pd.Index(chosen["master_id"]))
    unknown = (master < 0) | ~chosen["rec_id"].isin(pos.index).to_numpy()
    if unknown.any():  # -1 would write into the last master's row
        raise ValueError(
            f"golden: {int(unknown.sum())} choice(s) name a master or record not among the records"
        )
    for j, attr in enumerate(sorted(attributes)):
        mine = (chosen["attribute"] == attr).to_numpy()
        won[master[mine], j] = pos.loc[chosen.loc[mine, "rec_id"]].to_numpy()
    return _golden_frame(records, recs, attributes, won, id_column)


def survive(
    records: pd.DataFrame, table: SharedTable, attributes: list[str], trust: pd.DataFrame, id_column: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(`choose`, `golden`) of the records: the choices made once, in numpy (a sort of the
    records per attribute), the golden values taken from the chosen records."""
    recs = _records(records)
    won, rule = _choices(records, recs, table, attributes, trust)
    return _chosen_frame(records, recs, attributes, won, rule), _golden_frame(
        records, recs, attributes, won, id_column
    )


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
