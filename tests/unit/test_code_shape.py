"""No function in etl/ (the demo generator aside) longer than about 80 lines.

Ruff has no length rule; this reads the package's syntax trees. The exceptions wait for
the branches reworking those files (pyproject's per-file C901 ignores say which) and
must shrink: an exception that is no longer long fails too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ETL = Path(__file__).resolve().parents[2] / "etl"
MAX_LINES = 80
#: (file under etl/, function): waiting for the branch that reworks the file
EXCEPTIONS: set[tuple[str, str]] = set()


def _long_functions() -> set[tuple[str, str]]:
    out = set()
    for path in sorted(ETL.rglob("*.py")):
        rel = path.relative_to(ETL).as_posix()
        if rel.startswith("demo/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                if node.end_lineno - node.lineno + 1 > MAX_LINES:
                    out.add((rel, node.name))
    return out


def test_no_function_is_longer_than_80_lines() -> None:
    long = _long_functions()
    assert long - EXCEPTIONS == set(), "split these (or say why they must wait)"
    assert EXCEPTIONS - long == set(), "no longer long: drop them from EXCEPTIONS"


def test_test_modules_have_unique_names() -> None:
    """pytest imports test modules by basename (rootdir mode, no packages): two files with one
    name stop the collection of the whole suite."""
    root = Path(__file__).resolve().parents[1]
    names: dict[str, list[str]] = {}
    for path in root.rglob("test_*.py"):
        names.setdefault(path.name, []).append(str(path.relative_to(root)))
    clashes = {n: p for n, p in names.items() if len(p) > 1}
    assert not clashes, f"test modules sharing a name: {clashes}"
