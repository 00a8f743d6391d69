"""Extract: department deliveries -> raw Parquet, every value as text exactly as delivered.

Public API:
- `extract(settings, contracts, sources=None, *, full_refresh=False, run_id=None,
  logical_date=None, progress=None, raise_on_failure=False) -> list[BatchResult]`
- `extract_source(settings, source, ...)`: the same for one source;
- `raw_batches(settings, source, run_id=None, logical_date=None)`: what the
  next stage reads, from meta.extract_batch;
- `BatchResult`, `ExtractFailed`.

Output: one batch per landing file (or per SQL pull), written to
`<warehouse>/raw/<source>/load_date=<YYYY-MM-DD>/<batch_id>.parquet` (columns:
see etl.extract.common) and recorded in meta.extract_batch; problems are
recorded in meta.source_error.

Decisions:
- a file already extracted (same source and sha256) is skipped, unless
  `full_refresh`; an SQL source reads only rows it has not delivered yet: past its
  watermark (meta.watermark), or at it and not among the rows delivered there, unless
  `full_refresh`;
- one bad file fails that file only: the other files and sources still
  extract; the failed batch comes back with status failed, and the caller
  fails the run (the pipeline's extract stage and `govbase extract` both do,
  after recording their own summary); with raise_on_failure=True the call
  itself raises `ExtractFailed` (carrying every result) after all sources ran;
- a 0-byte file fails (kind empty): it carries no header, so it can't be told
  from a broken transfer; a file with a header (or an XML root) but no records
  is an empty batch (0 rows, status extracted) with an `empty` warning recorded:
  whether zero rows is acceptable is the validate stage's volume check to decide;
- an SQL pull that finds no new rows is `skipped`, no raw file, watermark kept;
- ragged rows are kept and flagged (`_row_error`, overflow in `_extra`), and
  recorded one by one in meta.source_error;
- the files of a source are the matches of its `location` glob under
  landing/<source>/, in name order; a match resolving outside that folder
  (a symlink, '..', an absolute path) is refused. With `file_date_pattern`,
  a run for logical date D takes only files delivered on or before D, so a
  backfill processes each dated drop in its own run.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa

from etl.config import Settings
from etl.contracts import Contracts, Source, get_contracts
from etl.errors import SourceError, WarehouseWriteError, where_in_file, write_error
from etl.extract.catalog import BatchResult, find_extracted, raw_batches, record_batch
from etl.extract.common import RawWriter, ReadContext
from etl.extract.encoding import DecodeFailure, MixedEncoding, UnsupportedEncoding, detect_encoding
from etl.extract.screen import screen
from etl.faults import checkpoint
from etl.meta import Watermark, connect, get_watermark, new_run_id, now, set_watermark

log = logging.getLogger(__name__)

#: progress callback: (stage, rows done since the last call), as the pipeline's stages call it
Progress = Callable[[str, int], None]
_Reader = Callable[[ReadContext, int], Iterator[pa.Table]]
#: the reader module of each file kind, imported on first use (SQLAlchemy, lxml and the
#: Excel reader cost import time a CSV source does not need to pay)
_FILE_READERS: dict[str, str] = {
    "csv": "etl.extract.csv",
    "excel": "etl.extract.excel",
    "json": "etl.extract.json",
    "xml": "etl.extract.xml",
    "fixed_width": "etl.extract.fixed_width",
}
#: readers that decode through etl.extract.encoding's strict block decoder, so that a bad
#: byte reaches `_write` as a DecodeFailure: for them an `auto` file that is not UTF-8 is
#: not decoded as GB18030 twice (once to detect, once to read); the read is the check
_STRICT_READS = frozenset({"csv", "json", "fixed_width"})


def _file_reader(kind: str) -> _Reader:
    reader: _Reader = importlib.import_module(_FILE_READERS[kind]).read
    return reader


class ExtractFailed(SourceError):
    """At least one batch failed; `results` holds every batch of the call."""

    def __init__(self, results: list[BatchResult]) -> None:
        self.results = results
        failed = [r for r in results if r.status == "failed"]
        names = sorted({r.source for r in failed})
        detail = "; ".join(f"{r.file or r.source}: {r.message}" for r in failed[:5])
        more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
        super().__init__(
            ", ".join(names), f"{len(failed)} batch(es) failed: {detail}{more}", kind="extract_failed"
        )


def extract(
    settings: Settings,
    contracts: Contracts,
    sources: Sequence[str] | None = None,
    *,
    full_refresh: bool = False,
    run_id: str | None = None,
    logical_date: date | None = None,
    progress: Progress | None = None,
    raise_on_failure: bool = False,
) -> list[BatchResult]:
    """Extract the named sources (all when None), in name order; see the module docstring.

    Raises ContractError for an unknown source name (before reading anything);
    with raise_on_failure, ExtractFailed after all sources ran when any batch failed.
    """
    names = sorted(contracts.sources) if sources is None else list(sources)
    srcs = [contracts.source(n) for n in names]
    run_id = run_id or new_run_id("extract")
    results: list[BatchResult] = []
    for src in srcs:
        results += extract_source(
            settings,
            src,
            full_refresh=full_refresh,
            run_id=run_id,
            logical_date=logical_date,
            progress=progress,
            raise_on_failure=False,
        )
    if raise_on_failure and any(r.status == "failed" for r in results):
        raise ExtractFailed(results)
    return results


def extract_source(
    settings: Settings,
    source: Source,
    *,
    full_refresh: bool = False,
    run_id: str | None = None,
    logical_date: date | None = None,
    progress: Progress | None = None,
    raise_on_failure: bool = False,
) -> list[BatchResult]:
    """Extract one source: every landing file not extracted yet, or one SQL pull."""
    run_id = run_id or new_run_id("extract")
    load_date = logical_date or datetime.now(UTC).date()
    job = _Job(settings, source, run_id, load_date, full_refresh, progress, logical_date)
    results = job.run_sql() if source.kind == "sql" else job.run_files()
    if raise_on_failure and any(r.status == "failed" for r in results):
        raise ExtractFailed(results)
    return results


def nothing_due(settings: Settings, source: Source, logical_date: date | None = None) -> str | None:
    """When a file source has no file to extract for `logical_date`, why, in operator
    words: no file matches its location, or the files that match are all dated (by
    `file_date_pattern`) after the logical date, with how many there are and their dates.
    None when some file is due (or for an SQL source)."""
    if source.kind == "sql":
        return None
    job = _Job(settings, source, "", logical_date or datetime.now(UTC).date(), False, None, logical_date)
    return None if job.landing_files() else job.nothing_found()


def new_batch_id(source: str) -> str:
    return f"{source}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class _Job:
    """One source's extraction within a run."""

    def __init__(
        self,
        settings: Settings,
        src: Source,
        run_id: str,
        load_date: date,
        full_refresh: bool,
        progress: Progress | None,
        logical_date: date | None = None,
    ) -> None:
        self.settings, self.src, self.run_id, self.load_date = settings, src, run_id, load_date
        self.logical_date = logical_date
        self.full_refresh, self.progress = full_refresh, progress
        self.raw_dir = settings.layer("raw") / src.name / f"load_date={load_date.isoformat()}"

    # ------------------------------------------------------------------ files
    def matching_files(self) -> list[tuple[str, Path]]:
        """(name relative to landing/<source>, path) of every file matching the location glob."""
        root = self.settings.source_landing(self.src.name)
        loc = self.src.location or ""
        if loc.startswith("/") or ".." in Path(loc).parts:
            raise SourceError(
                self.src.name, f"location {loc!r} leaves the landing folder", kind="unsafe_path"
            )
        if not root.is_dir():
            return []
        return [(p.relative_to(root).as_posix(), p) for p in sorted(root.glob(loc)) if not p.is_dir()]

    def landing_files(self) -> list[tuple[str, Path]]:
        """The matching files due by the run's logical date (see `file_date`)."""
        return [(n, p) for n, p in self.matching_files() if self._delivered_by_logical_date(p.name)]

    def file_date(self, name: str) -> str | None:
        """The delivery date (YYYYMMDD) `file_date_pattern` finds in a file name, if any."""
        if not self.src.file_date_pattern:
            return None
        m = re.search(self.src.file_date_pattern, name)
        return m.group(1) if m else None

    def _delivered_by_logical_date(self, name: str) -> bool:
        """A file dated (by `file_date_pattern`) after the run's logical date belongs to a
        later run; undated files, and runs without a logical date, take everything."""
        if not self.logical_date:
            return True
        dated = self.file_date(name)
        return dated is None or dated <= self.logical_date.strftime("%Y%m%d")

    def nothing_found(self) -> str:
        """Why no file is due: none matches the location, or those that match are all
        dated after the logical date (how many, their dates, the logical date)."""
        root = self.settings.source_landing(self.src.name)
        matching = self.matching_files()
        if not matching or self.logical_date is None:
            return f"source {self.src.name}: no file matches {self.src.location} under {root}"
        dates = sorted({d for n, p in matching if (d := self.file_date(p.name))})
        shown = ", ".join(f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in dates[:10]) + (
            ", ..." if len(dates) > 10 else ""
        )
        return (
            f"source {self.src.name}: {len(matching)} file(s) match {self.src.location} under {root}, "
            f"none due by the logical date {self.logical_date.isoformat()}: dated {shown}"
        )

    def run_files(self) -> list[BatchResult]:
        try:
            files = self.landing_files()
        except SourceError as exc:
            res = self._result(None, "failed", message=exc.problem)
            self._record(res, error=exc)
            log.error("%s", exc)
            return [res]
        if not files:
            log.warning("%s", self.nothing_found())
        return [self.extract_file(name, path) for name, path in files]

    def _result(self, file: str | None, status: str, **kw: object) -> BatchResult:
        return BatchResult(
            batch_id=new_batch_id(self.src.name),
            source=self.src.name,
            file=file,
            status=status,
            run_id=self.run_id,
            logical_date=self.load_date,
            **kw,  # type: ignore[arg-type]
        )

    def _record(
        self,
        res: BatchResult,
        ctx: ReadContext | None = None,
        error: SourceError | None = None,
        watermark: Watermark | None = None,
    ) -> None:
        res.finished_at = now()
        with connect(self.settings) as con:
            con.execute("begin")
            record_batch(
                con,
                res,
                warnings=ctx.warnings if ctx else (),
                flagged=ctx.flagged if ctx else (),
                error=error,
                lines=ctx.lines if ctx else None,
                warehouse=self.settings.warehouse,
            )
            if watermark is not None:
                set_watermark(con, self.src.name, watermark)
            con.execute("commit")

    def _safe_path(self, name: str, path: Path, ctx: ReadContext) -> None:
        root = self.settings.source_landing(self.src.name).resolve()
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ctx.error("file name leaves the landing folder; refused", kind="unsafe_path")
        target = path.resolve()
        if not target.is_relative_to(root):
            raise ctx.error(
                f"resolves outside landing/{self.src.name} (to {target}); refused", kind="unsafe_path"
            )

    def extract_file(self, name: str, path: Path) -> BatchResult:
        """Extract one landing file; never raises for a problem of the file itself."""
        res = self._result(name, "extracted")
        ctx = ReadContext(self.src, name, path, types=self._field_types())
        writer: RawWriter | None = None
        try:
            self._safe_path(name, path, ctx)
            try:
                res.file_bytes = path.stat().st_size
                res.sha256 = _sha256(path)
            except OSError as exc:
                raise ctx.error(f"unreadable: {exc.strerror or exc}", kind="unreadable") from None
            if res.file_bytes == 0:
                raise ctx.error("empty file (0 bytes)", kind="empty")
            if not self.full_refresh:
                with connect(self.settings) as con:
                    earlier = find_extracted(con, self.src.name, res.sha256)
                if earlier:
                    res.status, res.message = "skipped", f"already extracted as batch {earlier}"
                    self._record(res)
                    log.info("source %s, file %s: %s", self.src.name, name, res.message)
                    return res
            if self.src.kind != "excel":
                ctx.codec = self._codec(path, ctx)
                res.encoding = ctx.codec
            else:
                res.encoding = "xlsx"
            res.raw_path = self.raw_dir / f"{res.batch_id}.parquet"
            writer = RawWriter(res.raw_path, source=self.src.name, batch_id=res.batch_id, sha256=res.sha256)
            self._write(ctx, _file_reader(self.src.kind)(ctx, self.src.chunk_rows), writer)
            res.rows, res.flagged_rows = writer.rows, len({r for r, _, _ in ctx.flagged})
            res.delivered = ctx.delivered if ctx.delivered is not None else writer.rows
            res.message = self._message(ctx)
            self._record(res, ctx)
            checkpoint("extract:after_batch_row")
            log.info("source %s, file %s: %d rows -> %s", self.src.name, name, res.rows, res.raw_path)
        except WarehouseWriteError:
            if writer is not None:
                writer.abort()
            raise  # not the file's fault: no other file can be written either
        except SourceError as exc:
            self._fail(res, ctx, exc, writer)
        except (
            Exception
        ) as exc:  # a reader bug must not stop the other files; it is recorded and raised later
            if (err := write_error(exc)) is not None:  # e.g. the catalog on a full disk
                if writer is not None:
                    writer.abort()
                raise err from None  # as above: the home's problem, said plainly
            log.exception("source %s, file %s: unexpected error", self.src.name, name)
            self._fail(
                res, ctx, ctx.error(f"unexpected {type(exc).__name__}: {exc}", kind="internal"), writer
            )
        return res

    def _field_types(self) -> dict[str, str]:
        """Declared field -> the type of the shared column it maps to (fields with `to`)."""
        table = get_contracts(self.settings).tables.get(self.src.table)
        if table is None:
            return {}
        types = {c.name: c.type for c in table.columns}
        return {f.name: str(types[f.to]) for f in self.src.fields if f.to in types}

    def _codec(self, path: Path, ctx: ReadContext) -> str:
        try:
            detected = detect_encoding(path, self.src.encoding, verify=self.src.kind not in _STRICT_READS)
            ctx.detected = detected
            if detected.codec == "utf-8":
                with path.open("rb") as fh:
                    if fh.read(3) == b"\xef\xbb\xbf":  # declared utf-8 but saved with a BOM: not data
                        return "utf-8-sig"
            return detected.codec
        except DecodeFailure as exc:
            raise ctx.error(str(exc), kind="decode", line=exc.line) from None
        except UnsupportedEncoding as exc:
            raise ctx.error(str(exc), kind="decode") from None

    def _write(self, ctx: ReadContext, chunks: Iterator[pa.Table], writer: RawWriter) -> None:
        """Screen (etl.extract.screen) and write every chunk; check the rows against the
        records the reader counted from the file's lines (`ReadContext.delivered`)."""
        try:
            for table in chunks:
                screened = screen(ctx, table)
                try:
                    writer.write(screened)
                except OSError as exc:
                    raise WarehouseWriteError(exc) from None
                checkpoint("extract:after_raw_chunk")
                if self.progress:
                    self.progress("extract", table.num_rows)
        except DecodeFailure as exc:
            failure = ctx.detected.explain(exc) if ctx.detected else exc
            kind = "mixed_encoding" if isinstance(failure, MixedEncoding) else "decode"
            raise ctx.error(str(failure), kind=kind, line=failure.line) from None
        except PermissionError as exc:
            raise ctx.error(f"unreadable: {exc.strerror or exc}", kind="unreadable") from None
        if ctx.delivered is not None and ctx.delivered != writer.rows:
            raise ctx.error(
                f"the file delivers {ctx.delivered} record(s) by its lines, the reader gave "
                f"{writer.rows}: rows would be lost",
                kind="unreconciled",
            )
        try:
            writer.close(self.src.field_names)
        except OSError as exc:
            raise WarehouseWriteError(exc) from None
        checkpoint("extract:after_raw_file")

    def _message(self, ctx: ReadContext) -> str | None:
        parts = list(ctx.notes)
        if ctx.flagged:
            parts.append(f"{len(ctx.flagged)} row(s) flagged")
        parts += [w.problem for w in ctx.warnings]
        return "; ".join(parts) or None

    def _fail(self, res: BatchResult, ctx: ReadContext, exc: SourceError, writer: RawWriter | None) -> None:
        if writer is not None:
            writer.abort()
        at = where_in_file(exc.line, exc.row)
        res.status, res.message, res.raw_path = "failed", f"{at}: {exc.problem}" if at else exc.problem, None
        res.rows, res.flagged_rows = 0, 0
        self._record(res, error=exc)  # flagged rows of a failed file are not recorded: the file is redone
        log.error("%s", exc)

    # ------------------------------------------------------------------ sql
    def run_sql(self) -> list[BatchResult]:
        from etl.extract import sql as sql_reader

        src = self.src
        res = self._result(src.sql_table, "extracted")
        ctx = ReadContext(src, src.sql_table or src.name)
        writer: RawWriter | None = None
        try:
            url = sql_reader.connection_url(self.settings, src)
            res.encoding = url.get_backend_name()
            with connect(self.settings) as con:
                mark = get_watermark(con, src.name)
            if self.full_refresh or not mark or mark.key != src.incremental_key:
                mark = None
            wm = mark.value if mark else None
            res.watermark_from = wm
            engine = sql_reader.engine_for(url)
            try:
                res.raw_path = self.raw_dir / f"{res.batch_id}.parquet"
                writer = RawWriter(res.raw_path, source=src.name, batch_id=res.batch_id, sha256=None)
                pull = sql_reader.Pull()
                log.info(
                    "source %s: reading %s from %s after %s=%s",
                    src.name,
                    src.sql_table,
                    sql_reader.safe_url(url),
                    src.incremental_key,
                    wm,
                )
                rows = sql_reader.read(
                    ctx, engine, url, wm, src.chunk_rows, pull, mark.boundary if mark else None
                )
                self._write(ctx, rows, writer)
            finally:
                engine.dispose()
            res.rows = res.delivered = writer.rows
            res.watermark_to = pull.high if pull.high is not None else wm
            if pull.skipped:
                ctx.notes.append(
                    f"{pull.skipped} row(s) at {src.incremental_key} = {wm} already delivered by an earlier pull"
                )
            if res.rows == 0:
                Path(res.raw_path).unlink(missing_ok=True)
                res.status, res.raw_path = "skipped", None
                res.message = f"no new rows from {src.incremental_key} = {wm} on" if wm else "table is empty"
                self._record(res, ctx)
            else:
                res.message = self._message(ctx)
                new_mark = (
                    Watermark(src.incremental_key, res.watermark_to, frozenset(pull.boundary))
                    if src.incremental_key
                    else None
                )
                self._record(res, ctx, watermark=new_mark)
                checkpoint("extract:after_batch_row")
            log.info("source %s: %d rows (%s)", src.name, res.rows, res.status)
        except SourceError as exc:
            self._fail(res, ctx, exc, writer)
        except Exception as exc:
            if (err := write_error(exc)) is not None:  # the home's problem: stops the stage
                if writer is not None:
                    writer.abort()
                raise err from None
            log.exception("source %s: unexpected error", src.name)
            self._fail(
                res, ctx, ctx.error(f"unexpected {type(exc).__name__}: {exc}", kind="internal"), writer
            )
        return [res]


__all__ = [
    "BatchResult",
    "ExtractFailed",
    "Progress",
    "WarehouseWriteError",
    "extract",
    "extract_source",
    "new_batch_id",
    "nothing_due",
    "raw_batches",
]
