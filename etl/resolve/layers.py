"""A core table as a base file plus a chain of delta layers (etl.resolve.store).

An incremental run that patches a core table (etl.resolve.store.Patch) writes only the
patch: its dropped keys and its added rows as two small Parquet files, a layer over the
table's base file. The table's content is then the base's rows whose key no layer drops,
plus each layer's added rows whose key no later layer drops (`layered_sql`): what
applying the patches one after the other to the base gives. `relation` gives the SQL of
a table's content for a FROM clause, whether it is one file (a Path) or layered
(`Layered`), so the steps that read the previous run's tables in DuckDB read either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from etl.meta import sql_literal


def layered_sql(base: str, key: Sequence[str], layers: Sequence[tuple[str, str]]) -> str:
    """A SELECT of the base file `base` with the (drop keys, added rows) files `layers`
    applied in order: the base's rows anti-joined with every layer's drop keys, union each
    layer's added rows anti-joined with the later layers' drop keys (equal, not null: as a
    patch drops). Paths as given (relative ones resolve through DuckDB's file_search_path)."""
    using = ", ".join(f'"{k}"' for k in key)
    cols = ", ".join(f'"{k}"' for k in key)
    sources = [base, *(a for _, a in layers)]
    parts = []
    for i, src in enumerate(sources):
        later = [d for d, _ in layers[i:]]
        part = f"select * from read_parquet({sql_literal(src)})"
        if later:
            files = ", ".join(sql_literal(d) for d in later)
            part += f" anti join (select {cols} from read_parquet([{files}])) using ({using})"
        parts.append(f"({part})")
    return " union all by name ".join(parts) if len(parts) > 1 else parts[0][1:-1]


@dataclass(frozen=True)
class Layered:
    """core.<table> as its base file and the (drop, add) files of its layers, in order
    (absolute paths), all keyed by `key`."""

    base: Path
    key: tuple[str, ...]
    layers: tuple[tuple[Path, Path], ...]

    def sql(self) -> str:
        return layered_sql(str(self.base), self.key, [(str(d), str(a)) for d, a in self.layers])


def relation(src: Path | str | Layered) -> str:
    """`src` (a Parquet file or a layered table) for a FROM clause."""
    if isinstance(src, Layered):
        return f"({src.sql()})" if src.layers else f"read_parquet({sql_literal(str(src.base))})"
    return f"read_parquet({sql_literal(str(src))})"


def base_file(src: Path | str | Layered) -> Path:
    """The file holding `src`'s columns (a layer's files have the same ones)."""
    return src.base if isinstance(src, Layered) else Path(src)


__all__ = ["Layered", "base_file", "layered_sql", "relation"]
