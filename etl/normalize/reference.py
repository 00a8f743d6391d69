"""Reference code lists under <project>/schemas/reference, read once per process.

The files are written by etl.reference (regions.csv from stdnum's loc.dat, the
small code lists); this module only reads them:

- regions.csv (code, name, level, ...): a region code must be listed. When the
  file is absent, region validation degrades to "6 digits with a valid province
  prefix" (PROVINCE_PREFIXES).
- ethnicity.csv (code, name), entity_status.csv / entity_type.csv (code, name,
  aliases separated by "|"). When absent, the same lists from etl.reference.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from etl import reference as ref
from etl.config import get_settings

#: GB/T 2260 province-level prefixes (incl. Taiwan 71, Hong Kong 81, Macao 82).
PROVINCE_PREFIXES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    ]
)


def reference_dir() -> Path:
    return get_settings().project_dir / "schemas" / "reference"


def _read(name: str, directory: str | None) -> pd.DataFrame | None:
    path = Path(directory or reference_dir()) / name
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


@lru_cache(maxsize=4)
def region_codes(directory: str | None = None) -> frozenset[str] | None:
    """The set of current 6-digit division codes, or None when regions.csv is absent."""
    df = _read("regions.csv", directory)
    if df is None or "code" not in df.columns:
        return None
    codes = df["code"].str.strip()
    return frozenset(codes[codes.str.fullmatch(r"[0-9]{6}")])


@lru_cache(maxsize=4)
def ethnicity_codes(directory: str | None = None) -> dict[str, str]:
    """code -> name of the GB/T 3304 ethnic groups."""
    df = _read("ethnicity.csv", directory)
    if df is None or not {"code", "name"} <= set(df.columns):
        return dict(ref.ETHNICITIES)
    return {c.strip().zfill(2): n.strip() for c, n in zip(df["code"], df["name"], strict=True)}


def _aliases(name: str, fallback: list[tuple[str, str, str]], directory: str | None) -> dict[str, str]:
    df = _read(name, directory)
    rows = (
        list(zip(df["code"], df["name"], df["aliases"], strict=True))
        if df is not None and {"code", "name", "aliases"} <= set(df.columns)
        else fallback
    )
    out: dict[str, str] = {}
    for code, label, aliases in rows:
        for alias in [code, label, *str(aliases).split("|")]:
            if alias.strip():
                out[alias.strip()] = code.strip()
    return out


@lru_cache(maxsize=4)
def entity_status_aliases(directory: str | None = None) -> dict[str, str]:
    """delivered name (or the code itself) -> status code (active, revoked, cancelled, moved_out)."""
    return _aliases("entity_status.csv", ref.ENTITY_STATUSES, directory)


@lru_cache(maxsize=4)
def entity_type_aliases(directory: str | None = None) -> dict[str, str]:
    """delivered name (or the code itself) -> entity type code (limited_company, joint_stock ...)."""
    return _aliases("entity_type.csv", ref.ENTITY_TYPES, directory)
