"""Session fixtures of the integration tier: one consolidated demo warehouse, built once and
shared by the suites that only read it (or copy it before they write).

`demo_staged_home`: the demo (demohome.DEMO_PERSONS persons, seed DEMO_SEED) generated and
ingested, not consolidated. `demo_consolidated`: a copy of it, consolidated (schema core
built). Read them only: a test that publishes, consolidates again or loads more takes a copy
first (`demohome.copy_home`). Each is built once per session, also across pytest-xdist
workers (`demohome.built_once`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from demohome import DEMO_PERSONS, DEMO_SEED, built_once, copy_home, ingest

from etl.config import Settings, get_settings
from etl.demo import generate
from etl.resolve.stage import consolidate


@pytest.fixture(scope="session")
def demo_staged_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    def build(root: Path) -> None:
        settings = get_settings(root / "home")
        generate(settings, persons=DEMO_PERSONS, seed=DEMO_SEED)
        ingest(settings)

    return built_once(tmp_path_factory, "demo_staged", build) / "home"


@pytest.fixture(scope="session")
def demo_consolidated(demo_staged_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    def build(root: Path) -> None:
        consolidate(copy_home(demo_staged_home, root / "home"))

    return get_settings(built_once(tmp_path_factory, "demo_core", build) / "home")
