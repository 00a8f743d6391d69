"""Run a table's Great Expectations suite on staged batches.

The suite is built when the runner starts (etl.validate.suites): the column checks
and keys of schemas/shared/<table>.yml, then the hand-written cross-field and
batch-level expectations of expectations/<table>.json (GE's own suite format). Each
expectation's `meta.level` says what a failure means:
- "row": the failing rows go to quarantine with `meta.reason`;
- "batch": the batch is not published and the run fails with a message.
Sources add batch-level expectations from their YAML: `max_null_rate` per
column and `volume_band` against the previous published batch of the source.

Row-level expectations run on each chunk of a batch, except those whose verdict
on a row depends on other rows (CROSS_ROW: uniqueness), which the pipeline runs
once over the key columns of the whole batch; batch-level ones run once on
per-column null counts gathered over the batch, so memory stays flat as batches
grow (the uniqueness pass holds the key columns only).

Two engines evaluate the same suite (`engine=`, Settings.validation_engine in a run):
- "compiled" (default): etl.validate.compiled evaluates the expectation types
  govbase uses as vectorized predicates with GE's semantics and reports in GE's
  result format; any expectation it does not support still goes to GE;
- "ge": Great Expectations evaluates everything (pandas execution engine).
Both flag the same rows (tests/unit/test_validation_engines.py); the compiled
one is what makes ingest fast enough (bench/validate_bench.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from etl.config import VALIDATION_ENGINES
from etl.contracts import RECORD_KEY, SharedTable, Source
from etl.errors import ContractError
from etl.normalize.reference import reference_dir as project_reference_dir
from etl.validate import compiled
from etl.validate.suites import build_suite

ENGINES = VALIDATION_ENGINES

#: Row-level expectation types whose verdict on one row depends on the other rows of
#: the batch: they must see the whole batch, never one chunk of it.
CROSS_ROW = frozenset({"expect_compound_columns_to_be_unique", "expect_column_values_to_be_unique"})

log = logging.getLogger(__name__)


@dataclass
class BatchVerdict:
    """Outcome of the batch-level expectations of one (source, run)."""

    success: bool
    failures: list[str] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)


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


def gx_suite(name: str, expectations: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> Any:
    """A gx.ExpectationSuite holding `expectations` (dicts in GE's JSON shape)."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    import etl.validate.expectations  # noqa: F401  (registers the custom expectations)

    suite = gx.ExpectationSuite(name=name, meta=meta)
    for exp in expectations:
        cfg = ExpectationConfiguration(type=exp["type"], kwargs=exp["kwargs"], meta=exp.get("meta", {}))
        # match on domain and success keywords: two expectations of one type on one
        # column (a suite's null rate and a source's stricter one) are both kept
        suite.add_expectation_configuration(cfg, match_type="success")
    return suite


def _run(asset: str, df: pd.DataFrame, suite_name: str, expectations: list[dict[str, Any]]) -> Any:
    batch = _batch_definition(asset).get_batch(batch_parameters={"dataframe": df})
    return batch.validate(
        gx_suite(suite_name, expectations),
        result_format={
            "result_format": "COMPLETE",
            "include_unexpected_rows": False,
            "return_unexpected_index_query": False,
            "partial_unexpected_count": 0,
        },
    )


def columns_of(kwargs: dict[str, Any]) -> list[str]:
    if "column" in kwargs:
        return [kwargs["column"]]
    return list(kwargs.get("column_list", []))


class SuiteRunner:
    """Validates staged batches of one source against its table's suite.

    reference_dir: where accepted_values checks read their code lists (default: the
    project's schemas/reference, the folder normalization reads)."""

    def __init__(
        self,
        expectations_dir: Path,
        table: SharedTable,
        source: Source,
        engine: str | None = None,
        reference_dir: Path | None = None,
    ) -> None:
        self.table, self.source = table, source
        self.engine = engine or "compiled"
        if self.engine not in ENGINES:
            raise ValueError(f"validation engine {self.engine!r}: use one of {', '.join(ENGINES)}")
        suite = build_suite(table, expectations_dir, reference_dir or project_reference_dir())
        self.suite = suite
        present = set(source.trust_by_column()) | (
            {source.unpivot.variable_to, source.unpivot.value_to} if source.unpivot else set()
        )
        if source.record_key and RECORD_KEY in table.column_names:
            present.add(RECORD_KEY)  # normalize fills it from the source's record_key fields
        # An expectation on a column this source does not deliver says nothing about it.
        applies = [e for e in suite["expectations"] if set(columns_of(e["kwargs"])) <= present]
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

        for e in self.row_expectations:
            if (
                e["type"] == "expect_compound_columns_to_be_unique"
                and len(e["kwargs"].get("column_list", [])) < 2
            ):
                raise ContractError(
                    str(expectations_dir / f"{table.name}.json"),
                    "expectations",
                    "expect_compound_columns_to_be_unique takes at least two columns in column_list "
                    "(one column: expect_column_values_to_be_unique)",
                )

        other = sorted(
            {e["type"] for e in self.batch_expectations if e["type"] != "expect_column_values_to_not_be_null"}
        )
        if other:
            raise ContractError(
                str(expectations_dir / f"{table.name}.json"),
                "expectations",
                f"batch-level expectation type(s) {', '.join(other)} not supported: the batch level "
                "takes expect_column_values_to_not_be_null (a null rate with `mostly`)",
            )

    @property
    def batch_columns(self) -> list[str]:
        return sorted({c for e in self.batch_expectations for c in columns_of(e["kwargs"])})

    @property
    def cross_row_expectations(self) -> list[dict[str, Any]]:
        """The row-level expectations that must see the whole batch at once (CROSS_ROW)."""
        return [e for e in self.row_expectations if e["type"] in CROSS_ROW]

    def validate_rows(
        self, staged: pd.DataFrame, expectations: list[dict[str, Any]] | None = None
    ) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Row-level expectations (all of them, or `expectations`) on one frame.

        Returns failures (one row per failing row x expectation: position, reason,
        expectation, columns) and the GE result as a JSON-able dict.
        """
        empty = pd.DataFrame(
            {"position": pd.Series([], dtype="int64"), "reason": [], "expectation": [], "columns": []}
        )
        todo = self.row_expectations if expectations is None else expectations
        if not todo or staged.empty:
            return empty, {}
        frame = staged.reset_index(drop=True)
        if self.engine == "compiled":
            native = [e for e in todo if compiled.supports(e)]
            rest = [e for e in todo if not compiled.supports(e)]
        else:
            native, rest = [], todo
        parts: list[pd.DataFrame] = []
        results: list[dict[str, Any]] = []
        for e in native:
            bad, skipped = compiled.unexpected(frame, e)
            positions = np.flatnonzero(bad)
            results.append(compiled.expectation_result(e, len(frame), len(positions), int(skipped.sum())))
            if len(positions):
                parts.append(self._failures(positions, e["type"], e["meta"], e["kwargs"]))
        summary: dict[str, Any] = {}
        if rest:
            result = _run(f"{self.source.name}_rows", frame, self.table.name, rest)
            for r in result.results:
                idx = r.result.get("unexpected_index_list") or []
                if r.success and not idx:
                    continue
                if r.exception_info and r.exception_info.get("raised_exception"):
                    raise RuntimeError(
                        f"expectation {r.expectation_config.type} on {self.source.name} raised: "
                        f"{r.exception_info.get('exception_message')}"
                    )
                positions = np.array(
                    [i if isinstance(i, int) else int(next(iter(i.values()))) for i in idx], dtype=np.int64
                )
                cfg = r.expectation_config
                parts.append(self._failures(positions, cfg.type, cfg.meta, cfg.kwargs))
            summary = _summary(result)
        if results:
            if summary:
                summary["results"] = results + summary["results"]
                ok = sum(bool(r["success"]) for r in summary["results"])
                summary["success"] = ok == len(summary["results"])
                summary["statistics"] = compiled.suite_result(self.table.name, summary["results"], "")[
                    "statistics"
                ]
            else:
                summary = compiled.suite_result(self.table.name, results, f"{self.source.name}_rows")
        failures = pd.concat(parts, ignore_index=True) if parts else empty
        return failures, summary

    @staticmethod
    def _failures(
        positions: np.ndarray, etype: str, meta: dict[str, Any], kwargs: dict[str, Any]
    ) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "position": pd.Series(positions, dtype="int64"),
                "reason": meta["reason"],
                "expectation": etype,
                "columns": ",".join(columns_of(kwargs)),
            }
        )

    def validate_batch(
        self, null_counts: dict[str, int], rows: int, *, source_rows: int, previous_rows: int | None
    ) -> BatchVerdict:
        """Batch-level expectations of one (source, run).

        null_counts: per checked column (batch_columns), how many of the `rows` loaded
        rows are null there (the null-rate expectations).
        source_rows: delivered rows of this batch, compared with the previous batch's
        (the volume expectation), both counted in source rows.
        """
        results, failures = [], []
        checks = [e for e in self.batch_expectations if e["type"] == "expect_column_values_to_not_be_null"]
        if checks and rows:
            if self.engine == "compiled":
                parts = [
                    compiled.expectation_result(e, rows, null_counts.get(e["kwargs"]["column"], 0), 0)
                    for e in checks
                ]
                results.append(
                    compiled.suite_result(f"{self.table.name}_batch", parts, f"{self.source.name}_batch")
                )
                outcome = [(p["expectation_config"]["kwargs"], p["success"], p["result"]) for p in parts]
            else:
                # one small integer column per checked column: 1 present, <NA> null (GE counts the NAs)
                frame = pd.DataFrame(
                    {c: _null_flags(null_counts.get(c, 0), rows) for c in self.batch_columns}
                )
                result = _run(f"{self.source.name}_batch", frame, f"{self.table.name}_batch", checks)
                results.append(_summary(result))
                outcome = [(r.expectation_config.kwargs, r.success, r.result) for r in result.results]
            for kw, ok, res in outcome:
                if not ok:
                    pct = res.get("unexpected_percent") or 0.0
                    failures.append(
                        f"null rate: column {kw['column']} is null in {pct:.1f}% of {rows} rows, "
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
            if self.engine == "compiled":
                ok = low <= source_rows <= high
                part = compiled.expectation_result(volume, source_rows, 0, 0)
                part["success"], part["result"] = ok, {"observed_value": source_rows}
                results.append(
                    compiled.suite_result(f"{self.table.name}_volume", [part], f"{self.source.name}_volume")
                )
            else:
                # one byte per delivered row: GE counts the rows itself
                frame = pd.DataFrame({"_row": np.zeros(source_rows, dtype="int8")})
                result = _run(f"{self.source.name}_volume", frame, f"{self.table.name}_volume", [volume])
                results.append(_summary(result))
                ok = bool(result.success)
            if not ok:
                failures.append(
                    f"volume: {source_rows} rows delivered, outside [{low}, {high}] set by the previous batch of "
                    f"{previous_rows} rows and volume_band {band.min_ratio}-{band.max_ratio} "
                    f"in schemas/sources/{self.source.name}.yml"
                )
        return BatchVerdict(not failures, failures, results)


def _null_flags(nulls: int, rows: int) -> pd.Series:
    """`rows` values, the first `nulls` of them <NA> and the rest 1 (Int8): what GE needs to
    compute a column's null rate."""
    return pd.Series(np.ones(rows, dtype=np.int8)).astype("Int8").mask(np.arange(rows) < nulls)


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
