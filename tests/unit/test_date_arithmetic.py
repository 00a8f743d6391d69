"""The integer date arithmetic of the date transforms against Python's datetime (the oracle)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from etl.normalize.dates import _ymd_to_dates

pytestmark = pytest.mark.unit


def test_ymd_to_dates_agrees_with_datetime_on_200k_random_triples() -> None:
    rng = np.random.default_rng(20261128)
    n = 200_000
    y, m, d = rng.integers(-5, 10_005, n), rng.integers(-1, 14, n), rng.integers(-1, 33, n)
    got, ok = _ymd_to_dates(y, m, d)
    expected_ok = np.zeros(n, dtype=bool)
    for i, (a, b, c) in enumerate(zip(y.tolist(), m.tolist(), d.tolist(), strict=True)):
        try:
            want = np.datetime64(dt.date(a, b, c), "D")
        except ValueError:
            continue
        expected_ok[i] = True
        assert got[i] == want, (a, b, c)
    assert (ok == expected_ok).all()
    assert expected_ok.sum() > 100_000 and (~expected_ok).sum() > 50_000


@pytest.mark.parametrize(
    ("ymd", "exists"),
    [((2000, 2, 29), True), ((1900, 2, 29), False), ((2024, 2, 29), True), ((2023, 2, 29), False),
     ((1, 1, 1), True), ((9999, 12, 31), True), ((1970, 1, 1), True), ((1969, 12, 31), True)],
)  # fmt: skip
def test_leap_years_and_range_ends(ymd: tuple[int, int, int], exists: bool) -> None:
    got, ok = _ymd_to_dates(np.array([ymd[0]]), np.array([ymd[1]]), np.array([ymd[2]]))
    assert bool(ok[0]) is exists
    if exists:
        assert got[0] == np.datetime64(dt.date(*ymd), "D")
