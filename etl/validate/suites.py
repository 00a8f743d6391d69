"""A table's Great Expectations suite, built from its contract.

The suite of a shared table has two parts, joined when it loads:

1. generated from schemas/shared/<table>.yml, in column order:
   - a column with `nullable: false`, and every key column: not null
     (expect_column_values_to_not_be_null, reason missing_required);
   - each check declared beside a column (etl.contracts.Check):
     not_null, unique, accepted_values (the codes of a list in schemas/reference, read
     when the suite is built: the list has no copy in the suite), pattern, range,
     resident_id, credit_code;
   then the table's `keys`: unique within the batch (expect_column_values_to_be_unique
   for one key column, expect_compound_columns_to_be_unique for several;
   reason duplicate_key);
2. written by hand in expectations/<table>.json (optional): only what no column
   can say alone, i.e. cross-field row expectations (a resident ID against the
   birth date) and batch-level ones (null rates). A row-level expectation on one
   column there is a ContractError: it belongs beside the column in the YAML.

Every generated expectation carries meta.level "row", meta.reason and meta.from
(the contract and key it comes from), so a quarantined row and a Data Docs page
both point at the line of YAML that rejected it.

The built suite is never stored in the repository (it would be a second copy
of the contract that can drift); `govbase contracts --write-suites DIR` writes
the full suites of every table in GE's JSON format for GE tools and review.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from etl import reference
from etl.contracts import Check, SharedTable
from etl.errors import ContractError

SUITE_DESCRIPTION = (
    "Row-level expectations quarantine rows with meta.reason; batch-level ones (meta.level = batch) "
    "stop the publish. Column checks and keys come from schemas/shared/{table}.yml (meta.from); "
    "the rest from expectations/{table}.json."
)


def _row(etype: str, kwargs: dict[str, Any], reason: str, origin: str) -> dict[str, Any]:
    return {"type": etype, "kwargs": kwargs, "meta": {"level": "row", "reason": reason, "from": origin}}


def _check(column: str, check: Check, reference_dir: Path, origin: str) -> dict[str, Any]:
    """The expectation of one declared check."""
    kw: dict[str, Any] = {"column": column}
    if check.kind == "not_null":
        etype = "expect_column_values_to_not_be_null"
    elif check.kind == "unique":
        etype = "expect_column_values_to_be_unique"
    elif check.kind == "accepted_values":
        etype = "expect_column_values_to_be_in_set"
        kw["value_set"] = reference.codes(reference_dir, str(check.code_list))
    elif check.kind == "pattern":
        etype = "expect_column_values_to_match_regex"
        kw["regex"] = check.regex
    elif check.kind == "range":
        etype = "expect_column_values_to_be_between"
        for bound, value in (("min_value", check.min), ("max_value", check.max)):
            if value is not None:
                kw[bound] = value  # a float, as GE stores it
    else:  # resident_id, credit_code
        etype = f"expect_column_values_to_be_valid_{check.kind}"
    return _row(etype, kw, check.reason, origin)


def generated_expectations(table: SharedTable, reference_dir: Path) -> list[dict[str, Any]]:
    """The expectations the contract of `table` declares (see the module doc), in order."""
    where = f"schemas/shared/{table.name}.yml"
    out: list[dict[str, Any]] = []
    for col in table.columns:
        declared = [c for c in col.checks if c.kind == "not_null"]
        if (col.name in table.keys or not col.nullable) and not declared:
            origin = f"{where}: keys" if col.name in table.keys else f"{where}: columns.{col.name}.nullable"
            out.append(
                _row("expect_column_values_to_not_be_null", {"column": col.name}, "missing_required", origin)
            )
        for i, check in enumerate(col.checks):
            out.append(_check(col.name, check, reference_dir, f"{where}: columns.{col.name}.checks[{i}]"))
    if len(table.keys) == 1:
        if any(c.kind == "unique" for c in table.column(table.keys[0]).checks):
            return out  # the key column declares it already
        out.append(
            _row(
                "expect_column_values_to_be_unique",
                {"column": table.keys[0]},
                "duplicate_key",
                f"{where}: keys",
            )
        )
    else:
        kw: dict[str, Any] = {"column_list": list(table.keys)}
        out.append(_row("expect_compound_columns_to_be_unique", kw, "duplicate_key", f"{where}: keys"))
    return out


def hand_written(expectations_dir: Path, table: str) -> list[dict[str, Any]]:
    """The expectations of expectations/<table>.json (none when the file is absent),
    checked: a level, a reason on row-level ones, no single-column row-level one."""
    path = expectations_dir / f"{table}.json"
    try:
        suite: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except json.JSONDecodeError as exc:
        raise ContractError(str(path), f"line {exc.lineno}", f"not valid JSON: {exc.msg}") from exc
    expectations: list[dict[str, Any]] = suite.get("expectations", [])
    for i, exp in enumerate(expectations):
        level = exp.get("meta", {}).get("level")
        if level not in ("row", "batch"):
            raise ContractError(str(path), f"expectations[{i}].meta.level", "must be 'row' or 'batch'")
        if level == "row" and not exp["meta"].get("reason"):
            raise ContractError(
                str(path), f"expectations[{i}].meta.reason", "a row-level expectation needs a reason"
            )
        if level == "row" and "column" in exp.get("kwargs", {}):
            raise ContractError(
                str(path),
                f"expectations[{i}]",
                f"{exp.get('type')} on column {exp['kwargs']['column']!r} is a column-level check: declare it "
                f"beside the column in schemas/shared/{table}.yml (checks:), not in the JSON suite",
            )
    return expectations


def build_suite(table: SharedTable, expectations_dir: Path, reference_dir: Path) -> dict[str, Any]:
    """The full suite of `table` in GE's JSON format: generated, then hand-written."""
    return {
        "name": table.name,
        "meta": {"description": SUITE_DESCRIPTION.format(table=table.name)},
        "expectations": generated_expectations(table, reference_dir)
        + hand_written(expectations_dir, table.name),
    }


def write_suites(
    tables: dict[str, SharedTable], expectations_dir: Path, reference_dir: Path, out_dir: Path
) -> list[Path]:
    """Write the full built suite of every table to out_dir/<table>.json; returns the paths.

    out_dir must not be expectations_dir: the hand-written part lives there and a full
    suite written over it would be read back as hand-written."""
    if out_dir.resolve() == expectations_dir.resolve():
        raise ContractError(
            str(out_dir),
            "(folder)",
            "write the built suites elsewhere: this folder holds the hand-written parts",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, table in sorted(tables.items()):
        path = out_dir / f"{name}.json"
        suite = build_suite(table, expectations_dir, reference_dir)
        path.write_text(json.dumps(suite, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        paths.append(path)
    return paths
