"""The load stage: write-audit-publish into staging.<table> and quarantine.<table>; reconcile."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from etl import meta
from etl.config import Settings
from etl.contracts import SharedTable
from etl.errors import ReconciliationError, StageOrderError, ValidationFailed
from etl.faults import checkpoint
from etl.load.warehouse import Partition, PartitionContent
from etl.workdir import StageRun, ValidatedBatch


def stage_load(run: StageRun) -> dict[str, Any]:
    """Publish the validated batch of the run as one partition per (table, source, date):
    copy its files into the warehouse, audit them, make them visible in one transaction.

    Refuses (nothing published) a batch that failed validation (ValidationFailed) or
    whose counts do not reconcile (ReconciliationError); with nothing new extracted for
    the run, the published partition stays as it is.
    """
    source, logical_date, wd = run.source, run.logical_date, run.work
    raws = run.raw_batches()
    extracted = sum(n for _, _, n in raws)
    if not raws:
        taken = _extracted_by_ledger(run)
        if taken:
            # the run extracted rows whose batches are no longer its own (another run
            # carried them forward): loading nothing would leave this run unbalanced
            msg = (
                f"{source.name} {logical_date} run {run.run_id} does not reconcile: it extracted "
                f"{taken} row(s), but no batch of this run is left to load; nothing published"
            )
            run.ledger.counts(taken, 0, 0)
            run.ledger.fail(msg)
            raise ReconciliationError(msg)
        # Nothing new arrived for this run (files already extracted): the published
        # partition stays as it is.
        run.ledger.message = "nothing new to load"
        return {"source": source.name, "stage": "load", "published": False, "reason": "nothing new"}
    if not wd.summary.exists():
        raise StageOrderError(f"{source.name} {logical_date}: load before validate (no {wd.summary})")
    v = ValidatedBatch.read(wd.summary)
    if not v.batch_ok:
        raise ValidationFailed(
            f"batch of {source.name} for {logical_date} failed validation: {v.batch_failures}"
        )
    loaded, quarantined = v.source_rows_loaded, v.source_rows_quarantined
    run.ledger.counts(extracted, loaded, quarantined)
    if extracted != loaded + quarantined:
        msg = (
            f"{source.name} {logical_date} run {run.run_id} does not reconcile: extracted {extracted} != "
            f"loaded {loaded} + quarantined {quarantined}; nothing published"
        )
        run.ledger.fail(msg)
        raise ReconciliationError(msg)
    _write_audit_publish(run, v)
    shutil.rmtree(wd.root, ignore_errors=True)
    return {
        "source": source.name,
        "stage": "load",
        "published": True,
        "rows_loaded": v.good_rows,
        "source_rows_loaded": loaded,
        "source_rows_quarantined": quarantined,
        "extracted": extracted,
    }


def _extracted_by_ledger(run: StageRun) -> int:
    """Rows the latest extract of this run recorded in meta.run_ledger (0 if none)."""
    with meta.connect(run.settings) as con:
        row = con.execute(
            "select rows_out from meta.run_ledger where source = ? and run_id = ? and stage = 'extract' "
            "order by finished_at desc limit 1",
            [run.source.name, run.run_id],
        ).fetchall()
    return int(row[0][0] or 0) if row else 0


def _write_audit_publish(run: StageRun, v: ValidatedBatch) -> None:
    """Copy the batch's files to new partition paths (never the current files' names,
    etl.load.warehouse.new_partition_paths), audit them, publish them in one DuckDB
    transaction, then drop the files the partition replaced."""
    from etl.load.warehouse import LINEAGE, audit, new_partition_paths

    settings, table = run.settings, run.table
    p = Partition(table.name, run.source.name, run.logical_date, run.run_id)
    # write, never over the partition's current files (a run id used again: new names)
    with meta.connect(settings) as con:
        st_new, q_new = new_partition_paths(con, settings, p)
    st_path = _copy_into(v.good_path, st_new)
    q_path = _copy_into(v.quarantine_path, q_new)
    checkpoint("load:after_write")
    # audit
    audit(st_path, v.good_rows, table.column_names + LINEAGE)
    audit(q_path, v.source_rows_quarantined, ["_source", "_batch_id", "_row_number", "reasons", "raw"])
    content = PartitionContent(st_path, q_path, v.good_rows, v.source_rows_loaded, v.source_rows_quarantined)
    publish_partition(settings, table, p, content)


def publish_partition(
    settings: Settings, table: SharedTable, p: Partition, content: PartitionContent
) -> None:
    """Make written, audited files the partition's content in one DuckDB transaction
    (etl.load.warehouse.publish), then delete the files it replaced and any a killed run
    left behind. The load stage and replay both publish through here."""
    from etl.load.warehouse import publish, sweep

    with meta.connect(settings) as con:
        superseded = publish(con, settings, table, p, content, schemas_dir=settings.schemas_dir)
        checkpoint("load:after_commit")
        for f in superseded:
            f.unlink(missing_ok=True)
        sweep(settings, con, table.name, p.source)
    checkpoint("load:after_sweep")


def _copy_into(src: Path | None, dest: Path) -> Path | None:
    """`src` copied to `dest` (folders made); None when there is no file to copy."""
    if src is None:
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return dest
