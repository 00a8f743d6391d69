"""Cell suppression for open aggregates: primary (cells under `threshold`) and secondary.

A table is a k-dimensional array of counts whose last index along every axis is the total
of that axis, so it holds its interior cells and every margin (row, column, grand totals
and, in more dimensions, every sub-total). Its additivity is a set of linear equations
(`equations`), which a reader of the published cells can solve for the suppressed ones.

Primary suppression: every cell with 0 < count < threshold that counts people. A zero cell
is published (it describes nobody). By default every cell counts people; a table of
organisations passes `people`, the cells that count natural persons (say the individual
businesses along the entity-type axis; etl.publish.opendata): the others count organisations,
which the rule does not cover, but secondary suppression may still hide any cell, so a
category's total never gives its person cells away.

Secondary suppression, the hypercube method (Repsilber's GHMITER, which Tau-Argus calls
"hypercube"): for each primary cell `a`, pick for every axis d another index b_d (another
category, or the total) and suppress the 2^k corners of the hypercube spanned by a and b.
Adding +delta and -delta alternately around those corners (the same sign on a category and
its total) leaves every equation, so every published cell, unchanged: the corners cannot be
told from the published cells. The perturbation stays non-negative for
-`down` <= delta <= `up`, where `up` is the smallest corner carrying the opposite sign of
`a` and `down` the smallest carrying its sign (`a` included), so a reader can only bound `a`
by [a - down, a + up]. A hypercube is admissible when up >= 1, down >= 1 and
up + down >= `protection`; among the admissible ones the cheapest (the sum of the counts it
newly suppresses) is taken. Since every suppressed cell is a corner of such a hypercube,
no suppressed cell, primary or secondary, is determined by the published ones: neither
by the equations alone nor with non-negativity (`intervals` measures this by linear
programming; tests/unit/test_suppression.py attacks the tables that way). A primary always
has an admissible hypercube: the one whose other corners are its margins (all signs +, `up`
unbounded, `down` = a >= 1; for the grand total, its margins down to one non-empty cell).

Linked tables (a dataset published as several tables over disjoint dimensions, instead of
one sparse cross-classification) share one cell, their grand total. Each table is protected
with its grand total `fixed` (never a corner): every hypercube then moves cells of its own
table only, so it leaves every other table, and so every published cell of the dataset,
unchanged, and no table's suppressed cell follows from another's (`linked_equations` states
what a reader can combine). A primary that cannot be protected so raises Unprotectable.

A library was looked for: PyPI's Tau-Argus port (pytauargus, 0.x, released 2026-10)
carries a native solver with process-global state that its authors do not validate for
concurrent calls, so govbase keeps this short, tested algorithm instead.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import sparse

THRESHOLD = 10
#: the least width of what a reader can infer of a suppressed cell ([low, high], high - low);
#: 10 hides too much of a sparse table (the demo's population lost its grand total), 1 only
#: stops exact recovery
PROTECTION = 5


def cube(df: pd.DataFrame, dims: list[str], levels: list[list[str]], count: str) -> np.ndarray:
    """The dense table (with totals at the last index of every axis) of `df[count]` summed
    over `dims`; `levels[d]` lists the categories of dims[d] in order."""
    shape = tuple(len(lv) + 1 for lv in levels)
    x = np.zeros(shape, dtype=np.int64)
    if len(df):
        idx = []
        for d, lv in zip(dims, levels, strict=True):
            pos = pd.Index(lv).get_indexer(pd.Index(df[d].astype(str)))
            if (pos < 0).any():
                raise ValueError(f"{d}: values outside its levels: {sorted(set(df[d][pos < 0]))[:5]}")
            idx.append(pos)
        np.add.at(x, tuple(idx), df[count].to_numpy(dtype=np.int64))
    for axis in range(x.ndim):  # each axis' total, taken over the interior (and earlier totals)
        inner: list[slice | int] = [slice(None)] * x.ndim
        inner[axis] = slice(0, -1)
        total: list[slice | int] = [slice(None)] * x.ndim
        total[axis] = -1
        x[tuple(total)] = x[tuple(inner)].sum(axis=axis)
    return x


def primary(x: np.ndarray, threshold: int = THRESHOLD, people: np.ndarray | None = None) -> np.ndarray:
    """The cells of 1 to threshold - 1 (among `people`, the cells counting persons, when given)."""
    small = (x > 0) & (x < threshold)
    return small if people is None else small & np.broadcast_to(people, x.shape)


def people_along(shape: tuple[int, ...], axis: int, person_levels: np.ndarray) -> np.ndarray:
    """The cells that count people when the categories of one axis tell it: `person_levels`
    (one flag per category of `axis`, its total excluded) broadcast over the other axes; the
    axis' total holds both and is no person cell (its person part is protected through the
    person cells it adds up)."""
    flags = np.append(np.asarray(person_levels, dtype=bool), False)
    if flags.shape != (shape[axis],):
        raise ValueError(f"axis {axis} has {shape[axis] - 1} categories, not {len(flags) - 1}")
    return np.broadcast_to(flags.reshape([-1 if d == axis else 1 for d in range(len(shape))]), shape)


def _signs(b: np.ndarray, a_d: int, total: int) -> np.ndarray:
    """Sign factor of the corners taking index b along an axis: opposite to a's, unless one
    of the two is the axis total (then a category and its total move together)."""
    return np.where((b == total) | (a_d == total), 1, -1)


def _hypercubes(
    x: np.ndarray, sup: np.ndarray, a: tuple[int, ...], fixed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """For every choice of b (one other index per axis, as a grid): up, down and cost of the
    hypercube spanned by a and b, and the other indices of each axis. A hypercube with a
    corner among `fixed` (cells that must stay published) gets up = 0: never admissible."""
    k = x.ndim
    other = [np.array([i for i in range(n) if i != a[d]]) for d, n in enumerate(x.shape)]
    shape = tuple(len(o) for o in other)
    up, down, cost = np.full(shape, np.inf), np.full(shape, np.inf), np.zeros(shape)
    touches = np.zeros(shape, dtype=bool)
    factors = []
    for d in range(k):
        factors.append(
            _signs(other[d], a[d], x.shape[d] - 1).reshape([-1 if e == d else 1 for e in range(k)])
        )
    for mask in itertools.product((0, 1), repeat=k):
        ix = np.ix_(*[np.array([a[d]]) if m == 0 else other[d] for d, m in enumerate(mask)])
        value = x[ix].astype(np.float64)
        sign = np.ones([1] * k)
        for d, m in enumerate(mask):
            if m:
                sign = sign * factors[d]
        np.minimum(up, np.where(sign < 0, value, np.inf), out=up)
        np.minimum(down, np.where(sign > 0, value, np.inf), out=down)
        cost += np.where(sup[ix], 0.0, value)
        if fixed is not None:
            touches |= fixed[ix]
    up[touches] = 0
    return up, down, cost, other


class Unprotectable(ValueError):
    """A primary cell has no admissible hypercube that leaves the fixed cells published."""


def _protect(
    x: np.ndarray,
    sup: np.ndarray,
    a: tuple[int, ...],
    protection: int,
    fixed: np.ndarray | None = None,
    least_down: int = 1,
) -> None:
    """Suppress the cheapest admissible hypercube of primary cell `a` (in place); `least_down`:
    how far every corner of a's sign must be able to go down (1, or more for a shared total)."""
    up, down, cost, other = _hypercubes(x, sup, a, fixed)
    ok = (up >= 1) & (down >= 1) & (up + down >= protection)
    if least_down > 1 and (ok & (down >= least_down)).any():
        ok &= down >= least_down
    elif least_down > 1 and ok.any():  # a table too thin for it: the one that goes down furthest
        ok &= down >= down[ok].max()
    if not ok.any():  # without fixed cells, cannot happen for a non-empty primary (module docstring)
        raise Unprotectable(
            f"no admissible hypercube for cell {a} (value {int(x[a])}) that keeps the fixed cells"
        )
    best = np.unravel_index(int(np.argmin(np.where(ok, cost, np.inf))), cost.shape)
    b = [int(other[d][best[d]]) for d in range(x.ndim)]
    for corner in itertools.product(*zip(a, b, strict=True)):
        sup[corner] = True


def suppress(
    x: np.ndarray,
    threshold: int = THRESHOLD,
    protection: int = PROTECTION,
    people: np.ndarray | None = None,
    fixed: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean array of the cells to suppress (primary and secondary) in table `x`; `people`
    (the cells that count persons, default all) limits the primary cells; `fixed` cells stay
    published (the grand total a linked table shares with the others), Unprotectable when a
    primary cannot be protected without one."""
    first = primary(x, threshold, people)
    if fixed is not None and (first & fixed).any():
        raise Unprotectable("a cell that must stay published is itself under the threshold")
    sup = first.copy()
    for a in zip(*np.nonzero(first), strict=True):
        _protect(x, sup, tuple(int(i) for i in a), protection, fixed)
    return sup


def suppress_linked(
    tables: list[np.ndarray],
    threshold: int = THRESHOLD,
    protection: int = PROTECTION,
    people: list[np.ndarray | None] | None = None,
) -> list[np.ndarray]:
    """The cells to suppress in linked tables that share only their grand total (module
    docstring). First each table with its grand total fixed (published); when a table cannot
    protect a primary so, the grand total is hidden in every table, each table's primaries are
    protected with it, and each table protects the grand total itself by a hypercube whose
    corners can all go down by `protection` (all its corners move with the total, upwards
    without bound): so whatever one table's hypercube moves the grand total by, every other
    table can follow, and the tables combined bound no hidden cell tighter than one alone."""
    people = people or [None] * len(tables)
    try:
        return [
            suppress(x, threshold, protection, p, fixed=grand_total(x.shape))
            for x, p in zip(tables, people, strict=True)
        ]
    except Unprotectable:
        pass
    out = []
    for x, p in zip(tables, people, strict=True):
        first = primary(x, threshold, p)
        total = tuple(n - 1 for n in x.shape)
        sup = first.copy()
        sup[total] = True
        for a in zip(*np.nonzero(first), strict=True):
            _protect(x, sup, tuple(int(i) for i in a), protection)
        if x[total] > 0:
            _protect(x, sup, total, protection, least_down=protection)
        out.append(sup)
    return out


def grand_total(shape: tuple[int, ...]) -> np.ndarray:
    """The mask of a table's grand total (the one cell linked tables without a common
    dimension share)."""
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(-1 for _ in shape)] = True
    return mask


def equations(shape: tuple[int, ...]) -> sparse.csr_matrix:
    """The additivity of a table of `shape` as rows of A with A @ x.ravel() == 0: along
    every axis, for every position of the other axes, total - sum(categories) = 0."""
    index = np.arange(int(np.prod(shape))).reshape(shape)
    rows, cols, vals = [], [], []
    r = 0
    for axis, n in enumerate(shape):
        moved = np.moveaxis(index, axis, -1).reshape(-1, n)
        for line in moved:
            rows += [r] * n
            cols += line.tolist()
            vals += [-1] * (n - 1) + [1]
            r += 1
    return sparse.csr_matrix((vals, (rows, cols)), shape=(r, index.size))


def linked_equations(shapes: list[tuple[int, ...]]) -> sparse.csr_matrix:
    """The additivity of linked tables that share only their grand total, over their cells
    laid end to end (each in C order): every table's own equations, and each grand total equal
    to the first's. What a reader of several tables of one dataset can combine."""
    blocks = [equations(s) for s in shapes]
    a = sparse.block_diag(blocks, format="csr")
    sizes = [int(np.prod(s)) for s in shapes]
    ends = np.cumsum(sizes) - 1  # each table's grand total is its last cell
    rows = [sparse.csr_matrix(([1, -1], ([0, 0], [ends[0], e])), shape=(1, a.shape[1])) for e in ends[1:]]
    return sparse.vstack([a, *rows], format="csr")


def intervals(x: np.ndarray, sup: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What a reader of the published cells can know of each suppressed one: its least and
    greatest value under the additivity equations and non-negativity (linear programming,
    HiGHS). Returns (low, high) for the suppressed cells in C order."""
    return intervals_of(equations(x.shape), x.ravel(), sup.ravel())


def intervals_of(
    a: sparse.csr_matrix, values: np.ndarray, hidden: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`intervals` for any system A @ values == 0 (linked tables: `linked_equations`)."""
    from scipy.optimize import linprog

    a_hidden, a_known = a[:, hidden], a[:, ~hidden]
    rhs = -(a_known @ values[~hidden])
    used = np.asarray(abs(a_hidden).sum(axis=1)).ravel() > 0
    a_eq, b_eq = a_hidden[used], rhs[used]
    n = int(hidden.sum())
    low, high = np.zeros(n), np.zeros(n)
    for i in range(n):
        c = np.zeros(n)
        c[i] = 1
        for sense, out in ((1, low), (-1, high)):
            res = linprog(sense * c, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
            out[i] = sense * res.fun if res.status == 0 else (np.inf if sense < 0 else 0)
    return low, high
