"""The GE suite runner: committed suites load, custom expectations catch what they should."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from etl.contracts import Contracts
from etl.errors import ContractError
from etl.validate.runner import SuiteRunner
from etl.validate.suites import build_suite, hand_written

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
        "record_key",
    ]
    # every row its own record key unless the row says otherwise
    rows = [{"record_key": f"R{i:04d}", **r} for i, r in enumerate(rows)]
    df = pd.DataFrame([{c: r.get(c) for c in cols} for r in rows])
    for c in cols:
        df[c] = df[c].astype("string") if c not in ("birth_date", "death_date", "alive") else df[c]
    df["birth_date"] = pd.to_datetime(df["birth_date"])
    df["_batch_id"] = "b1"
    df["_row_number"] = range(1, len(df) + 1)
    return df


def test_every_committed_suite_loads(contracts: Contracts, settings) -> None:  # type: ignore[no-untyped-def]
    for name, table in contracts.tables.items():
        suite = build_suite(table, settings.expectations_dir, settings.schemas_dir / "reference")
        assert suite["name"] == name
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
        hand_written(tmp_path, "person")
    assert hand_written(tmp_path, "legal_entity") == []  # no JSON: the suite is the YAML's alone


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


# ---------------------------------------------------------------- suites built from the contracts
@pytest.mark.parametrize("engine", ["compiled", "ge"])
def test_a_person_batch_with_null_or_repeated_keys_is_quarantined(
    contracts: Contracts, settings, engine: str
) -> None:  # type: ignore[no-untyped-def]
    """person.keys ([record_key]) are enforced: not null, unique within the batch (they
    were never checked: a batch with every key null loaded without a word)."""
    runner = SuiteRunner(
        settings.expectations_dir, contracts.tables["person"], contracts.sources["ps_hukou"], engine=engine
    )
    person = {"name": "张三", "gender": "1", "birth_date": "1980-01-01"}
    every_key_null = _person_frame([{**person, "record_key": None} for _ in range(3)])
    failures, _ = runner.validate_rows(every_key_null)
    assert sorted(zip(failures["position"], failures["reason"], strict=True)) == [
        (0, "missing_required"),
        (1, "missing_required"),
        (2, "missing_required"),
    ]
    repeated = _person_frame([{**person, "record_key": k} for k in ("P1", "P2", "P1", "P3", "P1")])
    failures, _ = runner.validate_rows(repeated)
    assert sorted(zip(failures["position"], failures["reason"], strict=True)) == [
        (0, "duplicate_key"),
        (2, "duplicate_key"),
        (4, "duplicate_key"),
    ]
    # a person without a resident ID is no key failure: persons without one reach staging
    no_id, _ = runner.validate_rows(_person_frame([{**person, "resident_id": None}]))
    assert no_id.empty


def test_keys_become_uniqueness_and_not_null(contracts: Contracts, settings) -> None:  # type: ignore[no-untyped-def]
    for name, table in contracts.tables.items():
        suite = build_suite(table, settings.expectations_dir, settings.schemas_dir / "reference")
        exps = suite["expectations"]
        unique = [e for e in exps if e["meta"]["reason"] == "duplicate_key"]
        assert len(unique) == 1, name
        if len(table.keys) == 1:
            assert unique[0]["type"] == "expect_column_values_to_be_unique"
            assert unique[0]["kwargs"] == {"column": table.keys[0]}
        else:
            assert unique[0]["type"] == "expect_compound_columns_to_be_unique"
            assert unique[0]["kwargs"] == {"column_list": table.keys}
        not_null = {
            e["kwargs"]["column"]
            for e in exps
            if e["type"] == "expect_column_values_to_not_be_null" and e["meta"]["level"] == "row"
        }
        assert set(table.keys) <= not_null, name
        # every generated expectation names the YAML it comes from
        assert all(
            e["meta"]["from"].startswith(f"schemas/shared/{name}.yml") for e in exps if "from" in e["meta"]
        )


def test_accepted_values_are_the_code_list_not_a_copy(contracts: Contracts, settings) -> None:  # type: ignore[no-untyped-def]
    suite = build_suite(
        contracts.tables["person"], settings.expectations_dir, settings.schemas_dir / "reference"
    )
    sets = {
        e["kwargs"]["column"]: e["kwargs"]["value_set"]
        for e in suite["expectations"]
        if "value_set" in e["kwargs"]
    }
    reference = settings.schemas_dir / "reference"
    gender_codes = [line.split(",")[0] for line in (reference / "gender.csv").read_text().splitlines()[1:]]
    assert sets["gender"] == gender_codes
    assert sets["marital_status"] == ["10", "20", "30", "40", "90"]  # 21-23 have parent 20
    assert len(sets["household_region"]) > 3000


def test_a_column_check_in_the_json_suite_is_refused(tmp_path: Path) -> None:
    (tmp_path / "person.json").write_text(
        json.dumps(
            {
                "name": "person",
                "expectations": [
                    {
                        "type": "expect_column_values_to_be_in_set",
                        "kwargs": {"column": "gender", "value_set": ["1", "2"]},
                        "meta": {"level": "row", "reason": "invalid_code"},
                    }
                ],
            }
        )
    )
    with pytest.raises(ContractError) as info:
        hand_written(tmp_path, "person")
    assert info.value.key == "expectations[0]"
    assert "declare it beside the column in schemas/shared/person.yml" in info.value.problem


def test_write_suites_writes_the_full_suites(contracts: Contracts, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from etl.validate.suites import write_suites

    reference = settings.schemas_dir / "reference"
    paths = write_suites(contracts.tables, settings.expectations_dir, reference, tmp_path / "suites")
    assert sorted(p.stem for p in paths) == sorted(contracts.tables)
    for p in paths:
        written = json.loads(p.read_text(encoding="utf-8"))
        assert written == build_suite(contracts.tables[p.stem], settings.expectations_dir, reference)
    with pytest.raises(ContractError, match="hand-written parts"):
        write_suites(contracts.tables, settings.expectations_dir, reference, settings.expectations_dir)
