"""The fault-injection harness behind tests/integration/test_faults.py.

A trial copies a template home (demo deliveries, nothing run yet), runs `govbase run` in a
subprocess that is SIGKILLed (at a named checkpoint, etl.faults, or from outside at a random
moment), reruns it until a run ends normally, and compares the result with a clean run:
row counts and content hashes of every staging and quarantine table (rows ordered, run and
batch ids left out, since a rerun mints new ones) and of every rejection report, plus the
invariants a recovered home must keep (the last run reconciles, every file the partitions
name exists and no staging/quarantine file is orphaned).
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

DATE = "2026-11-01"
#: columns a rerun fills differently by design (new run id, new batch ids)
RUN_SPECIFIC = ("_run_id", "_batch_id")
WORKERS = int(os.environ.get("GOVBASE_FAULT_WORKERS", "3"))


def govbase(
    home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """`govbase <args> --home <home>` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "etl.cli", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def run(home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return govbase(home, "run", "--date", DATE, env=env)


def make_template(folder: Path, persons: int = 300, seed: int = 42) -> Path:
    """A home holding only the demo deliveries."""
    home = folder / "template"
    proc = govbase(home, "demo-data", "--persons", str(persons), "--seed", str(seed))
    assert proc.returncode == 0, proc.stderr
    return home


def fresh(template: Path, dest: Path) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(template, dest, symlinks=True)
    return dest


# ---------------------------------------------------------------- what a home holds
def _table_digest(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> tuple[int, str]:
    cols = [r[0] for r in con.execute(f"describe {schema}.{table}").fetchall()]
    keep = [c for c in cols if c not in RUN_SPECIFIC]
    listing = ", ".join(f'"{c}"' for c in keep)
    order = ", ".join(f'cast("{c}" as varchar)' for c in keep)
    rows = con.execute(f"select {listing} from {schema}.{table} order by {order}").fetchall()
    h = hashlib.sha256()
    for r in rows:
        h.update(repr(r).encode())
    return len(rows), h.hexdigest()


def state(home: Path) -> dict[str, tuple[int, str]]:
    """{"staging.person": (rows, sha256), ..., "report:<dept>": (bytes, sha256)}."""
    out: dict[str, tuple[int, str]] = {}
    with duckdb.connect(str(home / "warehouse" / "govbase.duckdb"), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('staging', 'quarantine') order by 1, 2"
        ).fetchall()
        for schema, table in tables:
            out[f"{schema}.{table}"] = _table_digest(con, schema, table)
    for report in sorted((home / "reports").glob("*/rejections.csv")):
        data = report.read_bytes()
        out[f"report:{report.parent.name}"] = (len(data), hashlib.sha256(data).hexdigest())
    return out


def problems(home: Path) -> list[str]:
    """What is wrong with a home after a run ended normally (empty: nothing)."""
    found = []
    warehouse = home / "warehouse"
    with duckdb.connect(str(warehouse / "govbase.duckdb"), read_only=True) as con:
        last = con.execute(
            "select run_id from meta.reconciliation order by started_at desc limit 1"
        ).fetchone()
        assert last
        bad = con.execute(
            "select source, extracted, loaded, quarantined, status from meta.reconciliation "
            "where run_id = ? and (not balanced or status <> 'ok')",
            [last[0]],
        ).fetchall()
        found += [f"run {last[0]} does not reconcile: {b}" for b in bad]
        named = {
            f
            for row in con.execute("select staging_path, quarantine_path from meta.partition").fetchall()
            for f in row
            if f
        }
    named_paths = {Path(f) if Path(f).is_absolute() else warehouse / f for f in named}
    found += [f"partition file missing: {p}" for p in sorted(named_paths) if not p.exists()]
    on_disk = {p for layer in ("staging", "quarantine") for p in (warehouse / layer).rglob("*.parquet")}
    found += [f"orphaned file: {p}" for p in sorted(on_disk - named_paths)]
    return found


def leftovers(home: Path) -> dict[str, int]:
    """Debris a killed run may leave that no reader sees (reported, not failed on)."""
    warehouse = home / "warehouse"
    with duckdb.connect(str(warehouse / "govbase.duckdb"), read_only=True) as con:
        recorded = {
            Path(r[0]).name for r in con.execute("select raw_path from meta.extract_batch").fetchall() if r[0]
        }
    raw = [p for p in (warehouse / "raw").rglob("*.parquet") if p.name not in recorded]
    work = (
        [p for p in (warehouse / "_work").glob("*/*/*") if p.is_dir()]
        if (warehouse / "_work").exists()
        else []
    )
    return {"unrecorded_raw_files": len(raw), "work_dirs": len(work)}


# ---------------------------------------------------------------- trials
@dataclass
class Trial:
    label: str
    kills: int = 0  # runs that died of SIGKILL
    runs: int = 0
    equal: bool = False
    problems: list[str] = field(default_factory=list)
    leftovers: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    failure: str = ""


def _finish(trial: Trial, home: Path, reference: dict[str, tuple[int, str]], started: float) -> Trial:
    """Rerun until a run ends normally (at most twice), then compare with the clean run."""
    for _ in range(2):
        proc = run(home)
        trial.runs += 1
        if proc.returncode == 0:
            break
        trial.failure = proc.stderr[-1500:]
    else:
        trial.seconds = time.monotonic() - started
        return trial
    trial.failure = ""
    got = state(home)
    trial.equal = got == reference
    if not trial.equal:
        diff = {
            k: (got.get(k), reference.get(k))
            for k in set(got) | set(reference)
            if got.get(k) != reference.get(k)
        }
        trial.failure = f"differs from the clean run: {diff}"
    trial.problems = problems(home)
    trial.leftovers = leftovers(home)
    trial.seconds = time.monotonic() - started
    return trial


def kill_at(template: Path, work: Path, faults: list[str], reference: dict[str, tuple[int, str]]) -> Trial:
    """One run per fault in `faults` (each should die at its checkpoint), then the reruns."""
    started = time.monotonic()
    trial = Trial(" then ".join(faults))
    home = fresh(template, work)
    for fault in faults:
        proc = run(home, env={"GOVBASE_FAULT": fault})
        trial.runs += 1
        trial.kills += proc.returncode == -signal.SIGKILL
    return _finish(trial, home, reference, started)


def kill_randomly(
    template: Path, work: Path, *, delays: list[float], reference: dict[str, tuple[int, str]]
) -> Trial:
    """Successive `govbase run`s, each SIGKILLed from outside after its delay, each one
    recovering what the one before left; the chain stops at the first run that ends by
    itself (later runs would find nothing to do). Then the reruns and the comparison."""
    started = time.monotonic()
    trial = Trial("random kills after " + ", ".join(f"{d:.1f}s" for d in delays))
    home = fresh(template, work)
    for delay in delays:
        proc = subprocess.Popen(
            [sys.executable, "-m", "etl.cli", "run", "--date", DATE, "--home", str(home)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        trial.runs += 1
        if proc.returncode != -signal.SIGKILL:
            break
        trial.kills += 1
    return _finish(trial, home, reference, started)


def in_parallel(
    jobs: Iterable[Callable[[Path], Trial]], scratch: Path, workers: int = WORKERS
) -> list[Trial]:
    """Run trials `workers` at a time, each in its own home under `scratch` (removed after)."""
    jobs = list(jobs)

    def one(i: int) -> Trial:
        work = scratch / f"trial-{i}"
        try:
            return jobs[i](work)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(len(jobs))))


def random_delays(n: int, clean_seconds: float, rng: random.Random) -> list[float]:
    """n moments over the first 0.3 s to 0.8 x a clean run's duration: each run of a chain
    starts where the killed one stopped, so moments late in the whole run are reached by the
    later runs of the chain (and the checkpoints cover the last writes of every stage)."""
    return [rng.uniform(0.3, 0.8 * clean_seconds) for _ in range(n)]


def spread(point: str, hits: int, kills: int = 3) -> list[str]:
    """`kills` faults at `point` for successive runs: its first, middle and last hit in a
    clean run; a point passed fewer times is hit again at its first pass in the reruns."""
    chosen = sorted({1, (hits + 1) // 2, hits})[:kills]
    chosen += [1] * (kills - len(chosen))
    return [f"{point}@{h}" for h in chosen]


def trace(template: Path, work: Path) -> tuple[dict[str, int], float, dict[str, tuple[int, str]]]:
    """A clean run that records the checkpoints it passes: (hits per point, seconds, state)."""
    home = fresh(template, work)
    log = work.parent / f"{work.name}.trace"
    started = time.monotonic()
    proc = run(home, env={"GOVBASE_FAULT_TRACE": str(log)})
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not problems(home), problems(home)
    hits: dict[str, int] = {}
    for line in log.read_text().split():
        hits[line] = hits.get(line, 0) + 1
    return hits, seconds, state(home)
