"""Record failed Airflow tasks in the warehouse's `meta.task_failure` table.

Operators see failures in the Airflow UI; analysts and the run report see them
in DuckDB next to the run ledger. The callback runs in the task's process after
the task failed for good (retries exhausted or AirflowFailException). It must
never raise: if the home's writer lock stays held (another writer) or the file
stays locked, it gives up after a brief wait and logs the failure, plus a
JSON line in `$GOVBASE_HOME/airflow/task_failures.jsonl` so nothing is lost.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

#: how long the callback waits for the home's writer lock before spilling the row
FAILURE_LOCK_SECONDS = 10.0
#: Exception text is truncated to this many characters (tracebacks stay in the task log).
MAX_EXCEPTION_CHARS = 2000

DDL = """
create table if not exists meta.task_failure (
    dag_id       varchar not null,
    task_id      varchar not null,
    run_id       varchar not null,   -- the Airflow run id
    try_number   integer,
    logical_date date,
    exception    varchar,            -- type and message, truncated
    failed_at    timestamp not null
)
"""


def failure_row(context: dict[str, Any]) -> dict[str, Any]:
    """The facts of one failed task instance, from an Airflow callback context."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    exc = context.get("exception")
    text = f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else str(exc or "")
    when = getattr(dag_run, "logical_date", None) or getattr(dag_run, "run_after", None)
    return {
        "dag_id": getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", "?"),
        "task_id": getattr(ti, "task_id", "?"),
        "run_id": getattr(ti, "run_id", None) or getattr(dag_run, "run_id", "?"),
        "try_number": getattr(ti, "try_number", None),
        "logical_date": when.date() if when is not None else None,
        "exception": text[:MAX_EXCEPTION_CHARS],
        "failed_at": datetime.now(UTC).replace(tzinfo=None),
    }


def write_failure(row: dict[str, Any]) -> None:
    """Insert one row into meta.task_failure (creates the table on first use) and republish
    the catalog readers open."""
    from etl.config import get_settings
    from etl.lock import writer_lock
    from etl.meta import connect
    from etl.published import publish_catalog

    settings = get_settings()
    # a writer like any other (briefly: a busy home spills the row instead)
    with writer_lock(settings, "task-failure", timeout=FAILURE_LOCK_SECONDS):
        with connect(settings) as con:
            con.execute(DDL)
            con.execute(
                "insert into meta.task_failure values (?, ?, ?, ?, ?, ?, ?)",
                [
                    row["dag_id"],
                    row["task_id"],
                    row["run_id"],
                    row["try_number"],
                    row["logical_date"],
                    row["exception"],
                    row["failed_at"],
                ],
            )
        publish_catalog(settings, "task-failure")  # readers see the failure next to the ledger


def _spill(row: dict[str, Any]) -> None:
    from etl.config import get_settings

    path = get_settings().home / "airflow" / "task_failures.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")


def record_task_failure(context: Any) -> None:
    """Airflow on_failure_callback: log the failure in operator words and record it in meta.

    Never raises; a locked or unwritable warehouse is logged and spilled to a JSON line.
    """
    try:
        row = failure_row(dict(context))
    except Exception:  # the context itself is unusable: log and give up
        log.exception("govbase: could not read the failure context")
        return
    log.error(
        "govbase task FAILED: dag=%s task=%s run=%s logical_date=%s: %s",
        row["dag_id"],
        row["task_id"],
        row["run_id"],
        row["logical_date"],
        row["exception"],
    )
    try:
        write_failure(row)
    except Exception as exc:
        log.warning("govbase: could not record the failure in meta.task_failure (%s); spilling it", exc)
        try:
            _spill(row)
        except Exception:
            log.exception("govbase: could not spill the failure record either")
