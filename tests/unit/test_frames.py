"""etl.frames.isin against pandas' own Series.isin (the reference it replaces for speed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from etl.frames import isin


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("dtype", ["str", "string", "object"])
def test_isin_agrees_with_pandas(seed: int, dtype: str) -> None:
    rng = np.random.default_rng(seed)
    pool = np.array([f"人|{i}" for i in range(500)], dtype=object)
    left = pd.Series(rng.choice(pool, 2000), dtype=dtype)
    left[rng.random(2000) < 0.05] = None  # nulls are never in
    right = pd.Series(rng.choice(pool, 300), dtype=dtype)
    want = left.isin(right).to_numpy(dtype=bool) & left.notna().to_numpy()
    for among in (right, set(right), right.to_numpy(), pd.Index(right), list(right)):
        got = isin(left, among)
        assert got.dtype == bool and got.shape == (2000,)
        np.testing.assert_array_equal(got, want)
    assert 0 < want.sum() < len(left)  # the case is not trivial


def test_isin_empty_sides() -> None:
    s = pd.Series(["a", "b"], dtype="str")
    np.testing.assert_array_equal(isin(s, []), [False, False])
    np.testing.assert_array_equal(isin(s, set()), [False, False])
    assert isin(s.iloc[:0], ["a"]).shape == (0,)
    np.testing.assert_array_equal(isin(s, pd.Series(["b", None], dtype="str")), [False, True])
