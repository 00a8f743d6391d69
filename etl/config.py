"""Resolve the environment in one place.

Everything that depends on where things live (GOVBASE_HOME, the project's
contract folders, the warehouse file) and every switch of a run (the validation
engine, the retry delay of the DAGs) is a field of `Settings`, read from the
environment once, in `get_settings`. Callers that override a switch (a CLI flag)
build Settings with it; nothing writes os.environ at run time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from etl.errors import GovbaseError

_PACKAGE_DIR = Path(__file__).resolve().parent
#: who evaluates the expectation suites (etl.validate.runner)
VALIDATION_ENGINES = ("compiled", "ge")
#: the language of department-facing reports: Chinese with English alongside, or one of them
REPORT_LANGUAGES = ("zh-en", "zh", "en")


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
    """Paths and switches of one govbase deployment.

    home: GOVBASE_HOME (default ./var), holding landing/, warehouse/, docs/, reports/.
    project_dir: GOVBASE_PROJECT_DIR, where schemas/ and expectations/ are read from.
    validation_engine: GOVBASE_VALIDATION_ENGINE, `compiled` (default: the suites'
      expectations as vectorized checks with GE semantics) or `ge` (every expectation
      through Great Expectations).
    retry_delay_seconds: GOVBASE_RETRY_DELAY_SECONDS, the first retry delay of a DAG
      task (default 30; doubled per try).
    pseudonym_key: GOVBASE_PSEUDONYM_KEY, the secret of the keyed pseudonyms in department
      shares (HMAC-SHA256); `version:key` names its version, else GOVBASE_PSEUDONYM_KEY_VERSION
      (default v1). Never logged (not in repr).
    lock_timeout: GOVBASE_LOCK_TIMEOUT, seconds a writer waits for the home's writer lock
      (etl.lock) before it gives up (default 3600: a second run waits for a whole first run).
    report_language: GOVBASE_REPORT_LANGUAGE, the language of the rejection reports and the run
      report: `zh-en` (default: Simplified Chinese with English alongside), `zh` or `en`.
    watch: GOVBASE_WATCH, the sources whose deliveries start their own ingest in Airflow
      (etl.orchestration.watchers): `all` (default), `none`, or a comma list of sources.
    """

    home: Path
    project_dir: Path
    validation_engine: str = "compiled"
    retry_delay_seconds: float = 30.0
    pseudonym_key: str | None = field(default=None, repr=False)
    pseudonym_key_version: str = "v1"
    lock_timeout: float = 3600.0
    report_language: str = "zh-en"
    watch: str = "all"

    def __post_init__(self) -> None:
        if self.validation_engine not in VALIDATION_ENGINES:
            raise GovbaseError(
                f"validation engine {self.validation_engine!r}: use one of {', '.join(VALIDATION_ENGINES)}"
            )
        if self.report_language not in REPORT_LANGUAGES:
            raise GovbaseError(
                f"report language {self.report_language!r}: use one of {', '.join(REPORT_LANGUAGES)}"
            )
        if not self.retry_delay_seconds >= 0:
            raise GovbaseError(f"retry delay {self.retry_delay_seconds!r}: a number of seconds >= 0")
        if not self.lock_timeout >= 0:
            raise GovbaseError(f"lock timeout {self.lock_timeout!r}: a number of seconds >= 0")

    def with_(self, **changes: Any) -> Settings:
        """These settings with some fields replaced (a CLI flag overriding the environment)."""
        return replace(self, **changes)

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
        """The published read-only catalog readers open (etl.published; replaced atomically
        by the writer), never the writer's own `duckdb_path`."""
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


def get_settings(home: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Settings from the environment; `home` overrides GOVBASE_HOME, `overrides` any other
    field (None values are ignored, so an unset CLI option keeps the environment's)."""
    raw_home = home if home is not None else os.environ.get("GOVBASE_HOME", "var")
    fields: dict[str, Any] = {
        "home": Path(raw_home).resolve(),
        "project_dir": _default_project_dir(),
        "validation_engine": os.environ.get("GOVBASE_VALIDATION_ENGINE", "compiled"),
        "retry_delay_seconds": _seconds("GOVBASE_RETRY_DELAY_SECONDS", "30"),
        "lock_timeout": _seconds("GOVBASE_LOCK_TIMEOUT", "3600"),
        "report_language": os.environ.get("GOVBASE_REPORT_LANGUAGE", "zh-en"),
        "watch": os.environ.get("GOVBASE_WATCH", "all"),
        **_pseudonym_key(),
    }
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**fields)


def _seconds(name: str, default: str) -> float:
    raw = os.environ.get(name) or default
    try:
        return float(raw)
    except ValueError:
        raise GovbaseError(f"{name}={raw!r}: a number of seconds") from None


def _pseudonym_key() -> dict[str, Any]:
    """GOVBASE_PSEUDONYM_KEY as (key, version): `version:key`, or the key with
    GOVBASE_PSEUDONYM_KEY_VERSION (default v1); no key when unset or empty."""
    raw = os.environ.get("GOVBASE_PSEUDONYM_KEY", "")
    version = os.environ.get("GOVBASE_PSEUDONYM_KEY_VERSION", "v1")
    if ":" in raw:
        version, raw = raw.split(":", 1)
    return {"pseudonym_key": raw or None, "pseudonym_key_version": version}
