"""How fast the DAG files parse, in a fresh interpreter after `import airflow.sdk` (the
scheduler has it loaded): the median of several runs, against a budget.

    .venv/bin/python bench/dag_parse_bench.py [--runs 5] [--budget 2.0]

Exits 1 when the median exceeds the budget (seconds; default 2.0, the figure the DAG
integrity test used to assert). The scheduler parses every DAG file every
`dag_processor.refresh_interval`; heavy imports (pandas, DuckDB, GE) at parse time are
what would blow the budget, and tests/dags/test_dag_integrity.py forbids those.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

DAGS_DIR = Path(__file__).resolve().parents[1] / "dags"
CODE = (
    "import time, runpy\n"
    "import airflow.sdk\n"
    "t = time.perf_counter()\n"
    f"for p in sorted(__import__('pathlib').Path({str(DAGS_DIR)!r}).glob('*.py')):\n"
    "    runpy.run_path(str(p))\n"
    "print(time.perf_counter() - t)\n"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--budget", type=float, default=2.0, help="seconds the median may take")
    ns = ap.parse_args()
    times = []
    for _ in range(ns.runs):
        out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True).stdout
        times.append(float(out.strip().splitlines()[-1]))
    median = statistics.median(times)
    print(
        f"DAG files parse: median {median:.3f} s over {ns.runs} runs ({', '.join(f'{t:.3f}' for t in times)})"
    )
    if median >= ns.budget:
        print(f"over budget: {median:.3f} s >= {ns.budget} s")
        sys.exit(1)


if __name__ == "__main__":
    main()
