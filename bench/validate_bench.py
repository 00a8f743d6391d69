"""Validation engines side by side: Great Expectations against the compiled engine.

In a fresh GOVBASE_HOME: generate demo data, extract and normalize the household
register (ps_hukou), then validate its staged rows with the person suite twice,
chunk by chunk as the validate stage does: once with engine "ge" (every
expectation through GE's pandas execution engine) and once with "compiled"
(etl/validate/compiled.py). Prints seconds and rows/s of each, their ratio, and
checks that both flagged exactly the same (row, expectation) pairs.

    .venv/bin/python bench/validate_bench.py --persons 200000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pyarrow as pa


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chunk-rows", type=int, default=250_000)
    ns = ap.parse_args()

    from etl.config import get_settings
    from etl.contracts import get_contracts
    from etl.demo import generate
    from etl.pipeline import run_stage
    from etl.validate.runner import SuiteRunner
    from etl.workdir import WorkDir

    with tempfile.TemporaryDirectory(prefix="govbase-validate-bench-") as tmp:
        settings = get_settings(Path(tmp) / "home")
        generate(settings, persons=ns.persons, seed=ns.seed)
        for stage in ("extract", "normalize"):
            run_stage(stage, "ps_hukou", "2026-11-01", "bench", settings=settings)
        contracts = get_contracts(settings)
        staged = WorkDir.of(settings, "ps_hukou", "2026-11-01", "bench").staged
        with pa.OSFile(str(staged)) as fh:
            table = pa.ipc.open_file(fh).read_all()
        chunks = [table.slice(i, ns.chunk_rows).to_pandas() for i in range(0, table.num_rows, ns.chunk_rows)]
        rows = table.num_rows
        print(f"ps_hukou: {rows:,} staged rows in {len(chunks)} chunk(s)")
        found: dict[str, set[tuple[int, str]]] = {}
        seconds: dict[str, float] = {}
        for engine in ("ge", "compiled"):
            runner = SuiteRunner(
                settings.expectations_dir,
                contracts.tables["person"],
                contracts.sources["ps_hukou"],
                engine=engine,
            )
            runner.validate_rows(chunks[0].head(100))  # warm-up: imports, GE context
            t = time.perf_counter()
            pairs: set[tuple[int, str]] = set()
            offset = 0
            for chunk in chunks:
                fails, _ = runner.validate_rows(chunk)
                pairs |= {
                    (offset + int(p), str(e))
                    for p, e in zip(fails["position"], fails["expectation"], strict=True)
                }
                offset += len(chunk)
            seconds[engine] = time.perf_counter() - t
            found[engine] = pairs
            n_exp = len(runner.row_expectations)
            print(
                f"{engine:<9} {seconds[engine]:7.2f} s {rows / seconds[engine]:>12,.0f} rows/s "
                f"({n_exp} row-level expectations, {len(pairs):,} failures)"
            )
        same = found["ge"] == found["compiled"]
        print(f"ratio ge / compiled: {seconds['ge'] / seconds['compiled']:.1f}x; same failures: {same}")
        if not same:
            raise SystemExit(
                f"engines disagree: only GE {sorted(found['ge'] - found['compiled'])[:10]}, "
                f"only compiled {sorted(found['compiled'] - found['ge'])[:10]}"
            )


if __name__ == "__main__":
    main()
