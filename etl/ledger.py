"""meta.run_ledger: one row per stage of a run, with its counts, status and message.

Every stage is recorded through `ledger`, a context manager: the stage fills in its
counts (and, when it refuses a batch, its verdict) on the entry it is handed, and the
row is written when the block ends, whether it ends normally or by an exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from etl import meta
from etl.config import Settings
from etl.faults import checkpoint

#: a message longer than this is cut (an exception can carry a whole traceback's worth)
MESSAGE_CHARS = 2000


@dataclass
class LedgerEntry:
    """The counts and verdict of one stage, filled in while it runs.

    A stage that refuses its batch (validation failed, no reconciliation) calls `fail`
    with its counts in place before raising: the row keeps them. Any other exception
    records the stage as failed with zero counts and the exception's text.
    """

    run_id: str
    source: str
    stage: str
    logical_date: str
    started: datetime
    rows_in: int = 0
    rows_out: int = 0
    rows_quarantined: int = 0
    status: str = "ok"
    message: str | None = None

    def counts(self, rows_in: int, rows_out: int, rows_quarantined: int = 0) -> None:
        self.rows_in, self.rows_out, self.rows_quarantined = rows_in, rows_out, rows_quarantined

    def fail(self, message: str) -> None:
        self.status, self.message = "failed", message

    def write(self, settings: Settings) -> None:
        with meta.connect(settings) as con:
            con.execute(
                "insert into meta.run_ledger values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    self.run_id,
                    self.source,
                    self.stage,
                    self.logical_date,
                    self.rows_in,
                    self.rows_out,
                    self.rows_quarantined,
                    self.started,
                    meta.now(),
                    self.status,
                    None if self.message is None else self.message[:MESSAGE_CHARS],
                ],
            )


@contextmanager
def ledger(
    settings: Settings, *, run_id: str, source: str, stage: str, logical_date: str
) -> Iterator[LedgerEntry]:
    """Record the stage run inside the block in meta.run_ledger (also when it raises)."""
    entry = LedgerEntry(run_id, source, stage, logical_date, started=meta.now())
    try:
        yield entry
    except Exception as exc:
        if entry.status != "failed":  # not a verdict of the stage: its counts mean nothing
            entry.counts(0, 0, 0)
            entry.fail(str(exc))
        entry.write(settings)
        checkpoint("ledger:after_write")
        raise
    entry.write(settings)
    checkpoint("ledger:after_write")
