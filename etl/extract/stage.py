"""The extract stage: landing -> raw Parquet batches recorded in meta.extract_batch."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from etl import meta
from etl.config import Settings
from etl.debris import sweep_extract
from etl.errors import GovbaseError
from etl.faults import checkpoint
from etl.workdir import StageRun

log = logging.getLogger(__name__)


def stage_extract(run: StageRun) -> dict[str, Any]:
    """Extract the source's deliveries due by the logical date into raw batches, and carry
    forward batches an earlier run of the same date extracted but never published (a full
    refresh that extracted anew marks them superseded instead: its pull holds them). When it
    extracted something new (and is no full refresh), it also keeps the batches of the
    date's published partition that no new file supersedes (`_keep_published`): the load
    replaces the partition, so a second delivery on the same date adds to the first.

    Raises GovbaseError when any file failed (the others are still extracted and counted).
    """
    from etl.extract import extract_source, nothing_due

    source = run.source
    # what a killed run of this source left (unrecorded raw files, its work folder): gone first
    sweep_extract(run.settings, source.name, run.logical_date, run.run_id)
    results = extract_source(
        run.settings,
        source,
        run_id=run.run_id,
        logical_date=date.fromisoformat(run.logical_date),
        full_refresh=run.full_refresh,
        progress=run.progress,
    )
    extracted = [r for r in results if r.status == "extracted"]
    failed = [r for r in results if r.status == "failed"]
    rows = sum(r.rows for r in extracted)
    # delivered: the records the files deliver, counted from their lines apart from the
    # parser (rows_in); the load reconciles loaded + quarantined against it
    delivered = sum(r.delivered if r.delivered is not None else r.rows for r in extracted)
    adopted, kept, superseded = _other_batches(run, extracted)
    rows += sum(n for _, n, _ in adopted + kept)
    delivered += sum(d for _, _, d in adopted + kept)
    # and the batches the run held before: a run id used again (an Airflow DAG run cleared
    # after its commit) loads them again, so they count again (or the run would not reconcile)
    counted = [r.batch_id for r in extracted] + [b for b, _, _ in adopted + kept]
    held = _held_before(run.settings, source.name, run.run_id, counted)
    rows += held[0]
    delivered += held[1]
    run.ledger.counts(delivered, rows)
    summary: dict[str, Any] = {
        "source": source.name,
        "stage": "extract",
        "files": len(results),
        "extracted": len(extracted),
        "carried_forward": len(adopted),
        "superseded": len(superseded),
        "kept": len(kept),
        "skipped": sum(r.status == "skipped" for r in results),
        "failed": len(failed),
        "rows": rows,
        "delivered": delivered,
    }
    if not results and not adopted:
        # nothing to extract: say why (no file matches, or none is due yet by its date)
        why = nothing_due(run.settings, source, date.fromisoformat(run.logical_date))
        if why:
            run.ledger.message = summary["note"] = why
    if failed:
        message = "; ".join(
            f"file {r.file}: {r.message or ''}" if r.file else r.message or "" for r in failed
        )
        message = f"extract failed for {len(failed)} file(s) of {source.name}: {message}"
        run.ledger.fail(message)  # the rows of the files that did extract stay counted
        raise GovbaseError(message)
    return summary


def _other_batches(
    run: StageRun, extracted: list[Any]
) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int]], set[str]]:
    """The batches besides this extract's that the run loads: carried forward from a killed
    run, kept from the published partition, and (a set of ids) the run's own earlier
    batches a newer extract supersedes, taken out of the first two."""
    source = run.source
    adopted = _adopt_unpublished(run.settings, source.name, run.run_id, run.logical_date)
    checkpoint("extract:after_carry_forward")
    # a file extracted again supersedes its published version; an SQL pull records the
    # table as its file and adds to the earlier pulls (it holds the rows changed since)
    superseding = [r.file for r in extracted] if source.kind != "sql" else []
    kept = (
        _keep_published(run.settings, source.name, run.run_id, run.logical_date, superseding)
        if extracted and not run.full_refresh
        else []
    )
    # the run's batches a newer extract of theirs replaces: out of the run, neither loaded
    # nor counted (a corrected file under the same name, a full refresh of the run id); a
    # full refresh that extracted anew keeps none carried forward either (its pull holds
    # their rows: an SQL pull would otherwise load beside it, twice the table)
    superseded = _supersede(
        run.settings,
        source.name,
        run.run_id,
        new=[r.batch_id for r in extracted],
        adopted=[] if run.full_refresh and extracted else [b for b, _, _ in adopted + kept],
        full_refresh=run.full_refresh,
        by_file=source.kind != "sql",
    )
    adopted = [a for a in adopted if a[0] not in superseded]
    kept = [k for k in kept if k[0] not in superseded]
    return adopted, kept, superseded


def _supersede(
    settings: Settings,
    source: str,
    run_id: str,
    *,
    new: list[str],
    adopted: list[str],
    full_refresh: bool,
    by_file: bool,
) -> set[str]:
    """Mark superseded the extracted batches of run `run_id` that a newer batch of the run
    replaces, so that its load (etl.workdir.raw_paths) and its count (`_held_before`) take
    only the newest version of each file: with `by_file` (a file source), every batch with
    a newer extracted batch of the same file in the run (a corrected delivery under the same
    name extracted again by the run id used again, or by the run that carried the first
    version forward, or beside a published one it kept); under `full_refresh`, also every
    batch of the run but `new` (this extract's) and `adopted` (carried forward or kept from
    other runs and still loaded: none when the full refresh extracted anew). Not by file for an SQL
    source: its pulls record the table as their file, and a second incremental pull under
    the same run id adds to the first. The rule holds on the catalog alone, so a rerun after
    a kill between the batch row and this step applies it too. Returns the batch ids."""
    with meta.connect(settings) as con:
        rows = con.execute(
            "update meta.extract_batch set status = 'superseded', "
            "message = coalesce(message || '; ', '') || 'superseded: extracted again by run ' || ? "
            "where source = ? and run_id = ? and status = 'extracted' and not list_contains(?, batch_id) "
            "and ((? and not list_contains(?, batch_id)) or (? and file is not null and exists ("
            "  select 1 from meta.extract_batch n where n.source = extract_batch.source "
            "  and n.run_id = extract_batch.run_id and n.status = 'extracted' and n.file = extract_batch.file "
            "  and (n.started_at > extract_batch.started_at "
            "       or (n.started_at = extract_batch.started_at and n.batch_id > extract_batch.batch_id))))) "
            "returning batch_id",
            [run_id, source, run_id, new, full_refresh, adopted, by_file],
        ).fetchall()
    if rows:
        log.warning("%s: %d batch(es) of run %s superseded by a newer extract", source, len(rows), run_id)
    return {b for (b,) in rows}


def _held_before(settings: Settings, source: str, run_id: str, counted: list[str]) -> tuple[int, int]:
    """(rows, delivered) of the extracted batches of `source` run `run_id` holds (the load
    loads them: etl.workdir.raw_paths) but not among `counted` (this extract's new, carried
    forward and kept batches): the batches an earlier attempt under the same run id
    extracted and no newer batch supersedes (`_supersede`). (0, 0) for a new run id."""
    with meta.connect(settings) as con:
        [(rows, delivered)] = con.execute(
            "select coalesce(sum(rows), 0), coalesce(sum(coalesce(delivered, rows)), 0) from meta.extract_batch "
            "where source = ? and run_id = ? and status = 'extracted' and raw_path is not null "
            "and not list_contains(?, batch_id)",
            [source, run_id, counted],
        ).fetchall()
    return int(rows), int(delivered)


def _adopt_unpublished(
    settings: Settings, source: str, run_id: str, logical_date: str
) -> list[tuple[str, int, int]]:
    """Carry forward batches an earlier run of the same (source, logical date) extracted
    but never published (killed, or stopped by validation): the file is not extracted
    twice, so without this its rows would sit in raw forever. Only the same logical
    date: Airflow never runs one (DAG, date) twice at once, while runs of other dates
    (a backfill beside a scheduled run) may be in flight. Returns (batch_id, rows, delivered)."""
    rows = _take_over(
        settings,
        source,
        run_id,
        logical_date,
        "coalesce(run_id, '') <> ? and coalesce(run_id, '') not in ("
        "  select run_id from meta.run_ledger where source = ? and stage = 'load' and status = 'ok')",
        [run_id, source],
    )
    if rows:
        log.warning("%s: carrying forward %d unpublished batch(es) into run %s", source, len(rows), run_id)
    return rows


def _keep_published(
    settings: Settings, source: str, run_id: str, logical_date: str, new_files: list[str | None]
) -> list[tuple[str, int, int]]:
    """Take over the batches of the (source, logical date) partition another run published,
    but those whose file this run extracted again (a corrected delivery under the same name
    supersedes its first version): the load publishes the partition anew with them and this
    run's new batches, so a delivery that arrives after the date's partition was published
    (a second file that day, a delivery starting its own ingest, a second SQL pull) adds to
    it instead of replacing it. Returns (batch_id, rows, delivered)."""
    names = [f for f in new_files if f]
    rows = _take_over(
        settings,
        source,
        run_id,
        logical_date,
        "run_id <> ? and exists ("
        "  select 1 from meta.partition p where p.source = ? and p.logical_date = ? "
        "  and (p.run_id = extract_batch.run_id or starts_with(p.run_id, extract_batch.run_id || '-replay-'))) "
        "and (file is null or not list_contains(?, file))",
        [run_id, source, logical_date, names],
    )
    if rows:
        log.info("%s: %d published batch(es) of %s kept beside the new ones", source, len(rows), logical_date)
    return rows


def _take_over(
    settings: Settings, source: str, run_id: str, logical_date: str, where: str, params: list[Any]
) -> list[tuple[str, int, int]]:
    """Move to run `run_id` the extracted batches of (`source`, `logical_date`) that also
    match the SQL condition `where` (its ? bound to `params`), in one statement (what
    `_adopt_unpublished` and `_keep_published` take); returns (batch_id, rows, delivered)."""
    with meta.connect(settings) as con:
        rows = con.execute(
            "update meta.extract_batch set run_id = ? where source = ? and status = 'extracted' "
            f"and logical_date = ? and {where} returning batch_id, rows, coalesce(delivered, rows)",
            [run_id, source, logical_date, *params],
        ).fetchall()
    return [(b, int(n or 0), int(d or 0)) for b, n, d in rows]
