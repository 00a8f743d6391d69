"""Scale-out: CeleryExecutor with a Redis broker and a PostgreSQL metadata database of
its own; a real `airflow celery worker` started here runs one ingest DAG to success."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_support import Api, make_deployment, start, stop, wait_health

from etl.orchestration.standalone import read_admin_password

pytestmark = pytest.mark.integration

PG = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)


def reachable(addr: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(addr, timeout=2):
            return True
    except OSError:
        return False


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-h", PG[0], "-p", str(PG[1]), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    )


@pytest.fixture
def airflow_database() -> Iterator[str]:
    """A PostgreSQL database of the test's own, dropped afterwards."""
    if not (reachable(PG) and reachable(REDIS)):
        pytest.skip("PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 are needed")
    name = f"govbase_airflow_{uuid.uuid4().hex[:8]}"
    psql(f"create database {name}")
    try:
        yield f"postgresql+psycopg://postgres@{PG[0]}:{PG[1]}/{name}"
    finally:
        psql(f"drop database if exists {name} with (force)")


def test_celery_worker_runs_an_ingest_dag(tmp_path, airflow_database: str) -> None:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    dep = make_deployment(
        tmp_path,
        profile="celery",
        extra={
            "GOVBASE_AIRFLOW_DB_URL": airflow_database,
            "GOVBASE_CELERY_BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/7",
            "GOVBASE_CELERY_CONCURRENCY": "2",
        },
    )
    assert dep.env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    base_url = f"http://127.0.0.1:{dep.port}"
    procs = start(
        [
            ["api-server", "--port", str(dep.port)],
            ["scheduler"],
            ["dag-processor"],
            ["celery", "worker", "--concurrency", "2"],
        ],
        dep.env,
        dep.settings.home / "airflow_logs",
    )
    try:
        wait_health(base_url, procs[1])
        password = read_admin_password(Path(dep.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]))
        assert password, "the api-server wrote no admin password"
        api = Api(base_url, password)
        api.login()
        dag_id = "ingest__tax_registration"
        run_id = api.trigger(dag_id, "2026-11-01")  # the demo delivery date
        state = api.wait_run(dag_id, run_id, timeout=300)
        tis = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        hosts = {ti["hostname"] for ti in tis}
        print(
            f"\ncelery run {state} in {time.perf_counter() - started:.1f} s; executed on {hosts}; "
            f"executor {[ti.get('executor') for ti in tis][:1]}"
        )
        assert state == "success"
        assert all(ti["state"] == "success" for ti in tis)
        rows = dep.query("select count(*) from staging.legal_entity where _source = 'tax_registration'")
        assert rows[0][0] > 0
    finally:
        stop(procs)
