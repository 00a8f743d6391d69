"""The compiled engine: a suite's expectations evaluated as vectorized predicates.

Great Expectations resolves every expectation through its metric graph, which
costs seconds per million rows and per expectation (measured in
bench/validate_bench.py). The suites stay Great Expectations suites
(expectations/<table>.json, GE's format and expectation types); this module
evaluates the expectation types govbase uses directly on the staged frame, with
GE's semantics:

- column map expectations ignore null values (except expect_column_values_to_not_be_null);
  `unexpected_percent` is over the non-null values;
- uniqueness marks every occurrence of a repeated value (or combination), not
  only the later ones;
- multicolumn expectations skip rows by `ignore_row_if` (GE's defaults:
  any_value_is_missing for the resident-ID agreement checks, all_values_are_missing
  for compound uniqueness);
- `mostly` decides success, not which rows are unexpected;
- regular expressions are searched (not anchored), like pandas `str.contains`;
  RE2 runs them, except that a value holding a newline is searched with Python's
  re (`$` differs), and a pattern using syntax whose meaning differs between the
  two (\\d \\w \\s \\b, lookarounds, backreferences) is left to GE.

Results are returned in GE's own JSON shape (ExpectationSuiteValidationResult),
so Data Docs render them like any GE result. An expectation type or keyword not
listed here raises Unsupported; SuiteRunner then hands that expectation to GE.
tests/unit/test_validation_engines.py checks that both engines flag the same rows
and the same counts on generated and demo data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etl.normalize._common import to_arrow
from etl.validate import predicates

#: keywords that only tune reporting or success; they don't change which rows are unexpected
_NEUTRAL_KWARGS = {"column", "column_list", "mostly", "result_format", "catch_exceptions", "meta", "batch_id"}


class Unsupported(Exception):
    """An expectation this engine does not evaluate (GE does)."""


def _strings(s: pd.Series) -> pa.Array:
    return to_arrow(s.astype("string"))


def _not_null(df: pd.DataFrame, kw: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    isna = df[kw["column"]].isna().to_numpy()
    return isna, np.zeros(len(df), dtype=bool)  # nothing is "missing" for this one


def _in_set(df: pd.DataFrame, kw: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    col = df[kw["column"]]
    missing = col.isna().to_numpy()
    return ~missing & ~col.isin(list(kw["value_set"])).to_numpy(dtype=bool, na_value=False), missing


#: Regular expression syntax whose meaning differs between Python's re (what GE's pandas
#: engine runs) and RE2 (Arrow): Unicode-aware classes, lookarounds, backreferences,
#: Python-only escapes. Expectations using any of it go to GE.
_PYTHON_ONLY_REGEX = re.compile(r"\\[dwsbDWSBuUNZAx0-9]|\(\?[=!<]|\(\?P=")


def _regex_supported(regex: Any) -> bool:
    if not isinstance(regex, str) or _PYTHON_ONLY_REGEX.search(regex):
        return False
    try:
        re.compile(regex)
        pc.match_substring_regex(pa.array(["x"], pa.string()), regex)
    except (re.error, pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _regex(df: pd.DataFrame, kw: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    col = df[kw["column"]]
    missing = col.isna().to_numpy()
    arr = _strings(col)
    hit = pc.fill_null(pc.match_substring_regex(arr, kw["regex"]), False).to_numpy(zero_copy_only=False)
    # Python's `$` also matches before a final newline, RE2's does not: values holding a
    # newline (rare) are searched with Python's re, as GE does.
    multiline = np.flatnonzero(
        pc.fill_null(pc.match_substring(arr, "\n"), False).to_numpy(zero_copy_only=False)
    )
    if len(multiline):
        pattern = re.compile(kw["regex"])
        values = arr.take(pa.array(multiline)).to_pylist()
        hit[multiline] = [pattern.search(v) is not None for v in values]
    return ~missing & ~hit, missing


def _between(df: pd.DataFrame, kw: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    col = df[kw["column"]]
    missing = col.isna().to_numpy()
    values = col.to_numpy(dtype="float64", na_value=np.nan) if col.dtype != object else col.astype(float)
    bad = np.zeros(len(col), dtype=bool)
    lo, hi = kw.get("min_value"), kw.get("max_value")
    with np.errstate(invalid="ignore"):
        if lo is not None:
            bad |= values <= lo if kw.get("strict_min") else values < lo
        if hi is not None:
            bad |= values >= hi if kw.get("strict_max") else values > hi
    return ~missing & bad, missing


def _skip_rows(df: pd.DataFrame, cols: list[str], ignore: str) -> np.ndarray:
    nulls = np.column_stack([df[c].isna().to_numpy() for c in cols])
    if ignore == "any_value_is_missing":
        return np.asarray(nulls.any(axis=1))
    if ignore == "all_values_are_missing":
        return np.asarray(nulls.all(axis=1))
    if ignore == "never":
        return np.zeros(len(df), dtype=bool)
    raise Unsupported(f"ignore_row_if={ignore!r}")


def _multi(
    check: Callable[[pd.Series, pd.Series], pd.Series], default_ignore: str
) -> Callable[[pd.DataFrame, dict[str, Any]], tuple[np.ndarray, np.ndarray]]:
    def run(df: pd.DataFrame, kw: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        cols = list(kw["column_list"])
        skip = _skip_rows(df, cols, kw.get("ignore_row_if", default_ignore))
        # only the rows GE keeps: a check may look at its whole input (date format inference)
        a, b = df[cols[0]], df[cols[1]]
        if skip.any():
            kept = np.flatnonzero(~skip)
            a, b = a.iloc[kept], b.iloc[kept]
            bad = np.zeros(len(df), dtype=bool)
            bad[kept] = ~check(a, b).to_numpy(dtype=bool)
            return bad, skip
        return ~check(a, b).to_numpy(dtype=bool), skip

    return run


def _unique(df: pd.DataFrame, kw: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    cols = list(kw["column_list"])
    skip = _skip_rows(df, cols, kw.get("ignore_row_if", "all_values_are_missing"))
    dup = np.zeros(len(df), dtype=bool)
    kept = np.flatnonzero(~skip)
    dup[kept] = df.iloc[kept][cols].duplicated(keep=False).to_numpy()
    return dup, skip


def _unique_values(df: pd.DataFrame, kw: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """expect_column_values_to_be_unique: every occurrence of a repeated non-null value."""
    col = df[kw["column"]]
    missing = col.isna().to_numpy()
    dup = np.zeros(len(col), dtype=bool)
    kept = np.flatnonzero(~missing)
    dup[kept] = col.iloc[kept].duplicated(keep=False).to_numpy()
    return dup, missing


def _column_map(
    check: Callable[[pd.Series], pd.Series],
) -> Callable[[pd.DataFrame, dict[str, Any]], tuple[np.ndarray, np.ndarray]]:
    def run(df: pd.DataFrame, kw: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        col = df[kw["column"]]
        missing = col.isna().to_numpy()
        ok = check(col).to_numpy(dtype=bool)
        return ~missing & ~ok, missing

    return run


#: expectation type -> (evaluator, keywords it understands beyond the neutral ones)
EVALUATORS: dict[
    str, tuple[Callable[[pd.DataFrame, dict[str, Any]], tuple[np.ndarray, np.ndarray]], set[str]]
] = {
    "expect_column_values_to_not_be_null": (_not_null, set()),
    "expect_column_values_to_be_in_set": (_in_set, {"value_set"}),
    "expect_column_values_to_match_regex": (_regex, {"regex"}),
    "expect_column_values_to_be_between": (_between, {"min_value", "max_value", "strict_min", "strict_max"}),
    "expect_compound_columns_to_be_unique": (_unique, {"ignore_row_if"}),
    "expect_column_values_to_be_unique": (_unique_values, set()),
    "expect_column_values_to_be_valid_resident_id": (_column_map(predicates.valid_resident_id), set()),
    "expect_column_values_to_be_valid_credit_code": (_column_map(predicates.valid_credit_code), set()),
    "expect_resident_id_to_agree_with_birth_date": (
        _multi(predicates.id_agrees_with_birth_date, "any_value_is_missing"),
        {"ignore_row_if"},
    ),
    "expect_resident_id_to_agree_with_gender": (
        _multi(predicates.id_agrees_with_gender, "any_value_is_missing"),
        {"ignore_row_if"},
    ),
}


def supports(expectation: dict[str, Any]) -> bool:
    entry = EVALUATORS.get(expectation["type"])
    if entry is None:
        return False
    kwargs = expectation.get("kwargs", {})
    if expectation["type"] == "expect_column_values_to_match_regex" and not _regex_supported(
        kwargs.get("regex")
    ):
        return False
    return set(kwargs) <= _NEUTRAL_KWARGS | entry[1]


def unexpected(df: pd.DataFrame, expectation: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(unexpected, skipped) boolean masks over the rows of `df` for one expectation.

    `skipped` marks rows the expectation does not judge (null values of a column
    map expectation, rows dropped by ignore_row_if).
    """
    if not supports(expectation):
        raise Unsupported(expectation["type"])
    fn, _ = EVALUATORS[expectation["type"]]
    return fn(df, expectation["kwargs"])


def _pct(part: int, whole: int) -> float | None:
    return part / whole * 100 if whole else None


def expectation_result(
    expectation: dict[str, Any], n: int, n_unexpected: int, n_skipped: int
) -> dict[str, Any]:
    """One expectation's result in GE's JSON shape (ExpectationValidationResult.to_json_dict)."""
    kw = expectation["kwargs"]
    mostly = float(kw.get("mostly", 1.0))
    judged = n - n_skipped
    if expectation["type"] == "expect_column_values_to_not_be_null":
        result: dict[str, Any] = {
            "element_count": n,
            "unexpected_count": n_unexpected,
            "unexpected_percent": _pct(n_unexpected, n),
        }
        judged = n
    else:
        result = {
            "element_count": n,
            "unexpected_count": n_unexpected,
            "unexpected_percent": _pct(n_unexpected, judged),
            "missing_count": n_skipped,
            "missing_percent": _pct(n_skipped, n),
            "unexpected_percent_total": _pct(n_unexpected, n),
            "unexpected_percent_nonmissing": _pct(n_unexpected, judged),
        }
    success = judged == 0 or (judged - n_unexpected) / judged >= mostly
    return {
        "success": bool(success),
        "expectation_config": {
            "type": expectation["type"],
            "kwargs": dict(kw),
            "meta": dict(expectation.get("meta", {})),
            "severity": "critical",
        },
        "result": result,
        "meta": {"engine": "govbase-compiled"},
        "exception_info": {"raised_exception": False, "exception_traceback": None, "exception_message": None},
    }


def suite_result(suite_name: str, results: list[dict[str, Any]], batch: str) -> dict[str, Any]:
    """Results of several expectations as one suite result (ExpectationSuiteValidationResult.to_json_dict)."""
    ok = sum(r["success"] for r in results)
    return {
        "success": ok == len(results),
        "results": results,
        "suite_name": suite_name,
        "suite_parameters": {},
        "statistics": {
            "evaluated_expectations": len(results),
            "successful_expectations": ok,
            "unsuccessful_expectations": len(results) - ok,
            "success_percent": _pct(ok, len(results)) if results else None,
        },
        "meta": {"engine": "govbase-compiled", "batch": batch},
        "id": None,
    }


NORMALIZE_EXPECTATION = "expect_column_values_to_be_accepted_by_normalize"


def normalize_results(value_errors: pd.DataFrame, delivered_rows: int, source: str) -> list[dict[str, Any]]:
    """The rows normalize rejected, per column, as results of the custom expectation
    expect_column_values_to_be_accepted_by_normalize (etl.validate.expectations), so that a
    column's validation shows them beside its other checks: one expectation result (GE's JSON shape) per column normalize rejected values of:
    `value_errors` (etl.validate.quarantine.VALUE_ERROR_COLUMNS) counted in distinct
    delivered rows out of `delivered_rows`, the reasons in meta.reason."""
    if not len(value_errors) or not delivered_rows:
        return []
    errors = value_errors.dropna(subset=["column"])
    errors = errors[errors["column"].astype(str).str.strip().ne("")]
    out = []
    for column, group in errors.groupby(errors["column"].astype(str), sort=True):
        rows = int(group[["_batch_id", "_row_number"]].drop_duplicates().shape[0])
        reasons = ",".join(sorted({str(r) for r in group["reason"].dropna()}))
        config = {
            "type": NORMALIZE_EXPECTATION,
            "kwargs": {"column": column},
            "meta": {"level": "row", "reason": reasons, "from": f"schemas/sources/{source}.yml: normalize"},
        }
        result = expectation_result(config, delivered_rows, rows, 0)
        result["meta"] = {"engine": "govbase-normalize"}
        out.append(result)
    return out
