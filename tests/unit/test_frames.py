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


def test_duck_df_types_as_duckdb_df() -> None:
    import duckdb

    from etl.frames import duck_df

    con = duckdb.connect()
    q = """select i, 'x' || i as s, case when i % 3 = 0 then null else 's' || i end as s_null,
                  date '2020-01-01' + i::int as d, case when i % 4 = 0 then null else date '1990-05-06' end as d_null,
                  timestamp '2026-11-01 08:00:00' + to_seconds(i) as ts,
                  case when i % 5 = 0 then null else i end as i_null,
                  case when i % 6 = 0 then null else i::int end as i32_null, i::smallint as i16, i % 2 = 0 as b,
                  case when i % 7 = 0 then null else i % 2 = 0 end as b_null, i * 0.5 as f,
                  case when i % 2 = 0 then null else '张' end as zh
           from range(200) t(i) order by i"""
    want = con.execute(q).df()
    got = duck_df(con, q)
    assert [str(t) for t in got.dtypes] == [str(t) for t in want.dtypes]
    pd.testing.assert_frame_equal(got, want)
    empty = duck_df(con, q + " limit 0")
    assert list(empty.columns) == list(want.columns) and len(empty) == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("keys_dtype", ["str", "string", "object"])
@pytest.mark.parametrize("values_dtype", ["str", "string", "float64", "Int64"])
def test_lookup_agrees_with_series_map(seed: int, keys_dtype: str, values_dtype: str) -> None:
    from etl.frames import lookup

    rng = np.random.default_rng(seed)
    pool = np.array([f"人|{i}" for i in range(600)], dtype=object)
    index = pd.Index(rng.choice(pool, 400, replace=False), dtype=keys_dtype)
    raw = rng.integers(0, 50, 400)
    if values_dtype in ("str", "string"):
        values = pd.Series([f"v{v}" for v in raw], dtype=values_dtype)
    else:
        values = pd.Series(raw, dtype=values_dtype)
    values = values.where(rng.random(400) > 0.1)  # nulls among the values
    table = pd.Series(values.array, index=index)
    keys = pd.Series(rng.choice(pool, 3000), dtype=keys_dtype, name="k", index=rng.permutation(3000))
    keys[rng.random(3000) < 0.05] = None  # a null key finds nothing
    want = keys.map(table)
    got = lookup(keys, table)
    pd.testing.assert_series_equal(got, want)
    assert want.notna().any() and want.isna().any()
    pd.testing.assert_series_equal(lookup(keys.iloc[:0], table), keys.iloc[:0].map(table))
    pd.testing.assert_series_equal(lookup(keys, table.iloc[:0]), keys.map(table.iloc[:0]))


@pytest.mark.parametrize("dtype", ["str", "string"])
def test_lookup_of_the_index_itself_and_a_duplicated_index(dtype: str) -> None:
    from etl.frames import lookup

    rng = np.random.default_rng(5)
    keys = pd.Series(sorted(f"r{i:05d}" for i in rng.permutation(2000)), dtype=dtype, name="rec_id")
    table = pd.Series([f"h{v}" for v in rng.integers(0, 9, 2000)], index=pd.Index(keys), dtype=dtype)
    table[::7] = None
    for k in (keys, keys.iloc[::-1], keys.set_axis(range(5, 2005))):  # aligned, reversed, another index
        pd.testing.assert_series_equal(lookup(k, table), k.map(table))
    unsorted = table.iloc[rng.permutation(2000)]  # unique, not sorted
    pd.testing.assert_series_equal(lookup(keys, unsorted), keys.map(unsorted))
    twice = pd.concat([table, table.iloc[:1]])
    with pytest.raises(Exception):  # noqa: B017 - pandas raises InvalidIndexError, lookup ValueError
        keys.map(twice)
    with pytest.raises(ValueError):
        lookup(keys, twice)
