"""Settings: every switch is a field, read from the environment once; flags build Settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etl.cli import app
from etl.config import get_settings
from etl.errors import GovbaseError


def test_switches_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GOVBASE_VALIDATION_ENGINE", raising=False)
    monkeypatch.delenv("GOVBASE_RETRY_DELAY_SECONDS", raising=False)
    monkeypatch.delenv("GOVBASE_LOCK_TIMEOUT", raising=False)
    default = get_settings(tmp_path)
    assert (default.validation_engine, default.retry_delay_seconds) == ("compiled", 30.0)
    assert default.lock_timeout == 3600.0
    monkeypatch.setenv("GOVBASE_LOCK_TIMEOUT", "2.5")
    assert get_settings(tmp_path).lock_timeout == 2.5
    monkeypatch.setenv("GOVBASE_VALIDATION_ENGINE", "ge")
    monkeypatch.setenv("GOVBASE_RETRY_DELAY_SECONDS", "1.5")
    s = get_settings(tmp_path)
    assert (s.validation_engine, s.retry_delay_seconds) == ("ge", 1.5)
    # an override wins over the environment; None keeps the environment's value
    assert get_settings(tmp_path, validation_engine="compiled").validation_engine == "compiled"
    assert get_settings(tmp_path, validation_engine=None).validation_engine == "ge"
    assert s.with_(validation_engine="compiled").validation_engine == "compiled"


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("GOVBASE_VALIDATION_ENGINE", "fast", "use one of compiled, ge"),
        ("GOVBASE_RETRY_DELAY_SECONDS", "soon", "a number of seconds"),
        ("GOVBASE_RETRY_DELAY_SECONDS", "-1", "a number of seconds >= 0"),
        ("GOVBASE_LOCK_TIMEOUT", "forever", "GOVBASE_LOCK_TIMEOUT='forever': a number of seconds"),
        ("GOVBASE_LOCK_TIMEOUT", "-5", "lock timeout -5.0: a number of seconds >= 0"),
    ],
)
def test_a_bad_switch_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, var: str, value: str, message: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(GovbaseError, match=message):
        get_settings(tmp_path)


def test_the_engine_flag_does_not_write_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`govbase run --validation-engine ge` builds Settings with it: os.environ is left alone
    (the command stops at the unknown source, before any stage runs)."""
    monkeypatch.setenv("GOVBASE_VALIDATION_ENGINE", "compiled")  # restored (unset) after the test
    monkeypatch.delenv("GOVBASE_VALIDATION_ENGINE")
    result = CliRunner().invoke(
        app, ["run", "--source", "no_such_source", "--validation-engine", "ge", "--home", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "no_such_source" in result.output
    assert "GOVBASE_VALIDATION_ENGINE" not in os.environ
    bad = CliRunner().invoke(app, ["run", "--validation-engine", "nope", "--home", str(tmp_path)])
    assert bad.exit_code == 1 and "use one of compiled, ge" in bad.output
