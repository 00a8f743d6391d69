"""Link an entity's records into clusters: exact on a valid identifier, Splink otherwise.

The model is Splink's (DuckDB backend), declared in schemas/resolve/<entity>.yml and
trained as etl.resolve.model says. Pairs: the blocked pairs with at least one record
lacking a valid identifier (etl.resolve.config.SCORED), scored at or above the review
threshold. A full run scores every such pair; an incremental run (a `Previous` linkage)
scores only the pairs with a new or changed record (its content hash differs from the
previous run's) and keeps the previous run's pairs between unchanged records: with the
same frozen model those pairs score the same, so incremental and full give the same pairs,
hence the same clusters.

Edges: every pair of records sharing a valid identifier, and every scored pair at or above
the match threshold unless both records carry valid identifiers (identifiers decide those).
Clerical decisions override the model: an accepted pair is an edge, a rejected one never is.
Splink's connected components cluster the edges (all of them, every run: cheap beside
scoring). A cluster that would hold two different valid identifiers is split (see
`_split_conflicts`) and recorded as a finding.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from etl.frames import isin
from etl.normalize.identifiers import is_canonical_credit_code, is_canonical_resident_id
from etl.resolve.config import ResolveConfig
from etl.resolve.model import PAIR_COLUMNS, Model, score, train
from etl.resolve.records import content_hash

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
    probability, then by record ids), skipping an edge that would join two groups holding
    different identifiers or the two records of a rejected pair. Each split by identifiers
    is a finding; a split by a decision shows in the id map.
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
        if not ok and label[ra] and label[rb] and label[ra] != label[rb]:
            continue
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
    """What the previous run linked: its pairs and the content hash of every record."""

    pairs: pd.DataFrame  # as Linkage.pairs
    hashes: pd.Series  # rec_id -> content hash


def _pairs(
    records: pd.DataFrame, cfg: ResolveConfig, model: Model, previous: Previous | None, run_id: str
) -> tuple[pd.DataFrame, int]:
    """The run's scored pairs and how many records were (re)scored."""
    if previous is None:
        return score(records, cfg, model).assign(run_id=run_id), len(records)
    before = records["rec_id"].map(previous.hashes)
    delta = (before.isna() | (records["content_hash"] != before)).fillna(True).astype(bool)
    unchanged = records.loc[~delta, "rec_id"]
    old = previous.pairs
    kept = old[isin(old["rec_id_l"], unchanged) & isin(old["rec_id_r"], unchanged)]
    new = score(records, cfg, model, delta).assign(run_id=run_id)
    parts = [p for p in (kept, new) if len(p)]
    pairs = pd.concat(parts, ignore_index=True) if parts else new
    return pairs.sort_values(["rec_id_l", "rec_id_r"], ignore_index=True), int(delta.sum())


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
    incrementally against the previous run's pairs (needs the model that scored them)."""
    records = records.assign(exact_id=exact_ids(records, cfg))
    for other in cfg.context:  # no context given: no record is tied to another entity's master
        if f"{other}_id" not in records:
            records[f"{other}_id"] = pd.Series(pd.NA, index=records.index, dtype="string")
    records["content_hash"] = content_hash(records)
    if model is None:
        model, previous = train(records, cfg, run_id), None
    pairs, rescored = _pairs(records, cfg, model, previous, run_id)
    edges = _edges(records, pairs, cfg, decisions)
    comps = _components(records, edges)
    comps, findings = _split_conflicts(comps, edges, records, decisions)
    comps = comps.sort_values("rec_id", ignore_index=True)
    stats = {
        "records": len(records),
        "with_valid_id": int(records["exact_id"].notna().sum()),
        "records_scored": rescored,
        "pairs_scored": len(pairs),
        "pairs_linked": int((pairs["match_probability"] >= cfg.thresholds.match).sum()),
        "clusters": int(comps["cluster"].nunique()),
    }
    return Linkage(
        clusters=comps,
        pairs=pairs[[*PAIR_COLUMNS, "run_id"]],
        model=model,
        hashes=records.set_index("rec_id")["content_hash"],
        findings=findings,
        stats=stats,
    )


__all__ = ["Linkage", "Previous", "exact_ids", "link"]
