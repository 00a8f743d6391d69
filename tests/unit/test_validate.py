"""The GE suite runner: committed suites load, custom expectations catch what they should."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from etl.contracts import Contracts
from etl.errors import ContractError
from etl.validate.runner import SuiteRunner, load_suite

pytestmark = pytest.mark.unit

VALID_IDS = ["11010519491231002X", "110105194912310029"]  # female, valid check; second is a corrupted copy


def _person_frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    cols = [
        "resident_id",
        "name",
        "gender",
        "birth_date",
        "ethnicity",
        "household_region",
        "address",
        "phone",
        "marital_status",
        "alive",
        "death_date",
    ]
    df = pd.DataFrame([{c: r.get(c) for c in cols} for r in rows])
    for c in cols:
        df[c] = df[c].astype("string") if c not in ("birth_date", "death_date", "alive") else df[c]
    df["birth_date"] = pd.to_datetime(df["birth_date"])
    df["_batch_id"] = "b1"
    df["_row_number"] = range(1, len(df) + 1)
    return df


def test_every_committed_suite_loads(contracts: Contracts, settings) -> None:  # type: ignore[no-untyped-def]
    for table in contracts.tables:
        suite = load_suite(settings.expectations_dir, table)
        assert suite["name"] == table
        assert any(e["meta"]["level"] == "row" for e in suite["expectations"])


def test_row_level_failures_carry_reason_codes(contracts: Contracts, settings) -> None:  # type: ignore[no-untyped-def]
    runner = SuiteRunner(settings.expectations_dir, contracts.tables["person"], contracts.sources["ps_hukou"])
    df = _person_frame(
        [
            {
                "resident_id": "11010519491231002X",
                "name": "张三",
                "gender": "2",
                "birth_date": "1949-12-31",
            },  # ok
            {
                "resident_id": "110105194912310029",
                "name": "李四",
                "gender": "2",
                "birth_date": "1949-12-31",
            },  # checksum
            {
                "resident_id": "11010519491231002X",
                "name": "王五",
                "gender": "2",
                "birth_date": "1950-01-01",
            },  # birth
            {
                "resident_id": "11010519491231002X",
                "name": "赵六",
                "gender": "1",
                "birth_date": "1949-12-31",
            },  # gender
            {"resident_id": None, "name": "钱七", "gender": "9", "birth_date": "1949-12-31"},  # no ID: fine
            {
                "resident_id": "11010519491231002X",
                "name": None,
                "gender": "2",
                "birth_date": "1949-12-31",
            },  # no name
        ]
    )
    failures, summary = runner.validate_rows(df)
    got = {(int(p), r) for p, r in zip(failures["position"], failures["reason"], strict=True)}
    assert got == {
        (1, "resident_id_checksum"),
        (2, "resident_id_birth_mismatch"),
        (3, "resident_id_gender_mismatch"),
        (5, "missing_required"),
    }
    assert summary["success"] is False
    assert "unexpected_index_list" not in json.dumps(summary)


@pytest.mark.parametrize("engine", ["compiled", "ge"])
def test_batch_level_volume_and_null_rate(contracts: Contracts, settings, engine: str) -> None:  # type: ignore[no-untyped-def]
    runner = SuiteRunner(
        settings.expectations_dir, contracts.tables["person"], contracts.sources["ps_hukou"], engine=engine
    )
    cols = runner.batch_columns
    assert "resident_id" in cols and "name" in cols  # from the YAML's max_null_rate and the suite
    none = dict.fromkeys(cols, 0)
    assert runner.validate_batch(none, 100, source_rows=100, previous_rows=100).success
    assert runner.validate_batch(none, 100, source_rows=100, previous_rows=None).success
    low = runner.validate_batch(none, 100, source_rows=100, previous_rows=1000)
    assert not low.success and low.failures[0].startswith("volume: 100 rows delivered")
    assert runner.validate_batch(none, 100, source_rows=100, previous_rows=80).success  # within the band
    nulls = runner.validate_batch({**none, "resident_id": 10}, 100, source_rows=100, previous_rows=None)
    assert not nulls.success  # 10% null, the YAML allows 2%
    assert any("column resident_id is null in 10.0%" in f for f in nulls.failures)
    assert runner.validate_batch({**none, "resident_id": 2}, 100, source_rows=100, previous_rows=None).success
    # the results are GE suite results whatever the engine (Data Docs render them)
    from great_expectations.core import ExpectationSuiteValidationResult

    for r in nulls.results:
        assert ExpectationSuiteValidationResult(**r).success is False


def test_suite_must_say_level_and_reason(tmp_path: Path) -> None:
    (tmp_path / "person.json").write_text(
        json.dumps(
            {
                "name": "person",
                "expectations": [
                    {
                        "type": "expect_column_values_to_not_be_null",
                        "kwargs": {"column": "name"},
                        "meta": {"level": "row"},
                    }
                ],
            }
        )
    )
    with pytest.raises(ContractError, match=r"expectations\[0\]\.meta\.reason"):
        load_suite(tmp_path, "person")
    with pytest.raises(ContractError, match="no expectation suite"):
        load_suite(tmp_path, "legal_entity")


def test_compound_uniqueness_needs_two_columns(contracts: Contracts, tmp_path: Path) -> None:
    suite = {
        "name": "person",
        "expectations": [
            {
                "type": "expect_compound_columns_to_be_unique",
                "kwargs": {"column_list": ["resident_id"]},
                "meta": {"level": "row", "reason": "duplicate_key"},
            }
        ],
    }
    (tmp_path / "person.json").write_text(json.dumps(suite))
    with pytest.raises(ContractError, match="at least two columns"):
        SuiteRunner(tmp_path, contracts.tables["person"], contracts.sources["ps_hukou"])
