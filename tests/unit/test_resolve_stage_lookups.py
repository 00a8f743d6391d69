"""The findings, review queue and record-table patch of etl.resolve.stage, compared with
the formulations they replaced (an index over every record; a join made twice), on random
records."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from etl.resolve.stage import _linkage_findings, _review_queue

pytestmark = pytest.mark.unit


def _old_linkage_findings(
    findings: list[dict[str, Any]], assigned: pd.DataFrame, cfg: Any
) -> list[dict[str, Any]]:
    master_of = assigned.set_index("rec_id")["master_id"]
    return [
        {
            "entity": cfg.name,
            "kind": f["kind"],
            "master_id": ",".join(sorted({master_of[r] for r in f["rec_ids"]})),
            "rec_ids": ",".join(f["rec_ids"]),
            "attribute": cfg.exact_key,
            "detail": f["detail"],
            "run_id": "r1",
        }
        for f in findings
    ]


def _old_review_queue(
    pairs: pd.DataFrame, recs: pd.DataFrame, cfg: Any, decided: pd.DataFrame
) -> pd.DataFrame:
    q = pairs[pairs["match_probability"] < cfg.thresholds.match]
    keyed = recs.set_index("rec_id")["exact_id"]
    both = keyed.reindex(q["rec_id_l"]).notna().to_numpy() & keyed.reindex(q["rec_id_r"]).notna().to_numpy()
    q = q[~both]
    if len(decided):
        done = set(zip(decided["rec_id_l"], decided["rec_id_r"], strict=True))
        q = q[
            np.array(
                [(a, b) not in done for a, b in zip(q["rec_id_l"], q["rec_id_r"], strict=True)], dtype=bool
            )
        ]
    pid = [
        hashlib.sha256(f"{a}\x1f{b}".encode()).hexdigest()[:10]
        for a, b in zip(q["rec_id_l"], q["rec_id_r"], strict=True)
    ]
    q = q.assign(entity=cfg.name, pair_id=pid)
    return q.sort_values(["match_probability", "pair_id"], ascending=[False, True], ignore_index=True)


def _records(rng: np.random.Generator, n: int) -> pd.DataFrame:
    rec = pd.Series([f"t|s|{i:05d}" for i in range(n)], dtype="string")
    return pd.DataFrame(
        {
            "rec_id": rec,
            "master_id": pd.Series([f"P{m:05d}" for m in rng.integers(0, n // 2, n)], dtype="string"),
            "exact_id": pd.Series([f"id{i}" for i in range(n)], dtype="string").where(rng.random(n) < 0.6),
        }
    )


@pytest.mark.parametrize("seed", range(4))
def test_linkage_findings_and_review_queue_as_before(seed: int) -> None:
    rng = np.random.default_rng(seed)
    recs = _records(rng, 3000)
    cfg = SimpleNamespace(name="person", exact_key="resident_id", thresholds=SimpleNamespace(match=0.9))
    findings = [
        {
            "kind": "two_valid_ids_in_cluster",
            "rec_ids": sorted(rng.choice(recs["rec_id"], k, replace=False)),
            "detail": "x",
        }
        for k in rng.integers(2, 5, 40)
    ]
    linkage = SimpleNamespace(findings=findings)
    got = _linkage_findings(linkage, recs[["rec_id", "master_id"]], cfg, "r1")  # type: ignore[arg-type]
    assert got == _old_linkage_findings(findings, recs, cfg)
    assert _linkage_findings(SimpleNamespace(findings=[]), recs, cfg, "r1") == []  # type: ignore[arg-type]
    ends = np.sort(rng.choice(len(recs), (400, 2)), axis=1)
    ends = ends[ends[:, 0] < ends[:, 1]]
    pairs = pd.DataFrame(
        {
            "rec_id_l": recs["rec_id"].to_numpy()[ends[:, 0]],
            "rec_id_r": recs["rec_id"].to_numpy()[ends[:, 1]],
            "match_probability": rng.choice([0.5, 0.7, 0.95], len(ends)),
            "match_weight": 1.0,
            "levels": pd.Series(pd.NA, index=range(len(ends)), dtype="string"),
        }
    )
    for decided in (
        pairs.iloc[:0][["rec_id_l", "rec_id_r"]],
        pairs.sample(20, random_state=seed)[["rec_id_l", "rec_id_r"]],
    ):
        want = _old_review_queue(pairs, recs, cfg, decided)
        pd.testing.assert_frame_equal(_review_queue(pairs, recs, cfg, decided), want)  # type: ignore[arg-type]
        assert 0 < len(want) < (pairs["match_probability"] < 0.9).sum()  # some pairs dropped for both ids


def _old_record_table(table: pd.DataFrame, before: Path) -> pd.DataFrame | Any:
    """stage._record_table's comparison as it was: the join counted, then made again."""
    import duckdb

    from etl import meta
    from etl.resolve.store import Patch

    cols = list(table.columns)
    con = duckdb.connect()
    try:
        con.register("cur", table)
        con.execute(
            f"create view prev as select {', '.join(cols)} from read_parquet({meta.sql_literal(str(before))})"
        )
        differs = " or ".join(f'c."{c}" is distinct from p."{c}"' for c in cols if c != "rec_id")
        new = f"from cur c left join prev p using (rec_id) where p.rec_id is null or {differs}"
        if con.execute(f"select count(*) {new}").fetchall()[0][0] > len(table) // 2:
            return table.sort_values("rec_id", ignore_index=True)
        con.execute(f"create temp table added as select c.* {new}")
        add = con.sql("select * from added order by rec_id").to_arrow_table()
        drop = con.execute(
            "select rec_id from prev anti join cur using (rec_id) union all select rec_id from added"
        ).df()
    finally:
        con.close()
    return Patch(key=("rec_id",), drop=drop, add=add.to_pandas(types_mapper=pd.ArrowDtype))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("share", [0.05, 0.8])
def test_record_table_patch_as_before(seed: int, share: float, tmp_path: Path) -> None:
    from etl.resolve.stage import RECORD_COLUMNS, _record_table
    from etl.resolve.store import Patch

    rng = np.random.default_rng(seed)
    n = 1000
    recs = _records(rng, n).assign(
        _table="person",
        _source=pd.Series(rng.choice(["a", "b"], n), dtype="string"),
        _batch_id=pd.Series(rng.choice(["b1", "b2"], n), dtype="string"),
        _row_number=np.arange(n, dtype="int64"),
        _logical_date=pd.Timestamp("2026-11-01"),
    )
    recs["record_key"] = recs["rec_id"]
    hashes = pd.Series([f"h{i}" for i in range(n)], index=recs["rec_id"], dtype="string")
    before_table = recs[RECORD_COLUMNS].assign(
        has_valid_id=recs["exact_id"].notna(), content_hash=hashes.to_numpy()
    )
    before = tmp_path / "prev.parquet"
    before_table.rename(columns={"master_id": "person_id"}).iloc[: n - 20].to_parquet(
        before, index=False
    )  # 20 new
    now = recs.copy()
    moved = rng.random(n) < share
    now.loc[moved, "master_id"] = "P99999"
    hashes = hashes.where(~(rng.random(n) < 0.02), "changed")
    now = now.iloc[30:]  # 30 gone
    linkage = SimpleNamespace(hashes=hashes)
    got = _record_table(now, linkage, "person_id", before)  # type: ignore[arg-type]
    table = (
        now[RECORD_COLUMNS]
        .assign(has_valid_id=now["exact_id"].notna(), content_hash=now["rec_id"].map(hashes))
        .rename(columns={"master_id": "person_id"})
    )
    want = _old_record_table(table, before)
    assert isinstance(got, Patch) == isinstance(want, Patch) == (share < 0.5)
    if isinstance(want, Patch):
        pd.testing.assert_frame_equal(got.add, want.add)
        key = sorted(got.drop["rec_id"])
        assert key == sorted(want.drop["rec_id"]) and len(key) > len(got.add)  # the gone ones too
    else:
        pd.testing.assert_frame_equal(got, want)
