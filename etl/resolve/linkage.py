"""Link an entity's records into clusters: exact on a valid identifier, Splink otherwise.

The model is Splink's (DuckDB backend), declared in schemas/resolve/<entity>.yml and
trained as etl.resolve.model says. Pairs: the blocked pairs with at least one record
lacking a valid identifier (etl.resolve.config.SCORED), scored at or above the review
threshold. A full run scores every such pair; an incremental run (a `Previous` linkage)
scores only the pairs with a new or changed record (its content hash differs from the
previous run's: etl.resolve.records.changes compares them in DuckDB with the previous
record table's file) and keeps the previous run's pairs between unchanged records: with
the same frozen model those pairs score the same, so incremental and full give the same
pairs, hence the same clusters.

Edges: every pair of records sharing a valid identifier, and every scored pair at or above
the match threshold unless both records carry valid identifiers (identifiers decide those).
Clerical decisions override the model: an accepted pair is an edge, a rejected one never is
(a decision naming a record no longer staged decides nothing). Splink's connected
components cluster the edges; a cluster that would hold two different valid identifiers is
split (see `_split_conflicts`) and recorded as a finding. A full run clusters every record.
An incremental run clusters again only the records `_touched` finds: the new and changed
ones and the previous masters the delta reaches (a lost record, a new edge, a clerical
decision, or an edge to another master: a cluster the previous run split); every other
record keeps its previous master as its cluster (labelled, as any cluster, by its smallest
rec_id), which is what a full run gives it: such a master is a component of the run's
edges by itself, with the same records and edges as before (`_touched` says why).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from etl.frames import isin
from etl.normalize.identifiers import is_canonical_credit_code, is_canonical_resident_id
from etl.resolve.config import ResolveConfig
from etl.resolve.layers import Layered
from etl.resolve.model import PAIR_COLUMNS, Model, score, train
from etl.resolve.records import Changes, changes, content_hash

log = logging.getLogger(__name__)

_CHECKS = {"resident_id": is_canonical_resident_id, "credit_code": is_canonical_credit_code}


@dataclass
class Linkage:
    """What linking one entity's records produced."""

    clusters: pd.DataFrame  # rec_id, cluster (the smallest rec_id of the cluster)
    pairs: pd.DataFrame  # rec_id_l, rec_id_r, match_probability, match_weight, levels, run_id (scored in)
    model: Model  # the Splink model the pairs were scored with
    hashes: pd.Series  # rec_id -> content hash of the record as linked
    findings: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    exact_id: pd.Series | None = None  # rec_id -> the record's valid identifier (null: none)
    #: aligned with `clusters`: the records clustered in this run (all of them in a full run;
    #: in an incremental run the touched ones, every other kept its previous master)
    reclustered: np.ndarray | None = None
    #: aligned with `clusters`, in an incremental run: the master the previous run gave each
    #: record (null: new); None in a full run
    previous_master: pd.Series | None = None


def exact_ids(records: pd.DataFrame, cfg: ResolveConfig) -> pd.Series:
    """The exact key where it is a valid identifier, else null."""
    values = records[cfg.exact_key].astype("string")
    ok = _CHECKS[cfg.exact_key_check](values)
    return values.where(pd.Series(ok, index=values.index))


def _edges(
    records: pd.DataFrame,
    pairs: pd.DataFrame,
    cfg: ResolveConfig,
    decisions: pd.DataFrame | None,
) -> pd.DataFrame:
    ids = records.set_index("rec_id")["exact_id"]
    keyed = records[records["exact_id"].notna()]
    first = keyed.groupby("exact_id")["rec_id"].transform("min")
    exact = pd.DataFrame({"rec_id_l": first, "rec_id_r": keyed["rec_id"], "match_probability": 1.0})
    exact = exact[exact["rec_id_l"] != exact["rec_id_r"]]
    both = (
        ids.reindex(pairs["rec_id_l"]).notna().to_numpy() & ids.reindex(pairs["rec_id_r"]).notna().to_numpy()
    )
    model = pairs[(pairs["match_probability"] >= cfg.thresholds.match) & ~both]
    model = model[["rec_id_l", "rec_id_r", "match_probability"]]
    edges = pd.concat([exact, model], ignore_index=True)
    if decisions is not None and len(decisions):
        key = edges["rec_id_l"] + "\x1f" + edges["rec_id_r"]
        rejected = decisions[decisions["decision"] == "reject"]
        edges = edges[~isin(key, rejected["rec_id_l"] + "\x1f" + rejected["rec_id_r"])]
        accepted = decisions[decisions["decision"] == "accept"][["rec_id_l", "rec_id_r"]]
        edges = pd.concat([edges, accepted.assign(match_probability=1.0)], ignore_index=True)
    return edges.drop_duplicates(["rec_id_l", "rec_id_r"]).reset_index(drop=True)


def _components(records: pd.DataFrame, edges: pd.DataFrame) -> pd.DataFrame:
    from splink import DuckDBAPI
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    db = DuckDBAPI()
    nodes = records[["rec_id"]]
    if edges.empty:
        return pd.DataFrame({"rec_id": nodes["rec_id"], "cluster": nodes["rec_id"]})
    got = cluster_pairwise_predictions_at_threshold(
        nodes, edges[["rec_id_l", "rec_id_r"]], db_api=db, node_id_column_name="rec_id"
    ).as_pandas_dataframe()
    got = got.rename(columns={"cluster_id": "cluster"})[["rec_id", "cluster"]]
    # the cluster label is the smallest member, whatever label the library chose
    got["cluster"] = got.groupby("cluster")["rec_id"].transform("min")
    return got


def _split_conflicts(
    comps: pd.DataFrame, edges: pd.DataFrame, records: pd.DataFrame, decisions: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Split every cluster that holds two different valid identifiers or a rejected pair.

    Different valid identifiers are different entities unless a person says otherwise (an
    accepted pair), and a rejected pair is never in one cluster: the records of such a
    cluster are regrouped by its edges taken in order (accepted pairs, then by match
    probability, then by record ids), skipping an edge that would join the two records of a
    rejected pair or, unless accepted, two groups whose identifiers differ, neither holding
    all of the other's: an accepted pair of two identifiers makes one group of both, which
    every further record of either identifier joins. Each cluster with two identifiers is
    a finding; a split by a decision shows in the id map.
    """
    ids = records.set_index("rec_id")["exact_id"]
    decided = (
        decisions if decisions is not None else pd.DataFrame(columns=["rec_id_l", "rec_id_r", "decision"])
    )
    rejected = decided[decided["decision"] == "reject"]
    accepted = set(
        zip(*(decided.loc[decided["decision"] == "accept", c] for c in ("rec_id_l", "rec_id_r")), strict=True)
    )
    per = comps.assign(exact_id=ids.reindex(comps["rec_id"]).to_numpy())
    n_ids = per.dropna(subset=["exact_id"]).groupby("cluster")["exact_id"].nunique()
    cluster_of = comps.set_index("rec_id")["cluster"]
    apart = [
        (a, b)
        for a, b in zip(rejected["rec_id_l"], rejected["rec_id_r"], strict=True)
        if a in cluster_of and b in cluster_of
    ]
    bad = set(n_ids[n_ids > 1].index) | {cluster_of[a] for a, b in apart if cluster_of[a] == cluster_of[b]}
    findings: list[dict[str, Any]] = []
    if not bad:
        return comps, findings
    e = edges[isin(edges["rec_id_l"].map(cluster_of), bad)].copy()
    e["accepted"] = [(a, b) in accepted for a, b in zip(e["rec_id_l"], e["rec_id_r"], strict=True)]
    e = e.sort_values(
        ["accepted", "match_probability", "rec_id_l", "rec_id_r"], ascending=[False, False, True, True]
    )
    parent: dict[str, str] = {r: r for r in comps.loc[isin(comps["cluster"], bad), "rec_id"]}
    label: dict[str, frozenset[str]] = {
        r: frozenset() if pd.isna(ids[r]) else frozenset([str(ids[r])]) for r in parent
    }

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def forbidden(ra: str, rb: str) -> bool:
        return any({root(x), root(y)} == {ra, rb} for x, y in apart if x in parent and y in parent)

    for a, b, ok in zip(e["rec_id_l"], e["rec_id_r"], e["accepted"], strict=True):
        ra, rb = root(a), root(b)
        if ra == rb or forbidden(ra, rb):
            continue
        la, lb = label[ra], label[rb]
        if not ok and la and lb and not (la <= lb or lb <= la):
            continue  # it would put together identifiers no accepted pair put together
        keep, drop = (ra, rb) if ra < rb else (rb, ra)
        parent[drop] = keep
        label[keep] = label[keep] | label[drop]
    out = comps.copy()
    sub = isin(out["rec_id"], parent.keys())
    out.loc[sub, "cluster"] = out.loc[sub, "rec_id"].map(root)
    out.loc[sub, "cluster"] = out[sub].groupby("cluster")["rec_id"].transform("min")
    for c in sorted(set(n_ids[n_ids > 1].index) & bad):
        members = sorted(comps.loc[comps["cluster"] == c, "rec_id"])
        findings.append(
            {"kind": "two_valid_ids_in_cluster", "rec_ids": members, "detail": f"{int(n_ids[c])} identifiers"}
        )
    return out, findings


@dataclass(frozen=True)
class Previous:
    """What the previous run linked: its pairs and its record table (the Parquet file of
    core.<entity>_record: rec_id, `id_col` (the master), content_hash), read by DuckDB."""

    pairs: pd.DataFrame  # as Linkage.pairs
    records: Path | str | Layered  # the previous record table's file (or base file and layers)
    id_col: str  # its master id column (<entity>_id)


def _pairs(
    records: pd.DataFrame,
    cfg: ResolveConfig,
    model: Model,
    previous: Previous | None,
    changed: Changes | None,
    run_id: str,
) -> tuple[pd.DataFrame, int]:
    """The run's scored pairs and how many records were (re)scored."""
    if previous is None or changed is None:
        return score(records, cfg, model).assign(run_id=run_id), len(records)
    delta = pd.Series(changed.delta, index=records.index)
    gone = pd.concat([records.loc[delta, "rec_id"], changed.removed["rec_id"]], ignore_index=True)
    old = previous.pairs
    kept = old[~isin(old["rec_id_l"], gone) & ~isin(old["rec_id_r"], gone)]
    new = score(records, cfg, model, delta).assign(run_id=run_id)
    parts = [p for p in (kept, new) if len(p)]
    pairs = pd.concat(parts, ignore_index=True) if parts else new
    return pairs.sort_values(["rec_id_l", "rec_id_r"], ignore_index=True), int(delta.sum())


def _touched(
    records: pd.DataFrame,
    pairs: pd.DataFrame,
    decisions: pd.DataFrame | None,
    changed: Changes,
    cfg: ResolveConfig,
) -> np.ndarray:
    """The records whose clusters this run must compute again (a mask over `records`): the
    new and changed ones and every record of a previous master that

    - lost a record (removed, or changed: its edges may be gone), or holds a new or changed
      record's valid identifier or the other end of its scored pair at the match threshold
      (the delta's new edges);
    - holds a record of a clerical decision (a decision may be new or changed);
    - is joined by an edge to another master (an identifier or a pair at the match
      threshold between two of the previous run's masters: a cluster the previous run split,
      whose parts are computed and split again together, as a full run does).

    Every edge of the run's graph that leaves the other masters stays inside them: each of
    them is a component of the graph by itself (its records and edges unchanged), so its
    records keep their cluster, and only the touched records are clustered again."""
    rec = pa.table(
        {
            "rec_id": _text(records["rec_id"]),
            "exact_id": _text(records["exact_id"]),
            "master": _text(changed.master),
            "delta": pa.array(changed.delta),
        }
    )
    linked = pairs[pairs["match_probability"] >= cfg.thresholds.match]
    edge = pa.table({"l": _text(linked["rec_id_l"]), "r": _text(linked["rec_id_r"])})
    decided = decisions if decisions is not None else pd.DataFrame(columns=["rec_id_l", "rec_id_r"])
    dec = pa.table({"l": _text(decided["rec_id_l"]), "r": _text(decided["rec_id_r"])})
    gone = pa.table({"master": _text(changed.removed["master_id"])})
    con = duckdb.connect()
    try:
        for name, table in (("rec", rec), ("edge", edge), ("dec", dec), ("gone", gone)):
            con.register(name, table)
        rows = con.execute(
            """
            with ids as (select exact_id from rec where exact_id is not null group by exact_id
                         having count(distinct master) > 1 or bool_or(delta)),
                 ends as (select a.master as ma, b.master as mb, a.delta or b.delta as new
                          from edge e join rec a on a.rec_id = e.l join rec b on b.rec_id = e.r),
                 seeds as (select master from rec where delta
                           union select master from gone
                           union select master from rec where exact_id in (select exact_id from ids)
                           union select ma from ends where new or ma is distinct from mb
                           union select mb from ends where new or ma is distinct from mb
                           union select master from rec where rec_id in (select l from dec union select r from dec))
            select master from seeds where master is not null
            """
        ).fetchall()
    finally:
        con.close()
    seeds = [r[0] for r in rows]
    return changed.delta | isin(changed.master, seeds)


def _text(values: pd.Series) -> pa.Array:
    return pa.array(values.astype("string").array).cast(pa.string())


def _cluster(
    records: pd.DataFrame, pairs: pd.DataFrame, cfg: ResolveConfig, decisions: pd.DataFrame | None
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Components of the records' edges, clusters with conflicts split (rec_id, cluster)."""
    edges = _edges(records, pairs, cfg, decisions)
    comps = _components(records, edges)
    return _split_conflicts(comps, edges, records, decisions)


def link(
    records: pd.DataFrame,
    cfg: ResolveConfig,
    decisions: pd.DataFrame | None = None,
    *,
    model: Model | None = None,
    previous: Previous | None = None,
    run_id: str = "",
) -> Linkage:
    """Cluster `records` (one row per rec_id, with features). `decisions`: clerical
    decisions (rec_id_l < rec_id_r, decision accept|reject) that win over the model.
    `model`: score with this model (default: train one on `records`). `previous`: link
    incrementally against the previous run's pairs and masters (needs the model that scored
    the pairs)."""
    records = records.assign(exact_id=exact_ids(records, cfg))
    for other in cfg.context:  # no context given: no record is tied to another entity's master
        if f"{other}_id" not in records:
            records[f"{other}_id"] = pd.Series(pd.NA, index=records.index, dtype="string")
    # what changed since the previous run (its record table), the content hashes with it
    changed = changes(records, previous.records, previous.id_col) if previous is not None else None
    records["content_hash"] = changed.content_hash if changed is not None else content_hash(records)
    if decisions is not None and len(decisions):  # a decision on a record no longer staged decides nothing
        present = decisions["rec_id_l"], decisions["rec_id_r"]
        decisions = decisions[isin(present[0], records["rec_id"]) & isin(present[1], records["rec_id"])]
    if model is None:
        model, previous, changed = train(records, cfg, run_id), None, None
    pairs, rescored = _pairs(records, cfg, model, previous, changed, run_id)
    if changed is None:
        comps, findings = _cluster(records, pairs, cfg, decisions)
        comps = comps.sort_values("rec_id", ignore_index=True)
        again = np.ones(len(comps), dtype=bool)
        was = None
    else:  # only the touched records clustered again, every other keeps its previous master
        touched = _touched(records, pairs, decisions, changed, cfg)
        sub = records[touched]
        inside = isin(pairs["rec_id_l"], sub["rec_id"]) & isin(pairs["rec_id_r"], sub["rec_id"])
        part, findings = _cluster(sub, pairs[inside], cfg, decisions)
        cluster = changed.label.copy()
        cluster[touched] = part.set_index("rec_id")["cluster"].reindex(sub["rec_id"]).to_numpy()
        comps = pd.DataFrame({"rec_id": records["rec_id"], "cluster": cluster})
        prior = changed.master
        if not comps["rec_id"].is_monotonic_increasing:
            order = np.argsort(comps["rec_id"].to_numpy(dtype=object), kind="stable")
            comps, prior, touched = comps.iloc[order], prior.iloc[order], touched[order]
        comps = comps.reset_index(drop=True)
        again, was = touched, prior.reset_index(drop=True)
        log.info("%s: %d of %d records clustered again", cfg.name, int(touched.sum()), len(records))
    stats = {
        "records": len(records),
        "with_valid_id": int(records["exact_id"].notna().sum()),
        "records_scored": rescored,
        "pairs_scored": len(pairs),
        "pairs_linked": int((pairs["match_probability"] >= cfg.thresholds.match).sum()),
        "clusters": int(comps["cluster"].nunique()),
        "records_clustered": int(again.sum()),
    }
    return Linkage(
        clusters=comps,
        pairs=pairs[[*PAIR_COLUMNS, "run_id"]],
        model=model,
        hashes=records.set_index("rec_id")["content_hash"],
        findings=findings,
        stats=stats,
        exact_id=records.set_index("rec_id")["exact_id"],
        reclustered=again,
        previous_master=was,
    )


__all__ = ["Linkage", "Previous", "exact_ids", "link"]
