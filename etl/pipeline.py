"""One source, one logical date: the stages of the data flow.

`run_stage(stage, source, logical_date, run_id)` is the single entry point that
both `govbase run` and the Airflow tasks call. Stages hand data to each other
through files under warehouse/_work/<source>/<date>/<run_id>/, never through
memory or XCom; each returns a small JSON-able summary and records itself in
meta.run_ledger.

  extract    landing -> raw Parquet (etl.extract)
  normalize  raw -> typed rows in the shared schema + per-value errors (etl.normalize)
  validate   row-level expectations -> good rows / quarantine; batch-level ones stop the publish
  load       write-audit-publish into staging.<table> and quarantine.<table>; reconcile
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc
import pyarrow.parquet as pq

from etl import meta
from etl.background import BackgroundWriter
from etl.config import Settings, get_settings
from etl.contracts import Contracts, SharedTable, Source, get_contracts
from etl.errors import GovbaseError
from etl.faults import checkpoint

log = logging.getLogger(__name__)

STAGES = ("extract", "normalize", "validate", "load")
VALIDATE_CHUNK_ROWS = 250_000
#: progress callback: (stage, rows done since the last call)
Progress = Callable[[str, int], None]


class ValidationFailed(GovbaseError):
    """Batch-level expectations failed: the batch is not published."""


class ReconciliationError(GovbaseError):
    """extracted != loaded + quarantined: rows would be lost or invented."""


class StageOrderError(GovbaseError):
    """A stage ran before the stage it depends on produced its output."""


# ------------------------------------------------------------------ helpers
def work_dir(settings: Settings, source: str, logical_date: str, run_id: str) -> Path:
    return settings.warehouse / "_work" / source / logical_date / run_id


def _check_date(logical_date: str) -> str:
    try:
        return date.fromisoformat(logical_date).isoformat()
    except ValueError:
        raise GovbaseError(f"logical date {logical_date!r} is not YYYY-MM-DD") from None


def _ledger(
    settings: Settings,
    *,
    run_id: str,
    source: str,
    stage: str,
    logical_date: str,
    rows_in: int,
    rows_out: int,
    rows_quarantined: int,
    started: Any,
    status: str,
    message: str | None = None,
) -> None:
    with meta.connect(settings) as con:
        con.execute(
            "insert into meta.run_ledger values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                source,
                stage,
                logical_date,
                rows_in,
                rows_out,
                rows_quarantined,
                started,
                meta.now(),
                status,
                message,
            ],
        )


def _iter_frames(paths: list[Path], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The rows of Parquet or Arrow IPC (.arrow) files as DataFrames of about chunk_rows."""
    for table in _iter_tables(paths, chunk_rows):
        yield table.to_pandas()


def _iter_tables(paths: list[Path], chunk_rows: int) -> Iterator[pa.Table]:
    """The rows of Parquet or Arrow IPC (.arrow) files as Arrow tables of about chunk_rows."""
    for p in paths:
        if p.suffix == ".arrow":
            # read, not memory-mapped: mapped pages would stay resident and RSS would
            # grow with the batch instead of staying at one chunk
            with pa.OSFile(str(p)) as source:
                reader = pa.ipc.open_file(source)
                pending: list[pa.RecordBatch] = []
                rows = 0
                for i in range(reader.num_record_batches):
                    rb = reader.get_batch(i)
                    pending.append(rb)
                    rows += rb.num_rows
                    if rows >= chunk_rows:
                        yield pa.Table.from_batches(pending)
                        pending, rows = [], 0
                if pending:
                    yield pa.Table.from_batches(pending)
            continue
        pf = pq.ParquetFile(p)
        for rb in pf.iter_batches(batch_size=chunk_rows):
            yield pa.Table.from_batches([rb])


class _Writer:
    """Appends DataFrames to one file, schema fixed by the first chunk.

    `.arrow` paths are written as Arrow IPC, uncompressed: the hand-over between
    stages inside the work directory, read back a batch at a time. `.parquet` paths are
    written as zstd Parquet (what lands in the warehouse). Encoding and writing run
    on a background thread (Arrow releases the GIL there) while the caller works on
    the next chunk; `close()` waits for it and re-raises its errors.
    """

    def __init__(self, path: Path, schema: pa.Schema | None = None) -> None:
        self.path, self.schema, self.rows = path, schema, 0
        self._w: pq.ParquetWriter | pa.ipc.RecordBatchFileWriter | None = None
        self._bg = BackgroundWriter("govbase-writer")

    def write(self, df: pd.DataFrame) -> None:
        if df.empty and self._w is not None:
            return
        self.write_table(pa.Table.from_pandas(df, preserve_index=False, schema=self.schema))

    def write_table(self, table: pa.Table) -> None:
        if table.num_rows == 0 and self._w is not None:
            return
        if self._w is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.schema = table.schema
            if self.path.suffix == ".arrow":
                self._w = pa.ipc.new_file(str(self.path), table.schema)
            else:
                self._w = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self._bg.submit(self._w.write_table, table)
        self.rows += table.num_rows

    def close(self) -> Path | None:
        if self._w is None:
            return None
        try:
            self._bg.close()
        finally:
            self._w.close()
        return self.path


def _arrow_rows(path: Path) -> int:
    """Rows of an Arrow IPC file, from its record batch headers (no data is read)."""
    with pa.memory_map(str(path)) as fh:
        reader = pa.ipc.open_file(fh)
        return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))


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


def _read_arrow(path: Path) -> pd.DataFrame:
    """A whole (small) Arrow IPC file of the work directory as a DataFrame."""
    with pa.OSFile(str(path)) as fh:
        return pa.ipc.open_file(fh).read_all().to_pandas()


# ------------------------------------------------------------------ stages
def stage_extract(
    settings: Settings,
    contracts: Contracts,
    source: Source,
    logical_date: str,
    run_id: str,
    full_refresh: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    from etl.extract import extract_source

    started = meta.now()
    results = extract_source(
        settings,
        source,
        run_id=run_id,
        logical_date=date.fromisoformat(logical_date),
        full_refresh=full_refresh,
        progress=progress,
    )
    extracted = [r for r in results if r.status == "extracted"]
    failed = [r for r in results if r.status == "failed"]
    rows = sum(r.rows for r in extracted)
    adopted = _adopt_unpublished(settings, source.name, run_id, logical_date)
    rows += sum(n for _, n in adopted)
    status = "failed" if failed else "ok"
    message = "; ".join(r.message or "" for r in failed) or None
    _ledger(
        settings,
        run_id=run_id,
        source=source.name,
        stage="extract",
        logical_date=logical_date,
        rows_in=rows,
        rows_out=rows,
        rows_quarantined=0,
        started=started,
        status=status,
        message=message,
    )
    summary = {
        "source": source.name,
        "stage": "extract",
        "files": len(results),
        "extracted": len(extracted),
        "carried_forward": len(adopted),
        "skipped": sum(r.status == "skipped" for r in results),
        "failed": len(failed),
        "rows": rows,
    }
    if failed:
        raise GovbaseError(f"extract failed for {len(failed)} file(s) of {source.name}: {message}")
    return summary


def _adopt_unpublished(
    settings: Settings, source: str, run_id: str, logical_date: str
) -> list[tuple[str, int]]:
    """Carry forward batches an earlier run of the same (source, logical date) extracted
    but never published (killed, or stopped by validation): the file is not extracted
    twice, so without this its rows would sit in raw forever. Only the same logical
    date: Airflow never runs one (DAG, date) twice at once, while runs of other dates
    (a backfill beside a scheduled run) may be in flight. Returns (batch_id, rows)."""
    with meta.connect(settings) as con:
        rows = con.execute(
            "update meta.extract_batch set run_id = ? where source = ? and status = 'extracted' "
            "and logical_date = ? and coalesce(run_id, '') <> ? and coalesce(run_id, '') not in ("
            "  select run_id from meta.run_ledger where source = ? and stage = 'load' and status = 'ok') "
            "returning batch_id, rows",
            [run_id, source, logical_date, run_id, source],
        ).fetchall()
    if rows:
        log.warning("%s: carrying forward %d unpublished batch(es) into run %s", source, len(rows), run_id)
    return [(b, int(n or 0)) for b, n in rows]


def _raw_paths(settings: Settings, source: str, run_id: str) -> list[tuple[str, Path, int]]:
    with meta.connect(settings) as con:
        rows = con.execute(
            "select batch_id, raw_path, rows from meta.extract_batch where source = ? and run_id = ? "
            "and status = 'extracted' order by started_at, batch_id",
            [source, run_id],
        ).fetchall()
    return [(b, Path(p), int(n or 0)) for b, p, n in rows if p]


def stage_normalize(
    settings: Settings,
    contracts: Contracts,
    source: Source,
    logical_date: str,
    run_id: str,
    progress: Progress | None = None,
) -> dict[str, Any]:
    from etl.normalize import normalize
    from etl.normalize.core import Memo

    started = meta.now()
    table = contracts.tables[source.table]
    wd = work_dir(settings, source.name, logical_date, run_id)
    shutil.rmtree(wd / "normalized", ignore_errors=True)
    raws = _raw_paths(settings, source.name, run_id)
    staged_w = _Writer(wd / "normalized" / "staged.arrow")
    errors_w = _Writer(wd / "normalized" / "errors.arrow")
    raw_rows_w = _Writer(wd / "normalized" / "raw_rows.arrow")
    rows_in = 0
    memos: dict[str, Memo] = {}  # repeated values are transformed once per batch
    for raw in _iter_frames([p for _, p, _ in raws], source.chunk_rows):
        result = normalize(raw, source, table, memos=memos)
        staged = result.staged
        staged["_run_id"] = run_id
        staged["_logical_date"] = pd.Timestamp(logical_date).date()
        staged_w.write(staged)
        if len(result.errors):
            errs = result.errors.copy()
            if "_batch_id" not in errs.columns:
                lookup = raw[["_row_number", "_batch_id"]].drop_duplicates("_row_number")
                errs = errs.merge(lookup, on="_row_number", how="left")
            errors_w.write(errs.astype({c: "string" for c in errs.columns if c not in ("_row_number",)}))
            # the delivered rows behind the errors, kept now while they are in memory: the
            # quarantine needs them, and finding them later means reading the whole raw batch
            bad_rows = raw[raw["_row_number"].isin(errs["_row_number"].astype("int64").unique())]
            raw_rows_w.write(
                pd.DataFrame(
                    {
                        "_batch_id": bad_rows["_batch_id"].astype("string").to_numpy(),
                        "_row_number": bad_rows["_row_number"].astype("int64").to_numpy(),
                        "raw": pd.array(_raw_json(bad_rows), dtype="string"),
                    }
                )
            )
        rows_in += len(raw)
        if progress:
            progress("normalize", len(raw))
    staged_w.close()
    errors_w.close()
    raw_rows_w.close()
    _ledger(
        settings,
        run_id=run_id,
        source=source.name,
        stage="normalize",
        logical_date=logical_date,
        rows_in=rows_in,
        rows_out=staged_w.rows,
        rows_quarantined=0,
        started=started,
        status="ok",
    )
    return {
        "source": source.name,
        "stage": "normalize",
        "rows_in": rows_in,
        "rows_out": staged_w.rows,
        "value_errors": errors_w.rows,
    }


def _aggregate_reasons(reasons: pd.DataFrame) -> pd.DataFrame:
    """One row per (_batch_id, _row_number): its distinct reasons and failed expectations
    in order of appearance (comma-separated) and its details ("; "-separated)."""
    import duckdb

    r = reasons.assign(
        _row_number=reasons["_row_number"].astype("int64"),
        _batch_id=reasons["_batch_id"].astype(str),
        _pos=np.arange(len(reasons)),
    )
    con = duckdb.connect()
    con.register("r", r)
    out = con.execute(
        """
        with first_reason as (
            select _batch_id, _row_number, reason, min(_pos) as p from r group by all),
        first_expectation as (
            select _batch_id, _row_number, expectation, min(_pos) as p from r group by all),
        a as (select _batch_id, _row_number, string_agg(reason, ',' order by p) as reasons
              from first_reason group by all),
        b as (select _batch_id, _row_number, string_agg(expectation, ',' order by p) as failed_expectations
              from first_expectation group by all),
        c as (select _batch_id, _row_number, coalesce(string_agg(detail, '; ' order by _pos), '') as details
              from r group by all)
        select a._batch_id, a._row_number, reasons, failed_expectations, details
        from a join b using (_batch_id, _row_number) join c using (_batch_id, _row_number)
        order by a._batch_id, a._row_number
        """
    ).df()
    con.close()
    return out


def _raw_lookup(raws: list[Path], keys: pd.DataFrame) -> pd.Series:
    """The raw values (as delivered) of the given (_batch_id, _row_number) rows, as JSON text."""
    if keys.empty:
        return pd.Series([], dtype="string")
    import duckdb

    con = duckdb.connect()
    con.register("keys", keys[["_batch_id", "_row_number"]].drop_duplicates())
    listing = ", ".join("'" + str(p).replace("'", "''") + "'" for p in raws)
    df = con.execute(
        f"select r.* from read_parquet([{listing}], union_by_name = true, hive_partitioning = false) r "
        "join keys k on r._batch_id = k._batch_id and r._row_number = k._row_number"
    ).df()
    con.close()
    df["raw"] = _raw_json(df)
    return df.set_index(["_batch_id", "_row_number"])["raw"]


def _raw_json(raw: pd.DataFrame) -> list[str]:
    """Each raw row as delivered, as JSON text: its delivered fields plus _row_error and
    _extra, nulls (not delivered) left out."""
    data_cols = [c for c in raw.columns if not c.startswith("_") or c in ("_row_error", "_extra")]
    return [
        json.dumps(
            {c: v for c, v in zip(data_cols, vals, strict=True) if v is not None and v == v},
            ensure_ascii=False,
        )
        for vals in raw[data_cols].itertuples(index=False, name=None)
    ]


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
    raws = _raw_paths(settings, source.name, run_id)
    extracted = sum(n for _, _, n in raws)
    if not raws:
        # Nothing new arrived in this run: nothing to validate, and the load keeps the
        # published partition as it is.
        _ledger(
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
        _read_arrow(errors_path)
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
    good_w = _Writer(wd / "validated" / "good.parquet")
    null_counts = dict.fromkeys(runner.batch_columns, 0)
    per_chunk = runner.row_expectations
    cross_failures: list[pd.DataFrame] = []
    if staged_path.exists() and runner.cross_row_expectations and _arrow_rows(staged_path) > chunk_rows:
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
        for batch in _iter_tables([staged_path], chunk_rows):
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
        quarantine = _aggregate_reasons(reasons)
        keys = pd.MultiIndex.from_frame(quarantine[["_batch_id", "_row_number"]])
        raw_rows_path = wd / "normalized" / "raw_rows.arrow"
        known = pd.Series([], dtype="string")
        if raw_rows_path.exists():
            kept = _read_arrow(raw_rows_path)
            kept["_batch_id"] = kept["_batch_id"].astype(str)
            known = kept.drop_duplicates(["_batch_id", "_row_number"]).set_index(
                ["_batch_id", "_row_number"]
            )["raw"]
        missing = quarantine[~keys.isin(list(known.index))]
        if len(missing):  # rows failing expectations only: look them up in the raw batch
            known = pd.concat([known, _raw_lookup([p for _, p, _ in raws], missing)])
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
    _ledger(
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
    raws = _raw_paths(settings, source.name, run_id)
    extracted = sum(n for _, _, n in raws)
    if not raws or not summary_path.exists():
        if not raws:
            # Nothing new arrived for this run (files already extracted): the published
            # partition stays as it is.
            _ledger(
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
        _ledger(
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
    _ledger(
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


_STAGE_FUNCS: dict[str, Callable[..., dict[str, Any]]] = {
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
    logical_date = _check_date(logical_date)
    kwargs: dict[str, Any] = {"progress": progress}
    if stage == "extract":
        kwargs["full_refresh"] = full_refresh
    started = meta.now()
    try:
        return _STAGE_FUNCS[stage](settings, contracts, src, logical_date, run_id, **kwargs)
    except (ValidationFailed, ReconciliationError):
        raise  # already in the ledger with its counts
    except Exception as exc:
        _ledger(
            settings,
            run_id=run_id,
            source=source,
            stage=stage,
            logical_date=logical_date,
            rows_in=0,
            rows_out=0,
            rows_quarantined=0,
            started=started,
            status="failed",
            message=str(exc)[:2000],
        )
        raise


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


def table_of(source: str, settings: Settings | None = None) -> SharedTable:
    return get_contracts(settings or get_settings()).table_of(source)


def run_publish(
    logical_date: str,
    run_id: str,
    sources: list[str] | None = None,
    *,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Refresh what depends on landed batches: rejection reports and Data Docs."""
    from etl.publish.docs import build_data_docs
    from etl.publish.reports import build_rejection_reports

    settings = settings or get_settings()
    contracts = get_contracts(settings)
    reports = build_rejection_reports(settings, contracts)
    index = build_data_docs(settings)
    return {
        "stage": "publish",
        "logical_date": _check_date(logical_date),
        "run_id": run_id,
        "reports": {r.department: r.rows for r in reports},
        "reports_dir": str(settings.reports_dir),
        "data_docs": str(index) if index else None,
    }
