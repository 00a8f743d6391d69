"""The one writer of a home and its readers, with real processes on real files: two
concurrent `govbase run` equal one run; a reader beside the loader neither blocks it
nor sees a partial batch; a copied or moved home works and leaves the original alone;
dates are DATE in every layer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from etl.config import Settings, get_settings
from etl.demo import generate

pytestmark = pytest.mark.integration

DATE = "2026-11-01"
GOVBASE = str(Path(sys.executable).with_name("govbase"))


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated delivery, copied into each test's home."""
    settings = get_settings(tmp_path_factory.mktemp("writer") / "seed")
    generate(settings, persons=300, seed=23)
    return settings.landing


def _home(tmp_path: Path, landing: Path, name: str = "home") -> Settings:
    settings = get_settings(tmp_path / name)
    shutil.copytree(landing, settings.landing)
    return settings


def _run(settings: Settings, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [GOVBASE, "run", "--date", DATE, *args],
        env={**os.environ, "GOVBASE_HOME": str(settings.home), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 600) -> tuple[int, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def _reader(settings: Settings) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(settings.duckdb_path), read_only=True)


def _content(settings: Settings) -> dict[str, list[tuple[object, ...]]]:
    """Every staged and quarantined row (without the run's and batch's ids), sorted,
    and the extracted batches per source: what a run leaves behind."""
    found: dict[str, list[tuple[object, ...]]] = {}
    with _reader(settings) as con:
        views = con.execute(
            "select schema_name, view_name from duckdb_views() "
            "where schema_name in ('staging', 'quarantine') and not internal order by all"
        ).fetchall()
        for schema, view in views:
            rows = con.execute(
                f"select * exclude (_run_id, _batch_id) from {schema}.{view} order by all"
            ).fetchall()
            found[f"{schema}.{view}"] = rows
        found["extracted"] = con.execute(
            "select source, file, file_sha256, rows from meta.extract_batch where status = 'extracted' order by all"
        ).fetchall()
        found["partitions"] = con.execute(
            "select table_name, source, logical_date, rows_loaded, source_rows, rows_quarantined "
            "from meta.partition order by all"
        ).fetchall()
    return found


def test_two_concurrent_runs_on_one_home_equal_one_run(tmp_path: Path, landing: Path) -> None:
    one = _home(tmp_path, landing, "one")
    rc, log = _finish(_run(one))
    assert rc == 0, log
    expected = _content(one)
    assert expected["staging.person"], "the reference run staged nothing"

    both = _home(tmp_path, landing, "both")
    first, second = _run(both), _run(both)
    (rc1, log1), (rc2, log2) = _finish(first), _finish(second)
    assert (rc1, rc2) == (0, 0), log1 + log2
    assert _content(both) == expected
    # one of them waited, and said for whom
    waited = [" ".join(log.split()) for log in (log1, log2)]
    waited = [log for log in waited if "waiting for the writer lock" in log]
    assert len(waited) == 1, (log1, log2)
    assert f"pid {first.pid}" in waited[0] or f"pid {second.pid}" in waited[0]
    with _reader(both) as con:
        runs = con.execute("select distinct run_id from meta.run_ledger").fetchall()
        unbalanced = con.execute(
            "select run_id, source, extracted, loaded, quarantined, status from meta.reconciliation "
            "where not balanced or status <> 'ok'"
        ).fetchall()
    assert len(runs) == 2 and not unbalanced


def test_a_run_gives_up_clearly_when_the_home_stays_busy(tmp_path: Path, landing: Path) -> None:
    settings = _home(tmp_path, landing)
    hold = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom etl.config import get_settings\nfrom etl.lock import writer_lock\n"
            "with writer_lock(get_settings(sys.argv[1]), 'airflow-task'):\n"
            "    print('held', flush=True); time.sleep(60)\n",
            str(settings.home),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert hold.stdout is not None and hold.stdout.readline().strip() == "held"
        rc, log = _finish(_run(settings, env={"GOVBASE_LOCK_TIMEOUT": "1"}), timeout=120)
    finally:
        hold.kill()
        hold.wait()
    assert rc == 1
    flat = " ".join(log.split())
    assert f"pid {hold.pid}" in flat and "run airflow-task" in flat and "gave up after 1 s" in flat
    assert not settings.duckdb_path.exists()  # nothing was written while it waited
