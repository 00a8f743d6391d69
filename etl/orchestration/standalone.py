"""`make airflow`: `airflow standalone` with the project's DAGs, for local use.

Prints the URL and the login. The simple auth manager keeps its passwords in
$AIRFLOW_HOME/passwords.json: set GOVBASE_AIRFLOW_ADMIN_PASSWORD to choose the
admin password (written there before start), otherwise Airflow generates one
on first start and this script prints it from that file.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from etl.config import get_settings
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m etl.orchestration.standalone", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("AIRFLOW_PORT", DEFAULT_PORT)))
    ns = parser.parse_args(argv)
    env = airflow_env(get_settings(), port=ns.port)
    setup(env)
    passwords = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    ensure_admin_password(passwords, os.environ.get("GOVBASE_AIRFLOW_ADMIN_PASSWORD"))
    proc = subprocess.Popen([airflow_bin(), "standalone"], env=env)
    password = read_admin_password(passwords)
    print(
        f"\n  Airflow UI : http://127.0.0.1:{ns.port}\n  login      : {ADMIN_USER} / "
        f"{password or '(see ' + str(passwords) + ')'}  (passwords file: {passwords})\n"
        f"  DAGs       : {env['AIRFLOW__CORE__DAGS_FOLDER']} (paused at creation; unpause in the UI)\n"
        "  stop       : Ctrl-C\n",
        flush=True,
    )
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        return proc.wait()


if __name__ == "__main__":
    raise SystemExit(main())
