"""etl.resolve.records: the lineage rule (which staged delivery is a record's current
version) against the formulation it replaced (two window passes), on random delivery
histories."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from etl.resolve.records import lineage_sql


def _old_lineage_sql(deliveries: str, attributes: list[str]) -> str:
    """The rule as records_sql wrote it before (a window for the runs, another for the last)."""
    content = ", ".join(f'"{a}"' for a in attributes) or "rec_id"
    return f"""select * exclude (_h, _start) from (
            select *, lag(_h) over (partition by rec_id order by _logical_date, _batch_id, _row_number)
                          is distinct from _h as _start,
                   min(_logical_date) over (partition by rec_id) as _first_delivery,
                   max(_logical_date) over (partition by rec_id) as _last_delivery
            from (select *, hash({content}) as _h from ({deliveries}))
        ) where _start
        qualify row_number() over (partition by rec_id order by _logical_date desc, _batch_id desc, _row_number desc) = 1"""


def _deliveries(rng: np.random.Generator, records: int) -> pd.DataFrame:
    """Random delivery histories: each record delivered 1-6 times, in batches of random
    dates (several batches a day, dates out of order), its content drawn from few
    versions (so runs repeat: A, A, B, A ...), null attributes among them."""
    rows = []
    for r in range(records):
        versions = [
            (rng.choice(["王", "李", None]), None if rng.random() < 0.2 else int(rng.integers(0, 3)))
            for _ in range(int(rng.integers(1, 4)))
        ]
        for _ in range(int(rng.integers(1, 7))):
            name, n = versions[int(rng.integers(0, len(versions)))]
            day = int(rng.integers(0, 5))
            rows.append(
                {
                    "rec_id": f"t|s|{r}",
                    "_batch_id": f"b{day}-{int(rng.integers(0, 3))}",
                    "_logical_date": pd.Timestamp("2026-11-01") + pd.Timedelta(days=day),
                    "name": name,
                    "n": n,
                }
            )
    frame = pd.DataFrame(rows)
    frame["_row_number"] = rng.permutation(len(frame)).astype("int64")  # unique: a total order
    frame["n"] = frame["n"].astype("Int64")
    return frame


@pytest.mark.parametrize("seed", range(6))
def test_lineage_matches_the_two_pass_rule(seed: int) -> None:
    rng = np.random.default_rng(seed)
    staged = _deliveries(rng, 400)
    con = duckdb.connect()
    try:
        con.register("staged", staged)
        for attrs in (["name", "n"], ["name"], []):
            old = con.execute(f"{_old_lineage_sql('select * from staged', attrs)} order by rec_id").df()
            new = con.execute(f"{lineage_sql('select * from staged', attrs)} order by rec_id").df()
            assert list(new.columns) == list(old.columns)
            pd.testing.assert_frame_equal(new, old)
            assert len(new) == staged["rec_id"].nunique()
    finally:
        con.close()
    # the histories exercise the rule: with content compared, some records' current
    # version is neither their first delivery nor their latest
    ordered = staged.sort_values(["_logical_date", "_batch_id", "_row_number"])
    first = ordered.groupby("rec_id")["_row_number"].first()
    last = ordered.groupby("rec_id")["_row_number"].last()
    con = duckdb.connect()
    try:
        con.register("staged", staged)
        got = con.execute(lineage_sql("select * from staged", ["name", "n"])).df().set_index("rec_id")
    finally:
        con.close()
    chosen = got["_row_number"].reindex(first.index)
    assert ((chosen != first) & (chosen != last)).any()


@pytest.mark.parametrize("seed", range(4))
def test_changes_label_each_previous_master_as_the_window_did(seed: int, tmp_path: Path) -> None:
    """records.changes against its previous formulation (the label of each previous
    master by a window over every previous record), on random record tables."""
    from etl.meta import sql_literal
    from etl.resolve.records import changes, content_hash

    rng = np.random.default_rng(seed)
    n = 2000
    ids = pd.Series([f"t|s|{i:05d}" for i in rng.permutation(n)], dtype="string")
    records = pd.DataFrame(
        {"rec_id": ids, "name": pd.Series(rng.choice(["王", "李", "张"], n), dtype="string")}
    )
    records["content_hash"] = content_hash(records)
    prev = pd.DataFrame(
        {
            "rec_id": ids,
            "person_id": pd.Series([f"P{m:04d}" for m in rng.integers(0, 600, n)], dtype="string"),
            "content_hash": records["content_hash"].where(rng.random(n) > 0.05, "old"),
        }
    ).iloc[100:]  # the first 100 records are new
    prev = pd.concat([prev, prev.iloc[:50].assign(rec_id=[f"gone{i}" for i in range(50)])], ignore_index=True)
    file = tmp_path / "prev.parquet"
    prev.to_parquet(file, index=False)
    got = changes(records.drop(columns="content_hash"), file, "person_id")
    con = duckdb.connect()
    try:
        con.register("cur", records.assign(_pos=np.arange(n)))
        old = con.execute(
            "select p.master_id, p.label, p.content_hash is distinct from c.content_hash as delta from cur c "
            "left join (select rec_id, person_id as master_id, content_hash, min(rec_id) over (partition by person_id) "
            f"as label from read_parquet({sql_literal(str(file))})) p using (rec_id) order by c._pos"
        ).df()
    finally:
        con.close()
    pd.testing.assert_series_equal(got.content_hash, records["content_hash"], check_names=False)
    assert list(got.label.fillna("-")) == list(old["label"].fillna("-"))
    assert list(got.master.fillna("-")) == list(old["master_id"].fillna("-"))
    np.testing.assert_array_equal(got.delta, old["delta"].to_numpy(dtype=bool))
    assert sorted(got.removed["rec_id"]) == sorted(f"gone{i}" for i in range(50))
    assert got.label.notna().sum() == n - 100 and (got.label != got.master).any()
