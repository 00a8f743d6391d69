"""The one writer of a home and its readers, with real processes on real files: two
concurrent `govbase run` equal one run; a reader beside the loader neither blocks it
nor sees a partial batch; a copied or moved home works and leaves the original alone;
dates are DATE in every layer."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from etl import meta
from etl.config import Settings, get_settings
from etl.demo import generate

pytestmark = pytest.mark.integration

DATE = "2026-11-01"
GOVBASE = str(Path(sys.executable).with_name("govbase"))


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated delivery, copied into each test's home."""
    settings = get_settings(tmp_path_factory.mktemp("writer") / "seed")
    generate(settings, persons=300, seed=23)
    return settings.landing


def _home(tmp_path: Path, landing: Path, name: str = "home") -> Settings:
    settings = get_settings(tmp_path / name)
    shutil.copytree(landing, settings.landing)
    return settings


def _run(
    settings: Settings, *args: str, env: dict[str, str] | None = None, day: str = DATE
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [GOVBASE, "run", "--date", day, *args],
        env={**os.environ, "GOVBASE_HOME": str(settings.home), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _consolidate(settings: Settings) -> None:
    done = subprocess.run(
        [GOVBASE, "consolidate"],
        env={**os.environ, "GOVBASE_HOME": str(settings.home)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _finish(proc: subprocess.Popen[str], timeout: float = 600) -> tuple[int, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def _reader(settings: Settings) -> duckdb.DuckDBPyConnection:
    """What an analyst opens: the published catalog."""
    return duckdb.connect(str(settings.catalog_path), read_only=True)


def _writer_file(settings: Settings) -> duckdb.DuckDBPyConnection:
    """The writer's own file (for what only it holds: the stored paths as written)."""
    return duckdb.connect(str(settings.duckdb_path), read_only=True)


def _content(settings: Settings) -> dict[str, list[tuple[object, ...]]]:
    """Every staged and quarantined row (without the run's and batch's ids), sorted,
    and the extracted batches per source: what a run leaves behind."""
    found: dict[str, list[tuple[object, ...]]] = {}
    with _reader(settings) as con:
        views = con.execute(
            "select schema_name, table_name from duckdb_tables() "  # published as tables
            "where schema_name in ('staging', 'quarantine') order by all"
        ).fetchall()
        for schema, view in views:
            rows = con.execute(
                f"select * exclude (_run_id, _batch_id) from {schema}.{view} order by all"
            ).fetchall()
            found[f"{schema}.{view}"] = rows
        found["extracted"] = con.execute(
            "select source, file, file_sha256, rows from meta.extract_batch where status = 'extracted' order by all"
        ).fetchall()
        found["partitions"] = con.execute(
            "select table_name, source, logical_date, rows_loaded, source_rows, rows_quarantined "
            "from meta.partition order by all"
        ).fetchall()
    return found


def test_two_concurrent_runs_on_one_home_equal_one_run(tmp_path: Path, landing: Path) -> None:
    one = _home(tmp_path, landing, "one")
    rc, log = _finish(_run(one))
    assert rc == 0, log
    expected = _content(one)
    assert expected["staging.person"], "the reference run staged nothing"

    both = _home(tmp_path, landing, "both")
    first, second = _run(both), _run(both)
    (rc1, log1), (rc2, log2) = _finish(first), _finish(second)
    assert (rc1, rc2) == (0, 0), log1 + log2
    assert _content(both) == expected
    # one of them waited, and said for whom
    waited = [" ".join(log.split()) for log in (log1, log2)]
    waited = [log for log in waited if "waiting for the writer lock" in log]
    assert len(waited) == 1, (log1, log2)
    assert f"pid {first.pid}" in waited[0] or f"pid {second.pid}" in waited[0]
    with _reader(both) as con:
        runs = con.execute("select distinct run_id from meta.run_ledger").fetchall()
        unbalanced = con.execute(
            "select run_id, source, extracted, loaded, quarantined, status from meta.reconciliation "
            "where not balanced or status <> 'ok'"
        ).fetchall()
    assert len(runs) == 2 and not unbalanced


def test_a_run_gives_up_clearly_when_the_home_stays_busy(tmp_path: Path, landing: Path) -> None:
    settings = _home(tmp_path, landing)
    hold = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom etl.config import get_settings\nfrom etl.lock import writer_lock\n"
            "with writer_lock(get_settings(sys.argv[1]), 'airflow-task'):\n"
            "    print('held', flush=True); time.sleep(60)\n",
            str(settings.home),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert hold.stdout is not None and hold.stdout.readline().strip() == "held"
        rc, log = _finish(_run(settings, env={"GOVBASE_LOCK_TIMEOUT": "1"}), timeout=120)
    finally:
        hold.kill()
        hold.wait()
    assert rc == 1
    flat = " ".join(log.split())
    assert f"pid {hold.pid}" in flat and "run airflow-task" in flat and "gave up after 1 s" in flat
    assert not settings.duckdb_path.exists()  # nothing was written while it waited


# ---------------------------------------------------------------- relocation
def _fingerprints(root: Path) -> dict[str, str]:
    """Every file under `root` (relative name -> sha256 of its bytes)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _stored_paths(settings: Settings) -> list[str]:
    sql = (
        "select staging_path from meta.partition union all select quarantine_path from meta.partition "
        "union all select raw_path from meta.extract_batch union all "
        "select ge_result_path from meta.validation_result"
    )
    with _writer_file(settings) as con:
        consolidated = con.execute(
            "select count(*) from duckdb_tables() where schema_name = 'meta' and table_name = 'core_table'"
        ).fetchall()[0][0]
        if consolidated:
            sql += " union all select path from meta.core_table union all select model_path from meta.resolve_run"
        return [p for (p,) in con.execute(sql).fetchall() if p is not None]


def test_a_copied_home_runs_a_new_delivery_and_leaves_the_original_byte_identical(
    tmp_path: Path, landing: Path
) -> None:
    original = _home(tmp_path, landing, "original")
    rc, log = _finish(_run(original))
    assert rc == 0, log
    _consolidate(original)
    stored = _stored_paths(original)
    assert stored and not any(Path(p).is_absolute() for p in stored), stored[:3]
    before = _fingerprints(original.home)

    copy = get_settings(tmp_path / "copy")
    shutil.copytree(original.home, copy.home)
    # a new delivery of the same files for the same date: its batches replace the partitions
    generate(copy, persons=300, seed=24)
    rc, log = _finish(_run(copy))
    assert rc == 0, log
    _consolidate(copy)  # replaces the core files: the copy's, never the original's
    assert _fingerprints(original.home) == before  # not a byte of the original changed
    with meta.connect(copy, read_only=True) as con:  # the writer's views over the copy's files
        assert con.execute("select count(*) from core.person").fetchall()[0][0] > 0
    with _reader(copy) as con:
        runs = con.execute("select count(distinct run_id) from meta.run_ledger").fetchall()[0][0]
        new_batches = con.execute(
            "select count(*) from meta.extract_batch where status = 'extracted' and run_id in "
            "(select run_id from meta.run_ledger order by started_at desc limit 1)"
        ).fetchall()[0][0]
        staged = con.execute("select count(*) from staging.person").fetchall()[0][0]
        masters = con.execute("select count(*) from core.person").fetchall()[0][0]
        partitions = con.execute(
            "select staging_path from meta.partition where staging_path is not null "
            "union all select path from meta.core_table"
        ).fetchall()
    assert runs == 2 and new_batches > 0 and staged > 0 and masters > 0
    for (p,) in partitions:  # the copy's views name the copy's files
        assert (copy.warehouse / p).is_file(), p


def test_a_moved_home_opens_its_views_and_runs_again(tmp_path: Path, landing: Path) -> None:
    first = _home(tmp_path, landing, "first")
    rc, log = _finish(_run(first))
    assert rc == 0, log
    _consolidate(first)
    with _reader(first) as con:
        expected = con.execute("select count(*), sum(hash(record_key)) from staging.person").fetchall()
        core = con.execute("select count(*), sum(hash(person_id)) from core.person").fetchall()
    moved = get_settings(tmp_path / "elsewhere" / "moved")
    moved.home.parent.mkdir()
    first.home.rename(moved.home)
    with _reader(moved) as con:
        assert (
            con.execute("select count(*), sum(hash(record_key)) from staging.person").fetchall() == expected
        )
        assert con.execute("select count(*), sum(hash(person_id)) from core.person").fetchall() == core
    with meta.connect(moved, read_only=True) as con:  # the writer's own views resolve here too
        assert (
            con.execute("select count(*), sum(hash(record_key)) from staging.person").fetchall() == expected
        )
        assert con.execute("select count(*), sum(hash(person_id)) from core.person").fetchall() == core
    generate(moved, persons=300, seed=25, drop_date="20261102")
    # the file sources of the next day (the SQL table's few new rows fall outside its volume band)
    rc, log = _finish(_run(moved, "-s", "ps_hukou", "-s", "nhc_health", day="2026-11-02"))
    assert rc == 0, log
    assert not first.home.exists()  # nothing was written back at the old place
    with _reader(moved) as con:
        assert con.execute("select count(*) from staging.person").fetchall()[0][0] > expected[0][0]


def test_absolute_paths_of_an_older_version_are_made_relative_on_first_open(
    tmp_path: Path, landing: Path
) -> None:
    settings = _home(tmp_path, landing)
    rc, log = _finish(_run(settings, "-s", "ps_hukou"))
    assert rc == 0, log
    with _reader(settings) as con:
        expected = con.execute("select count(*), sum(hash(record_key)) from staging.person").fetchall()
    # what an older version left: absolute paths (to this home) in meta and in the views ...
    old_root = f"{settings.warehouse}/"
    with duckdb.connect(str(settings.duckdb_path)) as con:
        for table, column in (
            ("meta.partition", "staging_path"),
            ("meta.partition", "quarantine_path"),
            ("meta.extract_batch", "raw_path"),
            ("meta.validation_result", "ge_result_path"),
        ):
            con.execute(f"update {table} set {column} = '{old_root}' || {column} where {column} is not null")
        files = [f for (f,) in con.execute("select staging_path from meta.partition").fetchall()]
        listing = ", ".join(f"'{f}'" for f in files)
        con.execute(f"create or replace view staging.person as select * from read_parquet([{listing}])")
    # ... and then the home was moved
    moved = get_settings(tmp_path / "moved")
    settings.home.rename(moved.home)
    settings = moved
    probe = (
        "import sys\nfrom etl import meta\nfrom etl.config import get_settings\n"
        "with meta.connect(get_settings(sys.argv[1])) as con:\n"
        "    print(con.execute('select count(*), sum(hash(record_key)) from staging.person').fetchall())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(settings.home)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(expected)
    stored = _stored_paths(settings)
    assert stored and not any(p.startswith("/") for p in stored)
    assert all((settings.warehouse / p).is_file() for p in stored)


# ---------------------------------------------------------------- readers beside the loader
STATE = (
    "select (select count(*) from staging.person), "
    "(select coalesce(sum(rows_loaded), 0) from meta.partition where table_name = 'person'), "
    "(select count(*) from meta.run_ledger)"
)
READER = f"""
import sys, time, duckdb, pathlib
catalog, stop, mode = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
held = duckdb.connect(catalog, read_only=True) if mode == "held" else None
print("ready", flush=True)
reads = failures = 0
while not stop.exists():
    try:
        con = held or duckdb.connect(catalog, read_only=True)
        print(tuple(con.execute({STATE!r}).fetchall()[0]), flush=True)
        if held is None:
            con.close()
        reads += 1
    except Exception as exc:
        failures += 1
        print("FAILED", type(exc).__name__, exc, flush=True)
    time.sleep(0.02)
print("reads", reads, "failures", failures, flush=True)
"""


def test_readers_never_block_the_loader_nor_see_a_partial_batch(tmp_path: Path, landing: Path) -> None:
    settings = _home(tmp_path, landing)
    sources = ("-s", "ps_hukou", "-s", "nhc_health")
    rc, log = _finish(_run(settings, *sources))
    assert rc == 0, log
    with _reader(settings) as con:
        old = tuple(con.execute(STATE).fetchall()[0])
    generate(settings, persons=300, seed=26)  # a new delivery of the same files: replaces the batches
    stop = tmp_path / "stop"
    readers = {
        mode: subprocess.Popen(
            [sys.executable, "-c", READER, str(settings.catalog_path), str(stop), mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mode in ("held", "polling")
    }
    for proc in readers.values():
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    try:
        rc, log = _finish(_run(settings, *sources))
    finally:
        stop.touch()
        outputs = {mode: proc.communicate(timeout=60) for mode, proc in readers.items()}
    assert rc == 0, log  # a reader holding the catalog open did not stop the load
    with _reader(settings) as con:
        new = tuple(con.execute(STATE).fetchall()[0])
    assert new != old and new[0] == new[1]
    seen: dict[str, list[tuple[int, ...]]] = {}
    for mode, (out, err) in outputs.items():
        lines = out.splitlines()
        assert lines[-1].endswith("failures 0"), (
            mode,
            [ln for ln in lines if "FAILED" in ln][:3],
            err[-500:],
        )
        seen[mode] = [eval(ln) for ln in lines if ln.startswith("(")]
    assert set(seen["held"]) == {old}  # the connection held open kept its state throughout
    polled = seen["polling"]
    # every polled read was one whole published state (staged rows match their partitions),
    # starting from the old one, ending at the new one, never going back
    assert polled[0] == old and polled[-1] == new
    assert all(s[0] == s[1] for s in polled)
    assert [s[2] for s in polled] == sorted(s[2] for s in polled)
