"""Memory stays flat as input grows: a ~1 GB CSV extracts under 1 GB peak RSS (bench/extract_memory.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]

BENCH = Path(__file__).resolve().parents[2] / "bench" / "extract_memory.py"


@pytest.mark.timeout(3600)
def test_one_gigabyte_csv_under_one_gigabyte_rss() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--mb", "1024"], capture_output=True, text=True, check=False
    )
    assert proc.returncode in (0, 1), proc.stderr
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["status"] == "extracted" and figures["rows"] == figures["expected_rows"]
    assert figures["file_mb"] >= 1000
    assert figures["peak_rss_mb"] < 1024, figures
