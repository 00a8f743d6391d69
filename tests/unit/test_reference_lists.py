"""Each code list has one home, schemas/reference/<list>.csv: normalization, the
validation suites and the demo generator all follow an edit of the file.

Each test edits a copy of the project's reference lists and checks the three readers
against the same edit; nothing in code says what the lists hold.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from etl.config import get_settings
from etl.contracts import load_contracts
from etl.demo.population import Regions, _ethnicity_table, make_organisations, make_persons
from etl.normalize import codes
from etl.reference import load_regions
from etl.validate.runner import SuiteRunner

pytestmark = pytest.mark.unit


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project (schemas/ and expectations/) that GOVBASE_PROJECT_DIR points at."""
    src = get_settings()
    root = tmp_path / "project"
    shutil.copytree(src.schemas_dir, root / "schemas")
    shutil.copytree(src.expectations_dir, root / "expectations")
    monkeypatch.setenv("GOVBASE_PROJECT_DIR", str(root))
    return root


def _edit(project: Path, name: str, drop: str | None = None, add: list[str] | None = None) -> None:
    path = project / "schemas" / "reference" / f"{name}.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    rows = [r for r in rows if r[0] != drop]
    if add:
        rows.append(add + [""] * (len(rows[0]) - len(add)))
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def _suite_rejects(project: Path, table: str, source: str, column: str, values: list[str]) -> set[str]:
    """The values of `column` the table's built suite rejects (row-level, that column only)."""
    contracts = load_contracts(project / "schemas")
    runner = SuiteRunner(project / "expectations", contracts.tables[table], contracts.sources[source])
    mine = [e for e in runner.row_expectations if e["kwargs"].get("column") == column]
    frame = pd.DataFrame({column: pd.array(values, dtype="string")})
    failures, _ = runner.validate_rows(frame, mine)
    return {values[int(p)] for p in failures["position"]}


def _normalized(fn, values: list[str]) -> list[str | None]:  # type: ignore[no-untyped-def]
    out, _ = fn(pd.Series(values, dtype="string"))
    return [None if pd.isna(v) else str(v) for v in out]


def _regions(project: Path) -> Regions:
    return Regions.from_reference(load_regions(project))


def test_an_ethnicity_list_edit_reaches_normalize_suite_and_generator(project: Path) -> None:
    values = ["基诺族", "56", "穿青人", "57"]
    assert _normalized(codes.ethnicity, values) == ["56", "56", None, None]
    assert _suite_rejects(project, "person", "ps_hukou", "ethnicity", ["56", "57"]) == {"57"}
    assert "56" in dict(_ethnicity_table()) and "57" not in dict(_ethnicity_table())

    # 基诺族 leaves the list, 穿青人 (an undetermined group of Guizhou) joins it
    _edit(project, "ethnicity", drop="56", add=["57", "穿青人", "穿青族"])

    assert _normalized(codes.ethnicity, [*values, "穿青族"]) == [None, None, "57", "57", "57"]
    assert _suite_rejects(project, "person", "ps_hukou", "ethnicity", ["56", "57"]) == {"56"}
    table = dict(_ethnicity_table())
    assert "56" not in table and table["57"] > 0
    assert abs(sum(table.values()) - 1) < 1e-9
    persons = make_persons(np.random.default_rng(1), 3000, _regions(project))
    emitted = set(persons["ethnicity"].astype(str))
    assert "56" not in emitted and emitted <= set(table)


def test_an_entity_type_removed_from_the_list_is_gone_everywhere(project: Path) -> None:
    names = ["普通合伙企业", "partnership", "有限公司"]
    assert _normalized(codes.entity_type, names) == ["partnership", "partnership", "limited_company"]
    regions = _regions(project)
    persons = make_persons(np.random.default_rng(2), 3000, regions)
    before = set(make_organisations(np.random.default_rng(3), 400, persons, regions)["entity_type"])
    assert "partnership" in before
    assert _suite_rejects(project, "legal_entity", "samr_registry", "entity_type", ["partnership"]) == set()

    _edit(project, "entity_type", drop="partnership")

    assert _normalized(codes.entity_type, names) == [None, None, "limited_company"]
    assert _suite_rejects(project, "legal_entity", "samr_registry", "entity_type", ["partnership"]) == {
        "partnership"
    }
    after = set(make_organisations(np.random.default_rng(3), 400, persons, regions)["entity_type"])
    assert "partnership" not in after and after == before - {"partnership"}


def test_aliases_and_sub_codes_are_read_from_the_csv(project: Path) -> None:
    assert _normalized(codes.gender, ["男士", "M"]) == [None, "1"]
    assert _normalized(codes.marital_status, ["再婚", "22"]) == ["20", "20"]
    # an alias added to the file is read; a sub-code made a code of its own becomes one
    path = project / "schemas" / "reference" / "gender.csv"
    path.write_text(
        path.read_text(encoding="utf-8").replace("男性|m|male", "男性|男士|m|male"), encoding="utf-8"
    )
    marital = project / "schemas" / "reference" / "marital_status.csv"
    marital.write_text(
        marital.read_text(encoding="utf-8").replace("22,再婚,,20", "22,再婚,,"), encoding="utf-8"
    )
    assert _normalized(codes.gender, ["男士", "M"]) == ["1", "1"]
    assert _normalized(codes.marital_status, ["再婚", "22"]) == ["22", "22"]
    assert _suite_rejects(project, "person", "ps_hukou", "marital_status", ["20", "22", "21"]) == {"21"}
