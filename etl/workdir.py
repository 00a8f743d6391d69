"""The hand-over between stages: files under warehouse/_work/<source>/<date>/<run_id>/.

Stages hand data to each other through these files, never through memory or XCom:
Arrow IPC inside the work directory, zstd Parquet for what lands in the warehouse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq

from etl import meta
from etl.background import BackgroundWriter
from etl.config import Settings
from etl.errors import GovbaseError

#: progress callback: (stage, rows done since the last call)
Progress = Callable[[str, int], None]


def work_dir(settings: Settings, source: str, logical_date: str, run_id: str) -> Path:
    return settings.warehouse / "_work" / source / logical_date / run_id


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
    with meta.connect(settings) as con:
        rows = con.execute(
            "select batch_id, raw_path, rows from meta.extract_batch where source = ? and run_id = ? "
            "and status = 'extracted' order by started_at, batch_id",
            [source, run_id],
        ).fetchall()
    return [(b, Path(p), int(n or 0)) for b, p, n in rows if p]
