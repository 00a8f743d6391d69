"""The open dataset contracts (schemas/open/*.yml): what `govbase contracts` refuses."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from etl.contracts import Contracts
from etl.errors import ContractError
from etl.publish.openspec import load_open

pytestmark = pytest.mark.unit

PROJECT_OPEN = Path(__file__).resolve().parents[2] / "schemas" / "open"


def test_the_project_declares_the_three_datasets(contracts: Contracts) -> None:
    spec = load_open(PROJECT_OPEN.parent, contracts.tables)
    assert set(spec.datasets) >= {
        "population_by_region_gender_age",
        "legal_entities_by_region_industry_type_status",
        "economic_indicators",
    }
    assert spec.catalog is not None and spec.catalog.base_url.endswith("/")


def _write(tmp_path: Path, name: str, data: dict[str, Any]) -> Path:
    folder = tmp_path / "open"
    folder.mkdir(exist_ok=True)
    shutil.copy(PROJECT_OPEN / "catalog.yml", folder / "catalog.yml")
    (folder / f"{name}.yml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return tmp_path


BASE = {"title": "t", "description": "d", "keywords": ["k"], "theme": "SOCI"}
ROWS = {**BASE, "kind": "rows"}
AGG = {**BASE, "kind": "aggregate", "source": "core.person", "count": "persons"}


@pytest.mark.parametrize(
    ("data", "key", "problem"),
    [
        (
            {**ROWS, "source": "core.person", "columns": ["gender"]},
            "kind",
            "graded important: its rows are never opened",
        ),
        ({**ROWS, "source": "staging.employment", "columns": ["insurance_type"]}, "kind", "never opened"),
        (
            {**ROWS, "source": "core.legal_entity", "columns": ["name", "phone"]},
            "columns[1]",
            "phone is not_open",
        ),
        ({**ROWS, "source": "core.legal_entity", "columns": ["nope"]}, "columns[0]", "not a column"),
        (
            {**AGG, "dimensions": [{"name": "e", "column": "ethnicity"}]},
            "dimensions[0]",
            "L4: never a dimension",
        ),
        ({**AGG, "dimensions": [{"name": "n", "column": "name"}]}, "dimensions[0]", "not coded"),
        ({**AGG, "dimensions": [{"name": "g", "column": "gender"}], "min_cell": 5}, "min_cell", "under 10"),
        (
            {
                **AGG,
                "dimensions": [{"name": "a", "column": "birth_date", "derive": "age_band", "bands": [5, 10]}],
            },
            "dimensions[0].bands",
            "starting at 0",
        ),
        (
            {**AGG, "dimensions": [{"name": "p", "column": "gender", "derive": "province"}]},
            "dimensions[0]",
            "regions",
        ),
        ({**AGG, "source": "core.nope", "dimensions": []}, "source", "unknown table"),
    ],
)
def test_a_dataset_breaking_a_rule_is_a_contract_error(
    tmp_path: Path, contracts: Contracts, data: dict[str, Any], key: str, problem: str
) -> None:
    schemas = _write(tmp_path, "ds", {"name": "ds", **data})
    with pytest.raises(ContractError) as err:
        load_open(schemas, contracts.tables)
    assert err.value.key == key and problem in err.value.problem and "ds.yml" in err.value.file


def test_datasets_without_a_catalog_description_are_refused(tmp_path: Path, contracts: Contracts) -> None:
    schemas = _write(tmp_path, "ds", {"name": "ds", **AGG, "dimensions": [{"name": "g", "column": "gender"}]})
    (schemas / "open" / "catalog.yml").unlink()
    with pytest.raises(ContractError, match="catalog"):
        load_open(schemas, contracts.tables)


def test_withdraw_before_anything_was_opened_removes_nothing(tmp_path: Path) -> None:
    """A publish on a home where nothing could be staged has no open/ yet: not a traceback."""
    from etl.publish.opendata import withdraw

    assert withdraw(tmp_path / "open", {"population"}) == []
    (tmp_path / "open" / "old").mkdir(parents=True)
    assert withdraw(tmp_path / "open", {"population"}) == [tmp_path / "open" / "old"]


LE = {**BASE, "kind": "aggregate", "source": "core.legal_entity", "count": "entities"}
LE_DIMS = [
    {"name": "province", "column": "region", "derive": "province"},
    {"name": "industry", "column": "industry"},
    {"name": "entity_type", "column": "entity_type"},
]


@pytest.mark.parametrize(
    ("data", "key", "problem"),
    [
        (
            {**AGG, "dimensions": [{"name": "g", "column": "gender"}], "people_by": "g"},
            "people_by",
            "natural_person",
        ),
        ({**LE, "dimensions": LE_DIMS, "people_by": "status"}, "people_by", "not a dimension"),
        ({**LE, "dimensions": LE_DIMS, "people_by": "province"}, "people_by", "not a coded column"),
        (
            {**ROWS, "source": "staging.economic_indicator", "columns": ["region_code"], "people_by": "x"},
            "people_by",
            "no cells to suppress",
        ),
        (
            {**LE, "dimensions": LE_DIMS, "tables": [["province", "industry", "entity_type"]]},
            "tables",
            "two or more",
        ),
        (
            {**LE, "dimensions": LE_DIMS, "tables": [["province", "industry"], ["industry", "entity_type"]]},
            "tables",
            "exactly one linked table",
        ),
        ({**LE, "dimensions": LE_DIMS, "tables": [["province"], ["industry"]]}, "tables", "exactly one"),
    ],
    ids=["gender-no-flags", "not-a-dimension", "derived", "rows", "one-table", "overlap", "missing-dim"],
)
def test_people_and_linked_tables_breaking_a_rule_are_contract_errors(
    tmp_path: Path, contracts: Contracts, data: dict[str, Any], key: str, problem: str
) -> None:
    schemas = _write(tmp_path, "ds", {"name": "ds", **data})
    shutil.copytree(PROJECT_OPEN.parent / "reference", schemas / "reference")
    with pytest.raises(ContractError) as err:
        load_open(schemas, contracts.tables)
    assert err.value.key == key and problem in err.value.problem and "ds.yml" in err.value.file


def test_the_entity_types_tell_people_from_organisations(contracts: Contracts) -> None:
    from etl.publish.openspec import person_codes

    spec = load_open(PROJECT_OPEN.parent, contracts.tables)
    ds = spec.datasets["legal_entities_by_region_industry_type_status"]
    codes = person_codes(PROJECT_OPEN.parent / "reference", ds, contracts.tables["legal_entity"])
    assert codes == {"individual_business", "sole_proprietorship"}
    assert ds.table_dims == [["province", "status"], ["industry", "entity_type"]]


def test_a_filter_has_one_of_equals_and_not_equals(tmp_path: Path, contracts: Contracts) -> None:
    where = [{"column": "alive", "equals": True, "not_equals": False}]
    schemas = _write(
        tmp_path,
        "ds",
        {"name": "ds", **AGG, "where": where, "dimensions": [{"name": "g", "column": "gender"}]},
    )
    with pytest.raises(ContractError, match="exactly one of equals, not_equals"):
        load_open(schemas, contracts.tables)
    spec = load_open(PROJECT_OPEN.parent, contracts.tables)
    living = spec.datasets["population_by_region_gender_age"].where
    assert [(f.sql, f.value) for f in living] == [('"alive" is distinct from ?', False)]
