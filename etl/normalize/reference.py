"""The code lists normalization reads, from <project>/schemas/reference (etl.reference).

Every list is read from its CSV file (code, name, aliases, keywords, parent); there
is no copy in code and no fallback: a missing file is a ContractError naming it.
`directory` defaults to the project's schemas/reference (Settings.project_dir), the
folder the validation suites read their accepted values from too.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from etl import reference as ref
from etl.config import get_settings


def reference_dir() -> Path:
    return get_settings().project_dir / "schemas" / "reference"


def _dir(directory: str | Path | None) -> Path:
    return Path(directory) if directory is not None else reference_dir()


def region_codes(directory: str | Path | None = None) -> frozenset[str]:
    """The set of current 6-digit division codes (regions.csv)."""
    return frozenset(ref.codes(_dir(directory), "regions"))


def codes(name: str, directory: str | Path | None = None) -> list[str]:
    """The codes a column holding list `name` may take (etl.reference.codes)."""
    return ref.codes(_dir(directory), name)


def spellings(name: str, directory: str | Path | None = None) -> dict[str, str]:
    """delivered spelling (code, name or alias) -> code, for list `name`."""
    return ref.spellings(_dir(directory), name)


def keywords(name: str, directory: str | Path | None = None) -> list[tuple[str, str]]:
    """(keyword, code) of list `name`, longest first."""
    return ref.keywords(_dir(directory), name)


def names(name: str, directory: str | Path | None = None) -> dict[str, str]:
    """code -> name of list `name` (codes without a parent)."""
    df = ref.code_list(_dir(directory), name)
    top = df[df["parent"] == ""]
    return dict(zip(top["code"], top["name"], strict=True))


def code_list(name: str, directory: str | Path | None = None) -> pd.DataFrame:
    """List `name` as read from its CSV (etl.reference.code_list; do not mutate)."""
    return ref.code_list(_dir(directory), name)
