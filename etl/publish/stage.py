"""The publish stage: what depends on landed batches, refreshed after a run or a load.

Rejection reports for the departments, Data Docs, the security classification (kept in
meta), the published catalog readers open (etl.published) and the department shares
(etl.publish.shares). `govbase run`, `govbase publish`
and the Airflow publish task all call `stage_publish` (through etl.pipeline.run_publish).
"""

from __future__ import annotations

import logging
from typing import Any

from etl.config import Settings
from etl.contracts import Contracts
from etl.errors import WarehouseWriteError
from etl.lock import writer_lock
from etl.published import publishing
from etl.workdir import check_date

log = logging.getLogger(__name__)


def stage_publish(settings: Settings, contracts: Contracts, logical_date: str, run_id: str) -> dict[str, Any]:
    """Reports, Data Docs, classification and shares, holding the home's writer lock.

    Raises WarehouseWriteError (a GovbaseError) when their files cannot be written."""
    from etl.publish.docs import build_data_docs
    from etl.publish.reports import build_rejection_reports

    day = check_date(logical_date)
    # a writer like the stages: classification findings go to meta, the shares are rebuilt;
    # the catalog readers open is republished once the findings are in (also when the
    # reports could not be written), before the shares, which can refuse to publish
    with writer_lock(settings, run_id, say=log.warning):
        with publishing(settings, run_id):
            try:
                reports = build_rejection_reports(settings, contracts)
                index = build_data_docs(settings)
            except OSError as exc:
                raise WarehouseWriteError(exc, "the reports and Data Docs") from None
            findings = classify_columns(settings, contracts, run_id)
        shares = _build_shares(settings, contracts, findings, day)
    return {
        "stage": "publish",
        "logical_date": day,
        "run_id": run_id,
        "reports": {r.department: r.rows for r in reports},
        "reports_dir": str(settings.reports_dir),
        "data_docs": str(index) if index else None,
        "shares": {r.department: str(r.path) for r in shares},
    }


def classify_columns(settings: Settings, contracts: Contracts, run_id: str) -> list[Any]:
    """Classify staged and core columns by content; the findings go to meta."""
    from etl import meta
    from etl.publish import classify

    with meta.connect(settings) as con:
        findings = classify.classify(con, contracts)
        classify.record(con, run_id, findings)
    return findings


def _build_shares(
    settings: Settings, contracts: Contracts, findings: list[Any], refreshed_at: str
) -> list[Any]:
    """The department shares (etl.publish.shares), refused on a finding on a granted column."""
    from etl.publish.grants import load_sharing
    from etl.publish.shares import build_shares

    sharing = load_sharing(settings.schemas_dir, contracts.tables)
    return build_shares(settings, contracts, sharing, findings, refreshed_at)
