"""Open data: the datasets of schemas/open/*.yml under warehouse/open/<dataset>/.

Each dataset becomes `<dataset>.csv` (the project's CSV writer for people: UTF-8 with a BOM,
CRLF, formula-like text neutralized) and `<dataset>.parquet`, then `catalog.jsonld` describes
them all (etl.publish.dcat). An aggregate is a long table: one row per cell of the full
cross-classification and of each of its margins (a dimension's `total` row), each dimension
as its code and its name, the count, and `suppressed` (the count is empty when true);
empty cells (0) are left out. A dataset declaring linked `tables` publishes each table's cells
instead (the dimensions outside a table read `total`; the shared grand total once). Cells
that count people (all, or with `people_by` those of a natural-person code) are suppressed
under `min_cell`; suppression: etl.publish.suppression.

A folder or file under open/ that is no declared dataset (one withdrawn from schemas/open/)
is removed. Before anything is written, publishing stops (OpenDataError) when a classification finding
names a column a dataset reads, or when a published text holds a resident ID, the credit
code of an individual business or a mobile number. A file is replaced only when its bytes
change, and nothing in the files depends on the time of publishing (ages and `modified` are
taken on the data's date: the latest data date of the source), so publishing again with no
new data leaves every file as it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from etl import reference
from etl.config import Settings
from etl.contracts import Contracts, SharedTable
from etl.datetypes import as_dates
from etl.errors import GovbaseError
from etl.faults import checkpoint
from etl.publish import suppression
from etl.publish.classify import DETECTORS, Finding
from etl.publish.csvfile import write_csv
from etl.publish.openspec import Dimension, OpenDataset, OpenSpec, code_list_of, person_codes

TOTAL, TOTAL_NAME = "total", "合计"
UNKNOWN, UNKNOWN_NAME = "unknown", "未知"
#: what may never appear in open data, by the classifier's detectors
FORBIDDEN = ("resident_id", "credit_code_person", "mobile")
FORMATS = {"csv": ("CSV", "text/csv"), "parquet": ("PARQUET", "application/vnd.apache.parquet")}


class OpenDataError(GovbaseError):
    """An open dataset cannot be published (a finding on a column it reads, personal data in it)."""


@dataclass(frozen=True)
class OpenFile:
    path: Path
    format: str  # EU file-type code
    media_type: str
    byte_size: int
    sha256: str


@dataclass
class OpenResult:
    dataset: OpenDataset
    rows: int
    suppressed: int
    as_of: dt.date | None
    temporal: tuple[dt.date, dt.date] | None
    files: list[OpenFile] = field(default_factory=list)


def check_findings(spec: OpenSpec, findings: list[Finding]) -> None:
    """Stop when an open dataset reads a column whose content warrants a higher level."""
    read = {(ds.layer, ds.table_name, c): ds.name for ds in spec.datasets.values() for c in ds.read_columns}
    hits = [f for f in findings if (f.schema, f.table, f.column) in read]
    if hits:
        raise OpenDataError(
            "classification findings on columns of open datasets: "
            + "; ".join(f"{read[(f.schema, f.table, f.column)]}: {f.message()}" for f in hits)
        )


def check_content(name: str, df: pd.DataFrame) -> None:
    """No resident ID, individual business credit code or mobile number in any text cell."""
    for col in df.columns:
        if not (pd.api.types.is_string_dtype(df[col]) or pd.api.types.is_object_dtype(df[col])):
            continue
        texts = df[col].dropna().astype(str)
        for kind in FORBIDDEN:
            if texts.map(DETECTORS[kind][1]).any():
                raise OpenDataError(
                    f"open dataset {name}, column {col}: holds a {kind}; nothing was published"
                )


def _relations(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        f"{s}.{t}"
        for s, t in con.execute("select table_schema, table_name from information_schema.tables").fetchall()
    }


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> set[str]:
    return {r[0] for r in con.execute(f"describe {relation}").fetchall()}


def data_date(con: duckdb.DuckDBPyConnection, ds: OpenDataset, built: set[str]) -> dt.date | None:
    """The date of the data: the latest logical date of the staged rows behind the source."""
    history = f"core.{ds.table_name}_history"
    if ds.layer == "core" and history in built:
        sql = f"select max(valid_from)::date from {history}"
    elif f"staging.{ds.table_name}" in built and "_logical_date" in _columns(con, f"staging.{ds.table_name}"):
        sql = f"select max(_logical_date)::date from staging.{ds.table_name}"
    else:
        return None
    value = con.execute(sql).fetchall()[0][0]
    return value if isinstance(value, dt.date) else None


def _where(con: duckdb.DuckDBPyConnection, ds: OpenDataset) -> tuple[str, list[object]]:
    parts = [f.sql for f in ds.where]
    if "is_current" in _columns(con, ds.source):
        parts.append("is_current")
    return (" where " + " and ".join(parts)) if parts else "", [f.value for f in ds.where]


def _dim_sql(dim: Dimension, as_of: dt.date) -> str:
    col = f'"{dim.column}"'
    if dim.derive == "province":
        return f"substr({col}, 1, 2) || '0000'"
    if dim.derive == "age_band":
        return f"date_sub('year', cast({col} as date), date '{as_of.isoformat()}')"
    if dim.derive == "year":
        return f"cast(year({col}) as varchar)"
    return f"cast({col} as varchar)"


def _band_labels(bands: list[int]) -> list[str]:
    return [f"{lo}-{hi - 1}" for lo, hi in itertools.pairwise(bands)] + [f"{bands[-1]}+"]


def _banded(ages: pd.Series, bands: list[int]) -> pd.Series:
    labels = np.array(_band_labels(bands), dtype=object)
    a = pd.to_numeric(ages, errors="coerce")
    pos = np.searchsorted(np.array(bands), a.fillna(-1).to_numpy(), side="right") - 1
    out = pd.Series(labels[np.maximum(pos, 0)], index=ages.index, dtype=object)
    return out.where(a.notna() & (a >= 0), None)


def read_counts(con: duckdb.DuckDBPyConnection, ds: OpenDataset, as_of: dt.date) -> pd.DataFrame:
    """Counts of the source rows by the dataset's dimensions (derived), one row per combination."""
    where, params = _where(con, ds)
    dims = ", ".join(f'{_dim_sql(d, as_of)} as "{d.name}"' for d in ds.dimensions)
    df = con.execute(f"select {dims}, count(*) as n from {ds.source}{where} group by all", params).df()
    for d in ds.dimensions:
        if d.derive == "age_band":
            df[d.name] = _banded(df[d.name], d.bands or [0])
    names = [d.name for d in ds.dimensions]
    return df.astype({n: object for n in names}).groupby(names, dropna=False)["n"].sum().reset_index()


def levels(
    settings: Settings, dim: Dimension, table: SharedTable, values: pd.Series
) -> tuple[list[str], list[str]]:
    """(codes, names) of a dimension's categories in order; `unknown` last when a value is
    missing or outside the list."""
    ref = settings.schemas_dir / "reference"
    if dim.derive == "province":
        regions = reference.load_regions(settings.project_dir)
        prov = regions[regions["level"] == "province"].sort_values("code")
        codes, names = prov["code"].tolist(), prov["name"].tolist()
    elif dim.derive == "age_band":
        codes = _band_labels(dim.bands or [0])
        names = [f"{c.replace('+', '')}岁及以上" if c.endswith("+") else f"{c}岁" for c in codes]
    elif dim.derive == "year":
        codes = sorted(values.dropna().astype(str).unique())
        names = list(codes)
    else:
        lst = reference.code_list(ref, code_list_of(table.column(dim.column)) or "")
        codes, names = lst["code"].tolist(), lst["name"].tolist()
    if (values.isna() | ~values.astype(str).isin(codes)).any():
        codes, names = [*codes, UNKNOWN], [*names, UNKNOWN_NAME]
    return codes, names


def people_cells(
    settings: Settings, ds: OpenDataset, table: SharedTable, dims: list[str], codes: list[list[str]]
) -> np.ndarray | None:
    """The cells of a table over `dims` that count people (None: all of them). With
    `people_by`, the cells of a natural-person code of that dimension, or of an unknown one (a
    value outside the list may be a person); a table without that dimension counts organisations
    (its cells add up every type) and has no person cell."""
    shape = tuple(len(c) + 1 for c in codes)
    if ds.people_by is None:
        return None
    if ds.people_by not in dims:
        return np.zeros(shape, dtype=bool)
    axis = dims.index(ds.people_by)
    persons = person_codes(settings.schemas_dir / "reference", ds, table) | {UNKNOWN}
    return suppression.people_along(shape, axis, np.array([c in persons for c in codes[axis]]))


def aggregate_frame(
    settings: Settings, ds: OpenDataset, table: SharedTable, counts: pd.DataFrame
) -> pd.DataFrame:
    """The published long table of an aggregate: the cells and margins of each of its tables
    (the full cross-classification, or the linked tables: a dimension outside a table reads
    `total`; the grand total they share appears once), suppressed."""
    counts = counts.copy()
    names = [d.name for d in ds.dimensions]
    levels_of: dict[str, tuple[list[str], list[str]]] = {}
    for d in ds.dimensions:
        codes, labels = levels(settings, d, table, counts[d.name])
        counts[d.name] = counts[d.name].astype(str).where(counts[d.name].astype(str).isin(codes), UNKNOWN)
        levels_of[d.name] = (codes, labels)
    linked = len(ds.table_dims) > 1
    cubes, people = [], []
    for dims in ds.table_dims:
        sub = counts.groupby(dims, dropna=False)["n"].sum().reset_index() if dims != names else counts
        cubes.append(suppression.cube(sub, dims, [levels_of[d][0] for d in dims], "n"))
        people.append(people_cells(settings, ds, table, dims, [levels_of[d][0] for d in dims]))
    if linked:
        hiddens = suppression.suppress_linked(cubes, ds.min_cell, ds.protection, people)
    else:
        hiddens = [suppression.suppress(cubes[0], ds.min_cell, ds.protection, people[0])]
    parts = []
    for dims, x, hidden in zip(ds.table_dims, cubes, hiddens, strict=True):
        keep = np.nonzero((x != 0) | hidden)
        out = pd.DataFrame(index=range(len(keep[0])))
        for name in names:
            if name in dims:
                (codes, labels), idx = levels_of[name], keep[dims.index(name)]
                out[name] = pd.Series(np.array([*codes, TOTAL], dtype=object)[idx], dtype="string")
                out[f"{name}_name"] = pd.Series(
                    np.array([*labels, TOTAL_NAME], dtype=object)[idx], dtype="string"
                )
            else:
                out[name] = pd.Series([TOTAL] * len(out), dtype="string")
                out[f"{name}_name"] = pd.Series([TOTAL_NAME] * len(out), dtype="string")
        value = pd.array(x[keep], dtype="Int64")
        value[hidden[keep]] = pd.NA
        out[ds.count] = value
        out["suppressed"] = hidden[keep]
        parts.append(out)
    frame = pd.concat(parts, ignore_index=True)
    if linked:  # the grand total, once (each table's, published: the same count)
        frame = frame.drop_duplicates(subset=[c for n in names for c in (n, f"{n}_name")], ignore_index=True)
    return frame


def read_rows(con: duckdb.DuckDBPyConnection, ds: OpenDataset, table: SharedTable) -> pd.DataFrame:
    """The open columns of a row-level dataset: the latest delivery of each key, in key order."""
    cols = ", ".join(f'"{c}"' for c in ds.columns)
    where, params = _where(con, ds)
    present = _columns(con, ds.source)
    keys = ", ".join(f'"{k}"' for k in table.keys)
    latest = ""
    if {"_logical_date", "_batch_id", "_row_number"} <= present:
        latest = (
            f" qualify row_number() over (partition by {keys} "
            "order by _logical_date desc, _batch_id desc, _row_number desc) = 1"
        )
    sql = f"select {cols} from {ds.source}{where}{latest} order by {keys}, {cols}"
    return con.execute(sql, params).df()


def _temporal(ds: OpenDataset, df: pd.DataFrame, as_of: dt.date | None) -> tuple[dt.date, dt.date] | None:
    if ds.kind == "rows" and ds.temporal_column:
        years = pd.to_numeric(df[ds.temporal_column], errors="coerce").dropna()
        if len(years):
            return dt.date(int(years.min()), 1, 1), dt.date(int(years.max()), 12, 31)
        return None
    return (as_of, as_of) if as_of else None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def replace_if_changed(tmp: Path, target: Path) -> None:
    """Move `tmp` over `target` unless their bytes are the same (then `target` is untouched)."""
    if target.exists() and target.stat().st_size == tmp.stat().st_size and _sha256(tmp) == _sha256(target):
        tmp.unlink()
    else:
        os.replace(tmp, target)


def write_dataset(folder: Path, name: str, df: pd.DataFrame) -> list[OpenFile]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for ext, (fmt, media) in FORMATS.items():
        target = folder / f"{name}.{ext}"
        tmp = folder / f".{name}.{ext}.tmp"
        if ext == "csv":
            write_csv(df, tmp)
        else:
            df.to_parquet(tmp, index=False)
        replace_if_changed(tmp, target)
        checkpoint("publish:after_open_file")
        files.append(OpenFile(target, fmt, media, target.stat().st_size, _sha256(target)))
    return files


def withdraw(root: Path, declared: set[str]) -> list[Path]:
    """Remove what open/ holds beyond the declared datasets and the catalog (a dataset no longer
    declared, say because its table was graded important, is no longer open); returns it."""
    import shutil

    if not root.is_dir():  # nothing published yet (e.g. nothing could be staged)
        return []
    gone = [p for p in sorted(root.iterdir()) if p.name not in declared and p.name != "catalog.jsonld"]
    for p in gone:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return gone


def build_dataset(
    settings: Settings,
    con: duckdb.DuckDBPyConnection,
    ds: OpenDataset,
    table: SharedTable,
    built: set[str],
    fallback: dt.date,
) -> tuple[OpenResult, pd.DataFrame]:
    """One dataset's published frame (checked for personal data) and its description."""
    as_of = data_date(con, ds, built) or fallback
    if ds.kind == "rows":
        # a contract date stays a DATE in the Parquet (DuckDB hands DATE over as datetime64)
        df = as_dates(read_rows(con, ds, table), [c for c in ds.columns if table.column(c).type == "date"])
    else:
        df = aggregate_frame(settings, ds, table, read_counts(con, ds, as_of))
    check_content(ds.name, df)
    hidden = int(df["suppressed"].sum()) if ds.kind == "aggregate" else 0
    return OpenResult(ds, len(df), hidden, as_of, _temporal(ds, df, as_of)), df


def build_open(
    settings: Settings, contracts: Contracts, spec: OpenSpec, findings: list[Finding], logical_date: str
) -> list[OpenResult]:
    """Publish every declared open dataset and the catalog (module docstring). A dataset
    whose source is not built yet (no consolidation run) is left out until it is; nothing
    is written unless every dataset passes its checks."""
    if not spec.datasets or spec.catalog is None:
        return []
    check_findings(spec, findings)
    from etl import meta
    from etl.publish import dcat

    fallback = dt.date.fromisoformat(logical_date)
    built_frames = []
    with meta.connect(settings, read_only=True) as con:
        built = _relations(con)
        for _, ds in sorted(spec.datasets.items()):
            if ds.source in built:
                table = contracts.tables[ds.table_name]
                built_frames.append(build_dataset(settings, con, ds, table, built, fallback))
    root = settings.layer("open")
    for result, df in built_frames:
        result.files = write_dataset(root / result.dataset.name, result.dataset.name, df)
    results = [r for r, _ in built_frames]
    withdraw(root, set(spec.datasets))
    if not results:  # nothing to describe yet (no source built): no catalog, which needs a dataset
        return results
    dcat.write_catalog(root / dcat.CATALOG_FILE, spec.catalog, results, settings.schemas_dir)
    return results
