"""The shared demo home of the integration tier (fixtures in tests/integration/conftest.py):
its size and seed, how it is ingested, and how a test takes a private copy of it."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from etl.config import Settings, get_settings
from etl.contracts import get_contracts
from etl.pipeline import run_source

DEMO_PERSONS = 2500
DEMO_SEED = 23


def ingest(settings: Settings, day: str = "2026-11-01", run: str = "run-1") -> None:
    for source in sorted(get_contracts(settings).sources):
        run_source(source, day, run, settings=settings)


def copy_home(home: Path, dest: Path) -> Settings:
    """A private copy of a shared home (stored paths are relative: a copied home works)."""
    shutil.copytree(home, dest)
    return get_settings(dest)


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """`<basetemp>/<name>`, built by `build` once per test session, also when pytest-xdist
    shares the session over several workers: the first worker builds under a lock, the
    others wait and read what it built (the pattern of pytest-xdist's docs)."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    dest, done = root / name, root / f"{name}.built"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(dest, ignore_errors=True)  # a build that failed half-way
            build(dest)
            done.touch()
    return dest
