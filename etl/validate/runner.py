"""Run a table's Great Expectations suite on staged batches.

The suite lives in expectations/<table>.json (GE's own suite format). Each
expectation's `meta.level` says what a failure means:
- "row": the failing rows go to quarantine with `meta.reason`;
- "batch": the batch is not published and the run fails with a message.
Sources add batch-level expectations from their YAML: `max_null_rate` per
column and `volume_band` against the previous published batch of the source.

Row-level expectations run on each chunk of a batch; batch-level ones run once
on a narrow frame of null indicators (one small integer column per checked
column), so memory stays flat as batches grow.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from etl.contracts import SharedTable, Source
from etl.errors import ContractError

log = logging.getLogger(__name__)


@dataclass
class BatchVerdict:
    """Outcome of the batch-level expectations of one (source, run)."""

    success: bool
    failures: list[str] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)


def load_suite(expectations_dir: Path, table: str) -> dict[str, Any]:
    path = expectations_dir / f"{table}.json"
    try:
        suite: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContractError(str(path), "(file)", f"no expectation suite for table {table}") from None
    except json.JSONDecodeError as exc:
        raise ContractError(str(path), f"line {exc.lineno}", f"not valid JSON: {exc.msg}") from exc
    for i, exp in enumerate(suite.get("expectations", [])):
        level = exp.get("meta", {}).get("level")
        if level not in ("row", "batch"):
            raise ContractError(str(path), f"expectations[{i}].meta.level", "must be 'row' or 'batch'")
        if level == "row" and not exp["meta"].get("reason"):
            raise ContractError(
                str(path), f"expectations[{i}].meta.reason", "a row-level expectation needs a reason"
            )
    return suite


@lru_cache(maxsize=1)
def _context() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    import etl.validate.expectations  # noqa: F401  (registers the custom expectations)

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    ds = ctx.data_sources.add_pandas("govbase")
    return ctx, ds


_batch_defs: dict[str, Any] = {}


def _batch_definition(name: str) -> Any:
    if name not in _batch_defs:
        _, ds = _context()
        asset = ds.add_dataframe_asset(name)
        _batch_defs[name] = asset.add_batch_definition_whole_dataframe("whole")
    return _batch_defs[name]


def _suite(name: str, expectations: list[dict[str, Any]]) -> Any:
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    suite = gx.ExpectationSuite(name=name)
    for exp in expectations:
        cfg = ExpectationConfiguration(type=exp["type"], kwargs=exp["kwargs"], meta=exp.get("meta", {}))
        suite.add_expectation_configuration(cfg)
    return suite


def _run(asset: str, df: pd.DataFrame, suite_name: str, expectations: list[dict[str, Any]]) -> Any:
    batch = _batch_definition(asset).get_batch(batch_parameters={"dataframe": df})
    return batch.validate(
        _suite(suite_name, expectations),
        result_format={
            "result_format": "COMPLETE",
            "include_unexpected_rows": False,
            "return_unexpected_index_query": False,
            "partial_unexpected_count": 0,
        },
    )


def _columns_of(kwargs: dict[str, Any]) -> list[str]:
    if "column" in kwargs:
        return [kwargs["column"]]
    return list(kwargs.get("column_list", []))


class SuiteRunner:
    """Validates staged batches of one source against its table's suite."""

    def __init__(self, expectations_dir: Path, table: SharedTable, source: Source) -> None:
        self.table, self.source = table, source
        suite = load_suite(expectations_dir, table.name)
        present = set(source.trust_by_column()) | (
            {source.unpivot.variable_to, source.unpivot.value_to} if source.unpivot else set()
        )
        # An expectation on a column this source does not deliver says nothing about it.
        applies = [e for e in suite["expectations"] if set(_columns_of(e["kwargs"])) <= present]
        self.row_expectations = [e for e in applies if e["meta"]["level"] == "row"]
        self.batch_expectations = [e for e in applies if e["meta"]["level"] == "batch"]
        for col, rate in source.max_null_rate.items():
            self.batch_expectations.append(
                {
                    "type": "expect_column_values_to_not_be_null",
                    "kwargs": {"column": col, "mostly": 1 - rate},
                    "meta": {"level": "batch", "reason": "null_rate", "from": f"{source.name}.max_null_rate"},
                }
            )

    @property
    def batch_columns(self) -> list[str]:
        return sorted({c for e in self.batch_expectations for c in _columns_of(e["kwargs"])})

    def validate_rows(self, staged: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Row-level expectations on one chunk.

        Returns failures (one row per failing row x expectation: position, reason,
        expectation, columns) and the GE result as a JSON-able dict.
        """
        empty = pd.DataFrame(
            {"position": pd.Series([], dtype="int64"), "reason": [], "expectation": [], "columns": []}
        )
        if not self.row_expectations or staged.empty:
            return empty, {}
        frame = staged.reset_index(drop=True)
        result = _run(f"{self.source.name}_rows", frame, self.table.name, self.row_expectations)
        parts = []
        for r in result.results:
            idx = r.result.get("unexpected_index_list") or []
            if r.success and not idx:
                continue
            if r.exception_info and r.exception_info.get("raised_exception"):
                raise RuntimeError(
                    f"expectation {r.expectation_config.type} on {self.source.name} raised: "
                    f"{r.exception_info.get('exception_message')}"
                )
            positions = [i if isinstance(i, int) else int(next(iter(i.values()))) for i in idx]
            meta = r.expectation_config.meta
            parts.append(
                pd.DataFrame(
                    {
                        "position": pd.Series(positions, dtype="int64"),
                        "reason": meta["reason"],
                        "expectation": r.expectation_config.type,
                        "columns": ",".join(_columns_of(r.expectation_config.kwargs)),
                    }
                )
            )
        failures = pd.concat(parts, ignore_index=True) if parts else empty
        return failures, _summary(result)

    def validate_batch(
        self, null_flags: pd.DataFrame, *, source_rows: int, previous_rows: int | None
    ) -> BatchVerdict:
        """Batch-level expectations of one (source, run).

        null_flags: one row per loaded row, one column per checked column, 1 where the
        value is present and <NA> where it is null (the null-rate expectations).
        source_rows: delivered rows of this batch, compared with the previous batch's
        (the volume expectation), both counted in source rows.
        """
        results, failures = [], []
        if self.batch_expectations and len(null_flags.columns):
            result = _run(
                f"{self.source.name}_batch", null_flags, f"{self.table.name}_batch", self.batch_expectations
            )
            results.append(_summary(result))
            for r in result.results:
                if not r.success:
                    kw = r.expectation_config.kwargs
                    pct = r.result.get("unexpected_percent") or 0.0
                    failures.append(
                        f"null rate: column {kw['column']} is null in {pct:.1f}% of {len(null_flags)} rows, "
                        f"above the allowed {(1 - kw['mostly']) * 100:.1f}%"
                    )
        if previous_rows:
            band = self.source.volume_band
            low, high = int(previous_rows * band.min_ratio), int(previous_rows * band.max_ratio) + 1
            volume = {
                "type": "expect_table_row_count_to_be_between",
                "kwargs": {"min_value": low, "max_value": high},
                "meta": {"level": "batch", "reason": "volume", "previous_rows": previous_rows},
            }
            # one byte per delivered row: GE counts the rows itself
            frame = pd.DataFrame({"_row": np.zeros(source_rows, dtype="int8")})
            result = _run(f"{self.source.name}_volume", frame, f"{self.table.name}_volume", [volume])
            results.append(_summary(result))
            if not result.success:
                failures.append(
                    f"volume: {source_rows} rows delivered, outside [{low}, {high}] set by the previous batch of "
                    f"{previous_rows} rows and volume_band {band.min_ratio}-{band.max_ratio} "
                    f"in schemas/sources/{self.source.name}.yml"
                )
        return BatchVerdict(not failures, failures, results)


def _summary(result: Any) -> dict[str, Any]:
    """A compact, JSON-able view of a GE result (no unexpected index lists)."""
    out = result.to_json_dict()
    for r in out.get("results", []):
        res = r.get("result", {})
        for k in (
            "unexpected_index_list",
            "partial_unexpected_list",
            "partial_unexpected_index_list",
            "partial_unexpected_counts",
            "unexpected_list",
            "unexpected_index_query",
        ):
            res.pop(k, None)
    return dict(out)
