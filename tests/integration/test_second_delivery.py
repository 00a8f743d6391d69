"""A second delivery for a date whose partition is already published adds to it; a corrected
file under the same name supersedes its first version (etl.extract.stage._keep_published).

This is what a delivery that starts its own ingest (etl.orchestration.watchers) relies on: the
run it starts may have the date of a partition an earlier run (the schedule's, or an earlier
delivery's) published. Counts against the demo generator's ground truth."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from etl.config import Settings, get_settings
from etl.demo import generate
from etl.pipeline import run_source

pytestmark = pytest.mark.integration

SOURCE, TABLE, DATE = "tax_registration", "legal_entity", "2026-12-02"


def _partition(settings: Settings) -> tuple[int, str]:
    """(source rows loaded + quarantined, publishing run) of the date's partition, as a
    reader sees it in the published catalog."""
    con = duckdb.connect(str(settings.catalog_path), read_only=True)
    try:
        ((delivered, run_id),) = con.execute(
            "select source_rows + rows_quarantined, run_id from meta.partition "
            "where source = ? and cast(logical_date as varchar) = ?",
            [SOURCE, DATE],
        ).fetchall()
    finally:
        con.close()
    return int(delivered), str(run_id)


def _delivery(root: Path, seed: int, drop: str) -> tuple[Path, int]:
    """One more tax_registration file (another population) and the records it delivers."""
    other = get_settings(root)
    generate(other, persons=300, seed=seed, drop_date=drop)
    return other.source_landing(SOURCE) / f"taxpayers_{drop}.csv", pq.read_metadata(
        other.truth_dir / f"{SOURCE}.parquet"
    ).num_rows


def test_second_delivery_adds_and_a_correction_replaces(tmp_path: Path) -> None:
    settings = get_settings(tmp_path / "home")
    generate(settings, persons=300, seed=5)  # taxpayers_20261101.csv
    first = pq.read_metadata(settings.truth_dir / f"{SOURCE}.parquet").num_rows
    run_source(SOURCE, DATE, "run-a", settings=settings)
    assert _partition(settings) == (first, "run-a")

    path, second = _delivery(tmp_path / "other", seed=6, drop="20261202")
    landed = settings.source_landing(SOURCE) / path.name
    shutil.copyfile(path, landed)
    summary = run_source(SOURCE, DATE, "run-b", settings=settings)
    assert summary["published"] is True
    assert _partition(settings) == (first + second, "run-b")  # added, the first delivery kept

    # the department corrects the second file: fewer records under the same name
    lines = landed.read_text(encoding="utf-8").splitlines(keepends=True)
    landed.write_text("".join(lines[:-10]), encoding="utf-8")
    run_source(SOURCE, DATE, "run-c", settings=settings)
    delivered, run_id = _partition(settings)
    assert run_id == "run-c"
    assert delivered == first + second - 10  # the corrected version instead of the first one

    # nothing new: the partition stays as it is
    run_source(SOURCE, DATE, "run-d", settings=settings)
    assert _partition(settings) == (delivered, "run-c")
