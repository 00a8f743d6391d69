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
