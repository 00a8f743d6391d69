"""Build the govbase DAGs from the YAML source contracts.

One ingest DAG per `schemas/sources/<source>.yml` (dag_id `ingest__<source>`,
tasks extract -> normalize -> validate -> load), plus the data-aware `publish`
DAG scheduled on the Assets the load tasks emit, and the `consolidate` DAG
scheduled on the staging Assets of the tables schemas/resolve/*.yml read.

Parse-time contract: this module imports only the standard library, the YAML
contract models and `airflow.sdk`. pandas, DuckDB and Great Expectations are
imported inside the task bodies (through `etl.pipeline`), never while the
scheduler parses the DAG files.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, AssetAny, task

from etl.config import get_settings
from etl.contracts import Source, load_source
from etl.orchestration.failure import record_task_failure

log = logging.getLogger(__name__)

#: One-slot pool serialising every task that writes the DuckDB file (one writer at a time).
WAREHOUSE_POOL = "govbase_warehouse"
INGEST_PREFIX = "ingest__"
PUBLISH_DAG_ID = "publish"
STAGES = ("extract", "normalize", "validate", "load")
#: Earliest logical date a backfill may ask for; scheduling itself never catches up.
START_DATE = datetime(2020, 1, 1, tzinfo=timezone.utc)  # noqa: UP017 - keep explicit for readers

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def staging_asset_uri(table: str, source: str) -> str:
    """URI of the Asset a source's load task updates: `govbase://staging/<table>/<source>`."""
    return f"govbase://staging/{table}/{source}"


def govbase_run_id(airflow_run_id: str) -> str:
    """A pipeline run id derived from the Airflow run id, safe in paths and SQL literals.

    Deterministic, so clearing and rerunning a task of the same dag run reuses the id
    and the stages replace (not duplicate) their output.
    """
    return "af-" + _UNSAFE.sub("_", airflow_run_id).strip("_")


def default_args(owner: str) -> dict[str, Any]:
    """Task defaults shared by every govbase DAG: retries with exponential backoff,
    the failure recorder, and the owner shown in the UI."""
    return {
        "owner": owner,
        "retries": 2,
        # Settings.retry_delay_seconds (GOVBASE_RETRY_DELAY_SECONDS) shortens the first delay
        # (tests, demos); doubled each try
        "retry_delay": timedelta(seconds=get_settings().retry_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "on_failure_callback": record_task_failure,
    }


def _logical_date(context: dict[str, Any]) -> str:
    """The run's logical date as YYYY-MM-DD; a run triggered without one uses its run_after."""
    dag_run = context["dag_run"]
    when = getattr(dag_run, "logical_date", None) or dag_run.run_after
    return f"{when:%Y-%m-%d}"


def run_stage_task(stage: str, source: str, context: dict[str, Any]) -> dict[str, Any]:
    """Body of one ingest task: call `etl.pipeline.run_stage` and return its small summary.

    A GovbaseError (contract, validation, reconciliation ...) is deterministic: the
    same input fails the same way, so it is logged in operator words and raised as
    AirflowFailException (no pointless retries). Anything else (a locked file, an
    unreachable database, and WriterBusy: another writer held the home's lock past
    its timeout) is retried with backoff.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from etl.errors import GovbaseError
    from etl.lock import WriterBusy
    from etl.pipeline import run_stage

    logical_date = _logical_date(context)
    run_id = govbase_run_id(context["dag_run"].run_id)
    log.info("govbase %s: source=%s logical_date=%s run_id=%s", stage, source, logical_date, run_id)
    try:
        summary = run_stage(stage, source, logical_date, run_id)
    except WriterBusy:
        raise  # another writer (a `govbase run` on the same home) held it too long: retried
    except GovbaseError as exc:
        log.error("govbase %s FAILED for source %s on %s: %s", stage, source, logical_date, exc)
        raise AirflowFailException(f"{stage} of {source} on {logical_date}: {exc}") from exc
    log.info("govbase %s done: %s", stage, summary)
    return summary


def publish_task(sources: list[str], context: dict[str, Any]) -> dict[str, Any]:
    """Body of the publish task: rejection reports and Data Docs for every source."""
    from airflow.sdk.exceptions import AirflowFailException

    from etl.errors import GovbaseError
    from etl.lock import WriterBusy
    from etl.pipeline import run_publish

    logical_date = _logical_date(context)
    run_id = govbase_run_id(context["dag_run"].run_id)
    try:
        summary: dict[str, Any] = run_publish(logical_date, run_id, sources)
    except WriterBusy:
        raise  # retried, as for the ingest tasks
    except GovbaseError as exc:
        log.error("govbase publish FAILED on %s: %s", logical_date, exc)
        raise AirflowFailException(f"publish on {logical_date}: {exc}") from exc
    log.info("govbase publish done: %s", summary)
    return summary


def _doc_md(src: Source) -> str:
    return (
        f"### {src.department_name} — `{src.name}`\n\n{src.description.strip()}\n\n"
        f"* kind: `{src.kind}`, shared table: `{src.table}`, schedule: `{src.schedule}`\n"
        f"* contract: `schemas/sources/{src.name}.yml`\n"
        f"* tasks call `etl.pipeline.run_stage(stage, '{src.name}', ds, run_id)`; "
        f"every task runs in pool `{WAREHOUSE_POOL}` (one DuckDB writer)\n"
    )


def build_ingest_dag(src: Source) -> DAG:
    """The ingest DAG of one source: extract -> normalize -> validate -> load."""
    with DAG(
        dag_id=f"{INGEST_PREFIX}{src.name}",
        description=f"Ingest {src.department_name} ({src.kind}) into staging.{src.table}",
        schedule=src.schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=default_args(src.owner),
        tags=sorted({*src.tags, src.department, "ingest"}),
        doc_md=_doc_md(src),
    ) as dag:
        previous = None
        for stage in STAGES:
            outlets = [Asset(staging_asset_uri(src.table, src.name))] if stage == "load" else []

            @task(task_id=stage, pool=WAREHOUSE_POOL, outlets=outlets)
            def _stage(stage: str, source: str, **context: Any) -> dict[str, Any]:
                return run_stage_task(stage, source, context)

            current = _stage(stage, src.name)
            if previous is not None:
                previous >> current
            previous = current
    return dag


def build_publish_dag(sources: Iterable[Source]) -> DAG | None:
    """The publish DAG, run whenever any source's staging Asset is updated.

    Scheduled on AssetAny so a monthly source never holds back the daily ones;
    the Asset events queued meanwhile are consumed by the next run. A consolidate
    DAG will later take over these Assets and emit `govbase://core/...` ones,
    and publish will schedule on those instead: change `publish_assets` only.
    """
    srcs = sorted(sources, key=lambda s: s.name)
    if not srcs:
        return None
    assets = publish_assets(srcs)
    with DAG(
        dag_id=PUBLISH_DAG_ID,
        description="Rejection reports and Data Docs once staging changes",
        schedule=AssetAny(*assets),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=default_args("govbase"),
        tags=["publish", "reports"],
        doc_md=(
            "### publish\n\nRuns `etl.pipeline.run_publish(ds, run_id, sources)`: rejection reports "
            "for the departments and Data Docs. Triggered by any update of:\n\n"
            + "\n".join(f"* `{a.uri}`" for a in assets)
        ),
    ) as dag:
        names = [s.name for s in srcs]

        @task(task_id="publish", pool=WAREHOUSE_POOL)
        def _publish(sources: list[str], **context: Any) -> dict[str, Any]:
            return publish_task(sources, context)

        _publish(names)
    return dag


def publish_assets(sources: Iterable[Source]) -> list[Asset]:
    """The Assets publish waits for (today: every source's staging Asset)."""
    return [Asset(staging_asset_uri(s.table, s.name)) for s in sources]


CONSOLIDATE_DAG_ID = "consolidate"


def core_asset_uri(table: str) -> str:
    """URI of the Asset the consolidate task updates per core table: `govbase://core/<table>`."""
    return f"govbase://core/{table}"


def consolidate_task(context: dict[str, Any]) -> dict[str, Any]:
    """Body of the consolidate task: staging -> core (etl.resolve.stage.consolidate)."""
    from airflow.sdk.exceptions import AirflowFailException

    from etl.errors import GovbaseError
    from etl.lock import WriterBusy
    from etl.resolve.stage import consolidate

    run_id = govbase_run_id(context["dag_run"].run_id)
    try:
        summary = consolidate(get_settings(), run_id=run_id)
    except WriterBusy:
        raise  # retried, as for the ingest tasks
    except GovbaseError as exc:
        log.error("govbase consolidate FAILED: %s", exc)
        raise AirflowFailException(f"consolidate: {exc}") from exc
    log.info("govbase %s", summary)
    keys = ("records", "masters", "pairs_linked", "review_pairs", "merged", "split", "findings")
    return {e: {k: r[k] for k in keys} for e, r in summary.entities.items()}


def resolve_input_tables(schemas_dir: Path | None = None) -> set[str]:
    """The staged tables the linkage settings read (schemas/resolve/*.yml `inputs`), by plain YAML."""
    import yaml

    folder = (schemas_dir or get_settings().schemas_dir) / "resolve"
    tables: set[str] = set()
    for p in sorted(folder.glob("*.yml")):
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        tables.update(str(i["table"]) for i in data.get("inputs", []) if isinstance(i, dict) and "table" in i)
    return tables


def build_consolidate_dag(sources: Iterable[Source], schemas_dir: Path | None = None) -> DAG | None:
    """The consolidate DAG, run whenever a staging Asset of a person- or organisation-bearing
    table is updated; its one task holds the warehouse pool (it writes) and emits one
    `govbase://core/<table>` Asset per core table."""
    from etl.resolve import CORE_TABLES

    tables = resolve_input_tables(schemas_dir)
    srcs = sorted((s for s in sources if s.table in tables), key=lambda s: s.name)
    if not srcs:
        return None
    assets = [Asset(staging_asset_uri(s.table, s.name)) for s in srcs]
    with DAG(
        dag_id=CONSOLIDATE_DAG_ID,
        description="Link staged records into master persons and organisations; build schema core",
        schedule=AssetAny(*assets),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=default_args("govbase"),
        tags=["consolidate", "core"],
        doc_md=(
            "### consolidate\n\nRuns `etl.resolve.stage.consolidate`: exact and Splink linkage, stable "
            "master ids, golden records, provenance, relations (schemas/resolve/*.yml). Triggered by any "
            "update of:\n\n" + "\n".join(f"* `{a.uri}`" for a in assets)
        ),
    ) as dag:

        @task(
            task_id="consolidate",
            pool=WAREHOUSE_POOL,
            outlets=[Asset(core_asset_uri(t)) for t in CORE_TABLES],
        )
        def _consolidate(**context: Any) -> dict[str, Any]:
            return consolidate_task(context)

        _consolidate()
    return dag


def load_sources(schemas_dir: Path | None = None) -> list[Source]:
    """Parse every source contract (YAML + pydantic only; no cross-check, no heavy imports)."""
    folder = (schemas_dir or get_settings().schemas_dir) / "sources"
    return [load_source(p) for p in sorted(folder.glob("*.yml"))]


def build_all(schemas_dir: Path | None = None) -> dict[str, DAG]:
    """Every govbase DAG by dag_id: one ingest DAG per source contract, then publish."""
    sources = load_sources(schemas_dir)
    dags = {f"{INGEST_PREFIX}{s.name}": build_ingest_dag(s) for s in sources}
    publish = build_publish_dag(sources)
    if publish is not None:
        dags[publish.dag_id] = publish
    consolidate = build_consolidate_dag(sources, schemas_dir)
    if consolidate is not None:
        dags[consolidate.dag_id] = consolidate
    return dags
