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
(a decision naming a record no longer staged decides nothing). The edges' connected
components (scipy's, the same as Splink's clustering gives: `_cluster`) are the clusters; a
cluster that would hold two different valid identifiers is split (see `_split`) and
recorded as a finding. A full run clusters every record.
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
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

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
    """`values` as one Arrow string array (pandas keeps DuckDB's batches as chunks)."""
    got = pa.array(values.astype("string").array).cast(pa.string())
    return got.combine_chunks() if isinstance(got, pa.ChunkedArray) else got


def _cluster(
    records: pd.DataFrame, pairs: pd.DataFrame, cfg: ResolveConfig, decisions: pd.DataFrame | None
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Clusters of `records` (rec_id, cluster: the smallest rec_id of the cluster, in
    `records`' order) and the findings of the clusters split.

    Edges: each record with a valid identifier to the smallest record of that identifier;
    each scored pair at or above the match threshold unless both records carry valid
    identifiers; a rejected pair is never one, an accepted pair always is (a pair once).
    The connected components of the edges (scipy.sparse.csgraph: the components Splink's
    `cluster_pairwise_predictions_at_threshold` gives, in a fraction of its time; a test
    compares them) are the clusters, except that one holding two different valid
    identifiers or the two records of a rejected pair is split (`_split`) and, for two
    identifiers, recorded as a finding. Records, identifiers and pairs are worked on as
    positions (Arrow's hash lookup, NumPy), never as Python strings per row."""
    rec = _text(records["rec_id"])
    n = len(rec)
    if n == 0:
        return pd.DataFrame({"rec_id": records["rec_id"], "cluster": records["rec_id"]}), []
    rank = np.empty(n, dtype=np.int64)  # position in rec_id order (the order every rule uses)
    rank[np.asarray(pc.sort_indices(rec))] = np.arange(n)
    code = np.asarray(_text(records["exact_id"]).dictionary_encode().indices.fill_null(-1), dtype=np.int64)
    keyed = np.flatnonzero(code >= 0)
    # exact edges: every keyed record to its identifier's smallest record
    by = keyed[np.lexsort((rank[keyed], code[keyed]))]
    starts = np.r_[True, code[by][1:] != code[by][:-1]] if len(by) else np.zeros(0, dtype=bool)
    first = by[starts][np.cumsum(starts) - 1]
    exact_l, exact_r = first[first != by], by[first != by]

    decided = (
        decisions if decisions is not None else pd.DataFrame(columns=["rec_id_l", "rec_id_r", "decision"])
    )
    linked = pairs[pairs["match_probability"] >= cfg.thresholds.match]
    texts = [
        _text(x) for x in (linked["rec_id_l"], linked["rec_id_r"], decided["rec_id_l"], decided["rec_id_r"])
    ]
    pos = np.asarray(pc.index_in(pa.concat_arrays(texts), value_set=rec).fill_null(-1), dtype=np.int64)
    pl, pr, dl, dr = np.split(pos, np.cumsum([len(t) for t in texts])[:-1])
    if (pl < 0).any() or (pr < 0).any():
        raise ValueError(f"{cfg.name}: a scored pair names a record that is not among the records clustered")
    model = (code[pl] < 0) | (code[pr] < 0)  # both with valid identifiers: identifiers decide
    ok = (dl >= 0) & (dr >= 0)  # a decision naming a record not clustered decides nothing
    verdict = decided["decision"].to_numpy()
    acc, rej = ok & (verdict == "accept"), ok & (verdict == "reject")
    left = np.concatenate([exact_l, pl[model]])
    right = np.concatenate([exact_r, pr[model]])
    prob = np.concatenate([np.ones(len(exact_l)), linked["match_probability"].to_numpy(dtype=float)[model]])
    keep = ~np.isin(left * n + right, dl[rej] * n + dr[rej])  # rejected: no edge, unless also accepted
    left = np.concatenate([left[keep], dl[acc]])
    right = np.concatenate([right[keep], dr[acc]])
    prob = np.concatenate([prob[keep], np.ones(int(acc.sum()))])
    key = left * n + right
    _, once = np.unique(key, return_index=True)  # a pair once: the first of exact, model, accepted
    once.sort()
    left, right, prob, key = left[once], right[once], prob[once], key[once]

    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    comp = connected_components(graph.tocsr(), directed=False)[1].astype(np.int64)
    smallest = np.full(comp.max() + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(smallest, comp, rank)
    label = np.empty(n, dtype=np.int64)  # rank -> position
    label[rank] = np.arange(n)
    cluster = label[smallest[comp]]  # each record's cluster: the position of its smallest record

    width = int(code.max()) + 1
    n_ids = np.bincount(np.unique(comp[keyed] * width + code[keyed]) // width, minlength=len(smallest))
    multi = np.flatnonzero(n_ids > 1)
    apart = [(a, b) for a, b in zip(dl[rej], dr[rej], strict=True)]
    bad = set(multi.tolist()) | {int(comp[a]) for a, b in apart if comp[a] == comp[b]}
    findings: list[dict[str, Any]] = []
    if bad:
        accepted = set((dl[acc] * n + dr[acc]).tolist())
        cluster, findings = _split(records["rec_id"], cluster, comp, rank, code, bad, multi, n_ids,
                                   (left, right, prob, key), accepted, apart)  # fmt: skip
    return pd.DataFrame(
        {
            "rec_id": records["rec_id"].reset_index(drop=True),
            "cluster": records["rec_id"].iloc[cluster].reset_index(drop=True),
        }
    ), findings


def _split(
    rec_id: pd.Series,
    cluster: np.ndarray,
    comp: np.ndarray,
    rank: np.ndarray,
    code: np.ndarray,
    bad: set[int],
    multi: np.ndarray,
    n_ids: np.ndarray,
    edges: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    accepted: set[int],
    apart: list[tuple[int, int]],
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The clusters `bad` (components holding two valid identifiers or a rejected pair)
    regrouped by their edges taken in order (accepted pairs, then by match probability,
    then by record ids), skipping an edge that would join the two records of a rejected
    pair or, unless accepted, two groups whose identifiers differ, neither holding all of
    the other's: an accepted pair of two identifiers makes one group of both, which every
    further record of either identifier joins. Each cluster with two identifiers is a
    finding; a split by a decision shows in the id map. Positions in, positions out."""
    left, right, prob, key = edges
    inbad = np.isin(comp, list(bad))
    members = np.flatnonzero(inbad)
    e = np.flatnonzero(inbad[left])
    ok = np.fromiter((k in accepted for k in key[e].tolist()), dtype=bool, count=len(e))
    order = np.lexsort((rank[right[e]], rank[left[e]], -prob[e], ~ok))
    e, ok = e[order], ok[order]
    r = rank.tolist()
    parent = {m: m for m in members.tolist()}
    label = {m: frozenset() if code[m] < 0 else frozenset([int(code[m])]) for m in parent}
    apart = [(a, b) for a, b in apart if a in parent and b in parent]

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def forbidden(ra: int, rb: int) -> bool:
        return any({root(x), root(y)} == {ra, rb} for x, y in apart)

    for a, b, yes in zip(left[e].tolist(), right[e].tolist(), ok.tolist(), strict=True):
        ra, rb = root(a), root(b)
        if ra == rb or forbidden(ra, rb):
            continue
        la, lb = label[ra], label[rb]
        if not yes and la and lb and not (la <= lb or lb <= la):
            continue  # it would put together identifiers no accepted pair put together
        keep, drop = (ra, rb) if r[ra] < r[rb] else (rb, ra)
        parent[drop] = keep
        label[keep] = label[keep] | label[drop]
    out = cluster.copy()
    out[members] = [root(m) for m in members.tolist()]  # a group's root is its smallest record
    these = np.flatnonzero(np.isin(comp, multi))
    these = these[np.lexsort((rank[these], rank[cluster[these]]))]  # by cluster label, then rec_id
    ids = rec_id.iloc[these].to_numpy()
    cuts = np.flatnonzero(np.r_[True, comp[these][1:] != comp[these][:-1]])
    findings = (
        [
            {
                "kind": "two_valid_ids_in_cluster",
                "rec_ids": [str(x) for x in group],
                "detail": f"{int(n_ids[comp[these[i]]])} identifiers",
            }
            for i, group in zip(cuts, np.split(ids, cuts[1:]), strict=True)
        ]
        if len(these)
        else []
    )
    return out, findings


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
