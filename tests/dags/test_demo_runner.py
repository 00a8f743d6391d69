"""`make demo`'s DAG runs in one interpreter: real DAG runs, in order, recorded in Airflow's history."""

from __future__ import annotations

import sqlite3
import time

import pytest

from etl.orchestration.demo import dags_test_together

pytestmark = pytest.mark.integration


def test_demo_dags_run_in_one_interpreter_and_land_in_airflow_history(deployment) -> None:  # type: ignore[no-untyped-def]
    # the demo's shape (ingest, consolidate, publish); not the sources test_ingest_airflow
    # runs on this deployment at the same date (its ledger expects one run each)
    dag_ids = ["ingest__tax_registration", "ingest__nhc_health", "consolidate", "publish"]
    started = time.perf_counter()
    results, seconds, log_file = dags_test_together(
        dag_ids, "2026-11-01", deployment.env, deployment.settings.home
    )
    print(f"\n{len(dag_ids)} DAG runs in one interpreter: {time.perf_counter() - started:.1f} s")
    assert {d: ok for d, (ok, _) in results.items()} == dict.fromkeys(dag_ids, True), log_file.read_text()[
        -4000:
    ]
    assert seconds >= sum(s for _, s in results.values())
    loaded = deployment.query("select count(*) from staging.person where _source = 'nhc_health'")
    assert loaded[0][0] > 0
    # consolidate ran on what the ingests staged, before publish
    assert deployment.query("select count(*) from core.person")[0][0] > 0
    db = deployment.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
    con = sqlite3.connect(db)
    try:
        runs = con.execute(
            "select dag_id, state from dag_run where date(logical_date) = '2026-11-01' order by start_date"
        ).fetchall()
        # the demo's own consolidate and publish covered the ingests' Asset events: nothing
        # is left queued for a scheduler started afterwards (`make airflow`) to run again
        queued = con.execute("select target_dag_id, count(*) from asset_dag_run_queue group by 1").fetchall()
    finally:
        con.close()
    assert [(d, "success") for d in dag_ids] == [r for r in runs if r[0] in dag_ids]
    assert queued == []
