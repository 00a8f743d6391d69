"""Session fixtures of the integration tier: one consolidated demo warehouse, built once and
shared by the suites that only read it (or copy it before they write); and one published
pipeline of two days (`published`) for the page tests.

`demo_staged_home`: the demo (demohome.DEMO_PERSONS persons, seed DEMO_SEED) generated and
ingested, not consolidated. `demo_consolidated`: a copy of it, consolidated (schema core
built). Read them only: a test that publishes, consolidates again or loads more takes a copy
first (`demohome.copy_home`). Each is built once per session, also across pytest-xdist
workers (`demohome.built_once`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from demohome import DEMO_PERSONS, DEMO_SEED, built_once, copy_home, ingest

from etl import meta
from etl.config import Settings, get_settings
from etl.contracts import get_contracts
from etl.demo import generate
from etl.pipeline import run_publish, run_source
from etl.publish.shares import ShareError
from etl.resolve.stage import consolidate

PUBLISHED_PERSONS, PUBLISHED_SEED = 500, 31


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


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, str]:
    """Two days delivered and ingested (two runs), each published and consolidated: rejection
    reports, Data Docs, classification, department shares and the run report; returns the
    settings and the second run. The second publish may stop at the shares (consolidation
    brings columns the classifier flags): the run report is written all the same. Read it,
    never write to it (tests/integration/test_reports_browser.py, test_data_docs_browser.py)."""

    def build(root: Path) -> None:
        settings = get_settings(root / "home")
        sources = sorted(get_contracts(settings).sources)
        run_id = ""
        for day, drop in (("2026-11-01", "20261101"), ("2026-11-02", "20261102")):
            generate(settings, persons=PUBLISHED_PERSONS, seed=PUBLISHED_SEED, drop_date=drop)
            run_id = meta.new_run_id()
            for source in sources:
                run_source(source, day, run_id, settings=settings)
            if day == "2026-11-02":
                consolidate(settings)
            with contextlib.suppress(ShareError):  # the findings that stop them are in the report
                run_publish(day, run_id, settings=settings)
        assert (settings.reports_dir / "runs" / f"{run_id}.html").exists()
        (root / "run_id").write_text(run_id, encoding="utf-8")

    root = built_once(tmp_path_factory, "published", build)
    return get_settings(root / "home"), (root / "run_id").read_text(encoding="utf-8")
