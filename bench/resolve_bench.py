"""Consolidation at scale (issue 12.13): full, incremental, and Splink alone as the anchor.

In a fresh GOVBASE_HOME (or `--home`): generate the demo for `--persons` persons and
ingest it (setup, not timed), then, each step in its own process (so its peak RSS is its
own):

1. full: `consolidate` on the staged base (trains the model, scores every blocked pair);
2. splink: Splink alone on the same records with the same settings: train as the project
   does, `predict` at the review threshold, cluster at the match threshold (the anchor:
   the project's overhead around Splink is full / splink);
3. a later delivery (the demo's drop `--delta-drop`, events since the base: about 1 % of
   records changed at the default date), ingested (setup, not timed);
4. incremental: `consolidate` again: only the new and changed records are scored.

Prints seconds, records/s and peak RSS per step, the ratios, and the delta's size; for
each consolidation also its own steps (contracts, per entity: load, link, ids,
survivorship, findings; then relations, history, write, catalog) with records/s.
At the issue's target scale (1M staged records, about 400,000 persons):

    .venv/bin/python bench/resolve_bench.py --persons 400000

Setup (generating and ingesting the base drop) can be done once and reused:
`--home DIR --setup-only`, then `--home DIR --prepared`, both with the same `--persons` (the
later drop is generated for that many persons; the home is consumed: the bench
consolidates in it and ingests the later drop).

On demand only (not in make test); figures in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _ingest(home: Path, persons: int, seed: int, drop: str) -> float:
    from etl.config import get_settings
    from etl.contracts import get_contracts
    from etl.demo import generate
    from etl.pipeline import run_source

    settings = get_settings(home)
    started = time.perf_counter()
    generate(settings, persons=persons, seed=seed, drop_date=drop)
    day = f"{drop[:4]}-{drop[4:6]}-{drop[6:]}"
    for source in sorted(get_contracts(settings).sources):
        run_source(source, day, f"bench-{drop}", settings=settings)
    return time.perf_counter() - started


def _consolidate(home: Path) -> dict[str, Any]:
    from etl.config import get_settings
    from etl.resolve.stage import consolidate

    summary = consolidate(get_settings(home))
    runs = summary.entities
    return {
        "records": sum(int(r["records"]) for r in runs.values()),
        "scored": sum(int(r["records_scored"]) for r in runs.values()),
        "modes": {e: r["mode"] for e, r in runs.items()},
        "by_entity": {e: int(r["records"]) for e, r in runs.items()},
        "chosen": {e: f"{r['masters_chosen']:,} of {r['masters']:,}" for e, r in runs.items()},
        "steps": summary.seconds,
    }


def _splink_alone(home: Path) -> dict[str, Any]:
    """What Splink does for the project, without the project: records as linkage reads
    them, then train, predict, cluster with the same settings (per entity)."""
    from splink import DuckDBAPI, Linker

    from etl import meta
    from etl.config import get_settings
    from etl.contracts import get_contracts
    from etl.resolve.config import load_resolve_configs, splink_settings
    from etl.resolve.linkage import exact_ids
    from etl.resolve.model import _bound_prior, _train
    from etl.resolve.records import load_records

    settings = get_settings(home)
    contracts = get_contracts(settings)
    configs = load_resolve_configs(settings.schemas_dir, contracts.tables)
    records = 0
    with meta.connect(settings, read_only=True) as con:  # stored paths are relative to the warehouse root
        frames = {name: load_records(con, cfg, contracts) for name, cfg in configs.items()}
    for name, cfg in configs.items():
        recs = frames[name]
        recs["exact_id"] = exact_ids(recs, cfg)
        for other in cfg.context:  # the project fills it from the other entity's run; Splink alone: absent
            recs[f"{other}_id"] = None
        db = DuckDBAPI()
        linker = Linker(db.register(recs), splink_settings(cfg), log_level=logging.ERROR)
        _train(linker, cfg, labelled=bool(recs["exact_id"].dropna().duplicated().any()))
        _bound_prior(linker, len(recs))
        pred = linker.inference.predict(threshold_match_probability=cfg.thresholds.review)
        linker.clustering.cluster_pairwise_predictions_at_threshold(
            pred, threshold_match_probability=cfg.thresholds.match
        ).as_pandas_dataframe()
        records += len(recs)
    return {"records": records}


STEPS = {"consolidate": _consolidate, "splink": _splink_alone}


def _step(name: str, home: Path) -> dict[str, Any]:
    """Run a step in a fresh process; its seconds, peak RSS and result."""
    out = subprocess.run(
        [sys.executable, __file__, "--step", name, "--home", str(home)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:  # the step's own error, not only its exit status
        tail = "\n".join(out.stderr.strip().splitlines()[-30:])
        raise SystemExit(f"step {name} failed (exit {out.returncode}):\n{tail}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _run_step(name: str, home: Path) -> None:
    started = time.perf_counter()
    got = STEPS[name](home)
    got["seconds"] = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    got["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # all threads: DuckDB's too
    got["peak_rss_mb"] = usage.ru_maxrss / 1024
    print(json.dumps(got))


def _line(label: str, r: dict[str, Any]) -> str:
    rate = r["records"] / r["seconds"] if r["seconds"] else 0.0
    return (
        f"  {label:<26} {r['seconds']:8.1f} s ({r['cpu_seconds']:7.1f} s CPU)  {rate:10,.0f} records/s  "
        f"peak RSS {r['peak_rss_mb'] / 1024:5.2f} GB  ({r['records']:,} records)"
    )


def _steps(r: dict[str, Any]) -> list[str]:
    """A consolidation's own steps: seconds and records/s (the entity's records for its
    steps, all records for the others)."""
    out = []
    for step, sec in r.get("steps", {}).items():
        entity = step.split(":")[0]
        n = r["by_entity"].get(entity, r["records"])
        rate = f"{n / sec:12,.0f} records/s" if sec > 0 else ""
        out.append(f"      {step:<26} {sec:8.2f} s {rate}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--delta-drop", default="20261205", help="the later delivery (YYYYMMDD; ~1 %% changed)")
    ap.add_argument("--home", type=Path, help="default: a temporary directory")
    ap.add_argument("--setup-only", action="store_true", help="generate and ingest the base drop, then stop")
    ap.add_argument("--prepared", action="store_true", help="--home already holds the ingested base drop")
    ap.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)
    ns = ap.parse_args()
    if ns.step:
        _run_step(ns.step, ns.home)
        return
    if (ns.setup_only or ns.prepared) and ns.home is None:
        ap.error("--setup-only and --prepared need --home")
    with tempfile.TemporaryDirectory(prefix="govbase-resolve-bench-") as tmp:
        home = ns.home or Path(tmp) / "home"
        if not ns.prepared:
            setup = _ingest(home, ns.persons, ns.seed, "20261101")
            print(f"{ns.persons:,} persons generated and ingested in {setup:.0f} s (setup, not timed below)")
            if ns.setup_only:
                return
        full = _step("consolidate", home)
        print(_line("full consolidation", full))
        print("\n".join(_steps(full)))
        alone = _step("splink", home)
        print(_line("Splink alone (anchor)", alone))
        setup = _ingest(home, ns.persons, ns.seed, ns.delta_drop)
        print(f"drop {ns.delta_drop} generated and ingested in {setup:.0f} s (setup)")
        inc = _step("consolidate", home)
        share = inc["scored"] / inc["records"]
        print(_line(f"incremental ({share:.1%} delta)", inc) + f"  {inc['scored']:,} records scored")
        print(f"      golden records chosen again: {inc['chosen']}")
        print("\n".join(_steps(inc)))
        for what, key in (("wall", "seconds"), ("CPU", "cpu_seconds")):
            print(
                f"  {what}: full / Splink alone {full[key] / alone[key]:.2f}x (target < 1.5x), "
                f"incremental / full {inc[key] / full[key]:.1%} (target < 10%)"
            )


if __name__ == "__main__":
    main()
