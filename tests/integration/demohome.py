"""The shared demo home of the integration tier (fixtures in tests/integration/conftest.py):
its size and seed, how it is ingested, and how a test takes a private copy of it."""

from __future__ import annotations

import shutil
from pathlib import Path

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
