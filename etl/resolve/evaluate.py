"""Linkage accuracy against the demo ground truth (landing/_truth/).

Each staged record traces through its source and record key to the truth's `entity_id`:
the person or organisation it really belongs to. The legal
representative of an organisation record is that organisation's `legal_rep_person`; an
employment record's employer is the organisation holding its true credit code.

Pairwise metrics over record pairs: precision = pairs linked that belong together / pairs
linked; recall = pairs linked that belong together / pairs that belong together. "Without
a valid identifier" counts the pairs in which at least one record has no valid identifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from etl.config import Settings


@dataclass(frozen=True)
class Scores:
    records: int
    true_pairs: int
    linked_pairs: int
    correct_pairs: int
    clusters: int
    true_clusters: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.linked_pairs if self.linked_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _pairs(sizes: pd.Series) -> int:
    return int((sizes * (sizes - 1) // 2).sum())


def pairwise(pred: pd.Series, truth: pd.Series) -> Scores:
    """Pairwise scores of a predicted clustering against the true one (same index: records)."""
    frame = pd.DataFrame({"p": pred.to_numpy(), "t": truth.to_numpy()})
    return Scores(
        records=len(frame),
        true_pairs=_pairs(frame.groupby("t").size()),
        linked_pairs=_pairs(frame.groupby("p").size()),
        correct_pairs=_pairs(frame.groupby(["p", "t"]).size()),
        clusters=int(frame["p"].nunique()),
        true_clusters=int(frame["t"].nunique()),
    )


def split_scores(pred: pd.Series, truth: pd.Series, has_id: pd.Series) -> tuple[Scores, Scores]:
    """Scores overall, and over the pairs with at least one record lacking a valid identifier
    (all pairs minus the pairs among records that both have one)."""
    overall = pairwise(pred, truth)
    keyed = has_id.to_numpy(dtype=bool)
    ids_only = pairwise(pred[keyed], truth[keyed])
    no_id = Scores(
        records=int((~keyed).sum()),
        true_pairs=overall.true_pairs - ids_only.true_pairs,
        linked_pairs=overall.linked_pairs - ids_only.linked_pairs,
        correct_pairs=overall.correct_pairs - ids_only.correct_pairs,
        clusters=int(pred[~keyed].nunique()),
        true_clusters=int(truth[~keyed].nunique()),
    )
    return overall, no_id


def _truth_rows(con: duckdb.DuckDBPyConnection, truth_dir: Path) -> pd.DataFrame:
    """(source, record_key) -> entity_id and true codes, for every delivered record. The
    record key names a source record across deliveries (a later drop rewrites the truth
    files and may reorder rows; the keys stay)."""
    frames = []
    for f in sorted(truth_dir.glob("*.parquet")):
        if f.stem in ("persons", "organisations", "links", "events"):  # not one row per delivered record
            continue
        cols = con.execute(f"select * from read_parquet('{f}') limit 0").df().columns
        if "record_key" not in cols:
            continue
        extra = [c for c in ("true_employer_credit_code",) if c in cols]
        sel = ", ".join(["source", "record_key", "entity_id", *extra])
        frames.append(con.execute(f"select {sel} from read_parquet('{f}')").df())
    rows = pd.concat(frames, ignore_index=True)
    return rows.drop_duplicates(["source", "record_key"], keep="last")


def truth_of(
    con: duckdb.DuckDBPyConnection, settings: Settings, entity: str, records: pd.DataFrame
) -> pd.Series:
    """The true entity of each record (index aligned with `records`; null where unknown)."""
    rows = _truth_rows(con, settings.truth_dir).rename(columns={"source": "_source"})
    got = records[["_table", "_source", "record_key"]].merge(rows, on=["_source", "record_key"], how="left")
    orgs = pd.read_parquet(settings.truth_dir / "organisations.parquet")
    true = got["entity_id"].copy()
    if entity == "person":
        rep = got["_table"] == "legal_entity"
        true[rep] = got.loc[rep, "entity_id"].map(orgs.set_index("org_id")["legal_rep_person"])
    else:
        emp = got["_table"] == "employment"
        by_code = orgs.dropna(subset=["credit_code"]).drop_duplicates("credit_code").set_index("credit_code")
        true[emp] = got.loc[emp, "true_employer_credit_code"].map(by_code["org_id"])
    return pd.Series(true.to_numpy(), index=records.index)


def evaluate(settings: Settings) -> dict[str, tuple[Scores, Scores]]:
    """Scores of the current core against the demo truth: entity -> (overall, without a valid id)."""
    from etl.published import read_catalog
    from etl.resolve import store

    out: dict[str, tuple[Scores, Scores]] = {}
    with read_catalog(settings) as con:  # the published catalog: read-only, never waits for the writer
        for entity in ("person", "legal_entity"):
            recs = store.read_published(con, f"{entity}_record")
            if recs is None:
                continue
            true = truth_of(con, settings, entity, recs)
            known = true.notna()
            out[entity] = split_scores(
                recs.loc[known, f"{entity}_id"], true[known], recs.loc[known, "has_valid_id"]
            )
    return out


__all__ = ["Scores", "evaluate", "pairwise", "split_scores", "truth_of"]
