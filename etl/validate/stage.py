"""The validate stage: row-level expectations -> good rows / quarantine; batch-level ones
stop the publish."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc

from etl import meta
from etl.errors import StageOrderError, ValidationFailed
from etl.faults import checkpoint
from etl.validate import conformance
from etl.validate.quarantine import FAILURE_COLUMNS, VALUE_ERROR_COLUMNS, assemble, keyed, known_raw_rows
from etl.workdir import StageRun, ValidatedBatch, Writer, arrow_rows, iter_tables, read_arrow

if TYPE_CHECKING:
    from etl.validate.runner import BatchVerdict, SuiteRunner

VALIDATE_CHUNK_ROWS = 250_000


@dataclass
class RowChecks:
    """What the row-level pass over a staged batch found and wrote."""

    failures: pd.DataFrame  # FAILURE_COLUMNS, one row per failed expectation of a row
    good_rows: int = 0
    good_path: Path | None = None
    staged_rows: int = 0
    null_counts: dict[str, int] = field(default_factory=dict)
    ge_results: list[dict[str, Any]] = field(default_factory=list)


def stage_validate(run: StageRun) -> dict[str, Any]:
    """Validate the run's staged rows: rows failing row-level expectations (or carrying a
    value error) go to `WorkDir.quarantine` with their reasons, the rest to `WorkDir.good`;
    the batch-level verdict and the counts go to `WorkDir.summary` (a ValidatedBatch).

    Raises ValidationFailed when a batch-level expectation fails (the batch is not published).
    """
    from etl.validate.runner import SuiteRunner

    source, logical_date, wd = run.source, run.logical_date, run.work
    raws = run.raw_batches()
    extracted = sum(n for _, _, n in raws)
    if not raws:
        # Nothing new arrived in this run: nothing to validate, and the load keeps the
        # published partition as it is.
        run.ledger.message = "nothing new"
        return {"source": source.name, "stage": "validate", "nothing_new": True}
    if not wd.staged.exists() and extracted:
        raise StageOrderError(f"{source.name} {logical_date}: validate before normalize (no {wd.staged})")
    shutil.rmtree(wd.validated, ignore_errors=True)
    runner = SuiteRunner(run.settings.expectations_dir, run.table, source, run.settings.validation_engine)
    value_errors = _value_errors(wd.errors)
    checks = _check_rows(run, runner, value_errors)
    checks.ge_results = _with_normalize_results(checks.ge_results, value_errors, extracted, run)
    quarantine = assemble(
        value_errors,
        checks.failures,
        known_raw=known_raw_rows(wd.raw_rows),
        raw_files=[p for _, p, _ in raws],
        source=source.name,
        run_id=run.run_id,
        logical_date=logical_date,
    )
    if len(quarantine):
        wd.validated.mkdir(parents=True, exist_ok=True)
        quarantine.to_parquet(wd.quarantine, index=False)
        checkpoint("validate:after_quarantine_file")
    verdict = _judge_batch(run, runner, checks, extracted)
    # Every quarantined key is a delivered row (errors come from staged rows, which come
    # from raw rows), so the rest of what was extracted is loaded, including wide rows
    # that yielded no value at all.
    batch = ValidatedBatch(
        source=source.name,
        staged_rows=checks.staged_rows,
        good_rows=checks.good_rows,
        extracted=extracted,
        source_rows_loaded=extracted - len(quarantine),
        source_rows_quarantined=len(quarantine),
        batch_ok=verdict.success,
        batch_failures=verdict.failures,
        good_path=checks.good_path,
        quarantine_path=wd.quarantine if len(quarantine) else None,
    )
    batch.write(wd.summary)
    checkpoint("validate:after_summary")
    defects = conformance.column_defects(value_errors, checks.failures)
    profile = conformance.field_profile(source, [p for _, p, _ in raws])
    _record_results(run, checks, verdict, len(quarantine), (profile, defects))
    checkpoint("validate:after_results")
    run.ledger.counts(checks.staged_rows, checks.good_rows, len(quarantine))
    if not verdict.success:
        message = f"batch of {source.name} for {logical_date} not published: " + "; ".join(verdict.failures)
        run.ledger.fail(message)
        raise ValidationFailed(message)
    return batch.as_summary()


def _with_normalize_results(
    ge_results: list[dict[str, Any]], value_errors: pd.DataFrame, delivered: int, run: StageRun
) -> list[dict[str, Any]]:
    """The row-level results with, first, the rows normalize rejected per column
    (compiled.normalize_results): a value normalize refused is null in the staged batch, so
    the column's own checks cannot see it; the Data Docs page of the batch shows it beside them."""
    from etl.validate import compiled

    found = compiled.normalize_results(value_errors, delivered, run.source.name)
    if not found:
        return ge_results
    if not ge_results:
        return [compiled.suite_result(run.table.name, found, f"{run.source.name}_rows")]
    first = dict(ge_results[0])
    results = found + list(first.get("results", []))
    merged = compiled.suite_result(first.get("suite_name") or run.table.name, results, "")
    first.update(results=results, success=merged["success"], statistics=merged["statistics"])
    return [first, *ge_results[1:]]


def _value_errors(path: Path) -> pd.DataFrame:
    """The value errors normalize wrote (WorkDir.errors), keyed by source row."""
    if not path.exists():
        return pd.DataFrame(columns=VALUE_ERROR_COLUMNS)
    value_errors = read_arrow(path)
    if len(value_errors):
        value_errors["_row_number"] = value_errors["_row_number"].astype("int64")
    return value_errors


def _chunk_rows(run: StageRun) -> int:
    if run.source.unpivot is not None:
        # The staged rows of one delivered row must not straddle two chunks (a failure
        # quarantines all of them). Unpivoted statistical tables are small: one chunk.
        return 2**62
    return max(run.source.chunk_rows, VALIDATE_CHUNK_ROWS)


def _check_rows(run: StageRun, runner: SuiteRunner, value_errors: pd.DataFrame) -> RowChecks:
    """One pass over the staged batch: row-level expectations per chunk, failing rows
    collected, the rest written to WorkDir.good, and null counts gathered for the batch level."""
    from etl.validate.runner import columns_of

    wd = run.work
    checks = RowChecks(failures=pd.DataFrame(columns=FAILURE_COLUMNS))
    checks.null_counts = dict.fromkeys(runner.batch_columns, 0)
    # rows with a value error (or a duplicate key) are quarantined whatever the
    # per-chunk expectations say
    quarantined_anyway = {
        str(b): np.unique(g.to_numpy(dtype=np.int64))
        for b, g in value_errors.groupby("_batch_id")["_row_number"]
    }
    chunk_rows = _chunk_rows(run)
    per_chunk = runner.row_expectations
    cross_failures = None
    if wd.staged.exists() and runner.cross_row_expectations and arrow_rows(wd.staged) > chunk_rows:
        per_chunk = [e for e in per_chunk if e not in runner.cross_row_expectations]
        cross_failures = _check_across_chunks(runner, wd.staged, checks)
        if cross_failures is not None:
            quarantined_anyway = _union_rows(quarantined_anyway, cross_failures)
    failures: list[pd.DataFrame] = []
    good_w = Writer(wd.good)
    # the columns the row-level expectations read, plus the row keys
    needed = sorted({c for e in per_chunk for c in columns_of(e["kwargs"])})
    for batch in iter_tables([wd.staged], chunk_rows) if wd.staged.exists() else []:
        chunk = batch.select([*needed, "_batch_id", "_row_number"]).to_pandas()
        fails, summary = runner.validate_rows(chunk, per_chunk)
        if summary:
            checks.ge_results.append(summary)
        failing = quarantined_anyway  # _union_rows returns a new dict: never mutated
        if len(fails):
            failures.append(keyed(chunk, fails))
            failing = _union_rows(failing, failures[-1])
        # a quarantined source row takes all its staged rows (an unpivoted row has several)
        bad = _rows_in(batch, failing)
        good = batch.filter(pa.array(~bad)) if bad.any() else batch
        good_w.write_table(good)
        checkpoint("validate:after_good_chunk")
        for c in checks.null_counts:
            checks.null_counts[c] += good.column(c).null_count
        checks.staged_rows += batch.num_rows
        run.tick("validate", batch.num_rows)
    if cross_failures is not None:
        failures.append(cross_failures)  # after the per-chunk ones: reasons keep the suite's order
    if failures:
        checks.failures = pd.concat(failures, ignore_index=True)
    checks.good_path, checks.good_rows = good_w.close(), good_w.rows
    return checks


def _check_across_chunks(runner: SuiteRunner, staged: Path, checks: RowChecks) -> pd.DataFrame | None:
    """Uniqueness judges a row by the others: run it once over the key columns of the
    whole batch, so that duplicates in two different chunks are seen. Returns the keyed
    failures (None when there are none)."""
    from etl.validate.runner import columns_of

    cross = runner.cross_row_expectations
    key_cols = sorted({c for e in cross for c in columns_of(e["kwargs"])})
    with pa.OSFile(str(staged)) as fh:
        reader = pa.ipc.open_file(fh)
        keys = pa.Table.from_batches(
            [
                reader.get_batch(i).select([*key_cols, "_batch_id", "_row_number"])
                for i in range(reader.num_record_batches)
            ]
        ).to_pandas()
    fails, summary = runner.validate_rows(keys, cross)
    if summary:
        checks.ge_results.append(summary)
    return keyed(keys, fails) if len(fails) else None


def _judge_batch(run: StageRun, runner: SuiteRunner, checks: RowChecks, extracted: int) -> BatchVerdict:
    """The batch-level expectations (null rates of the good rows, volume against the
    previous batch of the source)."""
    from etl.load.warehouse import previous_rows

    with meta.connect(run.settings) as con:
        prev = previous_rows(con, run.table.name, run.source.name, run.logical_date)
    return runner.validate_batch(
        checks.null_counts, checks.good_rows, source_rows=extracted, previous_rows=prev
    )


def _record_results(
    run: StageRun,
    checks: RowChecks,
    verdict: BatchVerdict,
    quarantined: int,
    profile_defects: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """The Great Expectations results (JSON, behind the Data Docs), meta.validation_result and
    the delivery's field profile and defects (etl.validate.conformance)."""
    ge_path = (
        run.settings.warehouse / "validation" / run.source.name / f"{run.logical_date}_{run.run_id}.json"
    )
    ge_path.parent.mkdir(parents=True, exist_ok=True)
    ge_path.write_text(
        json.dumps({"rows": checks.ge_results, "batch": verdict.results}, ensure_ascii=False, default=str)
    )
    with meta.connect(run.settings) as con:
        con.execute(
            "insert into meta.validation_result values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run.run_id,
                run.source.name,
                run.table.name,
                run.logical_date,
                checks.staged_rows,
                quarantined,
                verdict.success,
                "; ".join(verdict.failures) or None,
                meta.stored_path(run.settings, ge_path),
                meta.now(),
            ],
        )
        keys = {
            "run_id": run.run_id,
            "source": run.source.name,
            "table_name": run.table.name,
            "logical_date": run.logical_date,
        }
        conformance.record(con, keys, *profile_defects, meta.now())


def check_beside_published(
    runner: SuiteRunner, staged: pd.DataFrame, published: pa.Table | None
) -> pd.DataFrame:
    """Row-level failures (FAILURE_COLUMNS) of `staged` rows joining a partition whose
    `published` rows (its staging file) stay: per-row expectations on `staged` alone, the
    cross-row ones (uniqueness) over the published rows and `staged` together, a failure
    counting for a staged row only (the published ones are not reconsidered). Replay
    validates with it, so a replayed row that duplicates a published key stays quarantined."""
    from etl.datetypes import arrow_dates, date_columns
    from etl.validate.runner import columns_of

    cross = runner.cross_row_expectations
    staged = staged.reset_index(drop=True)
    fails, _ = runner.validate_rows(staged, [e for e in runner.row_expectations if e not in cross])
    parts = [keyed(staged, fails)] if len(fails) else []
    if cross and len(staged):
        cols = [*sorted({c for e in cross for c in columns_of(e["kwargs"])}), "_batch_id", "_row_number"]
        # a key may hold a date: DATE on both sides (a partition written before dates were
        # typed holds TIMESTAMP, and Arrow does not combine the two)
        dates = date_columns(runner.table)
        mine = arrow_dates(pa.Table.from_pandas(staged[cols], preserve_index=False), dates)
        before = arrow_dates(published.select(cols), dates) if published is not None else mine.slice(0, 0)
        both = pa.concat_tables([before, mine], promote_options="permissive").to_pandas()
        fails, _ = runner.validate_rows(both, cross)
        fails = fails[fails["position"] >= before.num_rows]
        if len(fails):
            parts.append(keyed(both, fails))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=FAILURE_COLUMNS)


def _rows_in(batch: pa.Table, rows: dict[str, np.ndarray]) -> np.ndarray:
    """Which rows of `batch` have a (_batch_id, _row_number) among `rows` (row numbers
    per batch id). Works on the Arrow columns: no Python string per row."""
    bad = np.zeros(batch.num_rows, dtype=bool)
    batch_ids = batch.column("_batch_id")
    row_numbers = batch.column("_row_number").to_numpy()
    for b in pc.unique(batch_ids).to_pylist():
        wanted = rows.get(str(b))
        if wanted is not None and len(wanted):
            in_batch = pc.fill_null(pc.equal(batch_ids, b), False).to_numpy(zero_copy_only=False)
            bad |= in_batch & np.isin(row_numbers, wanted)
    return bad


def _union_rows(rows: dict[str, np.ndarray], keys: pd.DataFrame) -> dict[str, np.ndarray]:
    """`rows` (row numbers per batch id) with the (_batch_id, _row_number) pairs of `keys` added."""
    out = dict(rows)
    for b, r in keys.groupby("_batch_id")["_row_number"]:
        out[str(b)] = np.union1d(out.get(str(b), []), r.to_numpy(dtype=np.int64))
    return out
