"""Debris a killed writer leaves behind, swept by the next writer under the home's lock.

A SIGKILL (an OOM killer, a lost worker, a reboot) between a file written and the meta row
that records it leaves a file no reader ever sees (docs/reliability.md, "Debris"): raw
Parquet of a batch never recorded, with its `.tmp` parts; the work directory of a run that
will never load; core Parquet files and a Splink model folder of a consolidation never
committed; the `.tmp` files the publish writes before moving each file into place. Each
sweep runs while this process holds the writer lock (etl.lock): no other writer can then be
between writing such a file and recording it, so an unrecorded file belongs to a process
that died. Each sweep that removes anything says so in one warning, naming what it removed.

- `sweep_extract` (the extract of a source, before it reads): files under
  `raw/<source>/` that no meta.extract_batch row names, and the work directories
  `_work/<source>/<date>/<run>/` of other runs of the same source and logical date (the
  runs whose unpublished batches this extract carries forward, see etl.extract.stage);
- `sweep_core` (a consolidation, before it links): core Parquet files neither
  meta.core_table, meta.core_patch nor meta.core_layer (a patch's or a layer's drop and
  add files) names, model folders no meta.resolve_run row names;
- `sweep_temporary` (a publish, before it writes): `*.tmp` files of the shares, open
  data, reports and data dictionary; `sweep_catalog` (each catalog publish): temporary
  snapshots of the published catalog other processes began.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from pathlib import Path

import duckdb

from etl import meta
from etl.config import Settings

log = logging.getLogger(__name__)


def _named(settings: Settings, stored: Iterable[object]) -> set[Path]:
    out = set()
    for s in stored:
        if s:
            p = Path(str(s))
            out.add(p if p.is_absolute() else settings.warehouse / p)
    return out


def _remove(settings: Settings, paths: list[Path], what: str) -> list[Path]:
    removed = []
    for p in sorted(paths):
        try:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:  # a folder that cannot be written: the step's own write says so
            log.debug("could not sweep %s: %s", p, exc)
            continue
        removed.append(p)
    if removed:
        shown = ", ".join(_shown(settings, p) for p in removed[:5])
        more = f" and {len(removed) - 5} more" if len(removed) > 5 else ""
        log.warning("swept %d %s a killed run left: %s%s", len(removed), what, shown, more)
    return removed


def _shown(settings: Settings, p: Path) -> str:
    try:
        return p.relative_to(settings.home).as_posix()
    except ValueError:
        return str(p)


def sweep_extract(settings: Settings, source: str, logical_date: str, run_id: str) -> list[Path]:
    """Unrecorded raw files of `source`, and work directories of other runs of (source, date)."""
    raw = settings.layer("raw") / source
    removed: list[Path] = []
    if raw.is_dir():
        with meta.connect(settings) as con:
            rows = con.execute(
                "select raw_path from meta.extract_batch where source = ?", [source]
            ).fetchall()
        recorded = _named(settings, (r[0] for r in rows))
        stray = [p for p in raw.rglob("*") if p.is_file() and p not in recorded]
        removed += _remove(settings, stray, "unrecorded raw file(s)")
    work = settings.warehouse / "_work" / source / logical_date
    if work.is_dir():
        others = [p for p in work.iterdir() if p.name != run_id]
        removed += _remove(settings, others, f"work folder(s) of earlier runs of {source} on {logical_date}")
    return removed


def sweep_core(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[Path]:
    """Core Parquet files meta.core_table, meta.core_patch and meta.core_layer do not name;
    model folders meta.resolve_run does not."""
    core = settings.layer("core")
    if not core.is_dir():
        return []
    named = _named(settings, (r[0] for r in con.execute("select path from meta.core_table").fetchall()))
    named |= _named(  # a patched table's drop and add files (etl.resolve.store)
        settings,
        (p for r in con.execute("select drop_path, add_path from meta.core_patch").fetchall() for p in r),
    )
    layered = con.execute(
        "select count(*) from duckdb_tables() where database_name = current_database() "
        "and schema_name = 'meta' and table_name = 'core_layer'"
    ).fetchall()[0][0]
    if layered:  # a layered table's layers (etl.resolve.store: its base is meta.core_table's)
        named |= _named(
            settings,
            (p for r in con.execute("select drop_path, add_path from meta.core_layer").fetchall() for p in r),
        )
    models = {
        p.parent
        for p in _named(
            settings, (r[0] for r in con.execute("select model_path from meta.resolve_run").fetchall())
        )
    }
    files = [p for p in core.glob("*/*") if p.is_file() and p.parent.name != "_models" and p not in named]
    folders = [p for p in core.glob("_models/*/*") if p.is_dir() and p not in models]
    return _remove(settings, files, "unpublished core file(s)") + _remove(
        settings, folders, "unrecorded model folder(s)"
    )


def sweep_temporary(settings: Settings) -> list[Path]:
    """The publish's `*.tmp` files (shares, open data and its catalog, reports, dictionary)."""
    roots = [settings.layer("share"), settings.layer("open"), settings.reports_dir]
    stray = [p for root in roots if root.is_dir() for p in root.rglob("*.tmp") if p.is_file()]
    return _remove(settings, stray, "temporary file(s) of an unfinished publish")


def sweep_catalog(settings: Settings, keep: Path) -> list[Path]:
    """Temporary snapshots of the published catalog (and their WAL) other than `keep`."""
    folder = settings.catalog_path.parent
    if not folder.is_dir():
        return []
    stray = [
        p
        for p in folder.glob(f".{settings.catalog_path.name}.*.tmp*")
        if p.is_file() and p.name not in (keep.name, f"{keep.name}.wal")
    ]
    return _remove(settings, stray, "unfinished catalog snapshot(s)")


__all__ = ["sweep_catalog", "sweep_core", "sweep_extract", "sweep_temporary"]
