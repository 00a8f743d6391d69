"""Fault injection (slow, on demand: `make test-slow`; figures in docs/reliability.md).

The pipeline is the full one (faultkit.STEPS): `govbase run`, `govbase consolidate`,
`govbase publish` on a small demo; a killed attempt is followed by a new attempt from the
first step, as an operator (or a retried DAG) would do.

- every named checkpoint (etl.faults.CHECKPOINTS) is reached by the clean pipeline, and a
  chain of 3 attempts each SIGKILLed at it is followed by a rerun that ends equal to a clean
  pipeline;
- at least GOVBASE_FAULT_RANDOM_KILLS (default 100) SIGKILLs from outside at random moments
  (chains of up to GOVBASE_FAULT_CHAIN, default 10), each chain's rerun equal to a clean pipeline;
- files that cannot be written (an immutable folder: EPERM, even for root) and a full disk
  (the home on a small tmpfs) end in a clear error, without a traceback, and a rerun once
  permission or space returns ends equal to a clean pipeline.

"Equal" is faultkit.state (row counts and content hashes of every staging, quarantine and
core table, rejection report and department share) and the same exit code per step;
faultkit.problems must find nothing. The clean reference is computed once per session.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from fnmatch import fnmatch
from functools import partial
from pathlib import Path

import faultkit as fk
import pytest

from etl.faults import CHECKPOINTS

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.fault]

PERSONS = int(os.environ.get("GOVBASE_FAULT_PERSONS", "300"))
RANDOM_KILLS = int(os.environ.get("GOVBASE_FAULT_RANDOM_KILLS", "100"))
KILLS_PER_POINT = int(os.environ.get("GOVBASE_FAULT_KILLS_PER_POINT", "3"))
#: a subset of the checkpoints to kill at (fnmatch patterns, comma-separated), to reproduce one
ONLY = [p for p in os.environ.get("GOVBASE_FAULT_ONLY", "").split(",") if p]
#: kills at most in one random chain before its rerun (longer chains: fewer reruns per kill)
CHAIN = int(os.environ.get("GOVBASE_FAULT_CHAIN", "10"))
STAGES = ("extract", "normalize", "validate", "load", "publish", "consolidate", "catalog")
#: a folder where an earlier session computed the clean reference (its `faults0`), to reuse it
REUSE = os.environ.get("GOVBASE_FAULT_REUSE")
#: where the suite writes its figures (docs/reliability.md quotes them)
FIGURES = os.environ.get("GOVBASE_FAULT_FIGURES")
LONG = 6 * 3600
POINTS = [p for p in CHECKPOINTS if not ONLY or any(fnmatch(p, o) for o in ONLY)]


def _record(name: str, figures: dict[str, object]) -> dict[str, object]:
    if FIGURES:
        path = Path(FIGURES)
        data = json.loads(path.read_text()) if path.exists() else {}
        data[name] = figures
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False))
    return figures


def _trial_figures(trials: list[fk.Trial], seconds: float) -> dict[str, object]:
    stages = Counter(k.split(": ")[-1].split(":")[0].split("@")[0] for t in trials for k in t.killed_after)
    steps = Counter(k.split(": ")[0] for t in trials for k in t.killed_after if ": " in k)
    leftovers: Counter[str] = Counter()
    for t in trials:
        leftovers.update(t.leftovers)
    return {
        "trials": len(trials),
        "kills": sum(t.kills for t in trials),
        "attempts": sum(t.runs for t in trials),
        "equal_reruns": sum(t.equal and not t.problems for t in trials),
        "reruns_without_debris": sum(t.recovered for t in trials),
        "seconds": round(seconds),
        "kills_after_a_checkpoint_of": dict(sorted(stages.items())),
        "kills_in_step": dict(sorted(steps.items())),
        "leftovers": dict(leftovers),
        "failures": [
            (t.label, t.failure[:600], t.problems[:3], t.debris[:5]) for t in trials if not t.recovered
        ],
    }


@pytest.fixture(scope="session")
def clean(tmp_path_factory: pytest.TempPathFactory) -> fk.Clean:
    """The clean pipeline, once: traced on one fresh home, repeated on a second (equal, or
    "equal to a clean run" means nothing), then rerun on the first (it must change nothing)."""
    if REUSE:  # the reference of an earlier session (same code), e.g. one running beside
        return fk.load_reference(Path(REUSE))
    folder = tmp_path_factory.mktemp("faults")
    template = fk.make_template(folder, persons=PERSONS)
    with ThreadPoolExecutor(2) as pool:
        traced = pool.submit(fk.trace, template, folder / "clean")
        second = pool.submit(lambda: fk.attempt(fk.fresh(template, folder / "clean-2")))
        (first, hits), other = traced.result(), second.result()
    home = folder / "clean"
    assert not first.killed and not first.tracebacks, first.stderr
    assert first.codes[:2] == [0, 0], first.stderr  # the run and the consolidation succeed
    assert other.codes == first.codes
    reference = fk.state(home)
    assert fk.state(folder / "clean-2") == reference
    assert not fk.problems(home), fk.problems(home)
    again = fk.attempt(home)
    assert again.codes == first.codes and not again.tracebacks, again.stderr
    assert fk.state(home) == reference, "a rerun of a completed pipeline changed the home"
    shutil.rmtree(folder / "clean-2")
    ref = fk.Clean(template, first.codes, reference, first.seconds, again.seconds, hits, fk.tree(home))
    fk.save_reference(ref, folder)
    _record(
        "clean",
        {
            "persons": PERSONS,
            "exit_codes": first.codes,
            "seconds": round(first.seconds),
            "rerun_seconds": round(again.seconds),
            "compared": len(reference),
            "checkpoints_reached": len(hits),
            "passes": sum(hits.values()),
        },
    )
    return ref


def _assert_all_equal(trials: list[fk.Trial]) -> None:
    bad = [(t.label, t.failure[:800], t.problems[:3], t.debris[:5]) for t in trials if not t.recovered]
    assert not bad, bad


def test_every_stage_has_checkpoints_and_a_clean_pipeline_reaches_every_one(clean: fk.Clean) -> None:
    assert set(clean.hits) == set(CHECKPOINTS), set(CHECKPOINTS) ^ set(clean.hits)
    assert len(CHECKPOINTS) >= 12
    assert {p.split(":")[0] for p in CHECKPOINTS} >= set(STAGES)


@pytest.mark.timeout(LONG)
def test_kills_at_every_checkpoint_recover_to_a_clean_run(clean: fk.Clean, tmp_path: Path) -> None:
    started = time.monotonic()
    jobs = [
        partial(fk.kill_at, clean.template, faults=fk.spread(p, clean.hits[p], KILLS_PER_POINT), clean=clean)
        for p in POINTS
    ]
    done: list[fk.Trial] = []

    def record(trial: fk.Trial | None = None) -> dict[str, object]:
        done.extend([trial] if trial else [])
        return _record(
            "checkpoints",
            {
                **_trial_figures(done, time.monotonic() - started),
                "checkpoints": len(POINTS),
                "kills_per_point": {t.label.split("@")[0]: t.kills for t in done},
            },
        )

    trials = fk.in_parallel(jobs, tmp_path, on_done=record)  # figures so far, after every trial
    per_point = {p: t.kills for p, t in zip(POINTS, trials, strict=True)}
    figures = record()
    _assert_all_equal(trials)
    assert all(n >= 2 for n in per_point.values()), per_point  # several kills at each
    assert figures["kills"] == sum(per_point.values())


@pytest.mark.timeout(LONG)
def test_random_kills_during_full_runs_recover_to_a_clean_run(clean: fk.Clean, tmp_path: Path) -> None:
    seed = int(os.environ.get("GOVBASE_FAULT_SEED", str(time.time_ns())))
    rng = random.Random(seed)
    started, trials = time.monotonic(), list[fk.Trial]()

    def add(trial: fk.Trial) -> None:
        trials.append(trial)
        _record("random", {**_trial_figures(trials, time.monotonic() - started), "seed": seed})

    while (kills := sum(t.kills for t in trials)) < RANDOM_KILLS:
        # every chain this round needs at once (almost every attempt of a chain is killed), so
        # the workers never wait for each other; another round only if chains fell short
        chains = math.ceil((RANDOM_KILLS - kills) / CHAIN)
        jobs = [
            partial(fk.kill_randomly, clean.template, delays=fk.random_delays(CHAIN, clean, rng), clean=clean)
            for _ in range(chains)
        ]
        fk.in_parallel(jobs, tmp_path / f"round-{len(trials)}", on_done=add)  # figures after every chain
    _assert_all_equal(trials)
    assert sum(t.kills for t in trials) >= RANDOM_KILLS


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


def _record_case(
    kind: str, case: str, failed: fk.Attempt, again: fk.Attempt, home: Path, clean: fk.Clean
) -> None:
    data = json.loads(Path(FIGURES).read_text()) if FIGURES and Path(FIGURES).exists() else {}
    cases = data.get(kind, {})
    first_failed = next((fk.STEPS[i][0] for i, c in enumerate(failed.codes) if c != 0), None)
    cases[case] = {
        "exit_codes": failed.codes,
        "first_failed_step": first_failed,
        "error": next(
            (line for line in (fk.write_failure(failed) or "").splitlines() if "cannot write" in line), None
        ),
        "tracebacks": failed.tracebacks or again.tracebacks,
        "rerun_exit_codes": again.codes,
        "rerun_equal": again.codes == clean.codes and fk.state(home) == clean.state,
        "rerun_problems": fk.problems(home)[:3],
        "rerun_debris": fk.debris(home, clean.tree)[:5],
    }
    _record(kind, cases)


@pytest.mark.parametrize(
    "where", ["warehouse/raw", "warehouse/staging", "warehouse/core", "warehouse/share", "reports", "docs"]
)
def test_files_that_cannot_be_written_end_in_a_clear_error_and_recover(
    clean: fk.Clean, tmp_path: Path, where: str
) -> None:
    if not _immutable_allowed(tmp_path):
        pytest.skip("chattr +i is not permitted here (no CAP_LINUX_IMMUTABLE): cannot make EPERM as root")
    home = fk.fresh(clean.template, tmp_path / "home")
    locked = home / where
    locked.mkdir(parents=True, exist_ok=True)
    _chattr("+i", locked)  # even root gets EPERM creating files inside
    try:
        failed = fk.attempt(home)
    finally:
        _chattr("-i", locked)
    errors = "\n".join(failed.stderr)
    assert not failed.killed and not failed.tracebacks, errors[-3000:]
    said = fk.write_failure(failed)  # a step exits 1 saying what it cannot write, and why
    assert said is not None and "Operation not permitted" in said, (failed.codes, errors[-3000:])
    assert str(locked) in said.replace("\n", "")  # the error names the folder
    assert "reconciliation of run-" in failed.stdout[0]  # printed even when the run could not write
    again = fk.attempt(home)
    _record_case("eperm", where, failed, again, home, clean)
    assert again.codes == clean.codes and not again.tracebacks, again.stderr
    assert fk.state(home) == clean.state
    assert not fk.problems(home)
    assert not fk.debris(home, clean.tree)


def _mount_tmpfs(target: Path, size: str) -> bool:
    target.mkdir()
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)], capture_output=True
        ).returncode
        == 0
    )


@pytest.mark.parametrize("size", ["1400k", "4m", "8m", "12m"])  # full in the run's steps, then later ones
def test_a_full_disk_ends_in_a_clear_error_and_recovers(clean: fk.Clean, tmp_path: Path, size: str) -> None:
    mount = tmp_path / "small"
    if not _mount_tmpfs(mount, size):
        pytest.skip("mounting a size-limited tmpfs is not permitted here (needs CAP_SYS_ADMIN)")
    try:
        home = mount / "home"
        shutil.copytree(clean.template, home, symlinks=True)
        failed = fk.attempt(home)
        errors = "\n".join(failed.stderr)
        assert not failed.killed and not failed.tracebacks, errors[-3000:]
        said = fk.write_failure(failed)
        assert said is not None and "No space left on device" in said, (failed.codes, errors[-3000:])
        # space returns: the volume grows (tmpfs resizes in place)
        subprocess.run(["mount", "-o", "remount,size=256m", str(mount)], check=True)
        again = fk.attempt(home)
        _record_case("full_disk", size, failed, again, home, clean)
        assert again.codes == clean.codes and not again.tracebacks, again.stderr
        assert fk.state(home) == clean.state
        assert not fk.problems(home)
        assert not fk.debris(home, clean.tree)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)
