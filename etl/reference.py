"""Reference data under schemas/reference/: the one home of every code list.

Each code list is one CSV file named after the list (gender.csv, ethnicity.csv,
marital_status.csv, entity_type.csv, entity_status.csv, industry.csv,
regions.csv). Normalization, the validation suites (accepted_values checks in
schemas/shared) and the demo generator all read them through this module; no
list is repeated in code. Columns, all text:

- code: the code a column holds (required);
- name: its name in the standard (required);
- aliases: other delivered spellings of it, separated by "|" (optional);
- keywords: words that identify it inside a longer delivered name, separated by
  "|" (optional; the longest keyword found wins, ties go to the earlier row);
- parent: for a sub-code the column records as its parent code (optional; e.g.
  GB/T 2261.2 21 初婚 is recorded as 20 已婚). A code with a parent is accepted on
  input but is not a value of the column.

regions.csv is the exception that is generated, by this module, from
python-stdnum's ``stdnum/cn/loc.dat`` (a copy of the Wikipedia tables of GB/T
2260 codes with their validity years), so runtime never depends on rebuilding it:

    .venv/bin/python -m etl.reference      # rewrites schemas/reference/regions.csv

Codes whose current name carries an end year (``[-2010]崇文区``) are abolished
and left out. Its further columns:

- level: province | prefecture | county
- province, prefecture: names of the enclosing divisions ("" when none)
- valid_from: first year the code was in use (0 = before the tables start);
  an 18-digit resident ID whose birth year precedes it fails stdnum's check
- placeholder: True for grouping rows that are not places (市辖区, 县,
  省直辖县级行政区划 ...), which no person lives in
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from etl.errors import ContractError

if TYPE_CHECKING:  # pandas is imported where a list is read: contracts load at DAG parse time
    import pandas as pd

_ENTRY = re.compile(r"^\[(\d*)-(\d*)\](.*)$")
_PLACEHOLDERS = (
    "市辖区",
    "县",
    "省直辖县级行政区划",
    "自治区直辖县级行政区划",
    "省直辖行政单位",
    "省直辖县级行政单位",
)


def _loc_dat() -> Path:
    return Path(str(resources.files("stdnum") / "cn" / "loc.dat"))


def build_regions(loc_dat: Path | None = None) -> pd.DataFrame:
    """Parse loc.dat into one row per current division code (see module doc)."""
    import pandas as pd

    rows: list[dict[str, object]] = []
    province_code = ""
    for raw in (loc_dat or _loc_dat()).read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        if not raw.startswith(" "):
            province_code = raw.split(" ", 1)[0]
            continue
        suffix, rest = raw.strip().split(" ", 1)
        value = rest.split('"')[1]
        entries = [_ENTRY.match(part) for part in value.split(",")]
        last = entries[-1]
        if last is not None and last.group(2):
            continue  # abolished
        name = last.group(3) if last is not None else value.split(",")[-1]
        valid_from = _valid_from(entries)
        code = province_code + suffix
        level = "province" if suffix == "0000" else "prefecture" if suffix.endswith("00") else "county"
        rows.append({"code": code, "name": name, "level": level, "valid_from": valid_from})
    df = pd.DataFrame(rows)
    names = dict(zip(df["code"], df["name"], strict=True))
    df["province"] = [names.get(c[:2] + "0000", "") for c in df["code"]]
    df["prefecture"] = [
        names.get(c[:4] + "00", "") if lvl == "county" else (n if lvl == "prefecture" else "")
        for c, n, lvl in zip(df["code"], df["name"], df["level"], strict=True)
    ]
    df["placeholder"] = df["name"].isin(_PLACEHOLDERS)
    df["province"] = df["province"].str.replace(r"^\[\d*-\d*\]", "", regex=True)
    return df[["code", "name", "level", "province", "prefecture", "valid_from", "placeholder"]]


def _valid_from(entries: list[re.Match[str] | None]) -> int:
    """First year of the contiguous validity period that reaches today (0 = always).

    "[1983-1987]城区,[2003-]吴兴区" -> 2003: stdnum rejects an ID born 1990 there.
    """
    last = entries[-1]
    if last is None or not last.group(1):
        return 0
    start = int(last.group(1))
    for entry in reversed(entries[:-1]):
        if entry is None:
            return 0
        end = int(entry.group(2)) if entry.group(2) else 9999
        if end < start - 1:
            break
        start = int(entry.group(1)) if entry.group(1) else 0
        if start == 0:
            break
    return start


def reference_dir(project_dir: Path) -> Path:
    return project_dir / "schemas" / "reference"


def write_reference(project_dir: Path) -> list[Path]:
    """(Re)write schemas/reference/regions.csv of project_dir from stdnum's loc.dat.

    The small code lists (gender.csv, ethnicity.csv ...) are data kept by hand in
    schemas/reference/, not generated: they have no copy in code to write them from."""
    from etl.publish.csvfile import write_csv

    out = reference_dir(project_dir)
    out.mkdir(parents=True, exist_ok=True)
    regions = out / "regions.csv"
    write_csv(build_regions(), regions, audience="programs")
    return [regions]


@lru_cache(maxsize=4)
def _regions_cached(path: str) -> pd.DataFrame:
    import pandas as pd

    return pd.read_csv(
        path, dtype={"code": str, "name": str, "province": str, "prefecture": str}, keep_default_na=False
    )


def load_regions(project_dir: Path) -> pd.DataFrame:
    """schemas/reference/regions.csv as a DataFrame (cached; do not mutate)."""
    return _regions_cached(str(reference_dir(project_dir) / "regions.csv"))


def code_list_names(directory: Path) -> list[str]:
    """The code lists of a reference folder: the stems of its CSV files."""
    return sorted(p.stem for p in directory.glob("*.csv"))


@lru_cache(maxsize=64)
def _list_cached(path: str, version: tuple[int, int]) -> pd.DataFrame:
    import pandas as pd

    df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    missing = {"code", "name"} - set(df.columns)
    if missing:
        raise ContractError(
            path,
            "(header)",
            f"a code list needs the columns code and name; missing {', '.join(sorted(missing))}",
        )
    df = df.apply(lambda s: s.str.strip())
    blank = df.index[df["code"] == ""]
    if len(blank):
        raise ContractError(path, f"line {int(blank[0]) + 2}", "empty code")
    dupes = df["code"][df["code"].duplicated()]
    if len(dupes):
        raise ContractError(path, "code", f"duplicate code {dupes.iloc[0]!r}")
    for col in ("aliases", "keywords", "parent"):
        if col not in df.columns:
            df[col] = ""
    orphans = sorted(set(df["parent"]) - set(df["code"]) - {""})
    if orphans:
        raise ContractError(path, "parent", f"parent code(s) not in the list: {', '.join(orphans)}")
    return df


def code_list(directory: Path, name: str) -> pd.DataFrame:
    """One code list (code, name, aliases, keywords, parent; all text, stripped).

    Raises ContractError naming the file when the list does not exist or is malformed.
    The frame is cached per file version: do not mutate it."""
    path = directory / f"{name}.csv"
    try:
        stat = path.stat()
    except FileNotFoundError:
        known = ", ".join(code_list_names(directory)) or "none"
        raise ContractError(
            str(path), "(file)", f"no code list {name!r} in {directory}; known: {known}"
        ) from None
    return _list_cached(str(path), (stat.st_mtime_ns, stat.st_size))


def codes(directory: Path, name: str) -> list[str]:
    """The values a column holding this list may take: its codes without a parent, in file order."""
    df = code_list(directory, name)
    return df.loc[df["parent"] == "", "code"].tolist()


def spellings(directory: Path, name: str) -> dict[str, str]:
    """Every delivered spelling of the list (code, name, aliases) -> the code recorded
    (the parent's for a sub-code). An earlier row wins a spelling two rows share."""
    df = code_list(directory, name)
    out: dict[str, str] = {}
    for code, label, aliases, parent in zip(df["code"], df["name"], df["aliases"], df["parent"], strict=True):
        for spelling in [code, label, *aliases.split("|")]:
            if spelling.strip():
                out.setdefault(spelling.strip(), parent or code)
    return out


def keywords(directory: Path, name: str) -> list[tuple[str, str]]:
    """(keyword, code) pairs of the list, longest keyword first, ties in file order."""
    df = code_list(directory, name)
    pairs = [
        (word.strip(), parent or code)
        for code, words, parent in zip(df["code"], df["keywords"], df["parent"], strict=True)
        for word in words.split("|")
        if word.strip()
    ]
    return sorted(pairs, key=lambda p: -len(p[0]))  # stable: ties keep file order


if __name__ == "__main__":  # pragma: no cover
    from etl.config import get_settings

    for p in write_reference(get_settings().project_dir):
        print(p)
