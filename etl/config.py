"""Resolve the environment in one place.

Everything that depends on where things live (GOVBASE_HOME, the project's
contract folders, the warehouse file) is computed here, so a deployment swaps
one environment variable, not code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _default_project_dir() -> Path:
    """The folder holding schemas/ and expectations/.

    GOVBASE_PROJECT_DIR wins; otherwise the checkout the package is installed
    from (editable install), then the current directory.
    """
    env = os.environ.get("GOVBASE_PROJECT_DIR")
    if env:
        return Path(env).resolve()
    for candidate in (_PACKAGE_DIR.parent, Path.cwd()):
        if (candidate / "schemas" / "shared").is_dir():
            return candidate
    return Path.cwd()


@dataclass(frozen=True)
class Settings:
    """Paths for one govbase deployment.

    home: GOVBASE_HOME (default ./var), holding landing/, warehouse/, docs/, reports/.
    project_dir: where schemas/ and expectations/ are read from.
    lock_timeout: seconds a writer waits for the home's writer lock before it gives up
        (GOVBASE_LOCK_TIMEOUT, default 3600: a second run waits for a whole first run).
    """

    home: Path
    project_dir: Path
    lock_timeout: float = 3600.0

    @cached_property
    def landing(self) -> Path:
        return self.home / "landing"

    @cached_property
    def truth_dir(self) -> Path:
        return self.landing / "_truth"

    @cached_property
    def warehouse(self) -> Path:
        return self.home / "warehouse"

    def layer(self, name: str) -> Path:
        """Parquet folder of a warehouse layer: raw, staging, quarantine, core, open."""
        return self.warehouse / name

    @cached_property
    def duckdb_path(self) -> Path:
        return self.warehouse / "govbase.duckdb"

    @cached_property
    def catalog_path(self) -> Path:
        """The published read-only catalog analysts open (replaced atomically by the writer)."""
        return self.warehouse / "catalog" / "govbase.duckdb"

    @cached_property
    def docs_dir(self) -> Path:
        return self.home / "docs"

    @cached_property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @cached_property
    def schemas_dir(self) -> Path:
        return self.project_dir / "schemas"

    @cached_property
    def expectations_dir(self) -> Path:
        return self.project_dir / "expectations"

    def source_landing(self, source: str) -> Path:
        return self.landing / source


def get_settings(home: str | os.PathLike[str] | None = None) -> Settings:
    """Settings from the environment; `home` overrides GOVBASE_HOME."""
    raw_home = home if home is not None else os.environ.get("GOVBASE_HOME", "var")
    timeout = os.environ.get("GOVBASE_LOCK_TIMEOUT")
    try:
        lock_timeout = float(timeout) if timeout else Settings.lock_timeout
    except ValueError:
        raise ValueError(f"GOVBASE_LOCK_TIMEOUT={timeout!r}: not a number of seconds") from None
    return Settings(
        home=Path(raw_home).resolve(), project_dir=_default_project_dir(), lock_timeout=lock_timeout
    )
