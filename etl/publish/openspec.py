"""Open datasets declared in YAML (schemas/open/*.yml), checked by `govbase contracts`.

    name: population_by_region_gender_age
    title: ...; description: ...; keywords: [...]; theme: SOCI   # EU data theme code
    source: core.person                 # core.<t> or staging.<t>
    kind: aggregate                     # counts by dimensions, suppressed (etl.publish.suppression)
    where: [{column: alive, not_equals: false}]   # or equals: ...
    dimensions:
      - {name: province, column: household_region, derive: province}   # region code -> province
      - {name: gender, column: gender}                                  # a coded column as is
      - {name: age_band, column: birth_date, derive: age_band, bands: [0, 15, 30, 45, 60, 75]}
    count: persons
    # people_by: entity_type            # a table of organisations: the coded dimension whose code
                                        # list's natural_person column tells which cells count people

    kind: rows                          # the rows themselves (latest delivery of each key)
    columns: [region_code, ...]
    temporal_column: period             # YYYY: the dataset's temporal coverage

The rules, each a ContractError naming the file and the key:
- row-level data of a table graded `important` or `core` is never opened; every column of a
  row-level dataset is open `unconditional` (or `conditional`, with the dataset's `condition`);
- a dimension is categorical: a column checked against a code list (accepted_values), or a
  date banded by age or year, or a region code taken to its province; never an L4 column;
- `min_cell` (default 10) cannot go under 10. Every cell counts people and is suppressed
  under it, unless `people_by` names a coded dimension whose code list marks each code
  `natural_person` true or false (entity types: individual businesses and sole
  proprietorships are people, companies are not): then only the cells of a natural-person
  code (or of an unknown one) count people; secondary suppression still covers them all.
`schemas/open/catalog.yml` describes the catalog itself (publisher, contact, licence, base URL).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from etl import reference
from etl.contracts import Column, SharedTable, _loc, _read_yaml
from etl.errors import ContractError

CATALOG_FILE = "catalog.yml"
MIN_CELL = 10
PROTECTION = 5  # etl.publish.suppression.PROTECTION
_NAME = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Filter(_Strict):
    """`equals` keeps the rows holding the value; `not_equals` those that do not (a missing
    value included: `{column: alive, not_equals: false}` keeps everyone not recorded dead)."""

    column: str
    equals: bool | int | str | None = None
    not_equals: bool | int | str | None = None

    @model_validator(mode="after")
    def _one(self) -> Filter:
        if (self.equals is None) == (self.not_equals is None):
            raise ValueError("a filter has exactly one of equals, not_equals")
        return self

    @property
    def sql(self) -> str:
        return f'"{self.column}" = ?' if self.not_equals is None else f'"{self.column}" is distinct from ?'

    @property
    def value(self) -> bool | int | str:
        value = self.equals if self.not_equals is None else self.not_equals
        assert value is not None
        return value


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
    tables: list[list[str]] | None = Field(
        None,
        description="linked tables (dimension names, disjoint) published in place of the full cross-classification",
    )
    people_by: str | None = Field(
        None, description="the dimension whose code list's natural_person column tells people cells"
    )
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
    def table_dims(self) -> list[list[str]]:
        """The dimension names of each published table: the linked tables, or the one full one."""
        return [list(t) for t in self.tables] if self.tables else [[d.name for d in self.dimensions]]

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
    if ds.people_by is not None:
        raise ContractError(str(path), "people_by", "a row-level dataset has no cells to suppress")
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


def _check_aggregate(path: Path, ds: OpenDataset, table: SharedTable, reference_dir: Path) -> None:
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
    if ds.tables is not None:
        seen = [n for t in ds.tables for n in t]
        if len(ds.tables) < 2 or any(not t for t in ds.tables):
            raise ContractError(str(path), "tables", "linked tables are two or more non-empty tables")
        if sorted(seen) != sorted(names):
            raise ContractError(
                str(path),
                "tables",
                "every dimension is in exactly one linked table (they then share only the grand total)",
            )
    if ds.people_by is not None:
        person_codes(reference_dir, ds, table, path)


def person_codes(
    reference_dir: Path, ds: OpenDataset, table: SharedTable, path: Path | None = None
) -> set[str]:
    """The codes of `people_by` whose cells count people (natural_person true in its code list);
    a ContractError when the dimension or its code list cannot tell."""
    where = str(path or ds.name)
    dim = next((d for d in ds.dimensions if d.name == ds.people_by), None)
    if dim is None:
        raise ContractError(where, "people_by", f"{ds.people_by!r} is not a dimension of the dataset")
    codes = None if dim.derive else code_list_of(table.column(dim.column))
    if codes is None:
        raise ContractError(
            where, "people_by", f"{dim.name} is not a coded column: no code list to tell people"
        )
    df = reference.code_list(reference_dir, codes)
    flags = df["natural_person"] if "natural_person" in df.columns else None
    if flags is None or not flags.isin(["true", "false"]).all():
        raise ContractError(
            where,
            "people_by",
            f"code list {codes} does not mark every code natural_person true or false",
        )
    if (flags == "true").all():
        raise ContractError(where, "people_by", f"every code of {codes} is a natural person: drop people_by")
    return set(df.loc[flags == "true", "code"])


def check_dataset(
    path: Path, ds: OpenDataset, tables: dict[str, SharedTable], reference_dir: Path | None = None
) -> None:
    """The rules of the module docstring; `reference_dir` (default: beside the open folder of
    `path`) holds the code lists."""
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
    if ds.kind == "rows":
        _check_rows(path, ds, table)
    else:
        _check_aggregate(path, ds, table, reference_dir or path.parent.parent / "reference")


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
        check_dataset(path, ds, tables, schemas_dir / "reference")
        datasets[ds.name] = ds
    if datasets and catalog is None:
        raise ContractError(
            str(folder / CATALOG_FILE), "(file)", "open datasets need the catalog's description"
        )
    assert catalog is None or isinstance(catalog, CatalogInfo)
    return OpenSpec(catalog=catalog, datasets=datasets)
