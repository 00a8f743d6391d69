"""One source, one logical date: the stages of DESIGN.md's data flow.

`run_stage(stage, source, logical_date, run_id)` is the single entry point both
`govbase run` and the Airflow tasks call. Stages hand data to each other
through files under the warehouse, never through memory or XCom; each returns
a small JSON-able summary.
"""

from __future__ import annotations

from typing import Any

STAGES = ("extract", "normalize", "validate", "load")


def run_stage(stage: str, source: str, logical_date: str, run_id: str, **kwargs: Any) -> dict[str, Any]:
    """Run one stage for one source and logical date (YYYY-MM-DD); returns a small summary."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    raise NotImplementedError(f"stage {stage} is being built")  # replaced as the ingest issue lands
