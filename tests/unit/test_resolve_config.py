"""schemas/resolve/*.yml: the shipped settings load; bad ones fail with file, key and problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from etl.config import get_settings
from etl.contracts import Contracts
from etl.errors import ContractError
from etl.resolve.config import load_resolve_config, load_resolve_configs, splink_settings

pytestmark = pytest.mark.unit

SCHEMAS = get_settings().schemas_dir


def _person() -> dict[str, Any]:
    return yaml.safe_load((SCHEMAS / "resolve" / "person.yml").read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    p = tmp_path / "person.yml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return p


def test_shipped_settings_load_and_build_splink_settings(contracts: Contracts) -> None:
    configs = load_resolve_configs(SCHEMAS, contracts.tables)
    assert set(configs) == {"person", "legal_entity"}
    for cfg in configs.values():
        built = splink_settings(cfg).get_settings("duckdb")
        assert [c.output_column_name for c in built.comparisons] == [c.output_name for c in cfg.comparisons]


@pytest.mark.parametrize(
    ("mutate", "key", "problem"),
    [
        (
            lambda d: d["comparisons"][2].update(column="shoe_size"),
            "comparisons[2].column",
            "unknown column 'shoe_size'",
        ),
        (
            lambda d: d["comparisons"][0]["levels"][1].update(sql="nickname_l = nickname_r"),
            "comparisons[0].levels[1].sql",
            "unknown column(s) nickname",
        ),
        (lambda d: d["blocking_rules"].append(["postcode"]), "blocking_rules[7]", "lack: postcode"),
        (lambda d: d["thresholds"].update(match=1.5), "thresholds", "strictly between 0 and 1"),
        (lambda d: d["thresholds"].update(review=0.999), "thresholds", "must not exceed match"),
        (
            lambda d: d["comparisons"][2].update(kind="Telepathy"),
            "comparisons[2].kind",
            "not a splink comparison",
        ),
        (
            lambda d: d["inputs"][1]["columns"].update(name="nom"),
            "inputs[1].columns.name",
            "'nom' is not a column",
        ),
        (lambda d: d["features"].update(x="upper(nickname)"), "features.x", "unknown column(s) nickname"),
        (
            lambda d: d["comparisons"][0]["levels"][0].update(is_null=False),
            "comparisons[0].levels",
            "needs one null level",
        ),
    ],
)
def test_bad_settings_name_file_key_and_problem(
    tmp_path: Path, contracts: Contracts, mutate: Any, key: str, problem: str
) -> None:
    data = _person()
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(ContractError) as err:
        load_resolve_config(path, contracts.tables)
    assert err.value.file == str(path)
    assert err.value.key == key
    assert problem in err.value.problem


def test_govbase_contracts_checks_the_resolve_settings(tmp_path: Path) -> None:
    import shutil

    from etl.contracts import load_contracts

    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, schemas)
    data = _person()
    data["blocking_rules"].append(["postcode"])
    (schemas / "resolve" / "person.yml").write_text(
        yaml.safe_dump(data, allow_unicode=True), encoding="utf-8"
    )
    with pytest.raises(ContractError, match=r"person\.yml: blocking_rules\[7\]: .*postcode"):
        load_contracts(schemas)
