"""Shared fixtures: every test gets its own GOVBASE_HOME under pytest's tmp_path.

The integration tier's session demo warehouse (generated, ingested and consolidated once,
read by every suite that needs a consolidated demo, copied by those that write):
tests/integration/conftest.py (`demo_staged_home`, `demo_consolidated`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from etl.config import Settings, get_settings
from etl.contracts import Contracts, get_contracts

# publishing shares needs a pseudonym key: the tests set a test key explicitly (every test,
# module-scoped fixtures and subprocesses included)
os.environ["GOVBASE_PSEUDONYM_KEY"] = "test:govbase-test-pseudonym-key"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh GOVBASE_HOME, exported to the environment for code that reads it."""
    h = tmp_path / "govbase_home"
    h.mkdir()
    monkeypatch.setenv("GOVBASE_HOME", str(h))
    return h


@pytest.fixture
def settings(home: Path) -> Settings:
    return get_settings(home)


@pytest.fixture(scope="session")
def contracts() -> Contracts:
    return get_contracts()


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """`make test` runs on both cores (pytest-xdist): tests are shared out a module at a time,
    so every module-scoped fixture (a generated and ingested demo home) is built once, and
    the tests on the shared running Airflow (tests/dags/running/, whose session fixture
    starts an `airflow standalone`) stay together on one worker, so only one is started."""
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith("tests/dags/running/"):
                return "tests/dags/running"
            return nodeid.split("::", 1)[0]

    return ByModule(config, log)
