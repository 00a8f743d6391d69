"""etl.debris: what a killed writer left is swept by the next writer, what is recorded stays.

Cheap: a fresh warehouse catalog (real DuckDB file) with a few meta rows, and files planted
where a SIGKILL leaves them (docs/reliability.md lists the checkpoints that leave each). The
fault suite (tests/integration/test_faults.py, slow) checks the same end to end: after every
killed run's rerun the home's files are a clean home's.
"""

from __future__ import annotations

import errno
import logging
import subprocess
from pathlib import Path

import pytest

from etl import debris, meta
from etl.config import Settings
from etl.errors import WarehouseWriteError
from etl.published import publish_catalog, publishing
from etl.resolve import store

pytestmark = pytest.mark.integration

RUN, OLD = "run-20261101T010000-aaaaaa", "run-20261031T010000-bbbbbb"


def _touch(p: Path, data: bytes = b"x") -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_extract_sweeps_unrecorded_raw_files_and_other_runs_work_folders_only(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    raw = settings.layer("raw") / "ps_hukou" / "load_date=2026-11-01"
    kept = _touch(raw / "ps_hukou-20261101T010000-11111111.parquet")
    half = _touch(raw / "ps_hukou-20261101T020000-22222222.parquet.tmp.0")  # a kill while writing
    whole = _touch(raw / "ps_hukou-20261101T020000-33333333.parquet")  # a kill before its meta row
    other_source = _touch(settings.layer("raw") / "nhc_health" / "load_date=2026-11-01" / "x.parquet")
    work = settings.warehouse / "_work" / "ps_hukou" / "2026-11-01"
    mine = _touch(work / RUN / "normalized" / "staged.arrow")
    dead = _touch(work / OLD / "normalized" / "staged.arrow")
    other_date = _touch(settings.warehouse / "_work" / "ps_hukou" / "2026-10-31" / OLD / "a")
    with meta.connect(settings) as con:
        con.execute(
            "insert into meta.extract_batch (batch_id, source, raw_path, status) values (?, ?, ?, ?)",
            ["b1", "ps_hukou", meta.stored_path(settings, kept), "extracted"],
        )
    with caplog.at_level(logging.WARNING, logger="etl.debris"):
        removed = debris.sweep_extract(settings, "ps_hukou", "2026-11-01", RUN)
    assert set(removed) == {half, whole, work / OLD}
    assert kept.exists() and other_source.exists() and mine.exists() and other_date.exists()
    assert not dead.exists()
    said = caplog.text
    assert "swept 2 unrecorded raw file(s) a killed run left" in said
    assert "warehouse/raw/ps_hukou/load_date=2026-11-01/ps_hukou-20261101T020000-33333333.parquet" in said
    assert "swept 1 work folder(s) of earlier runs of ps_hukou on 2026-11-01 a killed run left: " in said
    assert debris.sweep_extract(settings, "ps_hukou", "2026-11-01", RUN) == []  # nothing twice


def test_consolidate_sweeps_core_files_and_models_no_meta_row_names(settings: Settings) -> None:
    core = settings.layer("core")
    named = _touch(core / "person" / f"run=consolidate-{RUN[4:]}.parquet")
    unpublished = _touch(core / "person" / "run=consolidate-20261102T010000-cccccc.parquet")
    superseded = _touch(core / "person_pair" / "run=consolidate-20261030T010000-dddddd.parquet")
    model = _touch(core / "_models" / "person" / "run=consolidate-x" / "model.json")
    stray_model = _touch(core / "_models" / "person" / "run=consolidate-y" / "model.json")
    with meta.connect(settings) as con:
        store.ensure(con)
        con.execute(
            "insert into meta.core_table values (?, ?, ?, ?, now())",
            ["person", meta.stored_path(settings, named), "consolidate-x", 1],
        )
        con.execute(
            "insert into meta.resolve_run (run_id, entity, model_path) values (?, ?, ?)",
            ["consolidate-x", "person", meta.stored_path(settings, model)],
        )
        removed = debris.sweep_core(con, settings)
    assert set(removed) == {unpublished, superseded, stray_model.parent}
    assert named.exists() and model.exists()


def test_publish_sweeps_temporary_files_and_the_catalog_snapshots_of_dead_writers(settings: Settings) -> None:
    share = settings.layer("share") / "health"
    tmps = [
        _touch(share / "share.duckdb.tmp"),
        _touch(share / "staging_person.parquet.tmp"),
        _touch(settings.layer("open") / "ds" / ".ds.csv.tmp"),
        _touch(settings.reports_dir / "standard" / "dictionary.html.tmp"),
    ]
    kept = [_touch(share / "share.duckdb"), _touch(settings.layer("open") / "ds" / "ds.csv")]
    assert set(debris.sweep_temporary(settings)) == set(tmps)
    assert all(p.exists() for p in kept)
    catalog = settings.catalog_path
    dead = [
        _touch(catalog.with_name(f".{catalog.name}.999999.tmp")),
        _touch(catalog.with_name(f".{catalog.name}.1.tmp.wal")),
    ]
    publish_catalog(settings, RUN)  # sweeps them before writing its own snapshot
    assert not any(p.exists() for p in dead)
    assert catalog.exists() and sorted(p.name for p in catalog.parent.iterdir()) == [catalog.name]


def test_a_catalog_that_cannot_be_refreshed_after_a_write_failure_says_so_in_one_line(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk fails the stage, then the catalog refresh after it: one error line, no
    traceback (the fault suite's full-disk case found one)."""
    folder = settings.catalog_path.parent
    folder.mkdir(parents=True)
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        pytest.skip("chattr +i is not permitted here: cannot make the catalog folder unwritable")
    failure = WarehouseWriteError(OSError(errno.ENOSPC, "No space left on device", "/h/x"))
    try:
        with (
            caplog.at_level(logging.ERROR),
            pytest.raises(WarehouseWriteError) as raised,
            publishing(settings, RUN),
        ):
            raise failure
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    assert raised.value is failure  # the stage's own error stands
    [record] = [r for r in caplog.records if "published catalog" in r.getMessage()]
    assert record.exc_info is None and "Operation not permitted" in record.getMessage()


def test_the_sweeps_know_the_names_a_run_id_used_again_writes(settings: Settings) -> None:
    """`run=<id>.<n>` files and model folders (a retry or a cleared task, etl.load.warehouse,
    etl.resolve.store, etl.resolve.model): the one recorded stays, the others go."""
    from etl.load.warehouse import sweep

    part = settings.layer("staging") / "person" / "source=ps_hukou" / "load_date=2026-11-01"
    superseded, current, killed = (_touch(part / f"run={RUN}{n}.parquet") for n in ("", ".2", ".3"))
    models = settings.layer("core") / "_models" / "person"
    first, again, stray = (_touch(models / f"run=consolidate-x{n}" / "model.json") for n in ("", ".2", ".3"))
    with meta.connect(settings) as con:
        store.ensure(con)
        con.execute(
            "insert into meta.partition (table_name, source, logical_date, run_id, staging_path, "
            "rows_loaded, source_rows, rows_quarantined, published_at) values (?, ?, ?, ?, ?, 1, 1, 0, now())",
            ["person", "ps_hukou", "2026-11-01", RUN, meta.stored_path(settings, current)],
        )
        for path in (first, again):
            con.execute(
                "insert into meta.resolve_run (run_id, entity, model_path) values (?, ?, ?)",
                ["consolidate-x", "person", meta.stored_path(settings, path)],
            )
        assert sweep(settings, con, "person", "ps_hukou") == 2
        assert set(debris.sweep_core(con, settings)) == {stray.parent}
    assert current.exists() and not superseded.exists() and not killed.exists()
    assert first.exists() and again.exists()
