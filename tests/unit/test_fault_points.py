"""etl.faults: kills at the named point and hit, traces, and a registry that matches the code."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import etl
from etl.faults import CHECKPOINTS

pytestmark = pytest.mark.unit

CHILD = "from etl.faults import checkpoint\nfor i in range(3):\n    checkpoint('a:x'); print(i, flush=True)"


def _child(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    trace = tmp_path / "trace"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        env={**os.environ, "GOVBASE_FAULT_TRACE": str(trace), **env},
    )
    return proc, trace.read_text().split() if trace.exists() else []


@pytest.mark.parametrize(
    ("fault", "printed"), [("a:x", []), ("a:x@1", []), ("a:x@2", ["0"]), ("a:x@3", ["0", "1"])]
)
def test_the_process_dies_at_the_named_hit(tmp_path: Path, fault: str, printed: list[str]) -> None:
    proc, trace = _child(tmp_path, GOVBASE_FAULT=fault)
    assert proc.returncode == -signal.SIGKILL
    assert proc.stdout.split() == printed
    assert trace == ["a:x"] * (len(printed) + 1)  # the fatal hit is traced before the kill


@pytest.mark.parametrize("fault", ["a:x@4", "b:y", "a:x@0"])
def test_another_point_or_hit_lets_the_run_finish(tmp_path: Path, fault: str) -> None:
    proc, trace = _child(tmp_path, GOVBASE_FAULT=fault)
    assert proc.returncode == 0 and proc.stdout.split() == ["0", "1", "2"] and trace == ["a:x"] * 3


def test_every_checkpoint_in_the_code_is_registered_and_every_registered_one_is_in_the_code() -> None:
    root = Path(etl.__file__).parent
    called = [
        m
        for p in root.rglob("*.py")
        for m in re.findall(r"""checkpoint\(["']([^"']+)["']\)""", p.read_text())
    ]
    assert set(called) == set(CHECKPOINTS)
    assert len(set(CHECKPOINTS)) == len(CHECKPOINTS) >= 12
    stages = {"extract", "normalize", "validate", "load", "publish", "consolidate"}
    assert {p.split(":")[0] for p in CHECKPOINTS} >= stages
