"""`make airflow` (etl.orchestration.standalone): the embedded Airflow's settings, a taken
port refused before anything starts, the banner once the UI answers, a dying component
stopping it (the downstream DAGs on a running Airflow: running/test_downstream.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from airflow_support import free_port, stop

from etl.config import get_settings
from etl.orchestration.airflow_env import airflow_env
from etl.orchestration.standalone import live_pids

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
    """Live processes of session sid (the test starts the standalone in its own session)."""
    return live_pids(session=sid)
