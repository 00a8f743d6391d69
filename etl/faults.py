"""Fault injection for the kill tests: `GOVBASE_FAULT=<point>` makes the process
SIGKILL itself when it reaches that point, exactly as an OOM killer or a lost
worker would; `GOVBASE_FAULT=<point>@<n>` at the n-th time it reaches it (a point
inside a loop, or one every source passes). `GOVBASE_FAULT_TRACE=<file>` appends the
name of every point reached to that file, one a line (how the fault suite learns
which points a run passes and how often). Unset in normal runs, where `checkpoint`
is two dictionary lookups.

Every point is named in CHECKPOINTS, by stage, at a write boundary: just after a file
or a meta row is written and before the next one, where a kill leaves the most to
recover (docs/reliability.md lists them and what a kill there leaves behind).
"""

from __future__ import annotations

import os
import signal

#: every named checkpoint, "<stage>:<moment>"; the fault suite kills at each
CHECKPOINTS: tuple[str, ...] = (
    # extract
    "extract:after_raw_chunk",  # raw Parquet half written, no meta row
    "extract:after_raw_file",  # raw Parquet complete, no meta row
    "extract:after_batch_row",  # meta.extract_batch row committed, stage not recorded
    "extract:after_carry_forward",  # unpublished batches of a killed run moved to this run
    # normalize
    "normalize:after_chunk",  # staged.arrow half written
    "normalize:after_files",  # work files complete, findings not recorded
    "normalize:after_findings",  # meta.source_error rows committed, stage not recorded
    # validate
    "validate:after_good_chunk",  # good.parquet half written
    "validate:after_quarantine_file",
    "validate:after_summary",  # summary.json written, results not recorded
    "validate:after_results",  # meta.validation_result row committed
    # load
    "load:after_write",  # partition files copied into the warehouse, not published
    "load:before_commit",  # meta.partition and views changed inside the open transaction
    "load:after_commit",  # published, superseded files not deleted yet
    "load:after_sweep",  # old files deleted, work directory not removed
    # every stage: its meta.run_ledger row
    "ledger:after_write",
    # publish: rejection reports, Data Docs, classification, department shares
    "publish:after_report",  # one department's rejection report written
    "publish:after_reports",  # every report written, Data Docs not built
    "publish:after_docs",  # Data Docs built, data dictionary not written
    "publish:after_dictionary",  # data dictionary written, catalog comments not
    "publish:after_comments",  # the catalog's comments (etl.descriptions) committed
    "publish:after_classification",  # meta.classification_finding rows committed
    "publish:after_open_file",  # one file of an open dataset replaced
    "publish:after_open_data",  # open datasets and their catalog written, shares not built
    "publish:after_share_db",  # a share's share.duckdb.tmp complete, not moved into place
    "publish:after_share_parquet",  # one granted table's Parquet of a share replaced
    "publish:after_share",  # one department's share.duckdb replaced
    "publish:after_run_report",  # the run report written (the last write of a publish)
    # consolidate (govbase consolidate): staging -> core
    "consolidate:after_model",  # an entity's trained Splink model written
    "consolidate:after_core_file",  # one core table's Parquet of the run written, none published
    "consolidate:before_commit",  # meta.core_table and the core views changed in the open transaction
    "consolidate:after_commit",  # published, superseded core files not deleted
    "consolidate:after_sweep",  # superseded core files deleted
    # the published catalog readers open (etl.published), after every load, publish, consolidate
    "catalog:after_snapshot",  # the new snapshot whole under a temporary name, not moved into place
    "catalog:after_replace",  # the snapshot moved over the previous catalog, its folder not fsynced
)

_hits: dict[str, int] = {}


def checkpoint(point: str) -> None:
    """Die here (SIGKILL) when GOVBASE_FAULT names this point (and hit); trace it when asked."""
    fault, trace = os.environ.get("GOVBASE_FAULT"), os.environ.get("GOVBASE_FAULT_TRACE")
    if fault is None and trace is None:
        return
    _hits[point] = n = _hits.get(point, 0) + 1
    if trace:
        with open(trace, "a", encoding="utf-8") as fh:
            fh.write(point + "\n")
    if fault is not None and fault in (point, f"{point}@{n}"):
        os.kill(os.getpid(), signal.SIGKILL)
