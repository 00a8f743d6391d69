"""The unit tier's promise, checked after every unit test: small in-code fixtures, so no
DuckDB file and no generated demo landing under the test's own folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from etl.config import Settings


@pytest.fixture(autouse=True)
def _unit_tier_writes_no_catalog(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    roots = []
    for name in ("tmp_path", "home", "settings"):
        value = request.node.funcargs.get(name)
        if isinstance(value, Settings):
            roots.append(value.home)
        elif isinstance(value, Path):
            roots.append(value)
    for root in roots:
        catalogs = sorted(root.rglob("*.duckdb"))
        assert not catalogs, (
            f"a unit test wrote a DuckDB file ({catalogs[0]}): it belongs in tests/integration"
        )
        truth = sorted(root.rglob("landing/_truth"))
        assert not truth, f"a unit test generated demo data ({truth[0]}): it belongs in tests/integration"
