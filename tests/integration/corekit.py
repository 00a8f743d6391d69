"""What tests/integration/test_core_patch.py and test_core_layers.py share: frames of the
shape they publish, publishing them (etl.resolve.store.publish) and reading back what
readers see (the core views, the published catalog, the files on disk against the files
meta names)."""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pandas as pd

from etl import meta
from etl.config import Settings
from etl.resolve import store
from etl.resolve.store import Patch

DATES = ("born",)


def frame(ids: Iterable[int], tag: str = "a", *, entity: str | None = None, digits: int = 4) -> pd.DataFrame:
    """Rows X<id> (`digits` wide) with an Int64, a date and a string column; with `entity`,
    first an `entity` column (a composite key entity, id)."""
    ids = list(ids)
    cols = {"entity": pd.array([entity] * len(ids), dtype="string")} if entity is not None else {}
    return pd.DataFrame(
        {
            **cols,
            "id": [f"X{i:0{digits}d}" for i in ids],
            "n": pd.array(ids, dtype="Int64"),
            "born": pd.to_datetime([f"2000-01-{1 + i % 28:02d}" for i in ids]),
            "tag": pd.array([tag] * len(ids), dtype="string"),
        }
    )


def publish(settings: Settings, run: str, tables: dict[str, pd.DataFrame | Patch]) -> None:
    with meta.connect(settings) as con:
        store.ensure(con)
        store.publish(con, settings, run, tables, sequences={}, runs=[], dates=DATES)


def _typed(con: duckdb.DuckDBPyConnection, table: str) -> tuple[list[tuple[str, str]], list[tuple]]:
    types = [(r[0], r[1]) for r in con.execute(f"describe core.{table}").fetchall()]
    return types, sorted(con.execute(f"select * from core.{table}").fetchall())


def typed_view(settings: Settings, table: str) -> tuple[list[tuple[str, str]], list[tuple]]:
    """The view core.<table>'s (column, type) and its rows, sorted."""
    with meta.connect(settings, read_only=True) as con:
        return _typed(con, table)


def view(settings: Settings, table: str) -> list[tuple]:
    return typed_view(settings, table)[1]


def typed_catalog(settings: Settings, table: str) -> tuple[list[tuple[str, str]], list[tuple]]:
    """The published catalog's core.<table>: (column, type) and its rows, sorted."""
    with duckdb.connect(str(settings.catalog_path), read_only=True) as con:
        return _typed(con, table)


def catalog(settings: Settings, table: str) -> list[tuple]:
    return typed_catalog(settings, table)[1]


def named_files(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Every core file meta names (tables, patches, layers), relative to the warehouse root."""
    named = {p for (p,) in con.execute("select path from meta.core_table").fetchall()}
    for table in ("core_patch", "core_layer"):
        named |= {
            p for r in con.execute(f"select drop_path, add_path from meta.{table}").fetchall() for p in r
        }
    return named


def files_on_disk(settings: Settings) -> set[str]:
    """Every Parquet file under warehouse/core, relative to the warehouse root."""
    return {
        p.relative_to(settings.warehouse).as_posix() for p in (settings.warehouse / "core").rglob("*.parquet")
    }
