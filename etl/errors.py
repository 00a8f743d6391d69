"""Errors that name where the problem is, so an operator can act on them."""

from __future__ import annotations

import errno


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


class StorageError(GovbaseError):
    """A file of the home could not be written: no permission, a read-only or a full file
    system. Names what was being done, the file and the problem; once space or permission
    returns, a rerun recovers (nothing half written is ever published)."""


#: errno values (and the words DuckDB and Arrow use for them) that mean "the home is not writable"
_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, errno.EDQUOT})
_STORAGE_WORDS = (
    "No space left on device",
    "Permission denied",
    "Operation not permitted",
    "Read-only file system",
    "Disk quota exceeded",
)


def storage_error(exc: BaseException, doing: str) -> StorageError | None:
    """`exc` as a StorageError naming `doing` (e.g. "load of ps_hukou"), or None when it is
    not a storage problem. Recognizes OSError by errno, and DuckDB's and Arrow's errors by
    the operating system's words in their message (they carry no errno)."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, GovbaseError):  # already says what happened, in its own words
        return None
    if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
        target = f" {exc.filename}" if exc.filename else ""
        return StorageError(f"{doing}: cannot write{target}: {exc.strerror}; fix it and rerun")
    text = str(exc)
    if isinstance(exc, Exception) and any(w in text for w in _STORAGE_WORDS):
        return StorageError(f"{doing}: cannot write: {text}; fix it and rerun")
    return None
