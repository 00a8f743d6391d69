"""A delivery starts its own ingest, on a running Airflow (the `running_airflow` fixture,
which watches WATCHED: GOVBASE_WATCH).

A new file is moved into the source's landing folder (made elsewhere, then renamed in, as
a transfer ends); the triggerer's LandingTrigger notices it, the Asset event starts the
source's ingest DAG (an asset-triggered run, no schedule involved), and the rows reach the
published catalog readers open. Prints the time from the drop to the rows being visible,
with the steps in between, then checks that publish and consolidate followed on the Assets.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from airflow_support import WATCHED

# slow: minutes of a running Airflow's task start-ups, more than make test should pay; the
# trigger itself runs in make test (tests/integration/test_watch_triggers.py)
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(2400)]

TABLE = "person"  # ca_marriage's shared table: consolidate links it
TIMEOUT = 300.0


def _catalog(dep: Any, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """What a reader sees: the published catalog (absent until the first load)."""
    if not dep.settings.catalog_path.exists():
        return []
    con = duckdb.connect(str(dep.settings.catalog_path), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def _get(api: Any, path: str) -> Any:
    """api.get, asked again when the API server was busy past the client's timeout."""
    for _ in range(5):
        try:
            return api.get(path)
        except OSError:
            time.sleep(2)
    return api.get(path)


def _runs(api: Any, dag_id: str) -> list[dict[str, Any]]:
    return list(_get(api, f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=-run_after")["dag_runs"])


def _until(what: str, check: Any, timeout: float = TIMEOUT, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except OSError:  # the API server busy past the client's timeout (SQLite, 2 cores): ask again
            value = None
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not after {timeout:.0f} s")


def test_a_dropped_file_reaches_readers_and_downstream_follows(running_airflow, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dep, api = running_airflow.deployment, running_airflow.api
    dag_id = f"ingest__{WATCHED}"
    # consolidate links persons to organisations: it needs legal_entity staged (by hand, as
    # tests/dags/test_ui.py does; a no-op when that ran already)
    org = "ingest__tax_registration"
    api.wait_dag(org)
    earlier = [r for r in _runs(api, org) if (r["logical_date"] or "").startswith("2026-11-01")]
    org_run = earlier[0]["dag_run_id"] if earlier else api.trigger(org, "2026-11-01")
    assert api.wait_run(org, org_run, timeout=600) == "success"
    for d in ("publish", "consolidate", dag_id):
        api.wait_dag(d)
        api.patch(f"/api/v2/dags/{d}", {"is_paused": False})
    # the dag processor registers the landing Asset's watcher once the DAG is unpaused
    uri = f"govbase://landing/{WATCHED}"

    def asset() -> dict[str, Any] | None:
        found = _get(api, "/api/v2/assets?uri_pattern=landing")["assets"]
        return next((a for a in found if a["uri"] == uri and a["watchers"]), None)

    landing_asset = _until("the landing Asset's watcher registered", asset, 180, 2)
    # settle: the schedule's latest interval and the watcher's first arming (the demo's own
    # file, if the extract had not recorded it yet) run before the new delivery lands
    quiet_since = [time.monotonic()]

    def quiet() -> bool:
        if any(r["state"] not in ("success", "failed") for r in _runs(api, dag_id)):
            quiet_since[0] = time.monotonic()
        return time.monotonic() - quiet_since[0] > 20  # four polls of the trigger

    _until("the ingest DAG idle", quiet, 400, 2)
    assert {r["state"] for r in _runs(api, dag_id)} <= {"success"}

    # the new delivery: another population, dated today, made in a home of its own
    today = datetime.now(UTC)
    drop = f"{today:%Y%m%d}"
    other = tmp_path / "other_home"
    env = {**dep.env, "GOVBASE_HOME": str(other)}
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "govbase"),
            "demo-data",
            "--persons",
            "300",
            "--seed",
            "31",
            "--drop-date",
            drop,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    made = other / "landing" / WATCHED / f"marriage_{drop}.xml"
    expected = pq.read_metadata(other / "landing" / "_truth" / f"{WATCHED}.parquet").num_rows
    logical_date = f"{today:%Y-%m-%d}"
    before = _catalog(
        dep,
        "select source_rows + rows_quarantined from meta.partition where source = ? and "
        "cast(logical_date as varchar) = ?",
        [WATCHED, logical_date],
    )
    landing = dep.settings.source_landing(WATCHED)
    part = landing / f".{made.name}.part"  # outside the location glob until renamed
    shutil.copyfile(made, part)
    os.replace(part, landing / made.name)
    dropped, dropped_at = time.monotonic(), datetime.now(UTC)

    visible_sql = (
        f"select count(*) from staging.{TABLE} where _batch_id in (select batch_id from "
        "meta.extract_batch where source = ? and file = ? and status = 'extracted')"
    )
    _until(
        "the delivery's rows visible in the published catalog",
        lambda: (_catalog(dep, visible_sql, [WATCHED, made.name]) or [(0,)])[0][0] > 0,
        every=0.5,
    )
    latency = time.monotonic() - dropped

    # what happened in between, from Airflow's records
    events = api.asset_events(f"asset_id={landing_asset['id']}&order_by=-timestamp&limit=10")
    fired = [
        e
        for e in events
        if datetime.fromisoformat(e["timestamp"]) >= dropped_at
        and made.name in ((e.get("extra") or {}).get("payload") or {}).get("files", [])
    ]
    assert fired, f"no watcher event names {made.name}: {json.dumps(events)[:1500]}"
    runs = [r for r in _runs(api, dag_id) if datetime.fromisoformat(r["run_after"]) >= dropped_at]
    started = [r for r in runs if r["run_type"] == "asset_triggered"]
    assert started, runs
    event_s = (datetime.fromisoformat(fired[-1]["timestamp"]) - dropped_at).total_seconds()
    queued_s = (datetime.fromisoformat(started[-1]["queued_at"]) - dropped_at).total_seconds()
    print(
        f"\ndelivery {made.name} ({expected} records) dropped -> watcher event {event_s:.1f} s -> "
        f"ingest run queued {queued_s:.1f} s -> rows visible to readers {latency:.1f} s"
    )
    # the run the delivery started loaded it, into the partition of its delivery date,
    # beside what that partition held already
    ((run_id, ld),) = _catalog(
        dep,
        "select run_id, cast(logical_date as varchar) from meta.extract_batch where source = ? and file = ?",
        [WATCHED, made.name],
    )
    assert run_id.startswith("af-asset_triggered__") and ld == logical_date
    ((delivered,),) = _catalog(
        dep,
        "select source_rows + rows_quarantined from meta.partition where source = ? and "
        "cast(logical_date as varchar) = ?",
        [WATCHED, logical_date],
    )
    assert delivered == (before[0][0] if before else 0) + expected
    assert latency < TIMEOUT

    # downstream follows on the Assets the load emitted
    for downstream in ("consolidate", "publish"):

        def done(d: str = downstream) -> list[dict[str, Any]]:
            after = [r for r in _runs(api, d) if datetime.fromisoformat(r["run_after"]) >= dropped_at]
            return [r for r in after if r["state"] in ("success", "failed")]

        finished = _until(f"{downstream} after the delivery", done, 600, 3)
        assert {r["state"] for r in finished} == {"success"}, (downstream, finished)
        print(f"{downstream} followed: {finished[-1]['dag_run_id']} {finished[-1]['state']}")
