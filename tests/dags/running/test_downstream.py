"""On the shared running Airflow (tests/dags/conftest.py::running_airflow): one ingest run,
and the asset-scheduled DAGs that follow it by themselves (issue 14.2)."""

from __future__ import annotations

import time
import urllib.parse

import pytest

pytestmark = pytest.mark.integration


# a running Airflow's start-up plus the runs and the publish/consolidate runs they start by
# themselves, in one pool slot: past the default 900 s on a loaded shared 2-core machine
@pytest.mark.timeout(2400)
def test_ingest_triggers_downstream_without_a_hand(running_airflow) -> None:  # type: ignore[no-untyped-def]
    """One ingest run; the asset-scheduled DAGs (consolidate, then publish) follow its Asset
    events and run to success by themselves.

    The ingest DAG and date are not the UI test's (ingest__tax_registration), so the two never
    trigger the same run (409); what the downstream runs write they write under the writer
    lock, and the other tests read the published catalog, so they cannot block them."""
    api = running_airflow.api
    started = time.perf_counter()
    dag_id = "ingest__nhc_health"
    run_id = api.trigger(dag_id, "2026-11-02")  # unpauses only this ingest DAG
    assert api.wait_run(dag_id, run_id, timeout=600) == "success"
    dags = {d["dag_id"]: d for d in api.get("/api/v2/dags?limit=100")["dags"]}
    downstream = sorted(d for d in dags if not d.startswith("ingest__"))
    assert {"publish", "consolidate"} <= set(downstream)
    for d in downstream:
        assert dags[d]["is_paused"] is False, f"{d} was created paused"
    assert dags[dag_id]["is_paused"] is False  # trigger() unpaused it; every other ingest starts paused
    # follow the cascade: runs created by this ingest run's Asset events, then by theirs
    runs = follow_asset_cascade(api, dag_id, run_id, timeout=900)
    assert {d for d, _ in runs} == set(downstream), runs
    assert set(runs.values()) == {"success"}, runs
    seconds = time.perf_counter() - started
    print(f"\ningest + downstream {sorted(runs)} without a hand: {seconds:.1f} s")


def follow_asset_cascade(api, dag_id: str, run_id: str, timeout: float) -> dict[tuple[str, str], str]:  # type: ignore[no-untyped-def]
    """The final state of every DAG run that run_id's Asset events created, and, in turn,
    the runs created by those runs' events (consolidate's core Assets start publish again)."""
    deadline = time.monotonic() + timeout
    states: dict[tuple[str, str], str] = {}
    frontier = [(dag_id, run_id)]
    while frontier and time.monotonic() < deadline:
        src_dag, src_run = frontier.pop(0)
        created: set[tuple[str, str]] = set()
        while time.monotonic() < deadline:
            query = urllib.parse.urlencode({"source_dag_id": src_dag, "source_run_id": src_run, "limit": 100})
            events = api.asset_events(query)
            assert events, f"{src_dag} {src_run} emitted no Asset event"
            consumers = {d["dag_id"] for e in events for d in consuming(api, e["asset_id"])}
            created = {(r["dag_id"], r["run_id"]) for e in events for r in e["created_dagruns"]}
            # every DAG scheduled on one of these Assets has had its run created
            if consumers <= {d for d, _ in created}:
                break
            time.sleep(3)
        for key in sorted(created - set(states)):
            run = api.get(f"/api/v2/dags/{key[0]}/dagRuns/{key[1]}")
            assert run["run_type"] == "asset_triggered", run
            states[key] = api.wait_run(*key, timeout=max(1.0, deadline - time.monotonic()))
            if states[key] == "success":  # a failed run emits nothing: the final states say so
                frontier.append(key)
    assert not frontier, f"cascade not finished after {timeout:.0f} s: {states}"
    return states


def consuming(api, asset_id: int) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    """The DAGs scheduled on an Asset."""
    return list(api.get(f"/api/v2/assets/{asset_id}")["scheduled_dags"])
