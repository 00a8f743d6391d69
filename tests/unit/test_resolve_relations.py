"""core.person_source grouped by DuckDB, against the pandas groupby it replaced."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from etl.contracts import Contracts
from etl.resolve.relations import person_source

pytestmark = pytest.mark.unit


def _old_person_source(persons: pd.DataFrame, contracts: Contracts) -> pd.DataFrame:
    department = {s.name: s.department for s in contracts.sources.values()}
    out = (
        persons.groupby(["master_id", "_source"])
        .agg(
            records=("rec_id", "size"),
            first_delivery=("_first_delivery", "min"),
            last_delivery=("_last_delivery", "max"),
        )
        .reset_index()
        .rename(columns={"master_id": "person_id", "_source": "source"})
    )
    out.insert(2, "department", out["source"].map(department))
    return out.sort_values(["person_id", "source"], ignore_index=True)


@pytest.mark.parametrize("seed", range(4))
def test_person_source_as_the_pandas_groupby(contracts: Contracts, seed: int) -> None:
    dtype = "str"  # the records' text as the consolidation holds it (etl.frames.duck_df)
    rng = np.random.default_rng(seed)
    n = 3000
    sources = [*sorted(contracts.sources)[:4], "not_a_source"]  # one without a department
    first = pd.Timestamp("2026-11-01") + pd.to_timedelta(rng.integers(0, 30, n), unit="D")
    persons = pd.DataFrame(
        {
            "rec_id": pd.Series([f"r{i}" for i in range(n)], dtype=dtype),
            "master_id": pd.Series([f"P{m:05d}" for m in rng.integers(0, 800, n)], dtype=dtype),
            "_source": pd.Series(rng.choice(sources, n), dtype=dtype),
            "_first_delivery": first.astype("datetime64[us]"),
            "_last_delivery": (first + pd.to_timedelta(rng.integers(0, 9, n), unit="D")).astype(
                "datetime64[us]"
            ),
        }
    ).sample(frac=1, random_state=seed)
    want = _old_person_source(persons, contracts)
    got = person_source(persons, contracts)
    pd.testing.assert_frame_equal(got, want)
    assert want["records"].max() > 1 and want["department"].isna().any()
