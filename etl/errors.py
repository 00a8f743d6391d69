"""Errors that name where the problem is, so an operator can act on them."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager


class GovbaseError(Exception):
    """Base class of every error govbase raises on purpose."""


class ContractError(GovbaseError):
    """A YAML contract is malformed: names the file, the key and the problem."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file, self.key, self.problem = file, key, problem
        super().__init__(f"{file}: {key}: {problem}")


def where_in_file(line: int | None, row: int | None) -> str:
    """ "line 12 (record 10)", "line 12", "record 10" or "" (what is known).

    `line` is the physical line of the file (1-based, header and blank lines
    counted; an Excel sheet's row number), `row` the data record's ordinal
    (`_row_number`); both are named when they differ.
    """
    if line is not None and row is not None and line != row:
        return f"line {line} (record {row})"
    if line is not None:
        return f"line {line}"
    return f"record {row}" if row is not None else ""


class SourceError(GovbaseError):
    """A source could not be read: names source, file, line and record (when known) and problem."""

    def __init__(
        self,
        source: str,
        problem: str,
        file: str | None = None,
        row: int | None = None,
        kind: str = "error",
        line: int | None = None,
    ) -> None:
        self.source, self.file, self.row, self.problem, self.kind = source, file, row, problem, kind
        self.line = line
        where = f"source {source}"
        if file:
            where += f", file {file}"
        at = where_in_file(line, row)
        if at:
            where += f", {at}"
        super().__init__(f"{where}: {problem}")


class ValidationFailed(GovbaseError):
    """Batch-level expectations failed: the batch is not published."""


class ReconciliationError(GovbaseError):
    """extracted != loaded + quarantined: rows would be lost or invented."""


class StageOrderError(GovbaseError):
    """A stage ran before the stage it depends on produced its output."""


class WarehouseWriteError(GovbaseError):
    """A file of the warehouse (raw, staging, reports ...) cannot be written: permissions, a
    read-only or full file system, a path taken by something else. Names what was being
    written, the operating system's reason and the path; once space or permission returns,
    a rerun recovers (nothing half written is ever published). Not a problem of a delivered
    file: it stops the stage instead of failing one file after another."""

    def __init__(self, exc: BaseException, what: str = "the warehouse") -> None:
        name = exc.filename if isinstance(exc, OSError) else None
        # normalized: GE names its Data Docs as <home>/gx/../docs, an operator looks for <home>/docs
        self.path = os.path.normpath(name) if isinstance(name, str) else name
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        where = f" ({self.path})" if self.path else ""
        super().__init__(f"cannot write {what}: {reason}{where}; fix it and rerun")


#: errno values (and the words DuckDB and Arrow use for them) that mean "the home is not writable"
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, errno.EDQUOT})
_WRITE_WORDS = (
    "No space left on device",
    "Permission denied",
    "Operation not permitted",
    "Read-only file system",
    "Disk quota exceeded",
)


def write_error(exc: BaseException, what: str = "the warehouse") -> WarehouseWriteError | None:
    """`exc` as a WarehouseWriteError naming `what` was being written, or None when it is not
    a problem of writing the home (the caller re-raises it as it is). Recognizes OSError by
    errno, and DuckDB's and Arrow's errors by the operating system's words in their message
    (they carry no errno); a WarehouseWriteError is returned as it is."""
    if isinstance(exc, WarehouseWriteError):
        return exc
    if isinstance(exc, GovbaseError):  # already says what happened, in its own words
        return None
    if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
        return WarehouseWriteError(exc, what)
    if isinstance(exc, Exception) and any(w in str(exc) for w in _WRITE_WORDS):
        return WarehouseWriteError(exc, what)
    return None


@contextmanager
def writing(what: str = "the warehouse") -> Iterator[None]:
    """Inside: an error that means the home cannot be written (see `write_error`) comes
    out as a WarehouseWriteError naming `what`; every other error as it is."""
    try:
        yield
    except Exception as exc:
        err = write_error(exc, what)
        if err is None or err is exc:
            raise
        raise err from exc
