"""Clerical review: the pairs Splink scored between the review and the match threshold.

`core.review_queue` lists them after each consolidate run (read, like the records shown,
from the published catalog: etl.published); a reviewer reads a pair's
masked values side by side with the comparison levels and the match weight, and accepts
(same entity) or rejects (different entities) it. Decisions persist in
`meta.review_decision` and win over the model on every later run (etl.resolve.linkage).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from etl import meta
from etl.config import Settings
from etl.contracts import get_contracts
from etl.errors import GovbaseError
from etl.lock import writer_lock
from etl.publish.masking import mask
from etl.published import read_catalog
from etl.resolve import store
from etl.resolve.config import load_resolve_configs
from etl.resolve.records import records_sql

DECISIONS = ("accept", "reject")


class ReviewError(GovbaseError):
    """A review command names a pair that is not in the queue, or a bad decision."""


@dataclass(frozen=True)
class Pair:
    entity: str
    pair_id: str
    rec_id_l: str
    rec_id_r: str
    match_probability: float
    match_weight: float
    levels: dict[str, Any]
    values: pd.DataFrame  # attribute x (left, right), masked by the shared contract


def queue(settings: Settings, entity: str | None = None) -> pd.DataFrame:
    """The open review queue (no values: record ids, scores)."""
    with read_catalog(settings) as con:
        q = store.read_published(con, "review_queue")
    if q is None or q.empty:
        return pd.DataFrame(
            columns=["entity", "pair_id", "rec_id_l", "rec_id_r", "match_probability", "match_weight"]
        )
    if entity:
        q = q[q["entity"] == entity]
    return q[["entity", "pair_id", "rec_id_l", "rec_id_r", "match_probability", "match_weight"]].reset_index(
        drop=True
    )


def _row(settings: Settings, pair: str) -> pd.Series:
    with read_catalog(settings) as con:
        q = store.read_published(con, "review_queue")
    hit = q[q["pair_id"] == pair] if q is not None else pd.DataFrame()
    if hit.empty:
        raise ReviewError(f"pair {pair!r} is not in the review queue (govbase review list)")
    return hit.iloc[0]


def show(settings: Settings, pair: str) -> Pair:
    """One queued pair: masked values side by side, comparison levels, match weight."""
    row = _row(settings, pair)
    contracts = get_contracts(settings)
    cfg = load_resolve_configs(settings.schemas_dir, contracts.tables)[row["entity"]]
    table = contracts.tables[cfg.name]
    with read_catalog(settings) as con:
        recs = con.execute(
            f"select * from ({records_sql(con, cfg, contracts)}) where rec_id in (?, ?)",
            [row["rec_id_l"], row["rec_id_r"]],
        ).df()
    recs = recs.set_index("rec_id").reindex([row["rec_id_l"], row["rec_id_r"]])
    values = pd.DataFrame(index=cfg.attributes, columns=["left", "right"], dtype="string")
    for attr in cfg.attributes:
        shown = mask(recs[attr].astype("string"), table.column(attr).mask)
        values.loc[attr] = shown.to_numpy()
    return Pair(
        entity=str(row["entity"]),
        pair_id=pair,
        rec_id_l=str(row["rec_id_l"]),
        rec_id_r=str(row["rec_id_r"]),
        match_probability=float(row["match_probability"]),
        match_weight=float(row["match_weight"]),
        levels=json.loads(row["levels"]) if isinstance(row["levels"], str) else {},
        values=values,
    )


def decide(settings: Settings, pair: str, decision: str, by: str | None = None) -> None:
    """Record a decision on a queued pair; the next consolidate run applies it."""
    if decision not in DECISIONS:
        raise ReviewError(f"decision {decision!r}: use accept or reject")
    row = _row(settings, pair)
    with writer_lock(settings, f"review-{pair}"), meta.connect(settings) as con:
        store.ensure(con)
        con.execute(
            "insert into meta.review_decision values (?, ?, ?, ?, ?, ?)",
            [row["entity"], row["rec_id_l"], row["rec_id_r"], decision, by, meta.now()],
        )


def decide_records(settings: Settings, entity: str, rec_id_l: str, rec_id_r: str, decision: str) -> None:
    """Record a decision on any pair of records (ordered), queued or not."""
    if decision not in DECISIONS:
        raise ReviewError(f"decision {decision!r}: use accept or reject")
    left, right = sorted((rec_id_l, rec_id_r))
    with writer_lock(settings, "review"), meta.connect(settings) as con:
        store.ensure(con)
        con.execute(
            "insert into meta.review_decision values (?, ?, ?, ?, ?, ?)",
            [entity, left, right, decision, None, meta.now()],
        )


__all__ = ["DECISIONS", "Pair", "ReviewError", "decide", "decide_records", "queue", "show"]
