"""Helpers of the Airflow tests: a temp deployment (GOVBASE_HOME + AIRFLOW_HOME) with
demo data, starting/stopping Airflow components, and a small REST API v2 client."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etl.config import Settings, get_settings
from etl.orchestration.airflow_env import ADMIN_USER, airflow_bin, airflow_env, setup

PERSONS = 400  # small: the integration tier stays quick
#: the one source whose deliveries start its ingest in the running Airflow (GOVBASE_WATCH):
#: the other tests trigger or backfill the other sources' DAGs by hand, undisturbed
WATCHED = "ca_marriage"
SEED = 7


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Deployment:
    """One isolated govbase + Airflow deployment under a temp folder."""

    settings: Settings
    env: dict[str, str]
    port: int

    def airflow(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [airflow_bin(), *args], env=self.env, text=True, capture_output=True, timeout=timeout, check=False
        )

    def dags_test(self, dag_id: str, logical_date: str) -> subprocess.CompletedProcess[str]:
        proc = self.airflow("dags", "test", dag_id, logical_date)
        log = self.settings.home / f"dags_test_{dag_id}_{logical_date}.log"
        log.write_text(proc.stdout + proc.stderr, encoding="utf-8")
        return proc

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        import duckdb

        con = duckdb.connect(str(self.settings.catalog_path), read_only=True)  # what readers open
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()


def make_deployment(root: Path, profile: str = "local", extra: dict[str, str] | None = None) -> Deployment:
    """Migrate Airflow, create the pool and write the demo department data under root."""
    home = root / "govbase_home"
    home.mkdir(parents=True, exist_ok=True)
    settings = get_settings(home)
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "GOVBASE"))}
    # publish writes department shares: they need the pseudonym key (tests/conftest.py sets a test one)
    base.update(
        {
            "GOVBASE_RETRY_DELAY_SECONDS": "1",
            "GOVBASE_PSEUDONYM_KEY": os.environ["GOVBASE_PSEUDONYM_KEY"],
            **(extra or {}),
        }
    )
    env = airflow_env(settings, profile=profile, port=port, base=base)
    setup(env)
    govbase = Path(sys.executable).parent / "govbase"
    proc = subprocess.run(
        [str(govbase), "demo-data", "--persons", str(PERSONS), "--seed", str(SEED)],
        env=env,
        text=True,
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, f"govbase demo-data failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return Deployment(settings, env, port)


# ------------------------------------------------------------------ running Airflow + REST API
@dataclass
class Api:
    """Minimal REST API v2 client authenticating with a JWT from /auth/token."""

    base_url: str
    password: str
    token: str = field(default="")

    def login(self) -> None:
        body = self._call(
            "POST", "/auth/token", {"username": ADMIN_USER, "password": self.password}, auth=False
        )
        self.token = body["access_token"]

    def _call(self, method: str, path: str, payload: Any = None, auth: bool = True) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        # a loaded 2-core machine can keep the one api-server worker busy past a timeout:
        # a GET (idempotent) is asked again, twice, before the test gives up
        attempts = 3 if method == "GET" else 1
        for attempt in range(1, attempts + 1):
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    raw = resp.read()
                break
            except urllib.error.HTTPError as exc:
                raise AssertionError(f"{method} {path} -> {exc.code}: {exc.read()[:500]!r}") from exc
            except (TimeoutError, urllib.error.URLError):
                if attempt == attempts:
                    raise
                time.sleep(5)
        return json.loads(raw) if raw else None

    def get(self, path: str) -> Any:
        return self._call("GET", path)

    def asset_events(self, query: str, timeout: float = 120) -> list[dict[str, Any]]:
        """GET /api/v2/assets/events?<query>: its `asset_events`. Airflow answers 500 while
        a run an event created is queued without a start date (apache/airflow#71360: the
        response model requires one; fixed upstream by #71379): asked again until it starts."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return list(self.get(f"/api/v2/assets/events?{query}")["asset_events"])
            except AssertionError as exc:
                if "-> 500" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def post(self, path: str, payload: Any) -> Any:
        return self._call("POST", path, payload)

    def patch(self, path: str, payload: Any) -> Any:
        return self._call("PATCH", path, payload)

    def wait_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Until the dag-processor has serialized the DAG."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.get(f"/api/v2/dags/{dag_id}")
                return
            except AssertionError:
                time.sleep(2)
        raise AssertionError(f"{dag_id} never appeared in the API")

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        state = "?"
        while time.monotonic() < deadline:
            state = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                return str(state)
            time.sleep(2)
        raise AssertionError(f"{dag_id} run {run_id} still {state} after {timeout}s")

    def trigger(self, dag_id: str, logical_date: str) -> str:
        self.wait_dag(dag_id)
        self.patch(f"/api/v2/dags/{dag_id}", {"is_paused": False})
        run = self.post(f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": f"{logical_date}T00:00:00Z"})
        return str(run["dag_run_id"])


def wait_health(base_url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"airflow exited early with {proc.returncode}")
        try:
            with urllib.request.urlopen(base_url + "/api/v2/monitor/health", timeout=5) as resp:
                health = json.loads(resp.read())
            if health.get("scheduler", {}).get("status") == "healthy":
                return
        except (OSError, ValueError):
            pass
        time.sleep(2)
    raise AssertionError(f"airflow at {base_url} not healthy after {timeout}s")


def start(commands: list[list[str]], env: dict[str, str], log_dir: Path) -> list[subprocess.Popen[bytes]]:
    """Start Airflow components, each in its own process group, logging to log_dir."""
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for cmd in commands:
        log = (log_dir / f"{'_'.join(cmd[:2])}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [airflow_bin(), *cmd], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )
    return procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Terminate the process groups we started (and only those), then kill stragglers."""
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)


@dataclass
class Running:
    deployment: Deployment
    api: Api
    base_url: str
