"""The hand-over between stages: files under warehouse/_work/<source>/<date>/<run_id>/.

Stages hand data to each other through these files, never through memory or XCom:
Arrow IPC inside the work directory, zstd Parquet for what lands in the warehouse.
`WorkDir` names every file (stages and tests use it, nobody spells a path twice);
`ValidatedBatch` is what validate tells load; `StageRun` is what a stage runs on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq

from etl.background import BackgroundWriter
from etl.config import Settings
from etl.contracts import Contracts, SharedTable, Source
from etl.errors import GovbaseError
from etl.ledger import LedgerEntry

#: progress callback: (stage, rows done since the last call)
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class WorkDir:
    """The work directory of one (source, logical date, run) and every file in it.

    normalize writes `staged`, `errors` and `raw_rows` (under `normalized/`); validate
    reads them and writes `good`, `quarantine` and `summary` (under `validated/`); load
    copies the first two into the warehouse and removes the whole directory.
    """

    root: Path

    @classmethod
    def of(cls, settings: Settings, source: str, logical_date: str, run_id: str) -> WorkDir:
        return cls(settings.warehouse / "_work" / source / logical_date / run_id)

    @property
    def normalized(self) -> Path:
        return self.root / "normalized"

    @property
    def staged(self) -> Path:
        """Typed rows in the shared schema (Arrow IPC)."""
        return self.normalized / "staged.arrow"

    @property
    def errors(self) -> Path:
        """One row per value that could not be normalized (Arrow IPC, etl.normalize.ERROR_COLUMNS)."""
        return self.normalized / "errors.arrow"

    @property
    def raw_rows(self) -> Path:
        """The delivered rows behind those errors, as raw JSON (Arrow IPC)."""
        return self.normalized / "raw_rows.arrow"

    @property
    def validated(self) -> Path:
        return self.root / "validated"

    @property
    def good(self) -> Path:
        """Rows that passed validation (zstd Parquet), copied to staging by load."""
        return self.validated / "good.parquet"

    @property
    def quarantine(self) -> Path:
        """Quarantined source rows with reasons and raw values (Parquet), copied by load."""
        return self.validated / "quarantine.parquet"

    @property
    def summary(self) -> Path:
        """The `ValidatedBatch` of the run, as JSON."""
        return self.validated / "summary.json"


@dataclass
class ValidatedBatch:
    """What validate hands to load: counts, the verdict and the files to publish.

    source_rows_loaded + source_rows_quarantined must equal extracted (load checks);
    good_rows counts staged rows (an unpivoted source row yields several).
    """

    source: str
    staged_rows: int
    good_rows: int
    extracted: int
    source_rows_loaded: int
    source_rows_quarantined: int
    batch_ok: bool
    batch_failures: list[str] = field(default_factory=list)
    good_path: Path | None = None
    quarantine_path: Path | None = None

    def to_json(self) -> str:
        data = asdict(self)
        for k in ("good_path", "quarantine_path"):
            data[k] = None if data[k] is None else str(data[k])
        return json.dumps(data, ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> ValidatedBatch:
        data = json.loads(text)
        for k in ("good_path", "quarantine_path"):
            data[k] = None if data.get(k) is None else Path(data[k])
        return cls(**data)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())

    @classmethod
    def read(cls, path: Path) -> ValidatedBatch:
        return cls.from_json(path.read_text())

    def as_summary(self) -> dict[str, Any]:
        """The validate stage's JSON-able summary (what run_stage returns, Airflow's XCom)."""
        data = json.loads(self.to_json())
        source = data.pop("source")
        return {"source": source, "stage": "validate", **data}


@dataclass
class StageRun:
    """What a stage runs on: one source, one logical date (YYYY-MM-DD), one run id,
    and the ledger entry the stage fills in (etl.ledger)."""

    settings: Settings
    contracts: Contracts
    source: Source
    logical_date: str
    run_id: str
    ledger: LedgerEntry
    progress: Progress | None = None
    full_refresh: bool = False

    @cached_property
    def work(self) -> WorkDir:
        return WorkDir.of(self.settings, self.source.name, self.logical_date, self.run_id)

    @property
    def table(self) -> SharedTable:
        return self.contracts.tables[self.source.table]

    def raw_batches(self) -> list[tuple[str, Path, int]]:
        """(batch_id, raw Parquet path, rows) of what extract handed over to this run."""
        return raw_paths(self.settings, self.source.name, self.run_id)

    def tick(self, stage: str, rows: int) -> None:
        if self.progress:
            self.progress(stage, rows)


def check_date(logical_date: str) -> str:
    try:
        return date.fromisoformat(logical_date).isoformat()
    except ValueError:
        raise GovbaseError(f"logical date {logical_date!r} is not YYYY-MM-DD") from None


def iter_frames(paths: list[Path], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The rows of Parquet or Arrow IPC (.arrow) files as DataFrames of about chunk_rows."""
    for table in iter_tables(paths, chunk_rows):
        yield table.to_pandas()


def iter_tables(paths: list[Path], chunk_rows: int) -> Iterator[pa.Table]:
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


class Writer:
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


def arrow_rows(path: Path) -> int:
    """Rows of an Arrow IPC file, from its record batch headers (no data is read)."""
    with pa.memory_map(str(path)) as fh:
        reader = pa.ipc.open_file(fh)
        return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))


def read_arrow(path: Path) -> pd.DataFrame:
    """A whole (small) Arrow IPC file of the work directory as a DataFrame."""
    with pa.OSFile(str(path)) as fh:
        return pa.ipc.open_file(fh).read_all().to_pandas()


def raw_paths(settings: Settings, source: str, run_id: str) -> list[tuple[str, Path, int]]:
    """(batch_id, raw Parquet path, rows) of the batches extracted for (or carried into) a run;
    rows are the records the file delivers, counted from its lines (meta.extract_batch.delivered,
    equal to the rows written, or the extract would have failed the file)."""
    from etl.extract.catalog import raw_batches

    return [
        (b.batch_id, b.raw_path, int(b.delivered if b.delivered is not None else b.rows or 0))
        for b in raw_batches(settings, source, run_id)
        if b.raw_path is not None
    ]
