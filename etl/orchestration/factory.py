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
    """The run's logical date as YYYY-MM-DD. A run without one (started by a delivery, or an
    asset event) uses the latest delivery date its landing events name, else its run_after."""
    from etl.orchestration.watchers import delivery_date

    dag_run = context["dag_run"]
    when = getattr(dag_run, "logical_date", None)
    if when is None:
        delivered = delivery_date(getattr(dag_run, "consumed_asset_events", None) or [])
        if delivered:
            return delivered
        when = dag_run.run_after
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


def _govbase_dag(
    dag_id: str, description: str, schedule: Any, owner: str, tags: list[str], doc_md: str
) -> DAG:
    """A govbase DAG: from START_DATE, never catching up, one run at a time, default_args."""
    return DAG(
        dag_id=dag_id,
        description=description,
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=default_args(owner),
        tags=tags,
        doc_md=doc_md,
    )


def _asset_dag(dag_id: str, description: str, assets: list[Asset], tags: list[str], doc: str) -> DAG:
    """A govbase DAG run whenever any of `assets` is updated (owner govbase); its doc
    (`doc`, then the list of those Assets) says so."""
    doc_md = doc + " Triggered by any update of:\n\n" + "\n".join(f"* `{a.uri}`" for a in assets)
    return _govbase_dag(dag_id, description, AssetAny(*assets), "govbase", tags, doc_md)


def build_ingest_dag(src: Source) -> DAG:
    """The ingest DAG of one source: extract -> normalize -> validate -> load."""
    from etl.orchestration.watchers import ingest_schedule, watch_doc

    with _govbase_dag(
        f"{INGEST_PREFIX}{src.name}",
        f"Ingest {src.department_name} ({src.kind}) into staging.{src.table}",
        ingest_schedule(src, get_settings()),
        src.owner,
        sorted({*src.tags, src.department, "ingest"}),
        _doc_md(src) + watch_doc(src, get_settings()),
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


def share_asset_uri(department: str) -> str:
    """URI of the Asset publish updates per department share: `govbase://share/<department>`."""
    return f"govbase://share/{department}"


def open_asset_uri(dataset: str) -> str:
    """URI of the Asset publish updates per open dataset: `govbase://open/<dataset>`."""
    return f"govbase://open/{dataset}"


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    return data if isinstance(data, dict) else {}


def published_outputs(schemas_dir: Path | None = None) -> tuple[list[str], list[str], set[str]]:
    """(departments of schemas/sharing.yml, datasets of schemas/open/*.yml, the core tables
    they read), by plain YAML (parse time); `govbase contracts` checks them properly."""
    folder = schemas_dir or get_settings().schemas_dir
    departments = sorted(_yaml(folder / "sharing.yml").get("departments") or {})
    tables = {
        str(g.get("table", ""))
        for d in (_yaml(folder / "sharing.yml").get("departments") or {}).values()
        for g in (d or {}).get("grants", [])
    }
    datasets = []
    for p in sorted((folder / "open").glob("*.yml")):
        data = _yaml(p)
        if "source" in data:  # catalog.yml describes the catalog, not a dataset
            datasets.append(str(data.get("name", p.stem)))
            tables.add(str(data["source"]))
    core = {t.split(".", 1)[1] for t in tables if t.startswith("core.")}
    return departments, datasets, core


def build_publish_dag(sources: Iterable[Source], schemas_dir: Path | None = None) -> DAG | None:
    """The publish DAG, run whenever any source's staging Asset is updated, or a core table
    that a share or an open dataset reads (`govbase://core/<table>`, emitted by consolidate).

    Scheduled on AssetAny so a monthly source never holds back the daily ones;
    the Asset events queued meanwhile are consumed by the next run. Its task emits
    `govbase://share/<department>` per department share and `govbase://open/<dataset>` per
    open dataset.
    """
    srcs = sorted(sources, key=lambda s: s.name)
    if not srcs:
        return None
    departments, datasets, core = published_outputs(schemas_dir)
    assets = [*publish_assets(srcs), *(Asset(core_asset_uri(t)) for t in sorted(core))]
    outlets = [
        *(Asset(share_asset_uri(d)) for d in departments),
        *(Asset(open_asset_uri(d)) for d in datasets),
    ]
    with _asset_dag(
        PUBLISH_DAG_ID,
        "Rejection reports, Data Docs, department shares and open data once staging or core changes",
        assets,
        ["publish", "reports"],
        "### publish\n\nRuns `etl.pipeline.run_publish(ds, run_id, sources)`: rejection reports "
        "for the departments, Data Docs, the classification, department shares and open data with "
        "its catalog; it updates " + ", ".join(f"`{a.uri}`" for a in outlets) + ".",
    ) as dag:
        names = [s.name for s in srcs]

        @task(task_id="publish", pool=WAREHOUSE_POOL, outlets=outlets)
        def _publish(sources: list[str], **context: Any) -> dict[str, Any]:
            return publish_task(sources, context)

        _publish(names)
    return dag


def publish_assets(sources: Iterable[Source]) -> list[Asset]:
    """The staging Assets publish waits for: every source's (the core ones: build_publish_dag)."""
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
    with _asset_dag(
        CONSOLIDATE_DAG_ID,
        "Link staged records into master persons and organisations; build schema core",
        assets,
        ["consolidate", "core"],
        "### consolidate\n\nRuns `etl.resolve.stage.consolidate`: exact and Splink linkage, stable "
        "master ids, golden records, provenance, relations (schemas/resolve/*.yml).",
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
    """Every govbase DAG by dag_id: one ingest DAG per source contract, then publish;
    the asset-scheduled ones are created unpaused (see `unpause_asset_scheduled`)."""
    sources = load_sources(schemas_dir)
    dags = {f"{INGEST_PREFIX}{s.name}": build_ingest_dag(s) for s in sources}
    publish = build_publish_dag(sources, schemas_dir)
    if publish is not None:
        dags[publish.dag_id] = publish
    consolidate = build_consolidate_dag(sources, schemas_dir)
    if consolidate is not None:
        dags[consolidate.dag_id] = consolidate
    return unpause_asset_scheduled(dags)


def unpause_asset_scheduled(dags: dict[str, DAG]) -> dict[str, DAG]:
    """Create every asset-scheduled DAG unpaused (``is_paused_upon_creation=False``).

    Deployments create DAGs paused (AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION), so an
    operator decides when a department's ingest starts. A paused downstream DAG
    (publish, consolidate) would instead drop the Asset events of every successful
    ingest, and nothing downstream would ever run: these run by themselves. Only the
    first creation is affected; a DAG an operator paused stays paused. Ingest DAGs are
    asset-scheduled too (their landing watcher, or their YAML schedule) but stay paused:
    a department's deliveries start its ingest once an operator unpauses it.
    """
    for dag_id, dag in dags.items():
        if dag.timetable.asset_condition is not None and not dag_id.startswith(INGEST_PREFIX):
            dag.is_paused_upon_creation = False
    return dags
