"""linkage._cluster against a reference built on Splink's clustering (the previous
implementation: edges in pandas, Splink's connected components, the conflict split over
rec_id strings), on random graphs: records in no particular order, identifiers shared
within and across components, scored pairs, and clerical accepts and rejects."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from etl.config import get_settings
from etl.contracts import Contracts
from etl.frames import isin
from etl.resolve.config import ResolveConfig, load_resolve_configs
from etl.resolve.linkage import _cluster

pytestmark = pytest.mark.unit


def _ref_edges(
    records: pd.DataFrame, pairs: pd.DataFrame, match: float, decisions: pd.DataFrame | None
) -> pd.DataFrame:
    ids = records.set_index("rec_id")["exact_id"]
    keyed = records[records["exact_id"].notna()]
    first = keyed.groupby("exact_id")["rec_id"].transform("min")
    exact = pd.DataFrame({"rec_id_l": first, "rec_id_r": keyed["rec_id"], "match_probability": 1.0})
    exact = exact[exact["rec_id_l"] != exact["rec_id_r"]]
    both = (
        ids.reindex(pairs["rec_id_l"]).notna().to_numpy() & ids.reindex(pairs["rec_id_r"]).notna().to_numpy()
    )
    model = pairs[(pairs["match_probability"] >= match) & ~both][
        ["rec_id_l", "rec_id_r", "match_probability"]
    ]
    edges = pd.concat([exact, model], ignore_index=True)
    if decisions is not None and len(decisions):
        key = edges["rec_id_l"] + "\x1f" + edges["rec_id_r"]
        rejected = decisions[decisions["decision"] == "reject"]
        edges = edges[~isin(key, rejected["rec_id_l"] + "\x1f" + rejected["rec_id_r"])]
        accepted = decisions[decisions["decision"] == "accept"][["rec_id_l", "rec_id_r"]]
        edges = pd.concat([edges, accepted.assign(match_probability=1.0)], ignore_index=True)
    return edges.drop_duplicates(["rec_id_l", "rec_id_r"]).reset_index(drop=True)


def _ref_components(records: pd.DataFrame, edges: pd.DataFrame) -> pd.DataFrame:
    from splink import DuckDBAPI
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    nodes = records[["rec_id"]]
    if edges.empty:
        return pd.DataFrame({"rec_id": nodes["rec_id"], "cluster": nodes["rec_id"]})
    got = cluster_pairwise_predictions_at_threshold(
        nodes, edges[["rec_id_l", "rec_id_r"]], db_api=DuckDBAPI(), node_id_column_name="rec_id"
    ).as_pandas_dataframe()
    got = got.rename(columns={"cluster_id": "cluster"})[["rec_id", "cluster"]]
    got["cluster"] = got.groupby("cluster")["rec_id"].transform("min")
    return got


def _ref_split(
    comps: pd.DataFrame, edges: pd.DataFrame, records: pd.DataFrame, decisions: pd.DataFrame | None
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    ids = records.set_index("rec_id")["exact_id"]
    decided = (
        decisions if decisions is not None else pd.DataFrame(columns=["rec_id_l", "rec_id_r", "decision"])
    )
    rejected = decided[decided["decision"] == "reject"]
    accepted = set(zip(decided.loc[decided["decision"] == "accept", "rec_id_l"],
                       decided.loc[decided["decision"] == "accept", "rec_id_r"], strict=True))  # fmt: skip
    per = comps.assign(exact_id=ids.reindex(comps["rec_id"]).to_numpy())
    n_ids = per.dropna(subset=["exact_id"]).groupby("cluster")["exact_id"].nunique()
    cluster_of = comps.set_index("rec_id")["cluster"]
    apart = [(a, b) for a, b in zip(rejected["rec_id_l"], rejected["rec_id_r"], strict=True)
             if a in cluster_of and b in cluster_of]  # fmt: skip
    bad = set(n_ids[n_ids > 1].index) | {cluster_of[a] for a, b in apart if cluster_of[a] == cluster_of[b]}
    findings: list[dict[str, Any]] = []
    if not bad:
        return comps, findings
    e = edges[isin(edges["rec_id_l"].map(cluster_of), bad)].copy()
    e["accepted"] = [(a, b) in accepted for a, b in zip(e["rec_id_l"], e["rec_id_r"], strict=True)]
    e = e.sort_values(
        ["accepted", "match_probability", "rec_id_l", "rec_id_r"], ascending=[False, False, True, True]
    )
    parent = {r: r for r in comps.loc[isin(comps["cluster"], bad), "rec_id"]}
    label = {r: frozenset() if pd.isna(ids[r]) else frozenset([str(ids[r])]) for r in parent}

    def root(x: str) -> str:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b, ok in zip(e["rec_id_l"], e["rec_id_r"], e["accepted"], strict=True):
        ra, rb = root(a), root(b)
        if ra == rb or any({root(x), root(y)} == {ra, rb} for x, y in apart if x in parent and y in parent):
            continue
        la, lb = label[ra], label[rb]
        if not ok and la and lb and not (la <= lb or lb <= la):
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


def _random_case(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    n = int(rng.integers(2, 120))
    names = rng.choice(100_000, size=n, replace=False)
    rec_ids = pd.Series([f"person|{rng.choice(['a', 'b', 'c'])}|{k:05d}" for k in names], dtype="string")
    rec_ids = rec_ids.drop_duplicates().reset_index(drop=True)
    n = len(rec_ids)
    n_ids = max(1, n // int(rng.integers(2, 6)))
    ident = pd.Series([f"ID{int(k)}" for k in rng.integers(0, n_ids, size=n)], dtype="string")
    ident[rng.random(n) < rng.choice([0.1, 0.4, 0.7, 1.0])] = pd.NA  # 1.0: no identifier at all
    records = pd.DataFrame({"rec_id": rec_ids, "exact_id": ident})
    m = int(rng.integers(0, 3 * n))
    a, b = rng.integers(0, n, size=m), rng.integers(0, n, size=m)
    a, b = a[a != b], b[a != b]
    lo = np.where(rec_ids.to_numpy()[a] < rec_ids.to_numpy()[b], a, b)
    hi = np.where(lo == a, b, a)
    pairs = pd.DataFrame(
        {
            "rec_id_l": rec_ids.to_numpy()[lo],
            "rec_id_r": rec_ids.to_numpy()[hi],
            "match_probability": rng.choice([0.5, 0.8, 0.95, 0.99, 0.999], size=len(lo)),
        }
    ).drop_duplicates(["rec_id_l", "rec_id_r"])
    pairs = pairs.astype({"rec_id_l": "string", "rec_id_r": "string"}).reset_index(drop=True)
    if len(pairs) and rng.random() < 0.3:  # a pair twice, and one the other way round
        twice = pairs.sample(1, random_state=int(rng.integers(1 << 30)))
        turned = twice.rename(columns={"rec_id_l": "rec_id_r", "rec_id_r": "rec_id_l"})
        pairs = pd.concat([pairs, twice, turned], ignore_index=True)
    decisions = None
    if rng.random() < 0.7:  # on scored pairs, or on any two records (an identifier's, too)
        k = int(rng.integers(1, 8))
        scored = pairs.sample(min(len(pairs), k), random_state=int(rng.integers(1 << 30)))
        a, b = rng.integers(0, n, size=k), rng.integers(0, n, size=k)
        ends = [(x, y) for x, y in zip(rec_ids.to_numpy()[a], rec_ids.to_numpy()[b], strict=True) if x != y]
        ends = [(min(x, y), max(x, y)) for x, y in ends]
        ends += list(zip(scored["rec_id_l"], scored["rec_id_r"], strict=True))
        decisions = pd.DataFrame(ends, columns=["rec_id_l", "rec_id_r"]).drop_duplicates()
        decisions["decision"] = rng.choice(["accept", "reject"], size=len(decisions))
    order = rng.permutation(len(records))  # records in no particular order
    records = records.iloc[order].reset_index(drop=True)
    # as DuckDB's batches arrive: columns of several Arrow chunks
    cut = int(rng.integers(0, len(records) + 1))
    records = pd.concat([records.iloc[:cut], records.iloc[cut:]], ignore_index=True)
    return records, pairs, decisions


@pytest.fixture(scope="module")
def cfg(contracts: Contracts) -> ResolveConfig:
    return load_resolve_configs(get_settings().schemas_dir, contracts.tables)["person"]


@pytest.mark.parametrize("seed", range(6))
def test_cluster_equals_the_splink_reference_on_random_graphs(cfg: ResolveConfig, seed: int) -> None:
    rng = np.random.default_rng([20261203, seed])
    split_seen = 0
    for _ in range(8):
        records, pairs, decisions = _random_case(rng)
        edges = _ref_edges(records, pairs, cfg.thresholds.match, decisions)
        want, want_findings = _ref_split(_ref_components(records, edges), edges, records, decisions)
        got, findings = _cluster(records, pairs, cfg, decisions)
        assert got["rec_id"].tolist() == records["rec_id"].tolist()  # in the records' order
        want = want.set_index("rec_id")["cluster"].reindex(records["rec_id"])
        assert got["cluster"].tolist() == want.tolist()
        assert findings == want_findings
        split_seen += len(findings)
    assert split_seen  # the split path was exercised
