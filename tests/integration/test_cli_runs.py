"""The govbase command over real runs (issue 14.3): it says when it creates a home, says
when a date was already extracted, and its status, publish and replay output is complete
tables (or JSON with --json) when piped. The real command in a subprocess, COLUMNS unset."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
DATE = "2026-11-01"


def _govbase(home: Path, *args: str, json_out: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "GOVBASE_HOME")}
    env["GOVBASE_PSEUDONYM_KEY"] = "v1:cli-test-only-secret"
    return subprocess.run(
        [sys.executable, "-m", "etl.cli", *(["--json"] if json_out else []), *args, "--home", str(home)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new home: a small demo delivery, then one run of ps_hukou and stats_indicators (whose
    staging feeds an open dataset: publish refuses a catalog with none)."""
    home = tmp_path_factory.mktemp("cli") / "home"
    made = _govbase(home, "demo-data", "--persons", "200", "--seed", "3")
    assert made.returncode == 0, made.stderr
    assert f"creating home {home} (from --home)" in made.stderr
    first = _govbase(home, "run", "-s", "ps_hukou", "-s", "stats_indicators", "--date", DATE)
    assert first.returncode == 0, first.stderr
    assert "creating home" not in first.stderr and "already extracted" not in first.stderr
    return home


def test_a_run_on_a_new_home_says_it_creates_it(tmp_path: Path) -> None:
    fresh = tmp_path / "new-home"
    got = _govbase(fresh, "run", "-s", "ps_hukou", "--date", DATE)
    assert f"creating home {fresh} (from --home)" in got.stderr
    assert "Traceback" not in got.stderr


def test_rerunning_an_extracted_date_says_so_and_names_full_refresh(home: Path) -> None:
    again = _govbase(home, "run", "-s", "ps_hukou", "--date", DATE)
    assert again.returncode == 0, again.stderr
    assert "ps_hukou: 1 file(s) were already extracted by an earlier run and are skipped" in again.stderr
    assert "--full-refresh extracts them again" in again.stderr
    fresh = _govbase(home, "run", "-s", "ps_hukou", "--date", DATE, "--full-refresh")
    assert fresh.returncode == 0 and "already extracted" not in fresh.stderr
    extract = _govbase(home, "extract", "-s", "ps_hukou")
    assert "already extracted" in extract.stdout and "--full-refresh extracts them again" in extract.stderr


def test_status_shows_start_duration_rows_and_why_a_run_failed(home: Path) -> None:
    (home / "landing" / "ps_hukou" / "hukou_20261102.csv").write_bytes(b"")  # an empty delivery
    failed = _govbase(home, "run", "-s", "ps_hukou", "--date", "2026-11-02")
    assert failed.returncode == 1
    status = _govbase(home, "status", "--limit", "50", json_out=True)
    assert status.returncode == 0, status.stderr
    rows = json.loads(status.stdout)["rows"]
    by_date = {r["date"]: r for r in rows}
    bad, good = by_date["2026-11-02"], by_date[DATE]
    assert bad["status"] == "failed" and "empty file (0 bytes)" in bad["failure"]
    assert good["status"] == "ok" and good["failure"] is None and good["balanced"] is True
    assert good["extracted"] == good["loaded"] + good["quarantined"] > 0
    for r in rows:  # a start time to the second and a duration
        assert dt.datetime.strptime(r["started"], "%Y-%m-%d %H:%M:%S") and r["seconds"] >= 0
    table = _govbase(home, "status", "--limit", "50")
    lines = table.stdout.splitlines()
    for r in rows:  # every run id whole, on one line with its start and failure
        line = next(x for x in lines if r["run"] in x and f" {r['source']} " in x and r["date"] in x)
        assert r["started"] in line and (r["failure"] or "-") in line
    assert "…" not in table.stdout


def test_publish_and_replay_print_tables_not_dicts(home: Path) -> None:
    published = _govbase(home, "publish", "--date", DATE)
    assert published.returncode == 0, published.stderr
    assert "{'" not in published.stdout and "reports_dir" in published.stdout
    assert any(
        "data_docs" in x and str(home / "docs" / "index.html") in x for x in published.stdout.splitlines()
    )
    as_json = json.loads(_govbase(home, "publish", "--date", DATE, json_out=True).stdout)
    assert as_json["stage"] == "publish" and as_json["logical_date"] == DATE
    assert set(as_json["reports"]) >= {"public_security"}
    replayed = _govbase(home, "quarantine", "replay", "-s", "ps_hukou")
    assert replayed.returncode == 0, replayed.stderr
    assert "{'" not in replayed.stdout and "replay of ps_hukou" in replayed.stdout
    summary = json.loads(_govbase(home, "quarantine", "replay", "-s", "ps_hukou", json_out=True).stdout)
    assert summary["source"] == "ps_hukou" and summary["moved"] >= 0 and summary["still_quarantined"] >= 0


def test_json_after_the_command_is_the_same_as_before_it(home: Path) -> None:
    before = _govbase(home, "status", "--limit", "50", json_out=True)
    after = _govbase(home, "status", "--limit", "50", "--json")
    assert before.returncode == after.returncode == 0, after.stderr
    assert json.loads(after.stdout) == json.loads(before.stdout)
    assert json.loads(after.stdout)["rows"]
