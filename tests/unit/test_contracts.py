"""The contract loader: the committed contracts load, malformed ones fail naming file, key and problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from etl.config import get_settings
from etl.contracts import KNOWN_TRANSFORMS, load_contracts
from etl.errors import ContractError

pytestmark = pytest.mark.unit

SCHEMAS = get_settings().schemas_dir


def test_committed_contracts_load_and_cross_check() -> None:
    c = load_contracts(SCHEMAS)
    assert {"person", "legal_entity", "economic_indicator", "employment"} <= set(c.tables)
    assert len(c.sources) >= 8
    kinds = {s.kind for s in c.sources.values()}
    assert kinds == {"csv", "excel", "json", "xml", "sql", "fixed_width"}
    for s in c.sources.values():
        table = c.tables[s.table]
        for f in s.fields:
            assert f.to is None or f.to in table.column_names
            assert set(f.transforms) <= KNOWN_TRANSFORMS
    # every column carries a security level, sharing and open category
    for t in c.tables.values():
        for col in t.columns:
            assert col.security_level in {"L1", "L2", "L3", "L4"}
            assert col.description


def test_identifiers_are_highly_sensitive() -> None:
    person = load_contracts(SCHEMAS).tables["person"]
    assert person.column("resident_id").security_level == "L4"
    assert person.column("phone").mask == "phone"
    assert person.data_grade != "general"  # never opened row-level


@pytest.fixture
def schemas(tmp_path: Path) -> Path:
    dst = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, dst)
    return dst


def _edit(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


@pytest.mark.parametrize(
    ("file", "change", "key", "problem"),
    [
        ("sources/ps_hukou.yml", lambda d: d.pop("kind"), "kind", "Field required"),
        ("sources/ps_hukou.yml", lambda d: d.update(kind="parquet"), "kind", "Input should be"),
        (
            "sources/ps_hukou.yml",
            lambda d: d["fields"][0].update(transforms=["md5"]),
            "fields[0].transforms",
            "unknown transform",
        ),
        (
            "sources/ps_hukou.yml",
            lambda d: d["fields"][1].update(to="nickname"),
            "fields[1].to",
            "not a column of person",
        ),
        ("sources/ps_hukou.yml", lambda d: d.update(table="citizen"), "table", "unknown shared table"),
        (
            "sources/ps_hukou.yml",
            lambda d: d.update(location="../../etc/*.csv"),
            "(top level)",
            "inside the landing folder",
        ),
        ("sources/ps_hukou.yml", lambda d: d.update(surprise=1), "surprise", "Extra inputs"),
        ("sources/ps_hukou.yml", lambda d: d.update(name="other"), "name", "file stem"),
        (
            "sources/ps_hukou.yml",
            lambda d: d.update(name="Ps-Hukou"),
            "name",
            "source name 'Ps-Hukou' must be snake_case ascii",
        ),
        (
            "shared/person.yml",
            lambda d: d["columns"][0].update(name="Resident ID"),
            "columns[0].name",
            "column name 'Resident ID' must be snake_case ascii",
        ),
        (
            "sources/ps_hukou.yml",
            lambda d: d["fields"][0].update(trust=11),
            "fields[0].trust",
            "less than or equal",
        ),
        ("sources/samr_registry.yml", lambda d: d.pop("connection_id"), "(top level)", "needs connection_id"),
        (
            "sources/ca_assistance.yml",
            lambda d: d["fields"][0].pop("width"),
            "(top level)",
            "need start and width",
        ),
        (
            "shared/person.yml",
            lambda d: d["columns"][0].update(security_level="L5"),
            "columns[0].security_level",
            "Input should be",
        ),
        (
            "shared/person.yml",
            lambda d: d.update(keys=["citizen_no"]),
            "(top level)",
            "keys not among the columns",
        ),
        (
            "shared/person.yml",
            lambda d: d["columns"][0].pop("sharing"),
            "columns[0].sharing",
            "Field required",
        ),
    ],
)
def test_malformed_contract_names_file_key_problem(
    schemas: Path, file: str, change, key: str, problem: str
) -> None:  # type: ignore[no-untyped-def]
    path = schemas / file
    _edit(path, change)
    with pytest.raises(ContractError) as info:
        load_contracts(schemas)
    err = info.value
    assert err.file == str(path)
    assert err.key == key
    assert problem in err.problem
    assert str(path) in str(err) and key in str(err)


def test_invalid_yaml_syntax_names_line(schemas: Path) -> None:
    path = schemas / "sources" / "tax_registration.yml"
    path.write_text("name: tax_registration\nkind: [csv\n", encoding="utf-8")
    with pytest.raises(ContractError) as info:
        load_contracts(schemas)
    assert info.value.file == str(path)
    assert info.value.key.startswith("line ")
    assert "not valid YAML" in info.value.problem


@pytest.mark.parametrize(
    ("delimiter", "problem"),
    [
        (", ", "exactly one character, got ', ' (declare ','"),
        ("||", "exactly one character, got '||' (declare '|'"),
        ("", "exactly one character, got ''"),
        ("\n", "cannot separate fields"),
        ('"', "cannot separate fields"),
        ("a", "cannot separate fields"),
    ],
)
def test_delimiter_the_readers_cannot_use_is_a_contract_error(
    schemas: Path, delimiter: str, problem: str
) -> None:
    """A delimiter that would pass the check and then fail the run (", " gave a TypeError in
    the csv module) is refused when the contract loads, naming the key."""
    path = schemas / "sources" / "ps_hukou.yml"
    _edit(path, lambda d: d.update(delimiter=delimiter))
    with pytest.raises(ContractError) as info:
        load_contracts(schemas)
    assert info.value.file == str(path)
    assert info.value.key == "delimiter"
    assert problem in info.value.problem


@pytest.mark.parametrize("delimiter", [",", "\t", "|", ";", "；", " ", "\x01"])
def test_one_character_delimiters_load(schemas: Path, delimiter: str) -> None:
    path = schemas / "sources" / "ps_hukou.yml"
    _edit(path, lambda d: d.update(delimiter=delimiter))
    assert load_contracts(schemas).sources["ps_hukou"].delimiter == delimiter


# ---------------------------------------------------------------- column checks
def _checks(column: int, checks: list[object]):  # type: ignore[no-untyped-def]
    return lambda d: d["columns"][column].update(checks=checks)


@pytest.mark.parametrize(
    ("change", "key", "problem"),
    [
        (_checks(2, ["not_empty"]), "columns[2].checks[0]", "unknown check 'not_empty'"),
        (
            _checks(2, [{"accepted_values": "genders"}]),
            "columns[2].checks[0].code_list",
            "no code list 'genders'",
        ),
        (_checks(2, [{"accepted_values": None}]), "columns[2].checks[0]", "needs code_list"),
        (_checks(7, [{"pattern": "^(1[3-9]"}]), "columns[7].checks[0]", "not a regular expression"),
        (_checks(2, [{"pattern": {"regex": "^[0-9]$", "min": 1}}]), "columns[2].checks[0]", "takes no min"),
        (
            _checks(2, [{"range": {"min": 0}}]),
            "columns[2].checks",
            "range applies to decimal or integer columns, not string",
        ),
        (
            _checks(3, [{"pattern": "^19"}]),
            "columns[3].checks",
            "pattern applies to string columns, not date",
        ),
        (
            _checks(9, ["resident_id"]),
            "columns[9].checks",
            "resident_id applies to string columns, not boolean",
        ),
        (
            _checks(2, [{"not_null": {"reason": "bad_gender"}}]),
            "columns[2].checks[0]",
            "unknown reason 'bad_gender'",
        ),
        (_checks(2, [{"not_null": 1}]), "columns[2].checks[0]", "takes a mapping"),
        (_checks(2, [{"not_null": None, "resident_id": None}]), "columns[2].checks[0]", "one name"),
    ],
)
def test_malformed_column_check_names_file_key_problem(schemas: Path, change, key: str, problem: str) -> None:  # type: ignore[no-untyped-def]
    path = schemas / "shared" / "person.yml"
    _edit(path, change)
    with pytest.raises(ContractError) as info:
        load_contracts(schemas)
    assert (info.value.file, info.value.key) == (str(path), key)


def _unpivot(**change: object):  # type: ignore[no-untyped-def]
    return lambda d: d["unpivot"].update(change)


@pytest.mark.parametrize(
    ("file", "change", "key", "problem"),
    [
        # each passed the check before and then failed the run with an unexpected exception
        # (re.error, IndexError, KeyError) or could never publish a batch
        (
            "sources/stats_indicators.yml",
            _unpivot(pattern="("),
            "unpivot.pattern",
            "not a regular expression",
        ),
        ("sources/stats_indicators.yml", _unpivot(pattern="年$"), "unpivot.pattern", "needs a group"),
        (
            "sources/stats_indicators.yml",
            _unpivot(value_transforms=["md5"]),
            "unpivot.value_transforms",
            "unknown transform",
        ),
        ("sources/stats_indicators.yml", _unpivot(variable_to="value"), "unpivot", "both value"),
        (
            "sources/stats_indicators.yml",
            _unpivot(variable_to="unit"),
            "unpivot.variable_to",
            "also the `to`",
        ),
        (
            "sources/stats_indicators.yml",
            lambda d: d["fields"][0].update(to="period"),
            "unpivot.variable_to",
            "also the `to` of a field",
        ),
        (
            "sources/ps_hukou.yml",
            lambda d: d.update(max_null_rate={"name": -0.1}),
            "max_null_rate.name",
            "greater than or equal to 0",
        ),
        (
            "sources/ps_hukou.yml",
            lambda d: d.update(volume_band={"min_ratio": 3, "max_ratio": 2}),
            "volume_band",
            "no batch could pass",
        ),
    ],
)
def test_contract_the_run_would_fail_on_is_refused_at_load(
    schemas: Path, file: str, change, key: str, problem: str
) -> None:  # type: ignore[no-untyped-def]
    path = schemas / file
    _edit(path, change)
    with pytest.raises(ContractError) as info:
        load_contracts(schemas)
    assert (info.value.file, info.value.key) == (str(path), key)
    assert problem in info.value.problem


def test_range_with_min_above_max_is_a_contract_error(schemas: Path) -> None:
    path = schemas / "shared" / "employment.yml"
    _edit(path, _checks(7, [{"range": {"min": 10, "max": 1}}]))
    with pytest.raises(ContractError) as info:
        load_contracts(schemas)
    assert (info.value.file, info.value.key) == (str(path), "columns[7].checks[0]")
    assert "min 10 > max 1" in info.value.problem


def test_a_code_list_that_is_gone_is_named(schemas: Path) -> None:
    (schemas / "reference" / "marital_status.csv").unlink()
    with pytest.raises(ContractError) as info:
        load_contracts(schemas)
    assert info.value.file == str(schemas / "shared" / "person.yml")
    assert info.value.key == "columns[8].checks[0].code_list"
    assert "no code list 'marital_status' in schemas/reference" in info.value.problem


def test_checks_have_default_reasons_and_short_forms() -> None:
    person = load_contracts(SCHEMAS).tables["person"]
    gender, region, phone = (person.column(c).checks[0] for c in ("gender", "household_region", "phone"))
    assert (gender.kind, gender.code_list, gender.reason) == ("accepted_values", "gender", "invalid_code")
    assert (region.code_list, region.reason) == ("regions", "invalid_region")
    assert (phone.kind, phone.reason) == ("pattern", "invalid_phone")
    assert person.column("resident_id").checks[0].reason == "resident_id_checksum"


def test_get_contracts_sees_an_edited_contract(tmp_path: Path) -> None:
    """A process that keeps running (a replay after a fix) reads the edited YAML."""
    from etl.config import Settings
    from etl.contracts import get_contracts

    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    settings = Settings(home=tmp_path / "home", project_dir=tmp_path)
    assert get_contracts(settings).tables["person"].column("resident_id").checks[0].kind == "resident_id"
    path = tmp_path / "schemas" / "shared" / "person.yml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("checks: [resident_id]}", "checks: [resident_id, unique]}")
    )
    assert [c.kind for c in get_contracts(settings).tables["person"].column("resident_id").checks] == [
        "resident_id",
        "unique",
    ]
