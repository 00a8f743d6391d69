"""The govbase command on bad homes and bad paths (issue 14.3): a clear error, no traceback,
nothing created. Runs the real command in a subprocess, its output piped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from etl.cli import app, json_first

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def _govbase(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, monkeypatch: pytest.MonkeyPatch
) -> Result:
    """`govbase <args>` through typer's runner (output not a terminal), from `cwd`, with
    GOVBASE_HOME, GOVBASE_PROJECT_DIR and COLUMNS unset unless `env` sets them."""
    for name in ("COLUMNS", "GOVBASE_HOME", "GOVBASE_PROJECT_DIR"):
        monkeypatch.delenv(name, raising=False)
    if cwd is not None:
        monkeypatch.chdir(cwd)
    return CliRunner().invoke(app, list(args), env=env)


def _clean_exit(got: Result, code: int) -> None:
    """The command ended with `code` by itself: no exception escaped (no traceback)."""
    assert got.exit_code == code, (got.output, got.exception)
    assert got.exception is None or isinstance(got.exception, SystemExit), got.exception


READ_ONLY = [
    ["status"],
    ["quarantine", "list", "-s", "ps_hukou"],
    ["quarantine", "show", "-s", "ps_hukou", "--row", "3"],
    ["quarantine", "export", "-s", "ps_hukou"],
    ["quarantine", "replay", "-s", "ps_hukou"],
    ["publish", "--date", "2026-11-01"],
    ["classify"],
    ["report"],
]


@pytest.mark.parametrize("args", READ_ONLY, ids=lambda a: " ".join(a[:2]))
def test_a_command_that_reads_refuses_a_missing_home_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    home = tmp_path / "gobvase_hmoe"  # misspelt
    got = _govbase(*args, env={"GOVBASE_HOME": str(home)}, cwd=tmp_path, monkeypatch=monkeypatch)
    _clean_exit(got, 1)
    assert f"home {home} (from GOVBASE_HOME) does not exist; nothing was created" in got.stderr
    assert not home.exists() and sorted(tmp_path.iterdir()) == []  # no home, and no ./var either


def test_an_unset_home_is_named_as_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got = _govbase("status", cwd=tmp_path, monkeypatch=monkeypatch)
    _clean_exit(got, 1)
    assert (
        f"home {tmp_path / 'var'} (from the default ./var, GOVBASE_HOME unset) does not exist" in got.stderr
    )
    assert sorted(tmp_path.iterdir()) == []


def test_a_home_without_a_warehouse_is_not_given_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got = _govbase("status", "--home", str(tmp_path), monkeypatch=monkeypatch)
    _clean_exit(got, 1)
    assert "has no warehouse yet" in got.stderr and "nothing has run there" in got.stderr
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["run", "-s", "ps_hukou", "--date", "2026-11-01"],
        ["demo-data", "--persons", "50"],
        ["extract"],
    ],
    ids=lambda a: a[0],
)
def test_a_home_that_is_a_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    home = tmp_path / "home.txt"
    home.write_text("not a folder")
    got = _govbase(*args, "--home", str(home), monkeypatch=monkeypatch)
    _clean_exit(got, 1)
    assert f"error: home {home} (from --home) is not a folder" in got.stderr
    assert home.read_text() == "not a folder"


@pytest.mark.parametrize("target", ["missing/q.csv", "."])
def test_export_into_a_missing_folder_or_onto_a_folder_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    out = tmp_path / target
    args = ("quarantine", "export", "-s", "ps_hukou", "-o", str(out), "--home", str(tmp_path))
    got = _govbase(*args, monkeypatch=monkeypatch)
    _clean_exit(got, 1)
    why = "is a folder" if target == "." else f"folder {out.parent} does not exist"
    assert f"-o {out}: {why}" in got.stderr
    assert not (tmp_path / "missing").exists()


def test_contracts_says_which_folder_it_read_and_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = _govbase("contracts", cwd=tmp_path, monkeypatch=monkeypatch)
    _clean_exit(chosen, 0)
    assert chosen.stdout.splitlines()[0] == (
        f"contracts read from {REPO / 'schemas'} (the checkout govbase is installed from; "
        "GOVBASE_PROJECT_DIR unset)"
    )
    other = tmp_path / "project"
    (other / "schemas").mkdir(parents=True)
    for part in ("shared", "sources", "reference"):
        (other / "schemas" / part).symlink_to(REPO / "schemas" / part)
    (other / "expectations").symlink_to(REPO / "expectations")
    env = {"GOVBASE_PROJECT_DIR": str(other)}
    by_env = _govbase("--json", "contracts", env=env, cwd=tmp_path, monkeypatch=monkeypatch)
    _clean_exit(by_env, 0)
    doc = json.loads(by_env.stdout)
    assert (doc["schemas_dir"], doc["chosen_by"]) == (str(other / "schemas"), "GOVBASE_PROJECT_DIR")
    assert {s["source"] for s in doc["sources"]} >= {"ps_hukou", "tax_registration"}
    assert "person" in doc["shared_tables"]
    assert sorted(tmp_path.iterdir()) == [other]  # contracts creates no home


def test_piped_output_is_not_cut_to_80_columns(tmp_path: Path) -> None:
    """The real entry point, its stdout a pipe and COLUMNS unset."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "GOVBASE_PROJECT_DIR")}
    got = subprocess.run(
        [sys.executable, "-m", "etl.cli", "contracts"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert got.returncode == 0, got.stderr
    first = got.stdout.splitlines()[0]
    assert len(first) > 80 and first.endswith("GOVBASE_PROJECT_DIR unset)")
    rows = [line for line in got.stdout.splitlines() if "ps_hukou" in line]
    assert len(rows) == 1 and "public_security" in rows[0] and "person" in rows[0]
    assert "…" not in got.stdout


def test_json_is_read_before_or_after_the_command() -> None:
    assert json_first(["status", "--json", "--limit", "5"]) == ["--json", "status", "--limit", "5"]
    assert json_first(["--json", "status", "--json"]) == ["--json", "status"]
    assert json_first(["contracts"]) == ["contracts"]
    # after `--` it is an argument, not the option
    assert json_first(["run", "--", "--json"]) == ["run", "--", "--json"]
