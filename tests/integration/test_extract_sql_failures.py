"""A SQL source that cannot be reached fails its pull with a clear, password-free error,
recorded in the catalog (meta.source_error); a missing SQLite file is not created."""

from __future__ import annotations

import pytest

from etl.config import Settings
from etl.contracts import Contracts
from etl.extract import extract_source
from etl.meta import connect

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "raw",
    [
        "postgres://govbase:s3cret-Pw@127.0.0.1:1/registry",
        "mysql://govbase:s3cret-Pw@127.0.0.1:1/registry",
    ],
)
def test_unreachable_database_names_it_without_the_password(
    settings: Settings,
    contracts: Contracts,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    raw: str,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GOVBASE_SAMR", raw)
    [res] = extract_source(settings, contracts.source("samr_registry"))
    assert res.status == "failed"
    assert "127.0.0.1" in (res.message or "") and "***" in (res.message or "")
    with connect(settings) as con:
        recorded = con.execute("select kind, problem from meta.source_error").fetchall()
    assert recorded[0][0] == "unreachable"
    everything = str(recorded) + caplog.text + (res.message or "")
    assert "s3cret" not in everything


def test_missing_sqlite_file_is_not_created(
    settings: Settings, contracts: Contracts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_GOVBASE_SAMR", raising=False)
    [res] = extract_source(settings, contracts.source("samr_registry"))
    assert res.status == "failed" and "no such file" in (res.message or "")
    assert not (settings.source_landing("samr_registry") / "registry.sqlite").exists()
