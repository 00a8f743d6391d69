"""The load stage: write-audit-publish into staging.<table> and quarantine.<table>; reconcile."""

from __future__ import annotations

import json
import shutil
from typing import Any

from etl import meta
from etl.config import Settings
from etl.contracts import Contracts, Source
from etl.errors import ReconciliationError, StageOrderError, ValidationFailed
from etl.faults import checkpoint
from etl.ledger import write_ledger
from etl.workdir import Progress, raw_paths, work_dir


def stage_load(
    settings: Settings,
    contracts: Contracts,
    source: Source,
    logical_date: str,
    run_id: str,
    progress: Progress | None = None,
) -> dict[str, Any]:
    from etl.load.warehouse import LINEAGE, Partition, audit, partition_path, publish, sweep

    started = meta.now()
    table = contracts.tables[source.table]
    wd = work_dir(settings, source.name, logical_date, run_id)
    summary_path = wd / "validated" / "summary.json"
    raws = raw_paths(settings, source.name, run_id)
    extracted = sum(n for _, _, n in raws)
    if not raws or not summary_path.exists():
        if not raws:
            # Nothing new arrived for this run (files already extracted): the published
            # partition stays as it is.
            write_ledger(
                settings,
                run_id=run_id,
                source=source.name,
                stage="load",
                logical_date=logical_date,
                rows_in=0,
                rows_out=0,
                rows_quarantined=0,
                started=started,
                status="ok",
                message="nothing new to load",
            )
            return {"source": source.name, "stage": "load", "published": False, "reason": "nothing new"}
        raise StageOrderError(f"{source.name} {logical_date}: load before validate (no {summary_path})")
    v = json.loads(summary_path.read_text())
    if not v["batch_ok"]:
        raise ValidationFailed(
            f"batch of {source.name} for {logical_date} failed validation: {v['batch_failures']}"
        )
    loaded, quarantined = v["source_rows_loaded"], v["source_rows_quarantined"]
    balanced = extracted == loaded + quarantined
    if not balanced:
        msg = (
            f"{source.name} {logical_date} run {run_id} does not reconcile: extracted {extracted} != "
            f"loaded {loaded} + quarantined {quarantined}; nothing published"
        )
        write_ledger(
            settings,
            run_id=run_id,
            source=source.name,
            stage="load",
            logical_date=logical_date,
            rows_in=extracted,
            rows_out=loaded,
            rows_quarantined=quarantined,
            started=started,
            status="failed",
            message=msg,
        )
        raise ReconciliationError(msg)

    p = Partition(table.name, source.name, logical_date, run_id)
    # write
    st_path = q_path = None
    if v["good_path"]:
        st_path = partition_path(settings, "staging", p)
        st_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(v["good_path"], st_path)
    if v["quarantine_path"]:
        q_path = partition_path(settings, "quarantine", p)
        q_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(v["quarantine_path"], q_path)
    checkpoint("load:after_write")
    # audit
    audit(st_path, v["good_rows"], table.column_names + LINEAGE)
    audit(q_path, quarantined, ["_source", "_batch_id", "_row_number", "reasons", "raw"])
    # publish
    with meta.connect(settings) as con:
        superseded = publish(
            con,
            table,
            p,
            staging_path=st_path,
            quarantine_path=q_path,
            rows_loaded=v["good_rows"],
            source_rows=loaded,
            rows_quarantined=quarantined,
        )
        checkpoint("load:after_commit")
        for f in superseded:
            f.unlink(missing_ok=True)
        sweep(settings, con, table.name, source.name)
    write_ledger(
        settings,
        run_id=run_id,
        source=source.name,
        stage="load",
        logical_date=logical_date,
        rows_in=extracted,
        rows_out=loaded,
        rows_quarantined=quarantined,
        started=started,
        status="ok",
    )
    shutil.rmtree(wd, ignore_errors=True)
    return {
        "source": source.name,
        "stage": "load",
        "published": True,
        "rows_loaded": v["good_rows"],
        "source_rows_loaded": loaded,
        "source_rows_quarantined": quarantined,
        "extracted": extracted,
    }
