"""Fault injection (slow, on demand: `make test-slow`; figures in docs/reliability.md).

- every named checkpoint (etl.faults.CHECKPOINTS) is reached by a full `govbase run` on a
  small demo, and a chain of 3 runs each SIGKILLed at it (its first, middle and last pass)
  is followed by a rerun that ends equal to a clean run;
- at least 100 SIGKILLs from outside at random moments of full runs (chains of up to 6), each
  chain's rerun equal to a clean run;
- files that cannot be written (an immutable folder: EPERM, even for root) and a full disk
  (the home on a small tmpfs) end in a clear error with the reconciliation printed, and a
  rerun once permission or space returns ends equal to a clean run.

"Equal" is faultkit.state: row counts and content hashes of every staging and quarantine
table and of every rejection report; faultkit.problems must find nothing (the last run
reconciles, no partition file missing, none orphaned).
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
import time
from functools import partial
from pathlib import Path

import faultkit as fk
import pytest

from etl.faults import CHECKPOINTS

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.fault]

PERSONS = int(os.environ.get("GOVBASE_FAULT_PERSONS", "300"))
RANDOM_KILLS = int(os.environ.get("GOVBASE_FAULT_RANDOM_KILLS", "100"))
STAGES = ("extract", "normalize", "validate", "load", "publish")
#: where the suite writes its figures (docs/reliability.md quotes them)
FIGURES = os.environ.get("GOVBASE_FAULT_FIGURES")


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("faults")
    template = fk.make_template(folder, persons=PERSONS)
    hits, seconds, reference = fk.trace(template, folder / "clean")
    # a second clean home must be equal too, or "equal to a clean run" means nothing
    assert fk.trace(template, folder / "clean-2")[2] == reference
    return {"folder": folder, "template": template, "hits": hits, "seconds": seconds, "reference": reference}


def _record(name: str, trials: list[fk.Trial], seconds: float) -> dict[str, object]:
    figures = {
        "trials": len(trials),
        "kills": sum(t.kills for t in trials),
        "runs": sum(t.runs for t in trials),
        "equal_reruns": sum(t.equal and not t.problems for t in trials),
        "seconds": round(seconds),
        "leftover_unrecorded_raw_files": sum(t.leftovers.get("unrecorded_raw_files", 0) for t in trials),
        "leftover_work_dirs": sum(t.leftovers.get("work_dirs", 0) for t in trials),
    }
    if FIGURES:
        path = Path(FIGURES)
        data = json.loads(path.read_text()) if path.exists() else {}
        data[name] = figures
        path.write_text(json.dumps(data, indent=1))
    return figures


def _assert_all_equal(trials: list[fk.Trial]) -> None:
    bad = [(t.label, t.failure[:800], t.problems[:3]) for t in trials if not t.equal or t.problems]
    assert not bad, bad


def test_every_stage_has_checkpoints_and_a_run_reaches_every_one(clean: dict[str, object]) -> None:
    hits = clean["hits"]
    assert isinstance(hits, dict)
    assert set(hits) == set(CHECKPOINTS), set(CHECKPOINTS) ^ set(hits)
    assert len(CHECKPOINTS) >= 12
    assert {p.split(":")[0] for p in CHECKPOINTS} >= set(STAGES)


@pytest.mark.timeout(7200)
def test_kills_at_every_checkpoint_recover_to_a_clean_run(clean: dict[str, object], tmp_path: Path) -> None:
    hits, template, reference = clean["hits"], clean["template"], clean["reference"]
    assert isinstance(hits, dict) and isinstance(template, Path) and isinstance(reference, dict)
    started = time.monotonic()
    jobs = [
        partial(fk.kill_at, template, faults=fk.spread(p, hits[p]), reference=reference) for p in CHECKPOINTS
    ]
    trials = fk.in_parallel(jobs, tmp_path)
    figures = _record("checkpoints", trials, time.monotonic() - started)
    _assert_all_equal(trials)
    per_point = {p: t.kills for p, t in zip(CHECKPOINTS, trials, strict=True)}
    assert all(n >= 2 for n in per_point.values()), per_point  # several kills at each
    assert figures["kills"] >= 2 * len(CHECKPOINTS)


@pytest.mark.timeout(7200)
def test_random_kills_during_full_runs_recover_to_a_clean_run(
    clean: dict[str, object], tmp_path: Path
) -> None:
    template, reference, seconds = clean["template"], clean["reference"], clean["seconds"]
    assert isinstance(template, Path) and isinstance(reference, dict) and isinstance(seconds, float)
    rng = random.Random(int(os.environ.get("GOVBASE_FAULT_SEED", str(time.time_ns()))))
    started, trials = time.monotonic(), []
    while (kills := sum(t.kills for t in trials)) < RANDOM_KILLS:
        chains = min(fk.WORKERS, math.ceil((RANDOM_KILLS - kills) / 3))  # a round: one chain per worker
        jobs = [
            partial(fk.kill_randomly, template, delays=fk.random_delays(6, seconds, rng), reference=reference)
            for _ in range(chains)
        ]
        trials += fk.in_parallel(jobs, tmp_path / f"round-{len(trials)}")
        _record("random", trials, time.monotonic() - started)  # figures so far, after every round
    _assert_all_equal(trials)


# ---------------------------------------------------------------- unwritable files, full disk
def _chattr(flag: str, *paths: Path) -> None:
    subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True)


def _immutable_allowed(folder: Path) -> bool:
    probe = folder / "probe"
    probe.mkdir()
    try:
        _chattr("+i", probe)
    except (OSError, subprocess.CalledProcessError):
        return False
    _chattr("-i", probe)
    return True


@pytest.mark.parametrize("where", ["warehouse/staging", "warehouse/raw", "reports", "docs"])
def test_files_that_cannot_be_written_end_in_a_clear_error_and_recover(
    clean: dict[str, object], tmp_path: Path, where: str
) -> None:
    template, reference = clean["template"], clean["reference"]
    assert isinstance(template, Path) and isinstance(reference, dict)
    if not _immutable_allowed(tmp_path):
        pytest.skip("chattr +i is not permitted here (no CAP_LINUX_IMMUTABLE): cannot make EPERM as root")
    home = fk.fresh(template, tmp_path / "home")
    locked = home / where
    locked.mkdir(parents=True, exist_ok=True)
    _chattr("+i", locked)  # even root gets EPERM creating files inside
    try:
        proc = fk.run(home)
    finally:
        _chattr("-i", locked)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "cannot write" in proc.stderr and "Operation not permitted" in proc.stderr, proc.stderr[-3000:]
    assert str(locked) in proc.stderr.replace("\n", "")  # the error names the folder
    assert "reconciliation of run-" in proc.stdout
    again = fk.run(home)
    assert again.returncode == 0, again.stderr[-3000:]
    assert fk.state(home) == reference
    assert not fk.problems(home)


def _mount_tmpfs(target: Path, size: str) -> bool:
    target.mkdir()
    return (
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)]).returncode == 0
    )


@pytest.mark.parametrize("size", ["1400k", "3m", "6m"])  # full in extract, in load, in publish
def test_a_full_disk_ends_in_a_clear_error_and_recovers(
    clean: dict[str, object], tmp_path: Path, size: str
) -> None:
    template, reference = clean["template"], clean["reference"]
    assert isinstance(template, Path) and isinstance(reference, dict)
    mount = tmp_path / "small"
    if not _mount_tmpfs(mount, size):
        pytest.skip("mounting a size-limited tmpfs is not permitted here (needs CAP_SYS_ADMIN)")
    try:
        home = mount / "home"
        shutil.copytree(template, home, symlinks=True)
        proc = fk.run(home)
        assert proc.returncode == 1
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
        assert "No space left on device" in proc.stderr and "cannot write" in proc.stderr, proc.stderr[-3000:]
        # space returns: the volume grows (tmpfs resizes in place)
        subprocess.run(["mount", "-o", "remount,size=256m", str(mount)], check=True)
        again = fk.run(home)
        assert again.returncode == 0, again.stderr[-3000:]
        assert fk.state(home) == reference
        assert not fk.problems(home)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)
