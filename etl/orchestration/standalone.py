"""`make airflow`: `airflow standalone` with the project's DAGs, for local use.

Checks the port is free first, then prints the URL and the login only once the UI
answers (the api-server's /api/v2/monitor/health, scheduler healthy). If Airflow
exits or never answers, the whole thing stops with the error instead of a banner. The simple auth manager keeps its passwords in
$AIRFLOW_HOME/passwords.json: set GOVBASE_AIRFLOW_ADMIN_PASSWORD to choose the
admin password (written there before start), otherwise Airflow generates one
on first start and this script prints it from that file.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from etl.config import get_settings
from etl.errors import GovbaseError
from etl.orchestration.airflow_env import ADMIN_USER, DEFAULT_PORT, airflow_bin, airflow_env, setup


def ensure_admin_password(passwords_file: Path, password: str | None) -> None:
    """Write a chosen admin password into the simple auth manager's file (mode 600)."""
    if not password:
        return
    passwords_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(passwords_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({ADMIN_USER: password}, fh)


def read_admin_password(passwords_file: Path, timeout: float = 90.0) -> str | None:
    """The admin password once the api-server has written the file (None on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return str(json.loads(passwords_file.read_text(encoding="utf-8"))[ADMIN_USER])
        except (OSError, ValueError, KeyError):
            time.sleep(1)
    return None


class AirflowStartError(GovbaseError):
    """The embedded Airflow did not come up (port taken, a component exited, no answer)."""


def check_port_free(host: str, port: int) -> None:
    """Raise AirflowStartError when something already listens on host:port.

    Otherwise `airflow standalone` starts anyway: its api-server dies on the clash
    while the scheduler keeps running and a banner would advertise another program's UI.
    """
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise AirflowStartError(
                f"port {port} on {host} is already in use ({exc.strerror}); stop what listens there "
                f"or choose another port: make airflow AIRFLOW_PORT=<port>"
            ) from exc


def wait_until_ready(base_url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll base_url's /api/v2/monitor/health until the scheduler reports healthy.

    Raises AirflowStartError as soon as the Airflow process exits, or after timeout.
    """
    url = base_url + "/api/v2/monitor/health"
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AirflowStartError(
                f"airflow standalone exited with code {proc.returncode} before {url} answered"
            )
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                health = json.loads(resp.read())
            last = f"scheduler {health.get('scheduler', {}).get('status')}"
            if health.get("scheduler", {}).get("status") == "healthy":
                return
        except (OSError, ValueError) as exc:
            last = str(exc)
        time.sleep(1)
    raise AirflowStartError(f"{url} not healthy after {timeout:.0f} s (last: {last})")


def watch(base_url: str, proc: subprocess.Popen[bytes], interval: float = 5.0, misses: int = 6) -> int:
    """Wait for `airflow standalone` to end; raise AirflowStartError when its UI stops answering.

    standalone keeps its other components running when one dies (e.g. the api-server),
    so a UI that has not answered `misses` checks in a row stops the whole thing.
    """
    url = base_url + "/api/v2/monitor/health"
    missed = 0
    while proc.poll() is None:
        time.sleep(interval)
        try:
            with urllib.request.urlopen(url, timeout=5):
                missed = 0
        except OSError as exc:
            missed += 1
            if missed >= misses and proc.poll() is None:
                raise AirflowStartError(
                    f"{url} stopped answering ({exc}); a component of Airflow failed"
                ) from exc
    return proc.returncode


def stop(proc: subprocess.Popen[bytes]) -> int:
    """Stop `airflow standalone` (it stops its components on SIGINT) and return its code;
    then end what is left of its process group (components still shutting down, or
    orphaned when standalone itself was killed): SIGTERM, then SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    code = proc.wait()
    end_group(proc.pid)
    return code


def end_group(pgid: int, grace: float = 15.0) -> None:
    """Signal the process group `pgid` (SIGTERM, then SIGKILL) until none of it is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not group_alive(pgid):
                return
            time.sleep(0.2)


def group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process of process group `pgid` is left."""
    return bool(live_pids(pgrp=pgid))


def live_pids(*, pgrp: int | None = None, session: int | None = None) -> list[int]:
    """Live (not zombie) processes of a process group or a session (Linux /proc)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z" and (int(fields[2]) == pgrp or int(fields[3]) == session):
            pids.append(int(stat.parent.name))
    return pids


def banner(base_url: str, password: str | None, passwords: Path, dags_folder: str) -> str:
    """The lines printed once the UI answers."""
    return (
        f"\n  Airflow UI : {base_url}\n  login      : {ADMIN_USER} / "
        f"{password or '(see ' + str(passwords) + ')'}  (passwords file: {passwords})\n"
        f"  DAGs       : {dags_folder}\n"
        "               ingest__* DAGs are created paused: unpause a department's ingest in the UI;\n"
        "               publish and consolidate are created unpaused and run on the ingests' Assets\n"
        "  stop       : Ctrl-C\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m etl.orchestration.standalone", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("AIRFLOW_PORT", DEFAULT_PORT)))
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the UI")
    ns = parser.parse_args(argv)
    env = airflow_env(get_settings(), port=ns.port)
    base_url = env["AIRFLOW__API__BASE_URL"]
    try:
        check_port_free(env["AIRFLOW__API__HOST"], ns.port)
    except AirflowStartError as exc:
        print(f"govbase: cannot start Airflow: {exc}", file=sys.stderr)
        return 1
    setup(env)
    passwords = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    ensure_admin_password(passwords, os.environ.get("GOVBASE_AIRFLOW_ADMIN_PASSWORD"))
    # its own process group (same session): stop() ends every component it leaves behind
    proc = subprocess.Popen([airflow_bin(), "standalone"], env=env, process_group=0)
    try:
        wait_until_ready(base_url, proc, ns.timeout)
        print(
            banner(base_url, read_admin_password(passwords), passwords, env["AIRFLOW__CORE__DAGS_FOLDER"]),
            flush=True,
        )
        code = watch(base_url, proc)
        end_group(proc.pid)  # standalone ended by itself: nothing of it stays behind
    except AirflowStartError as exc:
        print(f"govbase: Airflow failed: {exc}; stopping", file=sys.stderr)
        stop(proc)
        return 1
    except KeyboardInterrupt:
        return stop(proc)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
