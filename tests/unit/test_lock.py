"""The home's writer lock: exclusive across processes, re-entrant inside one, says who
holds it, gives up after the timeout, and is released when its holder is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from etl.config import Settings, get_settings
from etl.lock import WriterBusy, holder, lock_path, writer_lock

pytestmark = pytest.mark.unit

HOLD = """
import sys, time
from etl.config import get_settings
from etl.lock import writer_lock
with writer_lock(get_settings(sys.argv[1]), "run-holder"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder_process(home: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(home), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def _settings(tmp_path: Path, timeout: float) -> Settings:
    s = get_settings(tmp_path / "home")
    return Settings(home=s.home, project_dir=s.project_dir, lock_timeout=timeout)


def test_a_second_writer_is_told_who_holds_the_lock_and_gives_up_after_the_timeout(tmp_path: Path) -> None:
    proc = _holder_process(tmp_path / "home", 30)
    try:
        said: list[str] = []
        started = time.monotonic()
        with (
            pytest.raises(WriterBusy) as err,
            writer_lock(_settings(tmp_path, 0.6), "run-2", say=said.append),
        ):
            pytest.fail("the lock was taken while another process held it")
        waited = time.monotonic() - started
        assert waited >= 0.6
        assert f"pid {proc.pid}" in str(err.value) and "run run-holder" in str(err.value)
        assert len(said) == 1 and f"pid {proc.pid}" in said[0] and "timeout 0.6 s" in said[0]
    finally:
        proc.kill()
        proc.wait()


def test_a_waiting_writer_gets_the_lock_when_the_holder_finishes(tmp_path: Path) -> None:
    proc = _holder_process(tmp_path / "home", 1.0)
    started = time.monotonic()
    try:
        with writer_lock(_settings(tmp_path, 30), "run-2"):
            assert time.monotonic() - started >= 0.9  # only once the holder let it go
            info = holder(_settings(tmp_path, 30))
            assert info is not None and info["pid"] == os.getpid() and info["run_id"] == "run-2"
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    proc = _holder_process(tmp_path / "home", 60)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with writer_lock(_settings(tmp_path, 2), "after-kill"):
        assert holder(_settings(tmp_path, 2))["run_id"] == "after-kill"  # type: ignore[index]


def test_the_lock_is_reentrant_in_a_process_and_released_at_the_outermost_exit(tmp_path: Path) -> None:
    settings = _settings(tmp_path, 0.3)
    with writer_lock(settings, "outer"), writer_lock(settings, "inner"):
        # the inner block did not overwrite the identity of the run that holds it
        assert holder(settings)["run_id"] == "outer"  # type: ignore[index]
    # released: another process takes it at once
    probe = subprocess.run(
        [sys.executable, "-c", HOLD, str(settings.home), "0"], capture_output=True, text=True, timeout=30
    )
    assert probe.returncode == 0 and probe.stdout.strip() == "held"
    assert lock_path(settings).parent == settings.warehouse


def _busy_writers() -> dict[str, object]:
    """Every writer entry point other than a run's stages (those are covered by the
    integration tests), called on a home whose lock another process holds."""
    from etl.contracts import get_contracts
    from etl.load.replay import replay
    from etl.pipeline import run_publish, run_stage
    from etl.resolve.review import decide_records
    from etl.resolve.stage import consolidate

    return {
        "consolidate": lambda s: consolidate(s, run_id="consolidate-2"),
        "publish": lambda s: run_publish("2026-11-01", "publish-2", settings=s),
        "replay": lambda s: replay(s, get_contracts(s), "ps_hukou"),
        "review": lambda s: decide_records(s, "person", "a", "b", "accept"),
        "stage": lambda s: run_stage("extract", "ps_hukou", "2026-11-01", "run-2", settings=s),
    }


@pytest.mark.parametrize("writer", sorted(_busy_writers()))
def test_every_writer_waits_for_the_lock_and_writes_nothing_while_it_is_held(
    tmp_path: Path, writer: str
) -> None:
    settings = _settings(tmp_path, 0.5)
    proc = _holder_process(settings.home, 30)
    try:
        with pytest.raises(WriterBusy, match=f"pid {proc.pid}"):
            _busy_writers()[writer](settings)  # type: ignore[operator]
    finally:
        proc.kill()
        proc.wait()
    assert not settings.duckdb_path.exists()  # nothing was opened, let alone written
