"""DagBag integrity: every govbase DAG imports, is documented, owned, retried and pooled."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from airflow.sdk import CronTriggerTimetable

from etl.config import get_settings

pytestmark = pytest.mark.unit

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
HEAVY = ("pandas", "duckdb", "great_expectations", "pyarrow")


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(dag_folder=str(DAGS_DIR))
    print(f"\nDagBag parse of {DAGS_DIR}: {time.perf_counter() - started:.3f} s for {len(bag.dags)} DAGs")
    return bag


def test_no_import_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}


def test_one_ingest_dag_per_source_and_publish(dagbag, contracts) -> None:  # type: ignore[no-untyped-def]
    expected = {f"ingest__{s}" for s in contracts.sources} | {"publish", "consolidate"}
    assert set(dagbag.dags) == expected


@pytest.mark.parametrize("attr", ["tags", "doc_md"])
def test_every_dag_documented_and_tagged(dagbag, attr: str) -> None:  # type: ignore[no-untyped-def]
    missing = [d for d, dag in dagbag.dags.items() if not getattr(dag, attr)]
    assert missing == []


def test_tasks_owned_retried_pooled(dagbag) -> None:  # type: ignore[no-untyped-def]
    for dag_id, dag in dagbag.dags.items():
        assert dag.max_active_runs == 1, dag_id
        assert dag.catchup is False, dag_id
        for t in dag.tasks:
            assert t.owner and t.owner != "airflow", (dag_id, t.task_id)
            assert t.retries >= 2, (dag_id, t.task_id)
            assert t.retry_exponential_backoff, (dag_id, t.task_id)
            assert t.pool == "govbase_warehouse", (dag_id, t.task_id)
            assert t.on_failure_callback, (dag_id, t.task_id)


def test_ingest_shape_schedule_and_assets(dagbag, contracts) -> None:  # type: ignore[no-untyped-def]
    for name, src in contracts.sources.items():
        dag = dagbag.dags[f"ingest__{name}"]
        assert [t.task_id for t in dag.topological_sort()] == ["extract", "normalize", "validate", "load"]
        assert {src.department, *src.tags} <= set(dag.tags)
        assert dag.owner == src.owner
        assert src.description.split()[0] in dag.doc_md
        # a delivery starts the ingest (the landing Asset's watcher); the YAML schedule stays the fallback
        assert type(dag.schedule).__name__ == "AssetOrTimeSchedule"
        assert dag.schedule.timetable == CronTriggerTimetable(src.schedule, timezone="UTC")
        asset = dag.schedule.asset_condition
        assert asset.uri == f"govbase://landing/{name}"
        (watcher,) = asset.watchers
        classpath, kwargs = watcher.trigger.serialize()
        if src.kind == "sql":
            assert classpath == "etl.orchestration.watchers.SqlChangeTrigger" and kwargs["source"] == name
        else:
            assert classpath == "etl.orchestration.watchers.LandingTrigger"
            assert Path(kwargs["folder"]) == get_settings().source_landing(name)
            assert kwargs["pattern"] == src.location
        outlets = [a.uri for a in dag.get_task("load").outlets]
        assert outlets == [f"govbase://staging/{src.table}/{name}"]
        assert all(not dag.get_task(t).outlets for t in ("extract", "normalize", "validate"))


def test_publish_scheduled_on_every_staging_asset(dagbag, contracts) -> None:  # type: ignore[no-untyped-def]
    """Any source's update triggers publish, and so does consolidate's update of a core table
    that a share or an open dataset reads."""
    from etl.config import get_settings
    from etl.publish.grants import load_sharing
    from etl.publish.openspec import load_open

    publish = dagbag.dags["publish"]
    condition = publish.timetable.asset_condition
    assert type(condition).__name__ == "AssetAny"
    uris = {a.uri for a in condition.objects}
    schemas = get_settings().schemas_dir
    read = {g.table for d in load_sharing(schemas, contracts.tables).departments.values() for g in d.grants}
    read |= {ds.source for ds in load_open(schemas, contracts.tables).datasets.values()}
    core = {f"govbase://core/{t.split('.')[1]}" for t in read if t.startswith("core.")}
    assert core == {"govbase://core/person", "govbase://core/legal_entity"}
    assert uris == {f"govbase://staging/{s.table}/{n}" for n, s in contracts.sources.items()} | core


def test_publish_emits_a_share_asset_per_department_and_an_open_asset_per_dataset(dagbag, contracts) -> None:  # type: ignore[no-untyped-def]
    from etl.config import get_settings
    from etl.publish.grants import load_sharing
    from etl.publish.openspec import load_open

    schemas = get_settings().schemas_dir
    departments = load_sharing(schemas, contracts.tables).departments
    datasets = load_open(schemas, contracts.tables).datasets
    outlets = {a.uri for a in dagbag.dags["publish"].get_task("publish").outlets}
    assert outlets == {f"govbase://share/{d}" for d in departments} | {
        f"govbase://open/{d}" for d in datasets
    }
    assert len(departments) == 3 and len(datasets) == 3


def test_consolidate_runs_on_the_person_and_organisation_assets_and_emits_core(dagbag, contracts) -> None:  # type: ignore[no-untyped-def]
    from etl.resolve import CORE_TABLES

    dag = dagbag.dags["consolidate"]
    condition = dag.timetable.asset_condition
    assert type(condition).__name__ == "AssetAny"
    uris = {a.uri for a in condition.objects}
    bearing = {"person", "employment", "legal_entity"}
    assert uris == {
        f"govbase://staging/{s.table}/{n}" for n, s in contracts.sources.items() if s.table in bearing
    }
    outlets = {a.uri for a in dag.get_task("consolidate").outlets}
    assert outlets == {f"govbase://core/{t}" for t in CORE_TABLES}


def test_asset_scheduled_dags_created_unpaused_ingest_left_to_the_operator(dagbag) -> None:  # type: ignore[no-untyped-def]
    """A paused downstream DAG drops every ingest's Asset events: they must start unpaused."""
    downstream = {
        d
        for d, dag in dagbag.dags.items()
        if dag.timetable.asset_condition is not None and not d.startswith("ingest__")
    }
    assert "publish" in downstream
    assert {d: dagbag.dags[d].is_paused_upon_creation for d in downstream} == dict.fromkeys(downstream, False)
    # ingest DAGs follow AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION (paused in every profile)
    ingest = {d: dag.is_paused_upon_creation for d, dag in dagbag.dags.items() if d.startswith("ingest__")}
    assert ingest and set(ingest.values()) == {None}


def test_dag_files_parse_without_heavy_imports() -> None:
    """Fresh interpreter: import airflow.sdk (the scheduler has it), then the DAG files alone
    must not import pandas, DuckDB, GE or Arrow. How fast they parse is a figure for
    bench/dag_parse_bench.py (a wall-clock threshold has no place in a test)."""
    code = (
        "import sys, runpy\n"
        "import airflow.sdk\n"
        f"for p in sorted(__import__('pathlib').Path({str(DAGS_DIR)!r}).glob('*.py')):\n"
        "    runpy.run_path(str(p))\n"
        f"print('HEAVY', ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    heavy_line = next(line for line in out.splitlines() if line.startswith("HEAVY")).partition(" ")[2].strip()
    assert heavy_line == "", f"heavy modules imported at parse time: {heavy_line}"


def test_dag_stages_are_the_pipeline_stages() -> None:
    """The factory keeps its own copy of the stage names (importing etl.pipeline would
    pull pandas into DAG parsing): the two must not drift apart."""
    from etl.orchestration.factory import STAGES as DAG_STAGES
    from etl.pipeline import STAGES as PIPELINE_STAGES

    assert DAG_STAGES == PIPELINE_STAGES
