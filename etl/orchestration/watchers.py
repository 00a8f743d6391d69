"""Deliveries that start their own ingest: Airflow 3 asset watchers on the landing folders.

Each watched source has an Asset `govbase://landing/<source>` with an AssetWatcher whose
trigger runs in the triggerer (async, no worker slot held while waiting); the source's
ingest DAG is scheduled on that Asset *or* its YAML schedule (AssetOrTimeSchedule), so
the schedule stays the fallback.

* `LandingTrigger` (file sources) lists the source's landing folder every
  `poll_seconds` (a `scandir` of one folder, in a thread). A file counts as delivered once
  its size and mtime stayed the same over two polls (a copy still being written does not
  fire). It fires one TriggerEvent per delivery date (the oldest first, by the source's
  `file_date_pattern`; undated files go with the first) for files not fired for yet, then returns: the
  triggerer starts it again from its serialized kwargs (`serialize`), and what it already
  fired for is kept in Airflow's asset state store (key `delivered`: name -> [size,
  mtime_ns]), so a restart or a re-arm does not fire twice for the same file, and a file
  replaced by a corrected one (another size or mtime) fires again. Armed for the first
  time (nothing stored), it counts the files whose name and size the extract has already
  recorded (`meta.extract_batch` of the published catalog) as delivered.
* `SqlChangeTrigger` (SQL sources) asks the database for `max(incremental_key)` and the
  number of rows at that value (both answered from an index on the key) every
  `poll_seconds`, and fires when that pair changes: a new or updated row moves the maximum,
  a row committed late at the same key value raises the count. Armed for the first time, it
  compares with the extract's watermark in the published catalog.

A run started by one of these events has no logical date: the ingest tasks use the latest
delivery date the consumed events name (`delivery_date`), else the day the run started, so
the run takes the files due by that date that are not extracted yet (extract skips any file
it has extracted, by sha256), as the scheduled run of that date would have.

`GOVBASE_WATCH` chooses the watched sources: `all` (default), `none`, or a comma list.
The watchers are active while the source's ingest DAG is unpaused (Airflow registers an
asset's watchers only for unpaused DAGs scheduled on it).
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import re
from collections.abc import AsyncIterator, Iterable
from datetime import date
from pathlib import Path
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from etl.config import Settings
from etl.contracts import Source

log = logging.getLogger(__name__)

#: default seconds between two looks at a landing folder or a source table
POLL_SECONDS = 5.0
STATE_KEY = "delivered"
LANDING_PREFIX = "govbase://landing/"

Fingerprint = tuple[int, int]  # (size in bytes, mtime in ns)


def landing_asset_uri(source: str) -> str:
    """URI of the Asset a source's watcher updates: `govbase://landing/<source>`."""
    return f"{LANDING_PREFIX}{source}"


def watched(setting: str, source: str) -> bool:
    """Whether GOVBASE_WATCH (`all`, `none` or a comma list of sources) watches `source`."""
    value = setting.strip().lower()
    if value in ("", "all"):
        return True
    if value == "none":
        return False
    return source.lower() in {s.strip() for s in value.split(",")}


def delivery_date(events: Iterable[Any]) -> str | None:
    """The latest delivery date (YYYY-MM-DD) the landing events a run consumed name, if any.

    `events` are the run's consumed asset events (objects with `.asset.uri` and `.extra`,
    as `dag_run.consumed_asset_events`); a watcher's event carries its TriggerEvent payload
    in `extra["payload"]`."""
    dates = []
    for event in events:
        uri = str(getattr(getattr(event, "asset", None), "uri", ""))
        extra = getattr(event, "extra", None) or {}
        payload = extra.get("payload") if isinstance(extra, dict) else None
        if uri.startswith(LANDING_PREFIX) and isinstance(payload, dict):
            dates += [str(d) for d in payload.get("dates") or [] if d]
    return max(dates) if dates else None


def watcher_trigger(src: Source, settings: Settings) -> BaseEventTrigger:
    """The trigger watching one source: its landing folder, or its table (kind sql)."""
    if src.kind == "sql":
        return SqlChangeTrigger(
            source=src.name,
            schemas_dir=str(settings.schemas_dir),
            home=str(settings.home),
            catalog=str(settings.catalog_path),
        )
    return LandingTrigger(
        source=src.name,
        folder=str(settings.source_landing(src.name)),
        pattern=src.location or "*",
        date_pattern=src.file_date_pattern,
        catalog=str(settings.catalog_path),
    )


def ingest_schedule(src: Source, settings: Settings) -> Any:
    """The schedule of a source's ingest DAG: its landing Asset (watched, see the module
    docstring) or the YAML schedule, the fallback; the YAML schedule alone when GOVBASE_WATCH
    leaves the source out or the schedule is not a cron expression or preset."""
    from airflow.sdk import Asset, AssetOrTimeSchedule, AssetWatcher, CronTriggerTimetable

    if not watched(settings.watch, src.name) or src.schedule in ("@once", "@continuous"):
        return src.schedule
    asset = Asset(
        landing_asset_uri(src.name),
        watchers=[AssetWatcher(name=f"landing__{src.name}", trigger=watcher_trigger(src, settings))],
    )
    if src.schedule is None:
        return asset
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(src.schedule, timezone="UTC"), assets=asset)


def watch_doc(src: Source, settings: Settings) -> str:
    """The line of the ingest DAG's doc saying what starts it besides its schedule."""
    if ingest_schedule(src, settings) == src.schedule:
        return "* starts on its schedule only (GOVBASE_WATCH leaves it out)\n"
    what = "new rows in its table" if src.kind == "sql" else f"a file landing in `landing/{src.name}/`"
    return (
        f"* also starts on {what}: Asset `{landing_asset_uri(src.name)}`, watched by the triggerer "
        "while this DAG is unpaused (etl/orchestration/watchers.py)\n"
    )


def _listing(folder: str, pattern: str) -> dict[str, Fingerprint]:
    """name (relative to the folder, as the extract names it) -> (size, mtime_ns) of the
    regular files matching the source's location glob; {} when the folder is missing."""
    root = Path(folder)
    if not root.is_dir():
        return {}
    out: dict[str, Fingerprint] = {}
    if "/" in pattern:  # a glob into subfolders: as the extract globs it
        for p in sorted(root.glob(pattern)):
            if p.is_file():
                st = p.stat()
                out[p.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
        return out
    with os.scandir(root) as entries:
        for e in entries:
            if fnmatch.fnmatchcase(e.name, pattern) and e.is_file():
                st = e.stat()
                out[e.name] = (st.st_size, st.st_mtime_ns)
    return out


def _file_date(name: str, date_pattern: str | None) -> str | None:
    """The delivery date (YYYY-MM-DD) the source's file_date_pattern finds in a name."""
    if not date_pattern:
        return None
    m = re.search(date_pattern, Path(name).name)
    if not m:
        return None
    try:
        return date(int(m.group(1)[:4]), int(m.group(1)[4:6]), int(m.group(1)[6:8])).isoformat()
    except (ValueError, IndexError):
        return None


def _extracted(catalog: str, source: str) -> set[tuple[str, int]]:
    """(file, bytes) of the batches of `source` the published catalog says were extracted."""
    if not catalog or not Path(catalog).exists():
        return set()
    import duckdb

    try:
        con = duckdb.connect(catalog, read_only=True)
    except duckdb.Error as exc:  # replaced under us, or not a catalog yet: nothing known
        log.warning("watcher of %s: cannot read %s (%s)", source, catalog, exc)
        return set()
    try:
        rows = con.execute(
            "select file, file_bytes from meta.extract_batch where source = ? and status = 'extracted' "
            "and file is not null and file_bytes is not null",
            [source],
        ).fetchall()
    except duckdb.Error:
        return set()
    finally:
        con.close()
    return {(str(f), int(b)) for f, b in rows}


class LandingTrigger(BaseEventTrigger):
    """Fires when a delivery lands in a file source's landing folder (module docstring).

    folder: the source's landing folder; pattern: its `location` glob; date_pattern: its
    `file_date_pattern` (or None); catalog: the published catalog, read once when armed
    for the first time; poll_seconds: between two listings.
    """

    def __init__(
        self,
        *,
        source: str,
        folder: str,
        pattern: str,
        date_pattern: str | None = None,
        catalog: str = "",
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        super().__init__()
        self.source, self.folder, self.pattern = source, folder, pattern
        self.date_pattern, self.catalog, self.poll_seconds = date_pattern, catalog, float(poll_seconds)
        self._memory: dict[str, Any] = {}  # the state when no asset state store is injected

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "source": self.source,
                "folder": self.folder,
                "pattern": self.pattern,
                "date_pattern": self.date_pattern,
                "catalog": self.catalog,
                "poll_seconds": self.poll_seconds,
            },
        )

    # ------------------------------------------------------------------ state
    async def _load(self) -> dict[str, Fingerprint] | None:
        raw: Any = (
            await self.asset_state_store.aget(STATE_KEY)
            if self.asset_state_store is not None
            else self._memory.get(STATE_KEY)
        )
        if not isinstance(raw, dict):
            return None
        return {str(k): (int(v[0]), int(v[1])) for k, v in raw.items() if isinstance(v, list | tuple)}

    async def _save(self, state: dict[str, Fingerprint]) -> None:
        value: Any = {k: [s, m] for k, (s, m) in sorted(state.items())}
        if self.asset_state_store is not None:
            await self.asset_state_store.aset(STATE_KEY, value)
        else:
            self._memory[STATE_KEY] = value

    # ------------------------------------------------------------------ run
    async def run(self) -> AsyncIterator[TriggerEvent]:
        state = await self._load()
        if state is None:  # armed for the first time: what the extract already took
            now = await asyncio.to_thread(_listing, self.folder, self.pattern)
            done = await asyncio.to_thread(_extracted, self.catalog, self.source)
            state = {n: fp for n, fp in now.items() if (n, fp[0]) in done}
            await self._save(state)
        previous: dict[str, Fingerprint] | None = None
        while True:
            current = await asyncio.to_thread(_listing, self.folder, self.pattern)
            if previous is not None:
                # delivered: unchanged since the previous look, and not fired for yet
                new = {n: fp for n, fp in current.items() if previous.get(n) == fp and state.get(n) != fp}
                if new:
                    group = self._oldest_group(new)
                    dated = sorted({d for n in group if (d := _file_date(n, self.date_pattern))})
                    payload = {"source": self.source, "files": sorted(group), "dates": dated}
                    log.info("delivery for %s: %s", self.source, payload)
                    yield TriggerEvent(payload)
                    # recorded after the event is handed over: a crash in between fires
                    # again, and that run finds the files extracted (skipped by sha256)
                    kept = {n: fp for n, fp in state.items() if n in current}
                    await self._save({**kept, **group})
                    return
            previous = current
            await asyncio.sleep(self.poll_seconds)

    def _oldest_group(self, new: dict[str, Fingerprint]) -> dict[str, Fingerprint]:
        """The new files of the oldest delivery date, with the undated ones (a run of any
        date takes an undated file)."""
        dates = {n: _file_date(n, self.date_pattern) for n in new}
        first = min((d for d in dates.values() if d), default=None)
        return {n: fp for n, fp in new.items() if dates[n] in (first, None)}


def _table_mark(source: str, schemas_dir: str, home: str) -> list[Any]:
    """[max(incremental_key) as the extract writes it, rows at that value] of an SQL source,
    read through the connection its extract uses (blocking: run in a thread)."""
    import sqlalchemy as sa

    from etl.config import get_settings
    from etl.contracts import load_source
    from etl.extract.sql import _quote_table, connection_url, engine_for, value_text

    settings = get_settings(home or None)
    src = load_source(Path(schemas_dir) / "sources" / f"{source}.yml")
    assert src.sql_table and src.incremental_key
    engine = engine_for(connection_url(settings, src))
    try:
        _, _, table = _quote_table(engine, src.sql_table)
        key = engine.dialect.identifier_preparer.quote(src.incremental_key)
        with engine.connect() as con:
            high = con.execute(sa.text(f"select max({key}) from {table}")).scalar()
            at = con.execute(sa.text(f"select count(*) from {table} where {key} = :v"), {"v": high}).scalar()
    finally:
        engine.dispose()
    return [value_text(high), int(at or 0)]


def _watermark(catalog: str, source: str) -> list[Any] | None:
    """[watermark value, rows delivered at it] of an SQL source in the published catalog."""
    if not catalog or not Path(catalog).exists():
        return None
    import json

    import duckdb

    try:
        con = duckdb.connect(catalog, read_only=True)
        try:
            row = con.execute(
                "select value, boundary from meta.watermark where source = ?", [source]
            ).fetchall()
        finally:
            con.close()
    except duckdb.Error:
        return None
    if not row:
        return None
    value, boundary = row[0]
    return [value, len(json.loads(boundary)) if boundary else 0]


class SqlChangeTrigger(BaseEventTrigger):
    """Fires when an SQL source's table has rows its extract has not pulled (module docstring).

    source: the source's name (its contract under schemas_dir/sources names the table, the
    incremental key and the connection, whose credentials come from the environment, never
    from these kwargs); home: GOVBASE_HOME; catalog: the published catalog.
    """

    def __init__(
        self,
        *,
        source: str,
        schemas_dir: str,
        home: str,
        catalog: str = "",
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        super().__init__()
        self.source, self.schemas_dir, self.home = source, schemas_dir, home
        self.catalog, self.poll_seconds = catalog, float(poll_seconds)
        self._memory: dict[str, Any] = {}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "source": self.source,
                "schemas_dir": self.schemas_dir,
                "home": self.home,
                "catalog": self.catalog,
                "poll_seconds": self.poll_seconds,
            },
        )

    async def _get(self) -> Any:
        if self.asset_state_store is not None:
            return await self.asset_state_store.aget(STATE_KEY)
        return self._memory.get(STATE_KEY)

    async def _set(self, value: list[Any]) -> None:
        if self.asset_state_store is not None:
            await self.asset_state_store.aset(STATE_KEY, value)
        else:
            self._memory[STATE_KEY] = value

    async def run(self) -> AsyncIterator[TriggerEvent]:
        seen = await self._get()
        if not isinstance(seen, list):  # armed for the first time: what the extract pulled
            seen = await asyncio.to_thread(_watermark, self.catalog, self.source)
        while True:
            try:
                mark = await asyncio.to_thread(_table_mark, self.source, self.schemas_dir, self.home)
            except Exception as exc:  # an unreachable database: the schedule's run reports it
                log.warning(
                    "watcher of %s: cannot poll the source table: %s", self.source, type(exc).__name__
                )
                mark = None
            if mark is not None and mark[0] is not None and mark != seen:
                log.info("new rows for %s: key %s, %d row(s) at it", self.source, mark[0], mark[1])
                yield TriggerEvent(
                    {"source": self.source, "key": mark[0], "rows_at_key": mark[1], "dates": []}
                )
                await self._set(mark)
                return
            await asyncio.sleep(self.poll_seconds)
