"""The one CSV writer of govbase: every CSV the project writes goes through `write_csv`.

Files for people (rejection reports, quarantine exports, later open data) are opened in
spreadsheets, which execute a cell beginning with `=`, `+`, `-` or `@` as a formula
(`=HYPERLINK(...)`, `=cmd|' /C calc'!A0`). So, following OWASP's rule on CSV injection,
a text cell beginning with one of those, or with a tab or carriage return, is written
with a single quote in front: the spreadsheet shows it as text. Numbers stay numbers:
numeric columns are written as they are, and so is text that is exactly a decimal
number (`-12.5`, `+86`), which a spreadsheet reads as that number and never as a formula.
Leading spaces and the full-width forms (＝＋－＠) are looked through, since some
spreadsheets trim or fold them. Files for people are UTF-8 with a BOM, so Excel opens
the Chinese text intact.

Files for programs (the reference code lists under schemas/reference/) are plain UTF-8
and are never altered: a cell that would need the quote is refused with an error instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pandas as pd

from etl.errors import GovbaseError

#: a text beginning with one of these (after any leading spaces) is a formula to a spreadsheet
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
_FORMULA = re.compile("^[ \u3000]*[" + re.escape("".join(FORMULA_PREFIXES)) + "]")
_NUMBER = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")


def _is_text(values: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values)


def formula_cells(values: pd.Series) -> pd.Series:
    """Boolean Series: which cells of `values` a spreadsheet would take for a formula."""
    if not _is_text(values):
        return pd.Series(False, index=values.index)
    s = values.astype("string")
    hit = s.str.contains(_FORMULA, na=False) & ~s.str.fullmatch(_NUMBER, na=False)
    return hit.astype(bool)


def neutralize(values: pd.Series) -> pd.Series:
    """`values` with every formula-like text cell prefixed by a single quote."""
    hit = formula_cells(values)
    if not hit.any():
        return values
    s = values.astype("string")
    return ("'" + s).where(hit, s)


def neutralize_frame(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with its text columns and its header neutralized."""
    out = df.apply(neutralize) if len(df.columns) else df.copy()
    header = pd.Series([str(c) for c in df.columns], dtype="string")
    out.columns = neutralize(header).tolist()
    return out


def write_csv(df: pd.DataFrame, path: Path, *, audience: Literal["people", "programs"] = "people") -> Path:
    """Write `df` to `path` without its index.

    people: formula-like text neutralized (module docstring), UTF-8 with a BOM.
    programs: written as is in plain UTF-8 with "\\n" line ends; a formula-like text cell (or
    one holding a CR) raises GovbaseError naming the file, column and row instead of being altered."""
    if audience == "people":
        # CRLF line ends (RFC 4180): the writer then quotes every cell holding a CR or LF, which
        # with "\n" alone it would not do for a bare CR, and a spreadsheet would split the row
        return _write(neutralize_frame(df), path, encoding="utf-8-sig", lineterminator="\r\n")
    for col in df.columns:
        hit = formula_cells(df[col])
        if _is_text(df[col]):  # a bare CR would go unquoted with "\n" line ends
            hit |= df[col].astype("string").str.contains("\r", regex=False, na=False).astype(bool)
        if hit.any():
            row = int(hit.to_numpy().argmax())
            raise GovbaseError(
                f"{path}: column {col}, row {row + 1}: {df[col].iloc[row]!r} begins like a "
                "spreadsheet formula or holds a CR; refusing to write it into a file read by programs"
            )
    return _write(df, path, encoding="utf-8", lineterminator="\n")


def _write(df: pd.DataFrame, path: Path, **options: str) -> Path:
    try:
        df.to_csv(path, index=False, **options)  # type: ignore[call-overload]
    except OSError as exc:  # read-only or full file system, no permission: say which file
        raise GovbaseError(f"{path}: cannot write the CSV file: {exc.strerror or exc}") from exc
    return path
