"""`make demo`: the whole pipeline through Airflow, on one machine, from nothing.

Sets up the embedded Airflow (AIRFLOW_HOME under $GOVBASE_HOME/airflow, SQLite,
LocalExecutor, pool `govbase_warehouse`), generates the demo department data
with `govbase demo-data`, runs every source's `ingest__<source>` DAG, then
`consolidate` (staging -> core: linkage, golden records) and `publish`, all in one
interpreter (etl.orchestration.dag_runner: real DAG runs recorded in Airflow's
history, Airflow's start-up paid once; `--per-dag` runs one `airflow dags test`
process per DAG instead), prints each run's time and the total, the
reconciliation, the linkage figures (masters, merges, review queue, precision and
recall against the demo's ground truth) and where the warehouse, Data Docs, reports
and the run report are. The full log goes to $AIRFLOW_HOME/demo_logs/; exits
non-zero if any DAG failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from etl.config import Settings, get_settings
from etl.orchestration.airflow_env import airflow_bin, airflow_env, airflow_home, setup

INGEST_PREFIX = "ingest__"
CONSOLIDATE_DAG_ID = "consolidate"  # etl.orchestration.factory.CONSOLIDATE_DAG_ID (not imported: Airflow)
DEMO_DATE = "2026-11-01"  # `govbase demo-data` names its files with this delivery date (20261101)


def source_names(settings: Settings) -> list[str]:
    """Source contract names in file order (the YAML stems)."""
    return sorted(p.stem for p in (settings.schemas_dir / "sources").glob("*.yml"))


def generate_demo_data(env: dict[str, str], persons: int, seed: int) -> None:
    """Run `govbase demo-data` (the public CLI) into $GOVBASE_HOME/landing."""
    govbase = Path(sys.executable).parent / "govbase"
    cmd = [
        str(govbase) if govbase.exists() else "govbase",
        "demo-data",
        "--persons",
        str(persons),
        "--seed",
        str(seed),
    ]
    subprocess.run(cmd, env=env, check=True)


def dags_test(dag_id: str, logical_date: str, env: dict[str, str], log_dir: Path) -> tuple[bool, float, Path]:
    """`airflow dags test <dag_id> <date>`; returns (succeeded, seconds, log file)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"{dag_id}.log"
    started = time.perf_counter()
    with log_file.open("w", encoding="utf-8") as fh:
        proc = subprocess.run(
            [airflow_bin(), "dags", "test", dag_id, logical_date],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            check=False,
        )
    return proc.returncode == 0, time.perf_counter() - started, log_file


def dags_test_together(
    dag_ids: list[str], logical_date: str, env: dict[str, str], log_dir: Path
) -> tuple[dict[str, tuple[bool, float]], float, Path]:
    """All DAGs in one `etl.orchestration.dag_runner` process, in order.

    Returns ({dag_id: (succeeded, seconds)}, the process's seconds, its log file).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / "all_dags.log"
    started = time.perf_counter()
    with log_file.open("w", encoding="utf-8") as fh:
        subprocess.run(
            [sys.executable, "-m", "etl.orchestration.dag_runner", logical_date, *dag_ids],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            check=False,
        )
    results: dict[str, tuple[bool, float]] = dict.fromkeys(dag_ids, (False, 0.0))
    for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "RESULT" and parts[1] in results:
            results[parts[1]] = (parts[2] == "success", float(parts[3]))
    return results, time.perf_counter() - started, log_file


def failure_lines(log_file: Path, limit: int = 8) -> list[str]:
    """The operator-readable lines of a failed run's log (govbase's own messages first)."""
    lines = log_file.read_text(encoding="utf-8", errors="replace").splitlines()
    ours = [ln for ln in lines if "govbase" in ln and ("FAILED" in ln or "error" in ln.lower())]
    return (ours or lines)[-limit:]


def print_reconciliation(settings: Settings) -> None:
    """Per source: rows delivered, loaded, quarantined, and whether the run balances."""
    import duckdb

    if not settings.catalog_path.exists():
        return
    con = duckdb.connect(str(settings.catalog_path), read_only=True)
    try:
        rows = con.execute(
            "select source, sum(extracted), sum(loaded), sum(quarantined), bool_and(balanced) "
            "from meta.reconciliation where extracted > 0 group by source order by source"
        ).fetchall()
    finally:
        con.close()
    print(f"\n  {'source':<18} {'delivered':>10} {'loaded':>10} {'quarantined':>12}  balanced")
    for source, extracted, loaded, quarantined, balanced in rows:
        print(
            f"  {source:<18} {extracted:>10} {loaded or 0:>10} {quarantined or 0:>12}  {'yes' if balanced else 'NO'}"
        )


def linkage_lines(settings: Settings) -> list[str]:
    """The latest consolidation per entity (records, masters, merges, review queue) and
    pairwise precision / recall against the demo truth, as printable lines ([] before any)."""
    import duckdb

    from etl.resolve.evaluate import evaluate

    if not settings.catalog_path.exists():
        return []
    con = duckdb.connect(str(settings.catalog_path), read_only=True)  # what readers open
    try:
        tables = {
            r[0]
            for r in con.execute(
                "select table_name from duckdb_tables() where schema_name = 'meta'"
            ).fetchall()
        }
        if "resolve_run" not in tables:
            return []
        runs = con.execute(
            "select entity, mode, records, records_scored, masters, merged, split, review_pairs, findings "
            "from meta.resolve_run qualify row_number() over (partition by entity order by finished_at desc) = 1 "
            "order by entity"
        ).fetchall()
    finally:
        con.close()
    scores = evaluate(settings) if settings.truth_dir.is_dir() else {}
    out = [
        "\n  linkage        records  masters  records merged  id merges/splits  review queue"
        "   precision / recall: all; without a valid ID"
    ]
    for entity, mode, records, _scored, masters, merged, split, review, _findings in runs:
        pr = ""
        if entity in scores:
            every, no_id = scores[entity]
            pr = f"{every.precision:.4f} / {every.recall:.4f}; {no_id.precision:.4f} / {no_id.recall:.4f}"
        out.append(
            f"  {entity:<13} {records:>8} {masters:>8} {records - masters:>15} {merged:>9} / {split:<6}"
            f" {review:>12}   {pr}  ({mode})"
        )
    return out


def print_linkage(settings: Settings) -> None:
    for line in linkage_lines(settings):
        print(line)


def run_demo_dags(
    dag_ids: list[str], logical_date: str, env: dict[str, str], log_dir: Path, per_dag: bool
) -> list[str]:
    """Run the demo's DAGs in order, print one line each and the total; the failed dag_ids."""
    failed: list[str] = []

    def report(dag_id: str, ok: bool, seconds: float, log_file: Path) -> None:
        print(f"  {'ok    ' if ok else 'FAILED'} {dag_id:<32} {seconds:6.1f} s   log: {log_file}", flush=True)
        if not ok:
            failed.append(dag_id)
            for line in failure_lines(log_file):
                print(f"         {line[:300]}")

    started = time.perf_counter()
    overhead = None
    if per_dag:
        for dag_id in dag_ids:
            report(dag_id, *dags_test(dag_id, logical_date, env, log_dir))
    else:
        print(
            f"  running {len(dag_ids)} DAGs in one interpreter (log: {log_dir / 'all_dags.log'})", flush=True
        )
        results, total, log_file = dags_test_together(dag_ids, logical_date, env, log_dir)
        for dag_id, (ok, seconds) in results.items():
            report(dag_id, ok, seconds, log_file)
        overhead = total - sum(s for _, s in results.values())
    elapsed = time.perf_counter() - started
    if overhead is None:
        print(f"  {len(dag_ids)} DAG runs (one `airflow dags test` process each): {elapsed:.1f} s")
    else:
        print(
            f"  {len(dag_ids)} DAG runs (one interpreter): {elapsed:.1f} s, of which {overhead:.1f} s "
            f"Airflow's start-up, paid once\n  (`--per-dag` pays it in each of {len(dag_ids)} "
            "`airflow dags test` processes; figures of both in docs/airflow.md)"
        )
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m etl.orchestration.demo", description=__doc__)
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--date",
        default=DEMO_DATE,
        help="logical date YYYY-MM-DD (default: the demo's delivery date, so files are due)",
    )
    parser.add_argument("--sources", nargs="*", help="default: every source contract")
    parser.add_argument("--skip-data", action="store_true", help="reuse the landing folder as it is")
    parser.add_argument(
        "--per-dag", action="store_true", help="one `airflow dags test` process per DAG (the slow way)"
    )
    ns = parser.parse_args(argv)

    settings = get_settings()
    env = airflow_env(settings)
    print(f"GOVBASE_HOME={settings.home}\nAIRFLOW_HOME={airflow_home(settings)}  (SQLite, LocalExecutor)")
    setup(env)
    if not ns.skip_data:
        generate_demo_data(env, ns.persons, ns.seed)

    log_dir = airflow_home(settings) / "demo_logs"
    ingest = [INGEST_PREFIX + s for s in (ns.sources or source_names(settings))]
    failed = run_demo_dags(
        [*ingest, CONSOLIDATE_DAG_ID, "publish"], ns.date, env, log_dir, per_dag=ns.per_dag
    )

    print_reconciliation(settings)
    print_linkage(settings)
    print(
        f"\nwarehouse : {settings.catalog_path}  (read-only, any DuckDB client; `govbase status` for the runs)"
    )
    print(f"Parquet   : {settings.warehouse}")
    print(f"Data Docs : {settings.docs_dir / 'index.html'}")
    print(
        f"reports   : {settings.reports_dir}  (per department: <department>/rejections.html, conformance.html)"
    )
    print(f"dictionary: {settings.reports_dir / 'standard' / 'dictionary.html'}  (JSON Schemas in schema/)")
    print(f"run report: {settings.reports_dir / 'runs' / 'latest.html'}")
    print(
        f"shares    : {settings.warehouse / 'share'}  (<department>/share.duckdb + Parquet; docs/sharing.md)"
    )
    print(f"open data : {settings.layer('open')}  (CSV + Parquet per dataset; docs/open-data.md)")
    for line in open_data_lines(settings):
        print(f"            {line}")
    print(f"open catalog: {settings.layer('open') / 'catalog.jsonld'}  (DCAT-AP 3)")
    print("Airflow UI: make airflow  (the runs above are in its history)")
    if failed:
        print(f"\n{len(failed)} DAG(s) failed: {', '.join(failed)}; failures are also in meta.task_failure")
        return 1
    return 0


def open_data_lines(settings: Settings) -> list[str]:
    """One line per open aggregate: its cells and the share published (not suppressed)."""
    import pyarrow.parquet as pq

    lines = []
    for path in sorted(settings.layer("open").glob("*/*.parquet")):
        if "suppressed" not in pq.read_schema(path).names:
            continue
        hidden = pq.read_table(path, columns=["suppressed"]).column(0).to_pandas()
        if len(hidden):
            lines.append(
                f"{path.stem}: {len(hidden)} cells, {int(hidden.sum())} suppressed, "
                f"{100 * (1 - hidden.mean()):.1f}% published"
            )
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
