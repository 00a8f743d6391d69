"""etl.resolve.model.candidates (the records an incremental run scores) against brute
force: every pair of records tried against every blocking rule, both ways round."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from etl.config import get_settings
from etl.contracts import Contracts
from etl.resolve.config import ResolveConfig, load_resolve_configs, rule_sqls
from etl.resolve.model import candidates

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def cfg(contracts: Contracts) -> ResolveConfig:
    person = load_resolve_configs(get_settings().schemas_dir, contracts.tables)["person"]
    # the person rules (on columns) and one written as SQL that is not symmetric
    custom = "l.surname = r.surname and l.birth_year < r.birth_year"
    return person.model_copy(update={"blocking_rules": [*person.blocking_rules, custom]})


def _brute_force(records: pd.DataFrame, delta: np.ndarray, cfg: ResolveConfig) -> np.ndarray:
    con = duckdb.connect()
    try:
        con.register("recs", records.assign(_pos=np.arange(len(records)), _delta=delta))
        rule = " or ".join(f"({sql})" for sql in rule_sqls(cfg))
        hit = con.execute(
            f"select r._pos from recs l, recs r where ({rule}) and l._delta "
            f"union select l._pos from recs l, recs r where ({rule}) and r._delta"
        ).fetchnumpy()["_pos"]
    finally:
        con.close()
    out = delta.copy()
    out[np.asarray(hit, dtype=np.int64)] = True
    return out


@pytest.mark.parametrize("seed", range(5))
def test_candidates_are_every_blocked_partner_of_the_delta(cfg: ResolveConfig, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    columns = sorted(
        {c for r in cfg.blocking_rules if isinstance(r, list) for c in r} | {"surname", "birth_year"}
    )

    def values(k: int) -> pd.Series:  # few values, some null: blocks of a few records
        v = pd.Series([f"v{i}" for i in rng.integers(0, k, n)], dtype="string")
        return v.where(rng.random(n) > 0.1)

    records = pd.DataFrame({c: values(60) for c in columns})
    records["birth_year"] = pd.Series(rng.integers(1950, 1960, n), dtype="Int64")
    records["exact_id"] = pd.Series([f"id{i}" for i in range(n)], dtype="string").where(rng.random(n) < 0.5)
    records.insert(0, "rec_id", pd.Series([f"r{i:04d}" for i in range(n)], dtype="string"))
    delta = rng.random(n) < 0.03
    got = candidates(records, pd.Series(delta), cfg).to_numpy()
    want = _brute_force(records, delta, cfg)
    np.testing.assert_array_equal(got, want)
    assert delta.sum() < want.sum() < n  # partners found, not every record
