"""`make airflow` (etl.orchestration.standalone): the embedded Airflow's settings, a taken
port refused before anything starts, and downstream DAGs that run by themselves."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from airflow_support import free_port, stop

from etl.config import get_settings
from etl.orchestration.airflow_env import airflow_env

pytestmark = pytest.mark.integration


def test_local_executor_parallelism_fits_the_machine(tmp_path: Path) -> None:
    env = airflow_env(get_settings(tmp_path / "home"), base={})
    cores = len(os.sched_getaffinity(0))  # the cores this process may run on
    assert int(env["AIRFLOW__CORE__PARALLELISM"]) == max(2, cores)
    assert int(env["AIRFLOW__CORE__PARALLELISM"]) < 32  # Airflow's default, ~4 GB of workers
    # an operator's exported value wins
    env = airflow_env(get_settings(tmp_path / "home"), base={"AIRFLOW__CORE__PARALLELISM": "5"})
    assert env["AIRFLOW__CORE__PARALLELISM"] == "5"


def test_taken_port_stops_the_start_with_a_clear_message(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "GOVBASE"))}
        env["GOVBASE_HOME"] = str(tmp_path / "home")
        proc = subprocess.run(
            [sys.executable, "-m", "etl.orchestration.standalone", "--port", str(port)],
            env=env,
            text=True,
            capture_output=True,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Airflow UI" not in proc.stdout  # no banner for a UI that is not ours
    assert not (tmp_path / "home" / "airflow" / "airflow.db").exists()  # nothing was started


def test_banner_only_once_the_ui_answers_with_the_real_url(tmp_path: Path) -> None:
    """`make airflow`'s banner: printed when /api/v2/monitor/health already answers, on the given port."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "GOVBASE"))}
    env.update({"GOVBASE_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl.orchestration.standalone", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "standalone.log").open("wb"),
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = ""
        while "Airflow UI" not in line:
            raw = proc.stdout.readline()
            assert raw, (
                f"standalone exited ({proc.poll()}) without a banner; see {tmp_path / 'standalone.log'}"
            )
            line = raw.decode()
        url = line.split(":", 1)[1].strip()
        assert url == f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(url + "/api/v2/monitor/health", timeout=5) as resp:
            health = json.loads(resp.read())
        assert health["scheduler"]["status"] == "healthy"
        # a component dying later (here the api-server) stops the whole thing with the error
        api_servers = [p for p in session_pids(proc.pid) if b"api" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert api_servers, "no api-server process found in the standalone's session"
        for pid in api_servers:
            os.kill(pid, signal.SIGKILL)
        assert proc.wait(timeout=180) == 1
        assert "stopped answering" in (tmp_path / "standalone.log").read_text(encoding="utf-8")
        assert session_pids(proc.pid) == [], "components left running"
    finally:
        stop([proc])  # type: ignore[list-item]


def session_pids(sid: int) -> list[int]:
    """Live (not zombie) processes of session sid (the standalone started its own session)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


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
            events = api.get(f"/api/v2/assets/events?{query}")["asset_events"]
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
