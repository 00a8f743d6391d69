"""The linkage records of an entity: every staged row that carries one, in one frame.

One row per source record: `rec_id` (`<table>|<source>|<record key>`), the lineage of
the staged row it came from, the entity's attributes named as in its shared table, and
the features of the resolve config. A record redelivered in a later batch (same table,
source and record key) is the same record: its attributes are its latest delivery's, and
its delivery lineage (`_batch_id`, `_row_number`, `_logical_date`) names the earliest
delivery that carried that content (the first after the last delivery with other content:
deliveries A, A, A name the first; A, B, A the third). A department that redelivers its
whole register unchanged (a snapshot) therefore changes no record's lineage: the record
table stays as it was, and survivorship's `recent` rule compares when each value was
delivered as it is, not when it was last sent again. `_first_delivery` and
`_last_delivery` are the span of all its deliveries (core.person_source); like the lineage,
linkage never reads them (etl.resolve.config.DELIVERY_COLUMNS).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from etl.contracts import DUCKDB_TYPES, Contracts
from etl.errors import StageOrderError
from etl.frames import duck_df
from etl.resolve.config import DELIVERY_COLUMNS, ResolveConfig
from etl.resolve.layers import Layered, relation


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return {r[0] for r in rows}


def record_key_sql(cols: set[str]) -> str:
    """The source's own key of a staged row: `record_key` where the staging table has it,
    else the delivered position (batch and row), which identifies the row but not a redelivery."""
    position = "_batch_id || ':' || cast(_row_number as varchar)"
    return f"coalesce(record_key, {position})" if "record_key" in cols else position


def records_sql(con: duckdb.DuckDBPyConnection, cfg: ResolveConfig, contracts: Contracts) -> str:
    """A SELECT of the entity's records from the staging views (attributes, no features)."""
    entity = contracts.tables[cfg.name]
    parts = []
    for inp in cfg.inputs:
        cols = _columns(con, "staging", inp.table)
        if not cols:
            continue
        select = [
            f"'{inp.table}' || '|' || _source || '|' || {record_key_sql(cols)} as rec_id",
            f"'{inp.table}' as _table",
            "_source",
            "_batch_id",
            "_row_number",
            "_logical_date",
            f"{record_key_sql(cols)} as record_key",
        ]
        for attr in cfg.attributes:
            typ = DUCKDB_TYPES[entity.column(attr).type]
            src = inp.columns.get(attr)
            select.append(f"cast({src if src else 'null'} as {typ}) as {attr}")
        where = ""
        if inp.require_any:
            where = " where " + " or ".join(f"{inp.columns[a]} is not null" for a in inp.require_any)
        parts.append(f"select {', '.join(select)} from staging.{inp.table}{where}")
    if not parts:
        raise StageOrderError(
            f"no staged table holds {cfg.name} records yet: load the sources first (govbase run)"
        )
    return lineage_sql(" union all by name ".join(parts), cfg.attributes)


def lineage_sql(deliveries: str, attributes: list[str]) -> str:
    """Each record's current version among `deliveries` (a SELECT of staged rows with
    rec_id, the delivery lineage and the attributes): its latest delivery's row, with the
    lineage of the first delivery of its current content, and `_first_delivery`,
    `_last_delivery`. Each delivery of a record in order starts a run of one content when
    the one before it held other content (DuckDB's hash of the attributes: compared only
    between deliveries of one record, within one query); the record is the start of its
    last run. One window pass, newest delivery first: a row is that start when the
    delivery before it held other content (`lead`) and every delivery from the newest down
    to it holds one content (the running min and max of the hash agree), one row per
    record; the span of its deliveries from the same window (one sort of the deliveries,
    where a second window sorted the starts again; docs/performance.md)."""
    content = ", ".join(f'"{a}"' for a in attributes) or "rec_id"
    newest = "partition by rec_id order by _logical_date desc, _batch_id desc, _row_number desc"
    return f"""select * exclude (_h) from (
            select *,
                   min(_logical_date) over (w rows between unbounded preceding and unbounded following)
                       as _first_delivery,
                   max(_logical_date) over (w rows between unbounded preceding and unbounded following)
                       as _last_delivery
            from (select *, hash({content}) as _h from ({deliveries}))
            window w as ({newest})
            qualify lead(_h) over w is distinct from _h
                and min(_h) over (w rows between unbounded preceding and current row)
                    = max(_h) over (w rows between unbounded preceding and current row)
        )"""


def load_records(con: duckdb.DuckDBPyConnection, cfg: ResolveConfig, contracts: Contracts) -> pd.DataFrame:
    """The entity's records with their features, ordered by rec_id (deterministic input)."""
    feats = "".join(f", {sql} as {name}" for name, sql in cfg.features.items())
    return duck_df(con, f"select *{feats} from ({records_sql(con, cfg, contracts)}) order by rec_id")


def _hashed(records: pd.DataFrame) -> tuple[pa.Table, str]:
    """The records as an Arrow table (the columns hashed and `_pos`, their position) and
    the SELECT list item of their content hash (`content_hash`)."""
    cols = sorted(c for c in records.columns if c not in DELIVERY_COLUMNS and c != "content_hash")
    table = pa.Table.from_pandas(records[cols], preserve_index=False)
    table = table.append_column("_pos", pa.array(np.arange(len(records), dtype=np.int64)))
    text = ", ".join(f'coalesce(cast("{c}" as varchar), chr(0))' for c in cols)
    return table, f"left(md5(concat_ws(chr(31), {text})), 16) as content_hash"


def content_hash(records: pd.DataFrame) -> pd.Series:
    """Per record, a digest of what linkage reads of it (every column but its delivery
    lineage): a record whose hash is unchanged since the last run is not scored again.
    16 hex digits of the MD5 of the columns' text (sorted by name, null as NUL, separated
    by the unit separator), computed by DuckDB on every core over the records as Arrow:
    pandas' hashing of the text took 7 s of a full run at 400,000 persons."""
    if records.empty:
        return pd.Series([], index=records.index, dtype="string")
    table, digest = _hashed(records)
    con = duckdb.connect()
    try:
        con.register("recs", table)
        got = duck_df(con, f"select {digest} from recs order by _pos")
    finally:
        con.close()
    return pd.Series(got.iloc[:, 0].to_numpy(), index=records.index, dtype="string")


@dataclass(frozen=True)
class Changes:
    """What changed since the previous run, per record of this run (aligned with the
    records) and for the previous run's records no longer staged."""

    content_hash: pd.Series  # the record's content hash (as `content_hash` gives it)
    delta: np.ndarray  # new (not in the previous record table) or changed (its content hash differs)
    master: pd.Series  # the master the previous run gave the record (null: new)
    label: pd.Series  # the smallest rec_id of that master in the previous run (null: new)
    removed: pd.DataFrame  # rec_id, master_id: previous records no longer staged


def changes(records: pd.DataFrame, previous: Path | str | Layered, id_col: str) -> Changes:
    """Hash `records` (as `content_hash`) and compare them with the previous run's record
    table (its Parquet file: rec_id, `id_col`, content_hash), in one DuckDB pass: the
    previous table is read from its file, never into pandas, and only the columns the
    comparison needs."""
    table, digest = _hashed(records)
    prev = f'select rec_id, "{id_col}" as master_id, content_hash from {relation(previous)}'
    con = duckdb.connect()
    try:
        con.register("recs", table)
        con.execute(f"create temp table cur as select rec_id, _pos, {digest} from recs")
        con.execute(f"create temp table prev as {prev}")
        # each previous master's label (its smallest rec_id) by a group and a join: a
        # window over every previous record sorted them all
        got = duck_df(
            con,
            "select c.content_hash as hash, p.master_id, l.label, "
            "p.content_hash is distinct from c.content_hash as delta "
            "from cur c left join prev p using (rec_id) "
            "left join (select master_id, min(rec_id) as label from prev group by master_id) l "
            "on l.master_id = p.master_id order by c._pos",
        )
        removed = duck_df(
            con, "select rec_id, master_id from prev anti join cur using (rec_id) order by rec_id"
        )
    finally:
        con.close()
    return Changes(
        content_hash=pd.Series(got["hash"].to_numpy(), index=records.index, dtype="string"),
        delta=got["delta"].to_numpy(dtype=bool),
        master=got["master_id"].set_axis(records.index),
        label=got["label"].set_axis(records.index),
        removed=removed,
    )


def add_features(frame: pd.DataFrame, cfg: ResolveConfig) -> pd.DataFrame:
    """Compute the config's features over an in-memory frame of attributes (tests, onboarding)."""
    con = duckdb.connect()
    try:
        con.register("recs", frame)
        feats = "".join(f", {sql} as {name}" for name, sql in cfg.features.items())
        return con.execute(f"select *{feats} from recs order by rec_id").df()
    finally:
        con.close()
