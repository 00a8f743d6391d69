"""One writer per GOVBASE_HOME: an advisory lock every writing process takes.

`govbase run` holds it for the whole run (every source, then the publish), each
Airflow task for its stage, `govbase extract`, `publish` and `quarantine replay`
for what they do. A second writer waits, saying who holds the lock (pid, host,
run id, since when), and gives up after `Settings.lock_timeout` seconds with a
`WriterBusy` error. Readers never take it: they open the published catalog.

The lock is `fcntl.flock` on `warehouse/.writer.lock`, taken directly rather than
through a locking library because the holder's identity lives in the lock file
itself (a library that truncates the file when it opens it would erase it while
another process waits), and because the lock is re-entrant inside a process: a
run that holds it calls the stages, which take it again. The kernel releases it
when the holding process dies, however it dies (SIGKILL included): a killed run
never leaves a stale lock behind. flock is per host; a warehouse on shared
storage served to several hosts needs the Airflow pool (or a lock service).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from etl.config import Settings
from etl.errors import GovbaseError

#: how often a waiting writer tries again, and how often it repeats its message
POLL_SECONDS = 0.2
REPEAT_SECONDS = 30.0


class WriterBusy(GovbaseError):
    """Another process held the home's writer lock for longer than the timeout."""


@dataclass
class _Held:
    handle: IO[str]
    depth: int


#: locks this process holds, by lock file (re-entrant: the stages run inside a run)
_HELD: dict[str, _Held] = {}
_GUARD = threading.RLock()


def lock_path(settings: Settings) -> Path:
    return settings.warehouse / ".writer.lock"


def holder(settings: Settings) -> dict[str, object] | None:
    """Who holds (or last held) the lock: pid, host, run_id, since; None when never taken."""
    try:
        text = lock_path(settings).read_text(encoding="utf-8")
        return json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None


def describe(info: dict[str, object] | None) -> str:
    if not info:
        return "another process (identity not yet written)"
    return f"pid {info.get('pid')} on {info.get('host')}, run {info.get('run_id')}, since {info.get('since')}"


@contextmanager
def writer_lock(
    settings: Settings,
    run_id: str | None = None,
    *,
    timeout: float | None = None,
    say: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the home's writer lock for the block; waits up to `timeout` seconds (default
    `settings.lock_timeout`) while another process holds it, calling `say` with who holds
    it when the wait starts and every REPEAT_SECONDS; raises WriterBusy after the timeout.
    Re-entrant within a process."""
    path = lock_path(settings)
    key = str(path)
    with _GUARD:
        held = _HELD.get(key)
        if held is not None:
            held.depth += 1
    if held is not None:
        try:
            yield
        finally:
            _release(key)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # "a" never truncates: a waiting process must not erase the holder's identity
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open across the block
    try:
        _acquire(handle, settings, settings.lock_timeout if timeout is None else timeout, say)
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "run_id": run_id,
                    "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
            )
        )
        handle.flush()
    except BaseException:
        handle.close()
        raise
    with _GUARD:
        _HELD[key] = _Held(handle, 1)
    try:
        yield
    finally:
        _release(key)


def _acquire(handle: IO[str], settings: Settings, timeout: float, say: Callable[[str], None] | None) -> None:
    started = time.monotonic()
    told = None
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        waited = time.monotonic() - started
        who = describe(holder(settings))
        if waited >= timeout:
            raise WriterBusy(
                f"GOVBASE_HOME {settings.home} is being written by {who}; gave up after {timeout:g} s "
                "(one writer per home; GOVBASE_LOCK_TIMEOUT sets the wait)"
            )
        if say is not None and (told is None or time.monotonic() - told >= REPEAT_SECONDS):
            say(f"waiting for the writer lock of {settings.home}: held by {who} (timeout {timeout:g} s)")
            told = time.monotonic()
        time.sleep(POLL_SECONDS)


def _release(key: str) -> None:
    with _GUARD:
        held = _HELD[key]
        held.depth -= 1
        if held.depth:
            return
        del _HELD[key]
    # the identity stays in the file (the last holder), the lock goes with the descriptor
    held.handle.close()
