"""Fixtures for the Airflow tests: a temp deployment with demo data, and a running
`airflow standalone` reached through the REST API (helpers in airflow_support.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_support import (
    ADMIN_USER,
    WATCHED,
    Api,
    Deployment,
    Running,
    make_deployment,
    start,
    stop,
    wait_health,
)


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return make_deployment(tmp_path_factory.mktemp("af_local"))


@pytest.fixture(scope="session")
def running_airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """`airflow standalone` of a fresh deployment on a free loopback port."""
    dep = make_deployment(tmp_path_factory.mktemp("af_running"), extra={"GOVBASE_WATCH": WATCHED})
    base_url = f"http://127.0.0.1:{dep.port}"
    procs = start([["standalone"]], dep.env, dep.settings.home / "airflow_logs")
    try:
        wait_health(base_url, procs[0], timeout=600)  # a loaded 2-core machine starts it slowly
        pw_file = Path(dep.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
        password = json.loads(pw_file.read_text(encoding="utf-8"))[ADMIN_USER]
        api = Api(base_url, password)
        api.login()
        yield Running(dep, api, base_url)
    finally:
        stop(procs)
