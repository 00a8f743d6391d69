"""Stable master ids.

A master id is the entity's prefix and a zero-padded number from a sequence persisted in
`meta.id_sequence` (`P0000000001`): it carries no personal data and, once issued, is never
reissued. Each run maps its clusters onto the ids the previous run gave their records:

- a cluster none of whose records had an id gets a new one; new ids are issued in the
  order of the clusters' smallest record ids, so identical inputs give identical ids;
- a cluster whose records had one id keeps it;
- a cluster whose records had several ids (new evidence merged masters) keeps the oldest
  (the smallest number); the others are recorded in `core.<entity>_id_map` as merged into it;
- an id whose records now fall into several clusters (a split, e.g. a review decision)
  stays with the cluster holding most of its records (ties: the smallest record id); the
  other clusters get new ids, recorded in the id map as split from it.

An incremental run maps only the clusters its linkage computed again (`assign`'s `kept`):
every other cluster is exactly a previous master and keeps its id, which is what mapping
every cluster gives, new ids included (they go to clusters computed again only, in the
same order).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from etl.frames import isin

ID_MAP_COLUMNS = ["master_id", "merged_into", "split_from", "run_id", "reason"]


@dataclass
class Assignment:
    records: pd.DataFrame  # rec_id, master_id
    id_map: pd.DataFrame  # new rows of core.<entity>_id_map
    last_value: int  # the sequence after this run


def format_id(prefix: str, digits: int, n: int) -> str:
    return f"{prefix}{n:0{digits}d}"


def assign(
    clusters: pd.DataFrame,
    previous: pd.DataFrame,
    *,
    last_value: int,
    prefix: str,
    digits: int,
    run_id: str,
    kept: pd.Series | None = None,
) -> Assignment:
    """Map `clusters` (rec_id, cluster) to master ids given the `previous` (rec_id, master_id).
    `kept` (aligned with `clusters`): the master id of each record whose cluster is exactly a
    previous master (an incremental run's untouched clusters), null elsewhere. Those records
    keep it and only the other clusters are mapped, with what `previous` says of their
    records: the same ids as mapping every cluster (an untouched master is one cluster that
    holds all its records and no other id, so it keeps its id and takes no part in another
    cluster's merge or split, and every new id goes to a cluster that is not untouched)."""
    if kept is not None:
        todo = kept.isna().to_numpy()
        got = assign(
            clusters[todo], previous, last_value=last_value, prefix=prefix, digits=digits, run_id=run_id
        )
        master = kept.astype("string").reset_index(drop=True)
        new = got.records.set_index("rec_id")["master_id"].reindex(clusters.loc[todo, "rec_id"])
        master[todo] = new.to_numpy()
        out = pd.DataFrame({"rec_id": clusters["rec_id"].reset_index(drop=True), "master_id": master})
        if not out["rec_id"].is_monotonic_increasing:
            out = out.sort_values("rec_id", ignore_index=True)
        return Assignment(records=out, id_map=got.id_map, last_value=got.last_value)
    cur = clusters[["rec_id", "cluster"]].merge(previous[["rec_id", "master_id"]], on="rec_id", how="left")
    held = cur.dropna(subset=["master_id"])
    # splits: an old id stays with the cluster holding most of its records
    counts = held.groupby(["master_id", "cluster"]).size().rename("n").reset_index()
    counts = counts.sort_values(["master_id", "n", "cluster"], ascending=[True, False, True])
    owner = counts.drop_duplicates("master_id").set_index("master_id")["cluster"]
    lost = counts[counts["cluster"] != counts["master_id"].map(owner)]
    # merges: a cluster keeps the oldest of the ids it owns
    owned = owner.reset_index().sort_values("master_id")
    keep = owned.drop_duplicates("cluster").set_index("cluster")["master_id"]
    merged = owned[owned["master_id"] != owned["cluster"].map(keep)]
    rows = [
        {"master_id": m, "merged_into": keep[c], "split_from": None, "run_id": run_id, "reason": "merged"}
        for m, c in zip(merged["master_id"], merged["cluster"], strict=True)
    ]
    clusters_u = cur["cluster"].drop_duplicates()
    need = clusters_u[~isin(clusters_u, keep.index)].sort_values().tolist()
    new_ids = {c: format_id(prefix, digits, last_value + i + 1) for i, c in enumerate(need)}
    split_of = lost.drop_duplicates("cluster").set_index("cluster")["master_id"]
    for c, m in new_ids.items():
        if c in split_of.index:
            rows.append(
                {
                    "master_id": m,
                    "merged_into": None,
                    "split_from": split_of[c],
                    "run_id": run_id,
                    "reason": "split",
                }
            )
    mapping = pd.concat([keep, pd.Series(new_ids, dtype="string")]) if new_ids else keep
    out = pd.DataFrame({"rec_id": cur["rec_id"], "master_id": cur["cluster"].map(mapping).astype("string")})
    return Assignment(
        records=out.sort_values("rec_id", ignore_index=True),
        id_map=pd.DataFrame(rows, columns=ID_MAP_COLUMNS),
        last_value=last_value + len(need),
    )


__all__ = ["ID_MAP_COLUMNS", "Assignment", "assign", "format_id"]
