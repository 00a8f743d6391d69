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


# ---------------------------------------------------------------- tables of organisations
def people_axis(x: np.ndarray, axis: int, persons: list[bool]) -> np.ndarray:
    return S.people_along(x.shape, axis, np.array(persons))


@pytest.mark.parametrize(("shape", "seed"), [((6, 4), 11), ((5, 3, 4), 12), ((9, 5), 13)])
def test_only_cells_of_people_are_primary_and_none_is_recovered(shape: tuple[int, ...], seed: int) -> None:
    """Entity types along the last axis, its first category natural persons (individual
    businesses): their small cells are hidden and stay hidden through every total; small
    cells of the other types (companies) are published unless protection needs them."""
    rng = np.random.default_rng(seed)
    inner = rng.poisson(rng.uniform(2, 8), size=shape) * (rng.random(shape) > 0.2)
    x = table(inner)
    persons = [True] + [False] * (shape[-1] - 1)
    people = people_axis(x, x.ndim - 1, persons)
    hidden = S.suppress(x, people=people)
    small = S.primary(x)
    assert (hidden | ~(small & people)).all(), "every person cell of 1-9 is suppressed"
    assert (small & ~people & ~hidden).any(), "some organisation cells of 1-9 are published"
    assert not recovered(x, hidden).any()
    low, high = S.intervals(x, hidden)
    assert (high - low >= S.PROTECTION - 1e-6).all()


def test_a_type_total_made_of_people_only_is_hidden_with_them() -> None:
    """A row whose only entities are 3 individual businesses: publishing its total would give
    the hidden person cell away (the company cells beside it are known zeros)."""
    x = table(np.array([[3, 0, 0], [12, 30, 7], [15, 22, 9]]))
    hidden = S.suppress(x, people=people_axis(x, 1, [True, False, False]))
    assert hidden[0, 0] and hidden[0, -1]
    assert not hidden[1, 2] and x[1, 2] == 7, "a company cell of 7 is published"
    assert not recovered(x, hidden).any()


def test_people_along_names_one_flag_per_category() -> None:
    with pytest.raises(ValueError, match="has 3 categories"):
        S.people_along((4, 3), 0, np.array([True, False]))


# ---------------------------------------------------------------- linked tables
def linked(tables: list[np.ndarray], hidden: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """What a reader recovers of the hidden cells of linked tables taken together: the exact
    ones (null space of the joint system) and each one's interval width (linear programming)."""
    a = S.linked_equations([t.shape for t in tables])
    values = np.concatenate([t.ravel() for t in tables])
    mask = np.concatenate([h.ravel() for h in hidden])
    basis = null_space(a.toarray()[:, mask])
    exact = np.ones(int(mask.sum()), dtype=bool) if basis.size == 0 else np.all(np.abs(basis) < 1e-9, axis=1)
    low, high = S.intervals_of(a, values, mask)
    return exact, high - low


def test_the_linked_equations_hold_and_share_the_grand_total() -> None:
    rng = np.random.default_rng(4)
    inner = rng.integers(0, 9, (5, 4, 3, 2))
    t1, t2 = table(inner.sum(axis=(2, 3))), table(inner.sum(axis=(0, 1)))
    a = S.linked_equations([t1.shape, t2.shape])
    assert not (a @ np.concatenate([t1.ravel(), t2.ravel()])).any()
    t2[-1, -1] += 1
    assert (a @ np.concatenate([t1.ravel(), t2.ravel()])).any(), "unequal grand totals break it"


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_no_cell_of_linked_tables_is_recovered_by_differencing_them(seed: int) -> None:
    """Region x status (organisations: no primary) and industry x type (people along type),
    margins of one register: each protected with the shared grand total fixed; the reader
    combines both tables (the grand total, the margins) and recovers nothing."""
    rng = np.random.default_rng(seed)
    register = rng.poisson(0.3, size=(7, 4, 6, 3)) * (rng.random((7, 4, 6, 3)) > 0.3)
    t1, t2 = table(register.sum(axis=(2, 3))), table(register.sum(axis=(0, 1)))  # industry x type
    people = people_axis(t2, 1, [True, False, False])
    h1, h2 = S.suppress_linked([t1, t2], people=[np.zeros(t1.shape, dtype=bool), people])
    assert not h1.any() and h2.any() and not h2[-1, -1], "the grand total stays published"
    exact, width = linked([t1, t2], [h1, h2])
    assert not exact.any(), "a suppressed cell follows from the linked tables"
    assert (width >= S.PROTECTION - 1e-6).all(), "a suppressed cell is bounded too tightly"


def test_a_grand_total_hidden_in_one_linked_table_is_read_off_the_other() -> None:
    """Why the shared grand total is fixed: protected on its own, this table's one admissible
    hypercube hides its grand total, which the other table publishes, and the joint system
    then gives the small cell away. Protected as linked tables, the grand total is hidden in
    both, and protected in each."""
    t1 = table(np.array([[40, 22], [31, 14]]))  # organisations, published whole
    t2 = table(np.array([[2, 0], [0, 105]]))  # 2 people in a row and column of their own
    alone = S.suppress(t2)
    assert alone[-1, -1], "protected alone, the grand total is hidden"
    assert not recovered(t2, alone).any(), "and the table by itself gives nothing away"
    exact, _ = linked([t1, t2], [np.zeros(t1.shape, dtype=bool), alone])
    assert exact.any(), "the other table's grand total recovers it"
    with pytest.raises(S.Unprotectable, match="keeps the fixed cells"):
        S.suppress(t2, fixed=S.grand_total(t2.shape))
    h1, h2 = S.suppress_linked([t1, t2])
    assert h1[-1, -1] and h2[-1, -1] and not h1[:-1, :-1].all()
    exact, width = linked([t1, t2], [h1, h2])
    assert not exact.any() and (width >= S.PROTECTION - 1e-6).all()


@pytest.mark.parametrize("seed", [32, 33, 35, 36])
def test_linked_tables_too_thin_for_a_fixed_total_still_recover_nothing(seed: int) -> None:
    """A sparse register (a few dozen entities): some person cell needs the grand total, which
    is then hidden in both tables; the joint attack still recovers nothing."""
    rng = np.random.default_rng(seed)
    register = rng.poisson(0.08, size=(8, 5, 7, 4))
    t1, t2 = table(register.sum(axis=(2, 3))), table(register.sum(axis=(0, 1)))
    people = [None, people_axis(t2, 1, [True, False, False, True])]
    hidden = S.suppress_linked([t1, t2], people=people)
    assert hidden[0][-1, -1] and hidden[1][-1, -1], "the grand total is hidden in both tables"
    assert all((h | ~S.primary(t, people=q)).all() for t, h, q in zip([t1, t2], hidden, people, strict=True))
    exact, width = linked([t1, t2], hidden)
    assert not exact.any(), "a suppressed cell follows from the linked tables"
    assert (width >= S.PROTECTION - 1e-6).all(), "a suppressed cell is bounded too tightly"
