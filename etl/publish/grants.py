"""Sharing grants (schemas/sharing.yml): which department may read which columns, and why.

    departments:
      civil_affairs:
        name: 民政部门
        grants:
          - table: core.person          # core.<t> (golden records) or staging.<t>
            columns: [household_region, name, birth_date]
            purpose: 最低生活保障资格核查    # required when any granted column is conditional
            joinable: [resident_id]     # shared as a keyed pseudonym, never raw

Checked against the column categories of the shared contracts: a not_shared column, a
conditional column without a purpose, an L3/L4 column granted raw whose contract declares no
mask (a share shows L3/L4 values only masked or as pseudonyms), an unknown table or column, a joinable column not
among the table's columns, is a ContractError naming the file, the key path and the problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from etl.contracts import SharedTable, _loc, _read_yaml
from etl.errors import ContractError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Grant(_Strict):
    table: str = Field(pattern=r"^(core|staging)\.[a-z][a-z0-9_]*$")
    columns: list[str] = Field(default_factory=list)
    purpose: str | None = Field(None, min_length=1)
    joinable: list[str] = Field(default_factory=list)

    @property
    def layer(self) -> Literal["core", "staging"]:
        return "core" if self.table.startswith("core.") else "staging"

    @property
    def table_name(self) -> str:
        return self.table.split(".", 1)[1]


class Department(_Strict):
    name: str = Field(min_length=1)
    grants: list[Grant] = Field(min_length=1)


class Sharing(_Strict):
    departments: dict[str, Department] = Field(default_factory=dict)


def _check(path: Path, sharing: Sharing, tables: dict[str, SharedTable]) -> None:
    for dept, d in sharing.departments.items():
        for i, g in enumerate(d.grants):
            where = f"departments.{dept}.grants[{i}]"
            table = tables.get(g.table_name)
            if table is None:
                raise ContractError(str(path), f"{where}.table", f"unknown table {g.table_name!r}")
            if not g.columns and not g.joinable:
                raise ContractError(str(path), f"{where}.columns", "grants nothing")
            for key in ("columns", "joinable"):
                for j, name in enumerate(getattr(g, key)):
                    at = f"{where}.{key}[{j}]"
                    if name not in table.column_names:
                        raise ContractError(str(path), at, f"{name!r} is not a column of {table.name}")
                    col = table.column(name)
                    if col.sharing == "not_shared":
                        raise ContractError(str(path), at, f"{table.name}.{name} is not_shared")
                    if key == "columns" and col.security_level in ("L3", "L4") and col.mask == "none":
                        raise ContractError(
                            str(path),
                            at,
                            f"{table.name}.{name} is {col.security_level} with mask none: a share never "
                            "shows it raw (declare a mask in its contract, or grant it as joinable)",
                        )
                    if col.sharing == "conditional" and not g.purpose:
                        raise ContractError(
                            str(path), at, f"{table.name}.{name} is conditional: the grant needs a purpose"
                        )
            both = set(g.columns) & set(g.joinable)
            if both:
                raise ContractError(
                    str(path), f"{where}.joinable", f"also granted raw: {', '.join(sorted(both))}"
                )


def load_sharing(schemas_dir: Path, tables: dict[str, SharedTable]) -> Sharing:
    """schemas/sharing.yml checked against the shared tables; no file means no grants."""
    path = schemas_dir / "sharing.yml"
    if not path.exists():
        return Sharing()
    try:
        sharing = Sharing.model_validate(_read_yaml(path))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ContractError(str(path), _loc(dict(first)), first["msg"]) from exc
    _check(path, sharing, tables)
    return sharing
