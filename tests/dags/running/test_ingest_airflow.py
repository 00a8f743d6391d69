"""Real Airflow runs of the ingest DAGs on demo data (temp AIRFLOW_HOME + GOVBASE_HOME).

`airflow dags test` runs a DAG in-process; `airflow backfill create` needs a scheduler,
so the backfill test uses the running standalone Airflow of the `running_airflow` fixture.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.integration

HEAVY_SOURCES = ["ps_hukou", "samr_registry"]  # a file source and the SQL source (connection govbase_samr)
DEMO_DATE = "2026-11-01"  # the demo's default delivery date (files named *_20261101.*)


def staged_rows(dep, table: str, source: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Rows of one source in staging.<table>, by logical date."""
    rows = dep.query(
        f"select cast(_logical_date as varchar), count(*) from staging.{table} where _source = ? group by 1",
        [source],
    )
    return {d: int(n) for d, n in rows}


@pytest.mark.parametrize("source", HEAVY_SOURCES)
def test_dags_test_loads_staging(deployment, contracts, source: str) -> None:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    proc = deployment.dags_test(f"ingest__{source}", DEMO_DATE)
    print(f"\nairflow dags test ingest__{source}: {time.perf_counter() - started:.1f} s")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    table = contracts.sources[source].table
    assert staged_rows(deployment, table, source).get(DEMO_DATE, 0) > 0
    ledger = deployment.query(
        "select stage, status from meta.run_ledger where source = ? and logical_date = ? order by finished_at",
        [source, DEMO_DATE],
    )
    assert [s for s, _ in ledger] == ["extract", "normalize", "validate", "load"]
    assert {st for _, st in ledger} == {"ok"}


def test_failure_is_recorded_in_meta(deployment) -> None:  # type: ignore[no-untyped-def]
    """A task failing for good lands in meta.task_failure with an operator-readable message."""
    env_before = dict(deployment.env)
    # the SAMR connection points at a database that does not exist: extract cannot read the source
    deployment.env["AIRFLOW_CONN_GOVBASE_SAMR"] = "sqlite:////nonexistent/govbase/registry.sqlite"
    try:
        proc = deployment.dags_test("ingest__samr_registry", "2024-06-03")
    finally:
        deployment.env.clear()
        deployment.env.update(env_before)
    assert proc.returncode != 0
    rows = deployment.query(
        "select dag_id, task_id, cast(logical_date as varchar), exception from meta.task_failure "
        "where dag_id = 'ingest__samr_registry'"
    )
    assert rows, "the failure callback recorded nothing"
    dag_id, task_id, logical_date, exception = rows[-1]
    assert (dag_id, task_id, logical_date) == ("ingest__samr_registry", "extract", "2024-06-03")
    assert "samr_registry" in exception and len(exception) <= 2000
    assert "govbase task FAILED" in proc.stdout + proc.stderr


# a running Airflow's start-up plus the runs and the publish/consolidate runs they start by
# themselves, in one pool slot: past the default 900 s on a loaded shared 2-core machine
@pytest.mark.timeout(2400)
def test_backfill_three_dates_then_rerun_is_idempotent(running_airflow, contracts) -> None:  # type: ignore[no-untyped-def]
    """Each logical date of the window is processed exactly once; rerunning one date changes nothing."""
    dep, api = running_airflow.deployment, running_airflow.api
    source, dag_id = "ps_hukou", "ingest__ps_hukou"
    table = contracts.sources[source].table
    # Unpausing makes the scheduler start the latest scheduled interval (today): let it
    # take what has been delivered so far before the old drops arrive.
    api.wait_dag(dag_id)
    api.patch(f"/api/v2/dags/{dag_id}", {"is_paused": False})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        scheduled = api.get(f"/api/v2/dags/{dag_id}/dagRuns?limit=50")["dag_runs"]
        if scheduled and all(r["state"] in ("success", "failed") for r in scheduled):
            break
        time.sleep(3)
    # three dated deliveries, one per day, each of other people (another seed)
    truth_rows = {}
    for i, day in enumerate(("20240501", "20240502", "20240503")):
        proc = subprocess.run(
            [
                str(Path(sys.executable).parent / "govbase"),
                "demo-data",
                "--persons",
                "300",
                "--seed",
                str(20 + i),
                "--drop-date",
                day,
            ],
            env=dep.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        # the generator's ground truth has one row per delivered row of that day's file
        truth_rows[f"{day[:4]}-{day[4:6]}-{day[6:]}"] = pq.read_metadata(
            dep.settings.truth_dir / f"{source}.parquet"
        ).num_rows
    started = time.perf_counter()
    for _ in range(3):
        proc = dep.airflow(
            "backfill", "create", "--dag-id", dag_id, "--from-date", "2024-05-01", "--to-date", "2024-05-03"
        )
        # SQLite beside a running scheduler: a lock conflict rolls the command back; retry it
        if proc.returncode == 0 or "database is locked" not in proc.stdout + proc.stderr:
            break
        time.sleep(2)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dates = ["2024-05-01", "2024-05-02", "2024-05-03"]
    deadline = time.monotonic() + 900  # each date's ingest may queue behind publish and consolidate
    runs: list[dict] = []  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        runs = [
            r
            for r in api.get(f"/api/v2/dags/{dag_id}/dagRuns?limit=50")["dag_runs"]
            if r["run_type"] == "backfill"
        ]
        if len(runs) == 3 and all(r["state"] in ("success", "failed") for r in runs):
            break
        time.sleep(3)
    print(f"\nbackfill of 3 dates: {time.perf_counter() - started:.1f} s")
    assert sorted(r["logical_date"][:10] for r in runs) == dates
    assert {r["state"] for r in runs} == {"success"}, runs
    loads = dep.query(
        "select cast(logical_date as varchar), count(*) from meta.run_ledger where source = ? and stage = 'load' "
        "and status = 'ok' and logical_date between '2024-05-01' and '2024-05-03' group by 1 order by 1",
        [source],
    )
    assert loads == [(d, 1) for d in dates], "each logical date processed exactly once"
    partitions = dep.query(
        "select cast(logical_date as varchar) from meta.partition where source = ? "
        "and logical_date between '2024-05-01' and '2024-05-03' order by 1",
        [source],
    )
    print(f"published partitions: {partitions}")
    assert partitions == [(d,) for d in dates], "one partition per logical date"
    # each partition holds that day's delivery: loaded + quarantined = the rows of that day's file
    per_date = dict(
        dep.query(
            "select cast(logical_date as varchar), source_rows + rows_quarantined from meta.partition "
            "where source = ? and logical_date between '2024-05-01' and '2024-05-03'",
            [source],
        )
    )
    assert per_date == truth_rows
    before = (staged_rows(dep, table, source), partitions)

    # rerun one date: clear its tasks; the same dag run (same run id) executes again
    run = next(r for r in runs if r["logical_date"].startswith("2024-05-02"))
    api.post(
        f"/api/v2/dags/{dag_id}/clearTaskInstances",
        {"dag_run_id": run["dag_run_id"], "dry_run": False, "only_failed": False, "reset_dag_runs": True},
    )
    assert api.wait_run(dag_id, run["dag_run_id"], timeout=900) == "success"
    after = (
        staged_rows(dep, table, source),
        dep.query(
            "select cast(logical_date as varchar) from meta.partition where source = ? "
            "and logical_date between '2024-05-01' and '2024-05-03' order by 1",
            [source],
        ),
    )
    assert after == before
