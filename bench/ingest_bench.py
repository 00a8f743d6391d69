"""Ingest benchmark: `govbase run`'s stages against a bare DuckDB copy of the same file.

For each size, in a fresh GOVBASE_HOME: generate demo landing data, then
- the physical reference: DuckDB `read_csv(all_varchar=true)` + `COPY ... TO parquet`
  of the same household-register file (transcoded to UTF-8 first, untimed: DuckDB
  cannot decode GBK without a downloadable extension), best of three runs;
- the ingest: extract, normalize, validate, load of source ps_hukou, each stage
  timed, in a child process whose peak RSS is read from the kernel (ru_maxrss), with
  the validation engine of GOVBASE_VALIDATION_ENGINE (default: compiled).
- the design's floor: the steps every ingest of this file must take whatever its
  cleaning and checking, each done alone by the fastest library call at hand, on
  the same file: decode GBK and encode UTF-8 (CPython's codecs), cut the text into
  string columns (pyarrow.csv, multi-threaded), write them as the raw layer (pyarrow, the
  raw layer's options), read it back, write the staging partition the ingest
  produced (pyarrow, zstd). Printed as a sum of wall times and as CPU seconds
  spread perfectly over the machine's cores: the best any ingest of this design
  could do here before it cleans or checks one value.
Prints seconds and rows/s per stage, the ratio ingest / bare copy, peak RSS, and the
floor as a multiple of the bare copy.

    .venv/bin/python bench/ingest_bench.py --sizes 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHILD = r"""
import json, resource, sys, time
from etl.config import get_settings
from etl.pipeline import STAGES, run_stage
settings = get_settings(sys.argv[1])
out = {}
for stage in STAGES:
    t = time.perf_counter()
    summary = run_stage(stage, "ps_hukou", "2026-11-01", "bench-run", settings=settings)
    out[stage] = {"seconds": time.perf_counter() - t, "summary": summary,
                  "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
print(json.dumps(out, default=str))
"""
GENERATE = r"""
import sys, time
from etl.config import get_settings
from etl.demo import generate
t = time.perf_counter()
generate(get_settings(sys.argv[1]), persons=int(sys.argv[2]), seed=int(sys.argv[3]))
print(time.perf_counter() - t)
"""


def bare_copy(csv_gbk: Path, work: Path) -> tuple[float, int]:
    import duckdb

    utf8 = work / "hukou_utf8.csv"
    utf8.write_text(csv_gbk.read_bytes().decode("gbk"), encoding="utf-8")
    con = duckdb.connect()
    # best of three: the reference is a floor, so noise must not flatter the ratio
    times = []
    for _ in range(3):
        t = time.perf_counter()
        con.execute(
            f"copy (select * from read_csv('{utf8}', all_varchar = true)) to '{work / 'bare.parquet'}' "
            "(format parquet)"
        )
        times.append(time.perf_counter() - t)
    seconds = min(times)
    rows = con.execute(f"select count(*) from '{work / 'bare.parquet'}'").fetchone()[0]  # type: ignore[index]
    return seconds, int(rows)


def floor(csv_gbk: Path, staging: Path, work: Path) -> dict[str, tuple[float, float]]:
    """(wall s, CPU s) of each step the design requires, done alone (module docstring)."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from etl.extract.common import RAW_PARQUET_OPTIONS

    steps: dict[str, tuple[float, float]] = {}

    def step(name: str, fn: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        steps[name] = (time.perf_counter() - wall, time.process_time() - cpu)
        return out

    data = csv_gbk.read_bytes()
    text = step("decode GBK", lambda: data.decode("gbk"))
    utf8 = step("encode UTF-8", lambda: text.encode("utf-8"))
    header = utf8[: utf8.index(b"\n")].decode().split(",")
    table = step(
        "cut (pyarrow.csv)",
        lambda: pcsv.read_csv(
            io.BytesIO(utf8),
            parse_options=pcsv.ParseOptions(quote_char=False, invalid_row_handler=lambda row: "skip"),
            convert_options=pcsv.ConvertOptions(column_types={c: pa.string() for c in header}),
        ),
    )
    raw = work / "floor_raw.parquet"
    step("write raw layer", lambda: pq.write_table(table, raw, row_group_size=100_000, **RAW_PARQUET_OPTIONS))
    step("read raw layer", lambda: pq.ParquetFile(raw).read())
    staged = pq.read_table(staging)
    step(
        "write staging",
        lambda: pq.write_table(
            staged, work / "floor_staging.parquet", row_group_size=100_000, compression="zstd"
        ),
    )
    return steps


def run_size(persons: int, seed: int) -> dict[str, Any]:
    from etl.config import get_settings

    with tempfile.TemporaryDirectory(prefix=f"govbase-bench-{persons}-") as tmp:
        home = Path(tmp) / "home"
        settings = get_settings(home)
        # Generation runs in its own process: the ingest child must not be forked from a
        # parent holding the generator's memory (ru_maxrss would count the inherited pages).
        gen = subprocess.run(
            [sys.executable, "-c", GENERATE, str(home), str(persons), str(seed)],
            capture_output=True,
            text=True,
            check=True,
        )
        gen_seconds = float(gen.stdout.strip().splitlines()[-1])
        csv_file = sorted((settings.landing / "ps_hukou").glob("*.csv"))[0]
        bare_s, bare_rows = bare_copy(csv_file, Path(tmp))
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(home)],
            capture_output=True,
            text=True,
            env={**os.environ, "GOVBASE_HOME": str(home)},
        )
        if proc.returncode:
            raise SystemExit(f"ingest failed for {persons}:\n{proc.stderr[-3000:]}")
        stages = json.loads(proc.stdout.strip().splitlines()[-1])
        staging = sorted((settings.warehouse / "staging").rglob("*ps_hukou*/**/*.parquet"))
        floor_steps = floor(csv_file, staging[0], Path(tmp)) if staging else {}
        return {
            "persons": persons,
            "rows": bare_rows,
            "generate_s": gen_seconds,
            "bare_s": bare_s,
            "stages": {k: v["seconds"] for k, v in stages.items()},
            "rss": {k: v["maxrss_mib"] for k, v in stages.items()},
            "csv_mib": csv_file.stat().st_size / 2**20,
            "floor": floor_steps,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--seed", type=int, default=1)
    ns = ap.parse_args()
    # Each size in its own process, so ru_maxrss of children is that size's peak alone.
    if len(ns.sizes) > 1:
        for n in ns.sizes:
            subprocess.run([sys.executable, __file__, "--sizes", str(n), "--seed", str(ns.seed)], check=True)
        return
    r = run_size(ns.sizes[0], ns.seed)
    rows = r["rows"]
    total = sum(r["stages"].values())
    print(
        f"\n== {r['persons']:,} persons: ps_hukou {rows:,} rows, {r['csv_mib']:.0f} MiB GBK CSV "
        f"(generated in {r['generate_s']:.1f} s)"
    )
    print(f"{'bare DuckDB copy':<18} {r['bare_s']:8.2f} s {rows / r['bare_s']:>12,.0f} rows/s (best of 3)")
    for stage, s in r["stages"].items():
        print(f"{stage:<18} {s:8.2f} s {rows / s:>12,.0f} rows/s")
    print(f"{'ingest total':<18} {total:8.2f} s {rows / total:>12,.0f} rows/s")
    peak = max(r["rss"].values())
    after = ", ".join(f"{k} {v:.0f}" for k, v in r["rss"].items())
    print(f"ratio ingest / bare copy: {total / r['bare_s']:.1f}x   peak RSS of the ingest: {peak:.0f} MiB")
    print(f"peak RSS after each stage (MiB): {after}")
    if r["floor"]:
        cores = os.cpu_count() or 1
        print("the design's floor, each step alone (module docstring):")
        for step, (wall, cpu) in r["floor"].items():
            print(f"  {step:<18} {wall:6.2f} s wall {cpu:6.2f} s CPU")
        seq = sum(w for w, _ in r["floor"].values())
        spread = sum(c for _, c in r["floor"].values()) / cores
        print(
            f"  floor: {seq:.2f} s one after another ({seq / r['bare_s']:.1f}x the bare copy), "
            f"{spread:.2f} s spread perfectly over {cores} cores ({spread / r['bare_s']:.1f}x)"
        )


if __name__ == "__main__":
    main()
