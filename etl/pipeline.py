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

`run_publish` dispatches the publish stage (etl.publish.stage). Every stage holds the
home's writer lock (etl.lock) while it runs; after a load, and after the publish stage,
the writer replaces the read-only catalog readers open (etl.published).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from etl.config import Settings, get_settings
from etl.contracts import get_contracts
from etl.errors import ReconciliationError, StageOrderError, ValidationFailed
from etl.extract.stage import stage_extract
from etl.ledger import ledger
from etl.load.stage import stage_load
from etl.lock import writer_lock
from etl.normalize.stage import stage_normalize
from etl.publish.stage import stage_publish
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

    Failures raise GovbaseError subclasses whose message an operator can act on;
    the failure is also recorded in meta.run_ledger.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    settings = settings or get_settings()
    contracts = get_contracts(settings)
    src = contracts.source(source)
    logical_date = check_date(logical_date)
    # one writer per home (etl.lock): a stage waits for, or gives up on, another process's run;
    # a load (done or failed, as the ledger says) reaches readers in a new published catalog
    with (
        writer_lock(settings, run_id, say=log.warning),
        publishing(settings, run_id, enabled=stage in PUBLISHED_AFTER),
        ledger(settings, run_id=run_id, source=source, stage=stage, logical_date=logical_date) as entry,
    ):
        run = StageRun(settings, contracts, src, logical_date, run_id, entry, progress, full_refresh)
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
    """Refresh what depends on landed batches (etl.publish.stage): rejection reports, Data
    Docs, the security classification and the department shares. `sources` is what the
    caller ran (kept for the Airflow task's signature); every source is published."""
    settings = settings or get_settings()
    return stage_publish(settings, get_contracts(settings), logical_date, run_id)
