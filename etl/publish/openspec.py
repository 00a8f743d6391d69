"""Open datasets declared in YAML (schemas/open/*.yml), checked by `govbase contracts`.

    name: population_by_region_gender_age
    title: ...; description: ...; keywords: [...]; theme: SOCI   # EU data theme code
    source: core.person                 # core.<t> or staging.<t>
    kind: aggregate                     # counts by dimensions, suppressed (etl.publish.suppression)
    where: [{column: alive, equals: true}]
    dimensions:
      - {name: province, column: household_region, derive: province}   # region code -> province
      - {name: gender, column: gender}                                  # a coded column as is
      - {name: age_band, column: birth_date, derive: age_band, bands: [0, 15, 30, 45, 60, 75]}
    count: persons

    kind: rows                          # the rows themselves (latest delivery of each key)
    columns: [region_code, ...]
    temporal_column: period             # YYYY: the dataset's temporal coverage

The rules, each a ContractError naming the file and the key:
- row-level data of a table graded `important` or `core` is never opened; every column of a
  row-level dataset is open `unconditional` (or `conditional`, with the dataset's `condition`);
- a dimension is categorical: a column checked against a code list (accepted_values), or a
  date banded by age or year, or a region code taken to its province; never an L4 column;
- `min_cell` (default 10) cannot go under 10, and every aggregate is suppressed: counts of
  organisations include individual businesses, who are people.
`schemas/open/catalog.yml` describes the catalog itself (publisher, contact, licence, base URL).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from etl.contracts import Column, SharedTable, _loc, _read_yaml
from etl.errors import ContractError

CATALOG_FILE = "catalog.yml"
MIN_CELL = 10
PROTECTION = 5  # etl.publish.suppression.PROTECTION
_NAME = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Filter(_Strict):
    column: str
    equals: bool | int | str


class Dimension(_Strict):
    name: str = Field(pattern=_NAME)
    column: str
    derive: Literal["province", "age_band", "year"] | None = None
    bands: list[int] | None = Field(None, min_length=2, description="age_band: lower bounds, from 0")


class OpenDataset(_Strict):
    name: str = Field(pattern=_NAME)
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    keywords: list[str] = Field(min_length=1)
    theme: str = Field(pattern=r"^[A-Z]{4}$")
    source: str = Field(pattern=r"^(core|staging)\.[a-z][a-z0-9_]*$")
    kind: Literal["aggregate", "rows"]
    where: list[Filter] = Field(default_factory=list)
    dimensions: list[Dimension] = Field(default_factory=list)
    count: str = Field("count", pattern=_NAME)
    min_cell: int = MIN_CELL
    protection: int = Field(
        PROTECTION, ge=1, description="least width of a suppressed cell's inferable range"
    )
    columns: list[str] = Field(default_factory=list)
    temporal_column: str | None = None
    condition: str | None = Field(None, min_length=1, description="terms of a conditional open column")
    license: str | None = None

    @property
    def layer(self) -> str:
        return self.source.split(".", 1)[0]

    @property
    def table_name(self) -> str:
        return self.source.split(".", 1)[1]

    @property
    def read_columns(self) -> list[str]:
        """Every source column the dataset reads (what the classifier gate looks at)."""
        return [*self.columns, *(d.column for d in self.dimensions), *(f.column for f in self.where)]

    @property
    def output_columns(self) -> list[str]:
        """The columns of the published files."""
        if self.kind == "rows":
            return list(self.columns)
        labels = [c for d in self.dimensions for c in (d.name, f"{d.name}_name")]
        return [*labels, self.count, "suppressed"]


class Party(_Strict):
    name: str = Field(min_length=1)
    url: str | None = None
    email: str | None = None


class CatalogInfo(_Strict):
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    publisher: Party
    contact: Party
    base_url: str = Field(pattern=r"^https?://.+/$")
    license: str = Field(pattern=r"^https?://")
    language: list[str] = Field(min_length=1)
    spatial: str = Field(pattern=r"^[A-Z]{3}$")


class OpenSpec(_Strict):
    catalog: CatalogInfo | None = None
    datasets: dict[str, OpenDataset] = Field(default_factory=dict)


def code_list_of(col: Column) -> str | None:
    for c in col.checks:
        if c.kind == "accepted_values":
            return c.code_list
    return None


def _check_dimension(path: Path, at: str, dim: Dimension, col: Column) -> None:
    if col.security_level == "L4":
        raise ContractError(str(path), at, f"{col.name} is L4: never a dimension of open data")
    wanted = {"province": ("string",), "age_band": ("date",), "year": ("date",), None: ("string",)}
    if col.type not in wanted[dim.derive]:
        raise ContractError(
            str(path), at, f"{col.name} is {col.type}; derive {dim.derive} needs {wanted[dim.derive]}"
        )
    codes = code_list_of(col)
    if dim.derive == "province" and codes != "regions":
        raise ContractError(
            str(path), at, f"{col.name} is not checked against regions: no province to derive"
        )
    if dim.derive is None and codes is None:
        raise ContractError(
            str(path), at, f"{col.name} is not coded (no accepted_values check): not a category"
        )
    if dim.derive == "age_band":
        b = dim.bands or []
        if not b or b[0] != 0 or any(x >= y for x, y in itertools.pairwise(b)):
            raise ContractError(
                str(path), f"{at}.bands", "age bands are ascending lower bounds starting at 0"
            )


def _check_rows(path: Path, ds: OpenDataset, table: SharedTable) -> None:
    if table.data_grade in ("important", "core"):
        raise ContractError(
            str(path), "kind", f"{table.name} is graded {table.data_grade}: its rows are never opened"
        )
    if not ds.columns:
        raise ContractError(str(path), "columns", "a row-level dataset names its columns")
    for j, name in enumerate(ds.columns):
        col = table.column(name)
        if col.open == "not_open":
            raise ContractError(str(path), f"columns[{j}]", f"{table.name}.{name} is not_open")
        if col.open == "conditional" and not ds.condition:
            raise ContractError(
                str(path), f"columns[{j}]", f"{table.name}.{name} is conditional: state a condition"
            )
    if ds.temporal_column and ds.temporal_column not in ds.columns:
        raise ContractError(str(path), "temporal_column", f"{ds.temporal_column!r} is not among the columns")


def _check_aggregate(path: Path, ds: OpenDataset, table: SharedTable) -> None:
    if not ds.dimensions:
        raise ContractError(str(path), "dimensions", "an aggregate needs dimensions")
    if ds.columns:
        raise ContractError(str(path), "columns", "an aggregate publishes counts, not columns")
    if ds.min_cell < MIN_CELL:
        raise ContractError(str(path), "min_cell", f"cells under {MIN_CELL} are always suppressed")
    names = [d.name for d in ds.dimensions]
    if len(set(names)) != len(names) or ds.count in names:
        raise ContractError(str(path), "dimensions", "dimension and count names must differ")
    for i, dim in enumerate(ds.dimensions):
        _check_dimension(path, f"dimensions[{i}]", dim, table.column(dim.column))


def check_dataset(path: Path, ds: OpenDataset, tables: dict[str, SharedTable]) -> None:
    table = tables.get(ds.table_name)
    if table is None:
        raise ContractError(str(path), "source", f"unknown table {ds.table_name!r}")
    if ds.name != path.stem:
        raise ContractError(str(path), "name", f"{ds.name!r} differs from the file name {path.stem!r}")
    for key in ("columns", "where", "dimensions"):
        for j, item in enumerate(getattr(ds, key)):
            name = item if isinstance(item, str) else item.column
            if name not in table.column_names:
                raise ContractError(str(path), f"{key}[{j}]", f"{name!r} is not a column of {table.name}")
    (_check_rows if ds.kind == "rows" else _check_aggregate)(path, ds, table)


def _validate(path: Path, model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate(_read_yaml(path))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ContractError(str(path), _loc(dict(first)), first["msg"]) from exc


def load_open(schemas_dir: Path, tables: dict[str, SharedTable]) -> OpenSpec:
    """schemas/open/*.yml checked against the shared tables; no folder means nothing opened."""
    folder = schemas_dir / "open"
    catalog, datasets = None, {}
    for path in sorted(folder.glob("*.yml")):
        if path.name == CATALOG_FILE:
            catalog = _validate(path, CatalogInfo)
            continue
        ds = _validate(path, OpenDataset)
        assert isinstance(ds, OpenDataset)
        check_dataset(path, ds, tables)
        datasets[ds.name] = ds
    if datasets and catalog is None:
        raise ContractError(
            str(folder / CATALOG_FILE), "(file)", "open datasets need the catalog's description"
        )
    assert catalog is None or isinstance(catalog, CatalogInfo)
    return OpenSpec(catalog=catalog, datasets=datasets)
