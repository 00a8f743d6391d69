"""One source, one logical date: dispatch of the stages of the data flow.

`run_stage(stage, source, logical_date, run_id)` is the single entry point that
both `govbase run` and the Airflow tasks call. Each stage lives beside the code it
drives; stages hand data to each other through files under
warehouse/_work/<source>/<date>/<run_id>/ (etl.workdir), never through memory or
XCom; each returns a small JSON-able summary and records itself in meta.run_ledger.

  extract    landing -> raw Parquet (etl.extract.stage)
  normalize  raw -> typed rows in the shared schema + per-value errors (etl.normalize.stage)
  validate   row-level expectations -> good rows / quarantine; batch-level ones stop the publish
             (etl.validate.stage)
  load       write-audit-publish into staging.<table> and quarantine.<table>; reconcile (etl.load.stage)

`run_publish` refreshes what depends on landed batches. Every stage holds the
home's writer lock (etl.lock) while it runs; after a load, and after the publish stage,
the writer replaces the read-only catalog readers open (etl.published).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from etl.config import Settings, get_settings
from etl.contracts import get_contracts
from etl.debris import sweep_temporary
from etl.errors import (
    GovbaseError,
    ReconciliationError,
    StageOrderError,
    ValidationFailed,
    WarehouseWriteError,
    writing,
)
from etl.extract.stage import stage_extract
from etl.faults import checkpoint
from etl.ledger import ledger
from etl.load.stage import stage_load
from etl.lock import writer_lock
from etl.normalize.stage import stage_normalize
from etl.published import publishing
from etl.validate.stage import stage_validate
from etl.workdir import Progress, StageRun, check_date

__all__ = [
    "STAGES",
    "ReconciliationError",
    "StageOrderError",
    "ValidationFailed",
    "run_publish",
    "run_source",
    "run_stage",
]

STAGES = ("extract", "normalize", "validate", "load")
#: stages after which the writer republishes the catalog readers open (etl.published)
PUBLISHED_AFTER = frozenset({"load"})
log = logging.getLogger(__name__)


_STAGE_FUNCS: dict[str, Callable[[StageRun], dict[str, Any]]] = {
    "extract": stage_extract,
    "normalize": stage_normalize,
    "validate": stage_validate,
    "load": stage_load,
}


def run_stage(
    stage: str,
    source: str,
    logical_date: str,
    run_id: str,
    *,
    settings: Settings | None = None,
    full_refresh: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run one stage for one source and logical date (YYYY-MM-DD); returns a small summary.

    Failures raise GovbaseError subclasses whose message an operator can act on (a file
    that cannot be written, for want of space or permission, is a WarehouseWriteError); the
    failure is also recorded in meta.run_ledger when the ledger itself can be written.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    settings = settings or get_settings()
    contracts = get_contracts(settings)
    src = contracts.source(source)
    logical_date = check_date(logical_date)
    what = f"the warehouse ({stage} of {source})"
    # one writer per home (etl.lock): a stage waits for, or gives up on, another process's run;
    # a load (done or failed, as the ledger says) reaches readers in a new published catalog.
    # The outer `writing`: the ledger row itself may be what cannot be written; the inner
    # one: the ledger records the clear error
    with (
        writer_lock(settings, run_id, say=log.warning),
        publishing(settings, run_id, enabled=stage in PUBLISHED_AFTER),
        writing(what),
        ledger(settings, run_id=run_id, source=source, stage=stage, logical_date=logical_date) as entry,
    ):
        run = StageRun(settings, contracts, src, logical_date, run_id, entry, progress, full_refresh)
        with writing(what):
            return _STAGE_FUNCS[stage](run)


def run_source(
    source: str,
    logical_date: str,
    run_id: str,
    *,
    settings: Settings | None = None,
    full_refresh: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """All four stages for one source, in order; returns the load summary."""
    summary: dict[str, Any] = {}
    for stage in STAGES:
        summary = run_stage(
            stage,
            source,
            logical_date,
            run_id,
            settings=settings,
            full_refresh=full_refresh,
            progress=progress,
        )
    return summary


def run_publish(
    logical_date: str,
    run_id: str,
    sources: list[str] | None = None,
    *,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Refresh what depends on landed batches: rejection and conformance reports, Data Docs, the security
    classification (kept in meta), the department shares (etl.publish.shares), the open
    data with its catalog (etl.publish.opendata, etl.publish.dcat), the data dictionary
    (etl.publish.dictionary), the catalog's comments (etl.descriptions) and the run report
    (etl.publish.run_report).

    Holds the home's writer lock, and republishes the catalog readers open (etl.published)
    when done, also when the shares or the open data were refused.

    Raises WarehouseWriteError (a GovbaseError) when their files cannot be written."""
    settings = settings or get_settings()
    with writer_lock(settings, run_id, say=log.warning), publishing(settings, run_id):
        return _publish(settings, get_contracts(settings), logical_date, run_id)


def _publish(settings: Settings, contracts: Any, logical_date: str, run_id: str) -> dict[str, Any]:
    from etl.descriptions import describe_warehouse
    from etl.publish.conformance import build_conformance_reports
    from etl.publish.dictionary import build_dictionary
    from etl.publish.docs import build_data_docs
    from etl.publish.reports import build_rejection_reports

    sweep_temporary(settings)  # the *.tmp files of a publish that was killed
    try:
        with writing("the reports, Data Docs and data dictionary"):  # DuckDB's and GE's failures to write too
            reports = build_rejection_reports(settings, contracts)
            build_conformance_reports(settings, contracts)
            checkpoint("publish:after_reports")
            index = build_data_docs(settings)
            checkpoint("publish:after_docs")
            standard = build_dictionary(settings, contracts)
            checkpoint("publish:after_dictionary")
    except OSError as exc:  # any: a path taken by a file is as much a write error here
        raise WarehouseWriteError(exc, "the reports, Data Docs and data dictionary") from None
    try:
        with writing("the warehouse comments, the department shares and the open data"):
            describe_warehouse(settings, contracts.tables)
            checkpoint("publish:after_comments")
            shares, opened = publish_shares(settings, contracts, run_id, check_date(logical_date))
    except GovbaseError:
        write_run_report(settings, contracts, run_id)  # the operator's page, also when shares stop
        raise
    report = write_run_report(settings, contracts, run_id)
    checkpoint("publish:after_run_report")
    return {
        "stage": "publish",
        "logical_date": check_date(logical_date),
        "run_id": run_id,
        "reports": {r.department: r.rows for r in reports},
        "reports_dir": str(settings.reports_dir),
        "data_docs": str(index) if index else None,
        "dictionary": str(standard.html),
        "shares": {r.department: str(r.path) for r in shares},
        "open": {r.dataset.name: str(r.files[0].path.parent) for r in opened},
        "open_catalog": str(settings.layer("open") / "catalog.jsonld") if opened else None,
        "run_report": str(report),
    }


def write_run_report(settings: Settings, contracts: Any, run_id: str) -> Any:
    """The run report (etl.publish.run_report) of `run_id`, or of the latest run when `run_id`
    ran no source (a publish of its own); returns its path."""
    from etl.publish.run_report import build_run_report

    try:
        return build_run_report(settings, contracts, run_id, latest_if_unknown=True)
    except OSError as exc:
        raise WarehouseWriteError(exc, "the run report") from None


def publish_shares(
    settings: Settings, contracts: Any, run_id: str, refreshed_at: str
) -> tuple[list[Any], list[Any]]:
    """Classify staged and core columns (findings to meta), then build the open datasets and
    the department shares. A finding on a column one of them exposes stops that one only: the
    other is still built, then the error is raised (both failing: the shares' error, the open
    data's chained to it)."""
    from etl import meta
    from etl.publish import classify, opendata
    from etl.publish.grants import load_sharing
    from etl.publish.openspec import load_open
    from etl.publish.shares import build_shares

    sharing = load_sharing(settings.schemas_dir, contracts.tables)
    spec = load_open(settings.schemas_dir, contracts.tables)
    with meta.connect(settings) as con:
        findings = classify.classify(con, contracts)
        classify.record(con, run_id, findings)
    checkpoint("publish:after_classification")
    opened: list[Any] = []
    try:
        opened = opendata.build_open(settings, contracts, spec, findings, refreshed_at)
        checkpoint("publish:after_open_data")
    finally:  # shares are tried even when open data failed; its error is raised after
        shares = build_shares(settings, contracts, sharing, findings, refreshed_at)
    return shares, opened
