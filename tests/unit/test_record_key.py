"""Source record keys: declared in each source YAML, checked against its fields, filled into
the shared tables' record_key column by normalize (delivered text trimmed, "|"-joined)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from etl.config import get_settings
from etl.contracts import RECORD_KEY, load_contracts
from etl.errors import ContractError
from etl.normalize import normalize
from etl.normalize.record_key import record_keys

pytestmark = pytest.mark.unit

SCHEMAS = get_settings().schemas_dir


def test_every_source_of_a_keyed_table_declares_its_record_key() -> None:
    c = load_contracts(SCHEMAS)
    for name in ("person", "legal_entity", "employment"):
        table = c.tables[name]
        col = table.column(RECORD_KEY)
        assert (col.type, col.security_level, col.sharing, col.open) == (
            "string",
            "L2",
            "unconditional",
            "not_open",
        )
    assert c.tables["person"].keys == [RECORD_KEY]
    assert c.tables["legal_entity"].keys == [RECORD_KEY]
    keyed = [s for s in c.sources.values() if RECORD_KEY in c.tables[s.table].column_names]
    assert len(keyed) == 7
    for s in keyed:
        assert s.record_key and set(s.record_key) <= set(s.field_names), s.name
        # a record key is no personal data: none of its fields maps to an L3/L4 column
        table = c.tables[s.table]
        for k in s.record_key:
            to = next(f for f in s.fields if f.name == k).to
            assert to is None or table.column(to).security_level in ("L1", "L2"), (s.name, k)
    assert c.sources["nhc_health"].record_key == ["record_id"]
    assert c.sources["ca_marriage"].record_key[0] == "djbh"
    assert c.sources["samr_registry"].record_key == ["id"]


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
        (
            "sources/nhc_health.yml",
            lambda d: d.update(record_key=["record_no"]),
            "(top level)",
            "record_key field(s) not declared in fields: record_no",
        ),
        ("sources/nhc_health.yml", lambda d: d.pop("record_key"), "record_key", "missing: person has a"),
        (
            "sources/ca_marriage.yml",
            lambda d: d.update(record_key=["djbh", "djbh"]),
            "(top level)",
            "names a field twice",
        ),
        (
            "sources/stats_indicators.yml",
            lambda d: d.update(record_key=["地区代码"]),
            "(top level)",
            "not supported with unpivot",
        ),
        (
            "sources/ps_hukou.yml",
            lambda d: d["fields"][8].update(to="record_key"),
            "fields[8].to",
            "filled from record_key, not mapped",
        ),
        (
            "sources/samr_registry.yml",
            lambda d: d.update(table="economic_indicator", fields=[f | {"to": None} for f in d["fields"]]),
            "record_key",
            "economic_indicator has no 'record_key' column",
        ),
    ],
)
def test_bad_record_key_names_file_key_problem(
    schemas: Path, file: str, change, key: str, problem: str
) -> None:  # type: ignore[no-untyped-def]
    path = schemas / file
    _edit(path, change)
    with pytest.raises(ContractError) as info:
        load_contracts(schemas)
    assert (info.value.file, info.value.key) == (str(path), key)
    assert problem in info.value.problem


def test_record_keys_trim_join_and_null_partial_keys() -> None:
    raw = pd.DataFrame(
        {
            "djbh": [" J110105-2020-000001 ", "J110105-2020-000001", "\u3000", None, "L1"],
            "party": ["男方", "女方 ", "男方", "女方", ""],
        },
        dtype="string",
    )
    keys = record_keys(raw, ["djbh", "party"])
    assert keys.tolist()[:2] == ["J110105-2020-000001|男方", "J110105-2020-000001|女方"]
    assert keys.isna().tolist() == [False, False, True, True, True]
    assert record_keys(raw, ["djbh"]).tolist()[:2] == ["J110105-2020-000001"] * 2
    assert record_keys(raw, ["nope"]).isna().all()


def test_normalize_fills_record_key_from_the_declared_fields() -> None:
    c = load_contracts(SCHEMAS)
    src, table = c.sources["nhc_health"], c.tables["person"]
    raw = pd.DataFrame(
        {
            "record_id": ["HR000000001", " HR000000002", ""],
            "patient.id_card": ["11010519491231002X", "", None],
            "patient.name": ["张宇晶", "李娜", "王芳"],
            "_row_number": ["1", "2", "3"],
        },
        dtype="string",
    )
    staged = normalize(raw, src, table).staged
    assert staged[RECORD_KEY].tolist()[:2] == ["HR000000001", "HR000000002"]
    assert staged[RECORD_KEY].isna().tolist() == [False, False, True]
    # a record without a resident ID keeps its key: it can reach staging
    assert staged["resident_id"].isna().tolist() == [False, True, True]
