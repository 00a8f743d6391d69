"""The demo's vectorized identifier generators against python-stdnum (no demo generation)."""

from __future__ import annotations

import numpy as np
import pytest
from stdnum.cn import ric, uscc

from etl.demo.population import credit_codes, resident_ids

pytestmark = pytest.mark.unit


def test_vectorized_ids_agree_with_stdnum() -> None:
    rng = np.random.default_rng(0)
    ids = resident_ids(
        np.full(500, 110105), rng.integers(1950, 2000, 500) * 10000 + 101, rng.integers(1, 999, 500)
    )
    assert all(ric.is_valid(x) for x in ids.tolist())
    codes = credit_codes(np.full(500, 91), np.full(500, 110105), rng.integers(0, 31, (500, 8)))
    assert all(uscc.calc_check_digit(c[:17]) == c[17] for c in codes.tolist())
    assert uscc.is_valid("91110000600037341L")
