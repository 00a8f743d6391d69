"""Fault injection for the kill tests: `GOVBASE_FAULT=<point>` makes the process
SIGKILL itself when it reaches that point, exactly as an OOM killer or a lost
worker would. Unset in normal runs, where `checkpoint` is a dictionary lookup."""

from __future__ import annotations

import os
import signal


def checkpoint(point: str) -> None:
    if os.environ.get("GOVBASE_FAULT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
