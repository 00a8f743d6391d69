"""Errors that name where the problem is, so an operator can act on them."""

from __future__ import annotations


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
    full disk, a path taken by something else. Names the path and the operating system's
    reason. Not a problem of a delivered file: it stops the stage instead of failing one
    file after another."""

    def __init__(self, exc: OSError, what: str = "the warehouse") -> None:
        self.path = exc.filename
        where = f" ({exc.filename})" if exc.filename else ""
        super().__init__(f"cannot write {what}: {exc.strerror or exc}{where}")
