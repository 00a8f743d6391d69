"""Run several govbase DAGs in one interpreter, in the order given (`make demo`).

`airflow dags test` pays Airflow's start-up (imports, configuration, the DAG parse,
the database connection) once per DAG, about 20 s each, while a demo DAG moves a few
hundred rows in well under a second. Here every DAG is a real `DAG.test()` run,
recorded in the metadata database like `airflow dags test` records it (visible in the
UI's history), but the start-up is paid once. Must run in the deployment's Airflow
environment (`airflow_env`): Airflow reads its configuration at import.

Prints one ``RESULT <dag_id> <state> <seconds>`` line per DAG; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import datetime, timezone

RESULT = "RESULT"


def run_dags(dag_ids: list[str], logical_date: str) -> dict[str, str]:
    """Run each DAG once with DAG.test() at logical_date; their final states by dag_id."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    missing = [d for d in dag_ids if d not in bag.dags]
    if missing or bag.import_errors:
        raise SystemExit(f"DAGs not found: {missing}; import errors: {bag.import_errors}")
    when = datetime.fromisoformat(logical_date).replace(tzinfo=timezone.utc)  # noqa: UP017
    states: dict[str, str] = {}
    for dag_id in dag_ids:
        started = time.perf_counter()
        began = datetime.now(timezone.utc)  # noqa: UP017
        try:
            dag_run = bag.dags[dag_id].test(logical_date=when)
            state = str(getattr(dag_run, "state", "failed"))
        except Exception as exc:  # one DAG crashing is reported; the others still run
            print(f"{dag_id} crashed: {exc!r}", flush=True)
            state = "failed"
        states[dag_id] = state
        if state == "success" and bag.dags[dag_id].timetable.asset_condition is not None:
            consumed(dag_id, began)
        print(f"{RESULT} {dag_id} {state} {time.perf_counter() - started:.1f}", flush=True)
    return states


def consumed(dag_id: str, before: datetime) -> int:
    """Drop the Asset events queued for an asset-scheduled DAG before its successful run began.

    DAG.test does not consume the queue a scheduler would: without this, the first
    `make airflow` after `make demo` would run consolidate and publish again on events
    the demo's own runs already covered. Returns the queue rows removed."""
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as session:
        result = session.execute(
            delete(AssetDagRunQueue).where(
                AssetDagRunQueue.target_dag_id == dag_id, AssetDagRunQueue.created_at < before
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m etl.orchestration.dag_runner", description=__doc__)
    parser.add_argument("logical_date", help="YYYY-MM-DD")
    parser.add_argument("dag_ids", nargs="+")
    ns = parser.parse_args(argv)
    states = run_dags(ns.dag_ids, ns.logical_date)
    return 0 if all(s == "success" for s in states.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
