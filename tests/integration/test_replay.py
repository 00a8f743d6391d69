"""Replay re-validates through the run's own normalize and validate code.

Two defects of a replay that had a loop of its own: rows that still failed kept the
reasons of the first run, and uniqueness was judged within the replayed rows only,
so a replayed row duplicating a published key reached staging.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from etl import meta
from etl.config import Settings, get_settings
from etl.contracts import get_contracts
from etl.demo import generate
from etl.load.replay import replay
from etl.pipeline import run_source

DATE = "2026-11-01"
WRONG_REGION = "^1[1-3][0-9]{4}$"  # wrong: Beijing, Tianjin, Hebei only
GOOD_CHECK = "{accepted_values: {code_list: regions, reason: invalid_region}}"
WRONG_CHECK = '{pattern: {regex: "' + WRONG_REGION + '", reason: invalid_region}}'


def _project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A copy of the contracts whose person table has a wrong region check; returns the
    contract's path and its good text."""
    project = tmp_path / "project"
    shutil.copytree(get_settings().schemas_dir, project / "schemas")
    shutil.copytree(get_settings().expectations_dir, project / "expectations")
    suite_path = project / "schemas" / "shared" / "person.yml"
    good = suite_path.read_text(encoding="utf-8")
    assert GOOD_CHECK in good
    suite_path.write_text(good.replace(GOOD_CHECK, WRONG_CHECK), encoding="utf-8")
    # the open dataset deriving provinces needs the code-list check the wrong rule replaces
    (project / "schemas" / "open" / "population_by_region_gender_age.yml").unlink()
    monkeypatch.setenv("GOVBASE_PROJECT_DIR", str(project))
    return suite_path, good


def _quarantine(settings: Settings) -> dict[tuple[str, int], str]:
    """ps_hukou's quarantined rows by (file, row number): their reasons."""
    with meta.connect(settings, read_only=True) as con:
        rows = con.execute(
            "select b.file, q._row_number, q.reasons from quarantine.person q "
            "join meta.extract_batch b on b.batch_id = q._batch_id where q._source = 'ps_hukou'"
        ).fetchall()
    return {(f, int(n)): r for f, n, r in rows}


def test_rows_that_still_fail_keep_their_updated_reasons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the fix, replay leaves the quarantine exactly as a run with the fixed suite
    makes it: rows failing for a real defect lose the wrong rule's reason."""
    suite_path, good = _project(tmp_path, monkeypatch)
    settings = get_settings(tmp_path / "home")
    generate(settings, persons=800, seed=3)
    run_source("ps_hukou", DATE, "run-r", settings=settings)
    wrong = _quarantine(settings)
    both = {k for k, r in wrong.items() if "invalid_region" in r.split(",") and r != "invalid_region"}
    assert len(both) >= 3  # real defects also out of the wrong rule's regions

    suite_path.write_text(good, encoding="utf-8")  # the fix
    summary = replay(settings, get_contracts(settings), "ps_hukou")
    after = _quarantine(settings)
    assert summary["moved"] > 100 and summary["still_quarantined"] == len(after)
    assert both <= after.keys()  # still failing, for their real defects
    assert sum(after[k] != wrong[k] for k in both) == len(both)  # the wrong rule's reason is gone

    fresh = get_settings(tmp_path / "fresh")  # the same delivery, run with the fixed suite
    shutil.copytree(settings.landing, fresh.landing)
    run_source("ps_hukou", DATE, "run-f", settings=fresh)
    assert after == _quarantine(fresh)
    with meta.connect(settings, read_only=True) as con:
        rec = con.execute(
            "select extracted, loaded + quarantined, balanced from meta.reconciliation"
        ).fetchone()
    assert rec and rec[0] == rec[1] and rec[2]


def test_a_replayed_row_duplicating_a_published_key_stays_quarantined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second record of a published person (same resident ID, its own record number,
    another region) was quarantined by the wrong region rule. Once the rule is fixed and
    resident IDs are enforced unique, replay must judge it beside the published row: it
    stays quarantined, as a duplicate, and staging holds the person once."""
    suite_path, good = _project(tmp_path, monkeypatch)
    settings = get_settings(tmp_path / "home")
    generate(settings, persons=400, seed=11)
    csv_path = next((settings.landing / "ps_hukou").glob("*.csv"))
    data = csv_path.read_bytes()
    rows = list(csv.reader(io.StringIO(data.decode("gbk"))))
    header, body = rows[0], rows[1:]
    region, number = header.index("户籍地行政区划"), header.index("人员编号")
    truth = pd.read_parquet(settings.landing / "_truth" / "ps_hukou.parquet").set_index("row_number")
    clean = [n for n in truth.index[truth["defects"] == ""] if 0 < n <= len(body)]
    inside = next(n for n in clean if re.fullmatch(WRONG_REGION, body[n - 1][region]))
    outside = next(n for n in clean if not re.fullmatch(WRONG_REGION, body[n - 1][region]))
    again = [*body[inside - 1]]
    again[region], again[number] = body[outside - 1][region], "HJ9999999999"
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n" if b"\r\n" in data else "\n").writerows([header, *body, again])
    csv_path.write_bytes(out.getvalue().encode("gbk"))
    run_source("ps_hukou", DATE, "run-d", settings=settings)
    resident_id = str(truth.loc[inside, "true_resident_id"])
    again_row = len(body) + 1
    assert _quarantine(settings)[(csv_path.name, again_row)] == "invalid_region"
    assert _published(settings, resident_id) == 1

    # the fix: the right region rule, and resident IDs enforced unique
    checksum_only = "checks: [resident_id]}"
    assert good.count(checksum_only) == 1
    suite_path.write_text(good.replace(checksum_only, "checks: [resident_id, unique]}"), encoding="utf-8")
    summary = replay(settings, get_contracts(settings), "ps_hukou")
    assert summary["moved"] > 100  # the wrong rule's other victims do move
    assert _published(settings, resident_id) == 1
    assert _quarantine(settings)[(csv_path.name, again_row)] == "duplicate_key"


def _published(settings: Settings, resident_id: str) -> int:
    with meta.connect(settings, read_only=True) as con:
        row = con.execute(
            "select count(*) from staging.person where _source = 'ps_hukou' and resident_id = ?",
            [resident_id],
        ).fetchone()
    return int(row[0]) if row else 0
