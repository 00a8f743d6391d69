"""A/B of the ingest stages: this working tree against another revision, same landing data.

Run-to-run noise on a small machine (15-20%) hides changes of that size in single
benchmark runs. This script generates the demo landing once, then runs extract,
normalize, validate and load of ps_hukou with each version in turn, alternating,
each time in a fresh GOVBASE_HOME holding the same landing files, and prints the
stage times of every run and their medians.

    .venv/bin/python bench/ab_stages.py --base 40a9397 --persons 1000000 --runs 5

The base revision is exported with `git archive` into a temporary folder (the
repository's worktrees are not touched). Both versions run with this checkout's
virtual environment.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
from etl.config import get_settings
from etl.pipeline import STAGES, run_stage
settings = get_settings(sys.argv[1])
out = {}
for stage in STAGES:
    t = time.perf_counter()
    run_stage(stage, "ps_hukou", "2026-11-01", "ab-run", settings=settings)
    out[stage] = time.perf_counter() - t
print(json.dumps(out))
"""
GENERATE = r"""
import sys
from etl.config import get_settings
from etl.demo import generate
generate(get_settings(sys.argv[1]), persons=int(sys.argv[2]), seed=int(sys.argv[3]))
"""


def _export(rev: str, dest: Path) -> None:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
    dest.mkdir(parents=True)
    tar_path = dest.parent / "base.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(dest, filter="data")
    tar_path.unlink()


def _run(tree: Path, landing: Path, home: Path) -> dict[str, float]:
    shutil.rmtree(home, ignore_errors=True)
    (home / "landing").mkdir(parents=True)
    shutil.copytree(landing / "ps_hukou", home / "landing" / "ps_hukou", copy_function=os.link)
    env = {**os.environ, "PYTHONPATH": str(tree), "GOVBASE_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(home)], cwd=tree, env=env, capture_output=True, text=True
    )
    if proc.returncode:
        raise SystemExit(f"ingest with {tree} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the revision to compare against (e.g. a commit or HEAD~3)")
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ns = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="govbase-ab-") as tmp_name:
        tmp = Path(tmp_name)
        base_tree = tmp / "base"
        _export(ns.base, base_tree)
        data = tmp / "data"
        print(f"generating {ns.persons:,} persons ...", flush=True)
        subprocess.run(
            [sys.executable, "-c", GENERATE, str(data), str(ns.persons), str(ns.seed)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=True,
            capture_output=True,
        )
        versions = {f"base {ns.base}": base_tree, "this tree": ROOT}
        times: dict[str, list[dict[str, float]]] = {v: [] for v in versions}
        for i in range(ns.runs):
            for label, tree in versions.items():
                t = _run(tree, data / "landing", tmp / "home")
                times[label].append(t)
                stages = "  ".join(f"{k} {v:5.2f}" for k, v in t.items())
                print(f"run {i + 1} {label:<20} {stages}  total {sum(t.values()):5.2f} s", flush=True)
        print("\nmedians (s):")
        for label, runs in times.items():
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            total = statistics.median(sum(r.values()) for r in runs)
            print(
                f"{label:<20} " + "  ".join(f"{k} {v:5.2f}" for k, v in med.items()) + f"  total {total:5.2f}"
            )


if __name__ == "__main__":
    main()
