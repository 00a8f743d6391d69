"""Cell suppression attacked the way a reader of the published table would: solve the
additivity equations for the suppressed cells (exact recovery), and bound each one by
linear programming with non-negativity (interval recovery)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import null_space

from etl.publish import suppression as S

pytestmark = pytest.mark.unit


def table(inner: np.ndarray) -> np.ndarray:
    idx = np.indices(inner.shape).reshape(inner.ndim, -1).T
    df = pd.DataFrame({f"d{i}": idx[:, i].astype(str) for i in range(inner.ndim)})
    df["n"] = inner.ravel()
    dims = [f"d{i}" for i in range(inner.ndim)]
    return S.cube(df, dims, [[str(j) for j in range(n)] for n in inner.shape], "n")


def recovered(x: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """Which hidden cells the published ones determine through the equations: a cell is
    determined exactly when every solution of the homogeneous system leaves it at 0."""
    a = S.equations(x.shape).toarray()[:, hidden.ravel()]
    basis = null_space(a)
    if basis.size == 0:
        return np.ones(int(hidden.sum()), dtype=bool)
    return np.all(np.abs(basis) < 1e-9, axis=1)


def test_the_protection_is_what_the_module_says() -> None:
    from etl.publish.openspec import PROTECTION

    assert PROTECTION == S.PROTECTION


@pytest.mark.parametrize("protection", [3, 10])
def test_a_wider_protection_gives_wider_intervals(protection: int) -> None:
    rng = np.random.default_rng(8)
    x = table(rng.poisson(9, size=(5, 4)))
    hidden = S.suppress(x, protection=protection)
    low, high = S.intervals(x, hidden)
    assert hidden.any() and (high - low >= protection - 1e-6).all()


def test_the_equations_hold_for_every_table() -> None:
    x = table(np.random.default_rng(3).integers(0, 30, (4, 3, 5)))
    assert x.shape == (5, 4, 6) and x[-1, -1, -1] == x[:-1, :-1, :-1].sum()
    assert not (S.equations(x.shape) @ x.ravel()).any()


def test_primary_suppression_alone_is_recovered_from_the_totals() -> None:
    """The attack works: with only the small cells hidden, a row holding one of them gives
    it away (row total minus the rest)."""
    x = table(np.array([[40, 3, 25], [31, 22, 18], [12, 17, 44]]))
    hidden = S.primary(x)
    assert hidden.sum() == 1 and recovered(x, hidden).all()


@pytest.mark.parametrize(
    ("shape", "seed"), [((6, 4), 1), ((5, 7), 2), ((4, 3, 5), 3), ((3, 4, 2, 3), 4), ((8, 2, 6), 5)]
)
def test_no_suppressed_cell_can_be_recovered(shape: tuple[int, ...], seed: int) -> None:
    rng = np.random.default_rng(seed)
    inner = rng.poisson(rng.uniform(3, 15), size=shape) * (rng.random(shape) > 0.15)
    x = table(inner)
    hidden = S.suppress(x)
    assert (hidden | ~S.primary(x)).all(), "every cell of 1-9 is suppressed"
    published = x[~hidden]
    assert ((published == 0) | (published >= S.THRESHOLD)).all()
    assert not recovered(x, hidden).any(), "a suppressed cell follows from the published ones"
    low, high = S.intervals(x, hidden)
    true = x[hidden]
    assert ((low <= true + 1e-6) & (true <= high + 1e-6)).all()
    assert (high - low >= S.PROTECTION - 1e-6).all(), "a suppressed cell is bounded too tightly"


def test_a_small_margin_is_protected_too() -> None:
    """A region with 6 people in all: its total is primary, and so are its cells."""
    x = table(np.array([[2, 4], [30, 41], [25, 33]]))
    hidden = S.suppress(x)
    assert hidden[0, -1] and hidden[0, 0] and hidden[0, 1]
    assert not recovered(x, hidden).any()
    low, high = S.intervals(x, hidden)
    assert (high - low >= S.PROTECTION - 1e-6).all()


def test_a_table_without_small_cells_is_published_whole() -> None:
    x = table(np.array([[20, 14], [30, 41]]))
    assert not S.suppress(x).any()


def test_cube_refuses_values_outside_the_levels() -> None:
    df = pd.DataFrame({"g": ["1", "3"], "n": [4, 5]})
    with pytest.raises(ValueError, match="outside its levels"):
        S.cube(df, ["g"], [["1", "2"]], "n")
