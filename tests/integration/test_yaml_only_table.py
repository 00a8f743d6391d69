"""A new shared table is one YAML file: no JSON suite, no code.

A project holding only the reference lists, one new shared table and one source
for it loads a small delivery through the real stages; the table's declared keys
and column checks are enforced by the suite built from the YAML.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from etl import meta
from etl.config import get_settings
from etl.pipeline import run_source

pytestmark = pytest.mark.integration

DATE = "2026-11-01"

TABLE = """\
name: vehicle
description: Motor vehicles registered with the traffic police.
grain: one row per registration of a vehicle
keys: {keys}
columns:
  - {{name: plate_no, type: string, description: "Licence plate", security_level: L2, sharing: conditional, open: not_open,
     checks: [{{pattern: {{regex: "^[\\u4e00-\\u9fa5][A-Z][A-Z0-9]{{5,6}}$", reason: invalid_code}}}}]}}
  - {{name: registered_on, type: date, description: "Registration date", security_level: L1, sharing: unconditional, open: not_open}}
  - {{name: owner_id, type: string, description: "Resident ID of the owner", security_level: L4, sharing: conditional, open: not_open, mask: resident_id,
     checks: [resident_id]}}
  - {{name: region, type: string, description: "Division code of the registering office", security_level: L1, sharing: unconditional, open: not_open,
     checks: [{{accepted_values: {{code_list: regions, reason: invalid_region}}}}]}}
  - {{name: displacement_l, type: decimal, description: "Engine displacement in litres", security_level: L1, sharing: unconditional, open: not_open,
     checks: [{{range: {{min: 0, max: 10}}}}]}}
"""

SOURCE = """\
name: ps_vehicles
department: public_security
department_name: 公安局 交通管理
description: Vehicle registrations, one CSV per drop.
table: vehicle
kind: csv
location: "vehicles_*.csv"
encoding: utf-8
fields:
  - {name: 号牌号码, to: plate_no, transforms: [text]}
  - {name: 登记日期, to: registered_on, transforms: [date]}
  - {name: 所有人身份证号, to: owner_id, transforms: [resident_id]}
  - {name: 登记机关行政区划, to: region, transforms: [region]}
  - {name: 排量, to: displacement_l, transforms: [decimal]}
"""

ROWS = [  # delivered row number -> fields
    (1, "京A12345", "2024-03-01", "11010519491231002X", "110105", "1.6"),
    (2, "京B67890", "2024-03-02", "11010519491231002X", "110105", "2.0"),
    (3, "", "2024-03-03", "11010519491231002X", "110105", "1.5"),  # no plate: a null key
    (4, "京A12345", "2024-03-01", "11010519491231002X", "110101", "1.6"),  # row 1 again
    (5, "沪C24680", "2024-05-05", "11010519491231002X", "310101", "-1"),  # outside the range
    (6, "粤D13579", "2024-06-06", "11010519491231002X", "440103", "1.8"),
]


def _project(tmp_path: Path, keys: str) -> Path:
    project = tmp_path / "project"
    shutil.copytree(get_settings().schemas_dir / "reference", project / "schemas" / "reference")
    (project / "schemas" / "shared").mkdir(parents=True)
    (project / "schemas" / "sources").mkdir(parents=True)
    (project / "schemas" / "shared" / "vehicle.yml").write_text(TABLE.format(keys=keys), encoding="utf-8")
    (project / "schemas" / "sources" / "ps_vehicles.yml").write_text(SOURCE, encoding="utf-8")
    return project


@pytest.mark.parametrize("engine", ["compiled", "ge"])
@pytest.mark.parametrize("keys", ["[plate_no]", "[plate_no, registered_on]"])
def test_a_yaml_only_table_enforces_its_keys_and_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keys: str, engine: str
) -> None:
    project = _project(tmp_path, keys)
    assert not (project / "expectations").exists()  # no JSON anywhere
    monkeypatch.setenv("GOVBASE_PROJECT_DIR", str(project))
    monkeypatch.setenv("GOVBASE_VALIDATION_ENGINE", engine)
    settings = get_settings(tmp_path / "home")
    landing = settings.source_landing("ps_vehicles")
    landing.mkdir(parents=True)
    header = "号牌号码,登记日期,所有人身份证号,登记机关行政区划,排量"
    lines = [header, *(",".join(r[1:]) for r in ROWS)]
    (landing / "vehicles_20261101.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    run_source("ps_vehicles", DATE, "run-v", settings=settings)

    with meta.connect(settings, read_only=True) as con:
        quarantined = dict(
            con.execute("select _row_number, reasons from quarantine.vehicle order by 1").fetchall()
        )
        staged = sorted(r for (r,) in con.execute("select _row_number from staging.vehicle").fetchall())
        rec = con.execute(
            "select extracted, loaded, quarantined, balanced from meta.reconciliation"
        ).fetchone()
    assert quarantined == {
        1: "duplicate_key",
        3: "missing_required",
        4: "duplicate_key",
        5: "out_of_range",
    }
    assert staged == [2, 6]
    assert rec == (6, 2, 4, True)
