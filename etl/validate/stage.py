"""The validate stage: row-level expectations -> good rows / quarantine; batch-level ones
stop the publish."""

from __future__ import annotations

import json
import shutil
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc

from etl import meta
from etl.config import Settings
from etl.contracts import Contracts, Source
from etl.errors import StageOrderError, ValidationFailed
from etl.ledger import write_ledger
from etl.validate.quarantine import aggregate_reasons, raw_lookup
from etl.workdir import Progress, Writer, arrow_rows, iter_tables, raw_paths, read_arrow, work_dir

VALIDATE_CHUNK_ROWS = 250_000


def _keyed(frame: pd.DataFrame, fails: pd.DataFrame) -> pd.DataFrame:
    """Row-level failures with the (_batch_id, _row_number) of their rows in `frame`
    instead of their positions."""
    keys = frame.iloc[fails["position"].to_numpy()][["_batch_id", "_row_number"]].reset_index(drop=True)
    return pd.concat([keys, fails.drop(columns="position").reset_index(drop=True)], axis=1)


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


def stage_validate(
    settings: Settings,
    contracts: Contracts,
    source: Source,
    logical_date: str,
    run_id: str,
    progress: Progress | None = None,
) -> dict[str, Any]:
    from etl.load.warehouse import previous_rows
    from etl.validate.runner import SuiteRunner, columns_of

    started = meta.now()
    table = contracts.tables[source.table]
    wd = work_dir(settings, source.name, logical_date, run_id)
    staged_path = wd / "normalized" / "staged.arrow"
    errors_path = wd / "normalized" / "errors.arrow"
    raws = raw_paths(settings, source.name, run_id)
    extracted = sum(n for _, _, n in raws)
    if not raws:
        # Nothing new arrived in this run: nothing to validate, and the load keeps the
        # published partition as it is.
        write_ledger(
            settings,
            run_id=run_id,
            source=source.name,
            stage="validate",
            logical_date=logical_date,
            rows_in=0,
            rows_out=0,
            rows_quarantined=0,
            started=started,
            status="ok",
            message="nothing new",
        )
        return {"source": source.name, "stage": "validate", "nothing_new": True}
    if not staged_path.exists() and extracted:
        raise StageOrderError(f"{source.name} {logical_date}: validate before normalize (no {staged_path})")
    shutil.rmtree(wd / "validated", ignore_errors=True)
    runner = SuiteRunner(settings.expectations_dir, table, source)

    # Value errors from normalization, keyed by source row.
    value_errors = (
        read_arrow(errors_path)
        if errors_path.exists()
        else pd.DataFrame(columns=["_batch_id", "_row_number", "column", "raw_value", "reason", "detail"])
    )
    if len(value_errors):
        value_errors["_row_number"] = value_errors["_row_number"].astype("int64")
    # rows with a value error (or, below, a duplicate key) are quarantined whatever the
    # per-chunk expectations say
    quarantined_anyway = {
        str(b): np.unique(g.to_numpy(dtype=np.int64))
        for b, g in value_errors.groupby("_batch_id")["_row_number"]
    }

    # One pass: row-level expectations per chunk, failing rows collected, the rest
    # written as the good rows, and null counts gathered for the batch level.
    chunk_rows = max(source.chunk_rows, VALIDATE_CHUNK_ROWS)
    if source.unpivot is not None:
        # The staged rows of one delivered row must not straddle two chunks (a failure
        # quarantines all of them). Unpivoted statistical tables are small: one chunk.
        chunk_rows = 2**62
    failures: list[pd.DataFrame] = []
    ge_results: list[dict[str, Any]] = []
    staged_rows = 0
    good_w = Writer(wd / "validated" / "good.parquet")
    null_counts = dict.fromkeys(runner.batch_columns, 0)
    per_chunk = runner.row_expectations
    cross_failures: list[pd.DataFrame] = []
    if staged_path.exists() and runner.cross_row_expectations and arrow_rows(staged_path) > chunk_rows:
        # Uniqueness judges a row by the others: run it once over the key columns of
        # the whole batch, so that duplicates in two different chunks are seen.
        cross = runner.cross_row_expectations
        per_chunk = [e for e in per_chunk if e not in cross]
        key_cols = sorted({c for e in cross for c in columns_of(e["kwargs"])})
        with pa.OSFile(str(staged_path)) as fh:
            reader = pa.ipc.open_file(fh)
            keys = pa.Table.from_batches(
                [
                    reader.get_batch(i).select([*key_cols, "_batch_id", "_row_number"])
                    for i in range(reader.num_record_batches)
                ]
            ).to_pandas()
        fails, summary = runner.validate_rows(keys, cross)
        if summary:
            ge_results.append(summary)
        if len(fails):
            cross_failures.append(_keyed(keys, fails))
            quarantined_anyway = _union_rows(quarantined_anyway, cross_failures[-1])
        del keys
    # the columns the row-level expectations read, plus the row keys
    needed = sorted({c for e in per_chunk for c in columns_of(e["kwargs"])})
    if staged_path.exists():
        for batch in iter_tables([staged_path], chunk_rows):
            chunk = batch.select([*needed, "_batch_id", "_row_number"]).to_pandas()
            fails, summary = runner.validate_rows(chunk, per_chunk)
            if summary:
                ge_results.append(summary)
            failing = quarantined_anyway  # _union_rows returns a new dict: never mutated
            if len(fails):
                failures.append(_keyed(chunk, fails))
                failing = _union_rows(failing, failures[-1])
            # a quarantined source row takes all its staged rows (an unpivoted row has several)
            bad = _rows_in(batch, failing)
            good = batch.filter(pa.array(~bad)) if bad.any() else batch
            good_w.write_table(good)
            for c in null_counts:
                null_counts[c] += good.column(c).null_count
            staged_rows += batch.num_rows
            if progress:
                progress("validate", batch.num_rows)
    failures += cross_failures  # after the per-chunk ones: reasons keep the suite's order
    ge_fail = (
        pd.concat(failures, ignore_index=True)
        if failures
        else pd.DataFrame(columns=["_batch_id", "_row_number", "reason", "expectation", "columns"])
    )

    # A row whose value could not be normalized fails expectations on that column as a
    # consequence (it is null): report the cause, not the echo.
    if len(ge_fail) and len(value_errors):
        gf = ge_fail.reset_index(drop=True)
        per_column = gf.assign(
            _i=np.arange(len(gf)), column=gf["columns"].astype(str).str.split(",")
        ).explode("column")
        per_column["_row_number"] = per_column["_row_number"].astype("int64")
        per_column["_batch_id"] = per_column["_batch_id"].astype(str)
        errs = (
            value_errors[["_batch_id", "_row_number", "column"]]
            .astype({"_batch_id": str, "column": str})
            .drop_duplicates()
        )
        echoes = per_column[["_i", "_batch_id", "_row_number", "column"]].merge(
            errs, on=["_batch_id", "_row_number", "column"]
        )["_i"]
        ge_fail = gf[~np.isin(np.arange(len(gf)), echoes.to_numpy())]

    reasons = (
        pd.concat(
            [
                value_errors.assign(expectation="normalize:" + value_errors["column"].astype(str))[
                    ["_batch_id", "_row_number", "reason", "expectation", "detail"]
                ]
                if len(value_errors)
                else None,
                ge_fail.assign(detail=None)[["_batch_id", "_row_number", "reason", "expectation", "detail"]]
                if len(ge_fail)
                else None,
            ],
            ignore_index=True,
        )
        if (len(value_errors) or len(ge_fail))
        else pd.DataFrame(columns=["_batch_id", "_row_number", "reason", "expectation", "detail"])
    )

    quarantine = pd.DataFrame(columns=["_batch_id", "_row_number"])
    if len(reasons):
        quarantine = aggregate_reasons(reasons)
        keys = pd.MultiIndex.from_frame(quarantine[["_batch_id", "_row_number"]])
        raw_rows_path = wd / "normalized" / "raw_rows.arrow"
        known = pd.Series([], dtype="string")
        if raw_rows_path.exists():
            kept = read_arrow(raw_rows_path)
            kept["_batch_id"] = kept["_batch_id"].astype(str)
            known = kept.drop_duplicates(["_batch_id", "_row_number"]).set_index(
                ["_batch_id", "_row_number"]
            )["raw"]
        missing = quarantine[~keys.isin(list(known.index))]
        if len(missing):  # rows failing expectations only: look them up in the raw batch
            known = pd.concat([known, raw_lookup([p for _, p, _ in raws], missing)])
        quarantine["raw"] = known.reindex(keys).to_numpy()
        quarantine.insert(0, "_source", source.name)
        quarantine["_run_id"] = run_id
        quarantine["_logical_date"] = pd.Timestamp(logical_date).date()
        quarantine = quarantine[
            [
                "_source",
                "_batch_id",
                "_row_number",
                "_run_id",
                "_logical_date",
                "reasons",
                "failed_expectations",
                "details",
                "raw",
            ]
        ]

    good_path = good_w.close()
    q_path = None
    if len(quarantine):
        q_path = wd / "validated" / "quarantine.parquet"
        quarantine.to_parquet(q_path, index=False)

    # Every quarantined key is a delivered row (errors come from staged rows, which come
    # from raw rows), so the rest of what was extracted is loaded, including wide rows
    # that yielded no value at all.
    quarantined_rows = len(quarantine)
    loaded_source_rows = extracted - quarantined_rows

    with meta.connect(settings) as con:
        prev = previous_rows(con, table.name, source.name, logical_date)
    verdict = runner.validate_batch(null_counts, good_w.rows, source_rows=extracted, previous_rows=prev)
    summary = {
        "source": source.name,
        "stage": "validate",
        "staged_rows": staged_rows,
        "good_rows": good_w.rows,
        "extracted": extracted,
        "source_rows_loaded": loaded_source_rows,
        "source_rows_quarantined": quarantined_rows,
        "batch_ok": verdict.success,
        "batch_failures": verdict.failures,
        "good_path": str(good_path) if good_path else None,
        "quarantine_path": str(q_path) if q_path else None,
    }
    (wd / "validated").mkdir(parents=True, exist_ok=True)
    (wd / "validated" / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1))
    ge_path = settings.warehouse / "validation" / source.name / f"{logical_date}_{run_id}.json"
    ge_path.parent.mkdir(parents=True, exist_ok=True)
    ge_path.write_text(
        json.dumps({"rows": ge_results, "batch": verdict.results}, ensure_ascii=False, default=str)
    )
    with meta.connect(settings) as con:
        con.execute(
            "insert into meta.validation_result values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                source.name,
                table.name,
                logical_date,
                staged_rows,
                quarantined_rows,
                verdict.success,
                "; ".join(verdict.failures) or None,
                str(ge_path),
                meta.now(),
            ],
        )
    status = "ok" if verdict.success else "failed"
    message = (
        None
        if verdict.success
        else (f"batch of {source.name} for {logical_date} not published: " + "; ".join(verdict.failures))
    )
    write_ledger(
        settings,
        run_id=run_id,
        source=source.name,
        stage="validate",
        logical_date=logical_date,
        rows_in=staged_rows,
        rows_out=good_w.rows,
        rows_quarantined=quarantined_rows,
        started=started,
        status=status,
        message=message,
    )
    if not verdict.success:
        raise ValidationFailed(message or "validation failed")
    return summary
