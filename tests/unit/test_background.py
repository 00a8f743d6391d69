"""The background helpers of etl.background (no files, no services)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import pytest

pytestmark = pytest.mark.unit


def test_prefetch_keeps_order_errors_and_stops_its_source() -> None:
    from etl.background import prefetch

    produced: list[int] = []

    def numbers(n: int, fail_at: int | None = None) -> Iterator[int]:
        for i in range(n):
            if i == fail_at:
                raise ValueError(f"bad item {i}")
            produced.append(i)
            yield i

    assert list(prefetch(numbers(5), "t")) == [0, 1, 2, 3, 4]
    got: list[int] = []
    with pytest.raises(ValueError, match="bad item 3"):
        for i in prefetch(numbers(9, fail_at=3), "t"):
            got.append(i)
    assert got == [0, 1, 2]  # every item before the error, then the error itself
    produced.clear()
    with closing(prefetch(numbers(100), "t")) as it:
        assert next(it) == 0
    assert produced == [0, 1]  # one item ahead, never more, and nothing after closing
