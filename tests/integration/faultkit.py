"""The fault-injection harness behind tests/integration/test_faults.py.

A trial copies a template home (demo deliveries, nothing run yet) and runs the full
pipeline on it, as an operator or the DAGs would: `govbase run`, `govbase consolidate`,
`govbase publish` (STEPS), each step a subprocess. An attempt is SIGKILLed (at a named
checkpoint, etl.faults, or from outside at a random moment) and the pipeline is started
again from its first step, until an attempt ends by itself: that attempt is the rerun. It
must end as the clean pipeline did (the same exit code per step, no traceback) with the
same content: row counts and content hashes of every staging, quarantine and core table
(rows ordered, run and batch ids left out, since a rerun mints new ones), of every
rejection report, open dataset (CSV) and department share (each table of its share.duckdb and each
Parquet beside it), plus the invariants a recovered home must keep (the last run
reconciles, every file the partitions and core tables name exists, no staging or
quarantine file is orphaned).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from etl import meta
from etl.config import get_settings

DATE = "2026-11-01"
#: the full pipeline, in order: ingest every source, consolidate, publish (reports, shares)
STEPS: tuple[tuple[str, ...], ...] = (("run", "--date", DATE), ("consolidate",), ("publish", "--date", DATE))
#: columns a rerun fills differently by design (new run ids, new batch ids; the consolidation
#: names the run that scored a pair or trained a model)
RUN_SPECIFIC = ("_run_id", "_batch_id", "run_id", "scored_run", "trained_run")
WORKERS = int(os.environ.get("GOVBASE_FAULT_WORKERS", "3"))
#: the department shares need a pseudonym key; a demo one unless the caller set one
DEMO_KEY = "demo:govbase-fault-suite-key-not-secret"
TIMEOUT = 900.0


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.setdefault("GOVBASE_PSEUDONYM_KEY", DEMO_KEY)
    env.pop("GOVBASE_FAULT", None)
    env.pop("GOVBASE_FAULT_TRACE", None)
    return {**env, **(extra or {})}


def govbase(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`govbase <args> --home <home>` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "etl.cli", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_env(env),
    )


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


# ---------------------------------------------------------------- one attempt at the pipeline
@dataclass
class Attempt:
    codes: list[int]  # exit code of each step started (-9: SIGKILLed)
    stdout: list[str]
    stderr: list[str]
    seconds: float
    last_point: str | None = None  # the last checkpoint passed before a kill (traced attempts)

    @property
    def killed(self) -> bool:
        return bool(self.codes) and self.codes[-1] == -signal.SIGKILL

    @property
    def tracebacks(self) -> bool:
        return any("Traceback" in e for e in self.stderr)


def _step(
    home: Path, args: tuple[str, ...], env: dict[str, str], timeout: float | None
) -> tuple[int, str, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl.cli", *args, "--home", str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: a kill takes every process it started
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT if timeout is None else max(timeout, 0.0))
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):  # it ended in between
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return proc.returncode, out, err


def attempt(
    home: Path,
    env: dict[str, str] | None = None,
    *,
    after: float | None = None,
    trace: Path | None = None,
) -> Attempt:
    """The pipeline's steps in order, stopping at a SIGKILL: one the process gives itself
    (GOVBASE_FAULT in `env`) or one from outside `after` seconds from the attempt's start.
    A step that fails (exit 1) does not stop the others, as in the clean pipeline. With
    `trace`, each step appends the checkpoints it passes to `<trace>.<step>`."""
    started, codes, outs, errs = time.monotonic(), [], [], []
    last_point = None
    for i, args in enumerate(STEPS):
        step_trace = trace.with_name(f"{trace.name}.{i}") if trace else None
        extra = {**(env or {}), **({"GOVBASE_FAULT_TRACE": str(step_trace)} if step_trace else {})}
        left = None if after is None else after - (time.monotonic() - started)
        code, out, err = _step(home, args, _env(extra), left)
        codes.append(code)
        outs.append(out)
        errs.append(err)
        if code == -signal.SIGKILL:
            points = step_trace.read_text().split() if step_trace and step_trace.exists() else []
            last_point = f"{args[0]}: " + (points[-1] if points else "before its first checkpoint")
            break
    return Attempt(codes, outs, errs, time.monotonic() - started, last_point if trace else None)


# ---------------------------------------------------------------- what a home holds
def _writer(home: Path) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
    """The writer's catalog of `home`, read-only, its relative stored paths resolved at the
    warehouse root (etl.meta.connect)."""
    return meta.connect(get_settings(home), read_only=True)


def _digest(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[int, str]:
    cols = [r[0] for r in con.execute(f"describe select * from {relation}").fetchall()]
    keep = [c for c in cols if c not in RUN_SPECIFIC]
    listing = ", ".join(f'"{c}"' for c in keep)
    order = ", ".join(f'cast("{c}" as varchar)' for c in keep)
    rows = con.execute(f"select {listing} from {relation} order by {order}").fetchall()
    h = hashlib.sha256()
    for r in rows:
        h.update(repr(r).encode())
    return len(rows), h.hexdigest()


def _shares(home: Path) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    for share in sorted((home / "warehouse" / "share").glob("*/share.duckdb")):
        dept = share.parent.name
        with duckdb.connect(str(share), read_only=True) as con:
            for (table,) in con.execute(
                "select table_name from information_schema.tables order by 1"
            ).fetchall():
                out[f"share:{dept}:{table}"] = _digest(con, f'"{table}"')
        with duckdb.connect() as con:
            for pq in sorted(share.parent.glob("*.parquet")):
                quoted = str(pq).replace("'", "''")
                out[f"share:{dept}:{pq.name}"] = _digest(con, f"read_parquet('{quoted}')")
    return out


def state(home: Path) -> dict[str, tuple[int, str]]:
    """{"staging.person": (rows, sha256), ..., "core.person": ..., "report:<dept>": (bytes,
    sha256), "open:<dataset>/<file>.csv": (bytes, sha256), "share:<dept>:<table>": (rows, sha256)}."""
    out: dict[str, tuple[int, str]] = {}
    with _writer(home) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('staging', 'quarantine', 'core') order by 1, 2"
        ).fetchall()
        for schema, table in tables:
            out[f"{schema}.{table}"] = _digest(con, f"{schema}.{table}")
    for report in sorted((home / "reports").glob("*/rejections.csv")):
        data = report.read_bytes()
        out[f"report:{report.parent.name}"] = (len(data), hashlib.sha256(data).hexdigest())
    for f in sorted((home / "warehouse" / "open").glob("*/*.csv")):  # each open dataset
        data = f.read_bytes()
        out[f"open:{f.parent.name}/{f.name}"] = (len(data), hashlib.sha256(data).hexdigest())
    out.update(_shares(home))
    return out


def _named_files(con: duckdb.DuckDBPyConnection, warehouse: Path) -> tuple[set[Path], set[Path]]:
    """Files meta.partition names (staging, quarantine) and files meta.core_table,
    meta.core_patch and meta.core_layer name (a core table's file, its patch's or its
    layers' drop and add files)."""
    partition = {
        f
        for row in con.execute("select staging_path, quarantine_path from meta.partition").fetchall()
        for f in row
        if f
    }
    core = {r[0] for r in con.execute("select path from meta.core_table").fetchall()}
    for table in ("core_patch", "core_layer"):
        found = con.execute(
            "select count(*) from duckdb_tables() where schema_name = 'meta' and table_name = ?", [table]
        ).fetchall()[0][0]
        if found:
            core |= {
                f for r in con.execute(f"select drop_path, add_path from meta.{table}").fetchall() for f in r
            }

    def resolved(files: set[str]) -> set[Path]:
        return {Path(f) if Path(f).is_absolute() else warehouse / f for f in files}

    return resolved(partition), resolved(core)


def problems(home: Path) -> list[str]:
    """What is wrong with a home after the pipeline ended normally (empty: nothing)."""
    found = []
    warehouse = home / "warehouse"
    with _writer(home) as con:
        last = con.execute(
            "select run_id from meta.reconciliation order by started_at desc limit 1"
        ).fetchall()
        assert last
        bad = con.execute(
            "select source, extracted, loaded, quarantined, status from meta.reconciliation "
            "where run_id = ? and (not balanced or status <> 'ok')",
            [last[0][0]],
        ).fetchall()
        found += [f"run {last[0][0]} does not reconcile: {b}" for b in bad]
        partition, core = _named_files(con, warehouse)
    found += [f"file missing: {p}" for p in sorted(partition | core) if not p.exists()]
    on_disk = {p for layer in ("staging", "quarantine") for p in (warehouse / layer).rglob("*.parquet")}
    found += [f"orphaned file: {p}" for p in sorted(on_disk - partition)]
    return found + catalog_differs(home)


def catalog_differs(home: Path) -> list[str]:
    """Relations of the published catalog (warehouse/catalog/govbase.duckdb, what readers
    open) whose rows differ from the writer's file after the pipeline ended."""
    warehouse = home / "warehouse"
    found = []
    with (
        _writer(home) as writer,
        duckdb.connect(str(warehouse / "catalog" / "govbase.duckdb"), read_only=True) as reader,
    ):
        listing = (
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema in ('staging', 'quarantine', 'core') order by 1"
        )
        names = [r[0] for r in writer.execute(listing).fetchall()]
        published = [r[0] for r in reader.execute(listing).fetchall()]
        if names != published:
            found.append(f"the published catalog holds {published}, the writer {names}")
        for name in set(names) & set(published):
            if _digest(writer, name) != _digest(reader, name):
                found.append(f"the published catalog's {name} differs from the writer's")
    return found


#: the parts of a path a run mints anew: run ids (run-, consolidate-, publish-...), raw batch
#: ids, GE's validation timestamps
_MINTED = [
    (re.compile(r"[a-z]+-\d{8}T\d{6}-[0-9a-f]{6}(?![0-9a-f])"), "<run>"),
    (re.compile(r"[a-z_]+-\d{8}T\d{6}-[0-9a-f]{8}(?![0-9a-f])"), "<batch>"),
    (re.compile(r"(?<!\d)\d{8}T\d{6}(\.\d+)?Z?"), "<time>"),
]
#: per-run history every run adds (killed ones included): its GE validation results and their
#: Data Docs, its validation summary, its run report; compared as kinds, not counted
HISTORY = ("gx/uncommitted/validations/", "docs/validations/", "warehouse/validation/", "reports/runs/")


def tree(home: Path) -> Counter[str]:
    """Every file of a home, its run-minted parts replaced by placeholders, with its count."""
    out: Counter[str] = Counter()
    for p in home.rglob("*"):
        if p.is_file() or p.is_symlink():
            rel = p.relative_to(home).as_posix()
            for pattern, placeholder in _MINTED:
                rel = pattern.sub(placeholder, rel)
            out[rel] += 1
    return out


def debris(home: Path, clean: Counter[str]) -> list[str]:
    """Files a recovered home holds beyond a clean one's: a kind of file the clean home has
    not, or more of a kind than it has (history excepted: HISTORY), or fewer."""
    got = tree(home)
    found = []
    for rel in sorted(set(got) | set(clean)):
        n, want = got.get(rel, 0), clean.get(rel, 0)
        if rel.startswith(HISTORY) and n and want:
            continue
        if n != want:
            found.append(f"{rel}: {n} file(s), a clean home {want}")
    return found


def leftovers(home: Path) -> dict[str, int]:
    """Debris of the known kinds a killed run may leave, counted (the sweep of etl.debris
    removes them; `debris` fails a trial on any file beyond a clean home's)."""
    warehouse = home / "warehouse"
    with _writer(home) as con:
        recorded = {
            Path(r[0]).name for r in con.execute("select raw_path from meta.extract_batch").fetchall() if r[0]
        }
        _, core = _named_files(con, warehouse)
    raw = [p for p in (warehouse / "raw").rglob("*.parquet") if p.name not in recorded]
    work = [p for p in (warehouse / "_work").glob("*/*/*") if p.is_dir()]
    core_files = [
        p for p in (warehouse / "core").rglob("*.parquet") if "_models" not in p.parts and p not in core
    ]
    tmp = list((warehouse / "share").rglob("*.tmp"))
    snapshots = list((warehouse / "catalog").glob(".govbase.duckdb.*.tmp*"))
    return {
        "unrecorded_raw_files": len(raw),
        "work_dirs": len(work),
        "unpublished_core_files": len(core_files),
        "share_tmp_files": len(tmp),
        "catalog_tmp_files": len(snapshots),
    }


# ---------------------------------------------------------------- the clean pipeline
@dataclass
class Clean:
    template: Path  # the home holding only the deliveries, copied by every trial
    codes: list[int]
    state: dict[str, tuple[int, str]]
    seconds: float  # a clean attempt on a fresh home
    rerun_seconds: float  # an attempt on a home the pipeline completed (every step finds little to do)
    hits: dict[str, int]  # checkpoint -> passes in the step that passes it most
    tree: Counter[str]  # the files of the clean home (after its rerun), as `tree` names them


def trace(template: Path, work: Path) -> tuple[Attempt, dict[str, int]]:
    """A clean attempt on a fresh home that records the checkpoints it passes."""
    home = fresh(template, work)
    a = attempt(home, trace=work.parent / f"{work.name}.trace")
    return a, traced_hits(work)


def traced_hits(work: Path) -> dict[str, int]:
    """checkpoint -> passes in the step that passes it most, from the traces of `trace`."""
    hits: dict[str, int] = {}
    for i in range(len(STEPS)):
        step: dict[str, int] = {}
        f = work.parent / f"{work.name}.trace.{i}"
        for line in f.read_text().split() if f.exists() else []:
            step[line] = step.get(line, 0) + 1
        for p, n in step.items():
            hits[p] = max(hits.get(p, 0), n)
    return hits


def save_reference(clean: Clean, folder: Path) -> None:
    """What another session needs to reuse this reference (`load_reference`)."""
    about = {"codes": clean.codes, "seconds": clean.seconds, "rerun_seconds": clean.rerun_seconds}
    (folder / "reference.json").write_text(json.dumps(about))


def load_reference(folder: Path) -> Clean:
    """The clean reference an earlier session computed in `folder` (its template, its clean
    home and traces, reference.json): state and hits are read again from the files."""
    about = json.loads((folder / "reference.json").read_text())
    return Clean(
        folder / "template",
        about["codes"],
        state(folder / "clean"),
        about["seconds"],
        about["rerun_seconds"],
        traced_hits(folder / "clean"),
        tree(folder / "clean"),
    )


# ---------------------------------------------------------------- trials
@dataclass
class Trial:
    label: str
    kills: int = 0  # attempts that died of SIGKILL
    runs: int = 0  # attempts (each: up to every step of the pipeline)
    equal: bool = False
    problems: list[str] = field(default_factory=list)
    leftovers: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    failure: str = ""
    killed_after: list[str] = field(default_factory=list)  # per kill: the last checkpoint passed
    debris: list[str] = field(default_factory=list)  # files beyond a clean home's (`debris`)

    @property
    def recovered(self) -> bool:
        """Equal to the clean pipeline, nothing wrong, no debris."""
        return self.equal and not self.problems and not self.debris


def _finish(trial: Trial, home: Path, clean: Clean, started: float, last: Attempt | None) -> Trial:
    """The rerun (`last` when the last attempt already ended by itself, else one more), and
    its comparison with the clean pipeline. One rerun: it must end equal to the clean one."""
    if last is None or last.killed:
        last = attempt(home)
        trial.runs += 1
    trial.seconds = time.monotonic() - started
    if last.killed or last.codes != clean.codes or last.tracebacks:
        trial.failure = f"rerun exit codes {last.codes} (clean: {clean.codes}): " + " | ".join(
            e[-800:] for e in last.stderr
        )
        return trial
    got = state(home)
    trial.equal = got == clean.state
    if not trial.equal:
        diff = {k: (got.get(k), clean.state.get(k)) for k in set(got) | set(clean.state)}
        trial.failure = "differs from the clean run: " + str({k: v for k, v in diff.items() if v[0] != v[1]})
    trial.problems = problems(home)
    trial.leftovers = leftovers(home)
    trial.debris = debris(home, clean.tree)
    return trial


def kill_at(template: Path, work: Path, faults: list[str], clean: Clean) -> Trial:
    """One attempt per fault in `faults` (each should die at its checkpoint), then the rerun."""
    started = time.monotonic()
    trial = Trial(" then ".join(faults))
    home = fresh(template, work)
    for fault in faults:
        a = attempt(home, {"GOVBASE_FAULT": fault})
        trial.runs += 1
        if a.killed:
            trial.kills += 1
            trial.killed_after.append(fault)
    return _finish(trial, home, clean, started, None)


def kill_randomly(template: Path, work: Path, *, delays: list[float], clean: Clean) -> Trial:
    """Successive attempts, each SIGKILLed from outside after its delay, each one recovering
    what the one before left; the chain stops at the first attempt that ends by itself,
    which is the rerun compared with the clean pipeline."""
    started = time.monotonic()
    trial = Trial("random kills after " + ", ".join(f"{d:.1f}s" for d in delays))
    home = fresh(template, work)
    a: Attempt | None = None
    for i, delay in enumerate(delays):
        a = attempt(home, after=delay, trace=work.parent / f"{work.name}.{i}.trace")
        trial.runs += 1
        if not a.killed:
            break
        trial.kills += 1
        trial.killed_after.append(a.last_point or "?")
    return _finish(trial, home, clean, started, a)


def in_parallel(
    jobs: Iterable[Callable[[Path], Trial]],
    scratch: Path,
    workers: int = WORKERS,
    on_done: Callable[[Trial], object] | None = None,
) -> list[Trial]:
    """Run trials `workers` at a time, each in its own home under `scratch` (removed after);
    `on_done` is called with each trial as it ends (one at a time)."""
    jobs = list(jobs)
    lock = threading.Lock()

    def one(i: int) -> Trial:
        work = scratch / f"trial-{i}"
        try:
            trial = jobs[i](work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if on_done is not None:
            with lock:
                on_done(trial)
        return trial

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(len(jobs))))


def random_delays(n: int, clean: Clean, rng: random.Random) -> list[float]:
    """n kill moments for a chain: the first over a whole clean attempt, the later ones over a
    rerun's duration (a killed attempt's successor has at least a rerun's work to do, so every
    moment falls inside it; later moments of the whole pipeline are reached by the first)."""
    first = rng.uniform(0.02, 1.0) * clean.seconds
    return [first, *(rng.uniform(0.02, 1.0) * clean.rerun_seconds for _ in range(n - 1))]


def spread(point: str, hits: int, kills: int = 3) -> list[str]:
    """`kills` faults at `point` for successive attempts: its middle pass in a clean attempt,
    then the first pass of each rerun (which redoes what the kill left undone, so it passes the
    point again where a kill is possible at all)."""
    return [f"{point}@{(hits + 1) // 2}"] + [f"{point}@1"] * (kills - 1)


def write_failure(a: Attempt) -> str | None:
    """The stderr of the first step that failed with a clear "cannot write" (None: none did)."""
    return next((e for c, e in zip(a.codes, a.stderr, strict=True) if c == 1 and "cannot write" in e), None)
