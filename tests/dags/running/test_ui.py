"""UI end to end: Airflow running, an ingest DAG triggered through the REST API
(JWT token), then the UI in headless Chromium: log in, DAG list, the run's state."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium (`make browser` installs Debian's chromium)"
)
def test_trigger_via_api_and_see_success_in_ui(running_airflow) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect, sync_playwright

    started = time.perf_counter()
    api, dep = running_airflow.api, running_airflow.deployment
    dag_id = "ingest__tax_registration"
    run_id = api.trigger(dag_id, "2026-11-01")  # the demo's delivery date: its files are due
    # publish and consolidate run by themselves on every ingest's Assets, in the same one-slot
    # pool: this run may queue behind them (they write under the writer lock; this test
    # reads the published catalog, so they never block its reads)
    state = api.wait_run(dag_id, run_id, timeout=900)
    assert state == "success", f"{dag_id} run {run_id} ended {state}"
    # the data landed (this run or the scheduled one unpausing started took the delivery)
    loaded = dep.query("select count(*) from staging.legal_entity where _source = 'tax_registration'")
    assert loaded[0][0] > 0

    shot = dep.settings.home / "airflow_ui_run.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(running_airflow.base_url + "/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(api.password)
        page.get_by_role("button", name="Sign in").click()
        # Signing in redirects; navigating before it lands aborts the redirect (ERR_ABORTED).
        page.wait_for_url(lambda url: "login" not in url, timeout=30_000)
        page.wait_for_load_state("networkidle")
        page.goto(running_airflow.base_url + "/dags")
        expect(page.get_by_text("ingest__ps_hukou").first).to_be_visible(timeout=30_000)
        expect(page.get_by_text(dag_id).first).to_be_visible()
        page.goto(f"{running_airflow.base_url}/dags/{dag_id}/runs/{run_id}")
        expect(page.get_by_text("success").first).to_be_visible(timeout=30_000)
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 10_000
    print(f"\nUI end to end: {time.perf_counter() - started:.1f} s; screenshot {shot}")
