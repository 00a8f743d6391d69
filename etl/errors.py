"""Errors that name where the problem is, so an operator can act on them."""

from __future__ import annotations


class GovbaseError(Exception):
    """Base class of every error govbase raises on purpose."""


class ContractError(GovbaseError):
    """A YAML contract is malformed: names the file, the key and the problem."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file, self.key, self.problem = file, key, problem
        super().__init__(f"{file}: {key}: {problem}")


class SourceError(GovbaseError):
    """A source could not be read: names source, file, row (when known) and problem."""

    def __init__(
        self,
        source: str,
        problem: str,
        file: str | None = None,
        row: int | None = None,
        kind: str = "error",
    ) -> None:
        self.source, self.file, self.row, self.problem, self.kind = source, file, row, problem, kind
        where = f"source {source}"
        if file:
            where += f", file {file}"
        if row is not None:
            where += f", row {row}"
        super().__init__(f"{where}: {problem}")


class ValidationFailed(GovbaseError):
    """Batch-level expectations failed: the batch is not published."""


class ReconciliationError(GovbaseError):
    """extracted != loaded + quarantined: rows would be lost or invented."""


class StageOrderError(GovbaseError):
    """A stage ran before the stage it depends on produced its output."""
