"""SQL source plumbing without a server: Airflow connection parsing, value text.

What a failed pull records (unreachable database, missing SQLite file) is in
tests/integration/test_extract_sql_failures.py: it writes the DuckDB catalog.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

import pytest

from etl.config import Settings
from etl.contracts import Contracts
from etl.extract.sql import connection_url, parse_airflow_connection, value_text

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgres://u:p%40ss@db.example:5432/reg", "postgresql+psycopg://u:p%40ss@db.example:5432/reg"),
        ("postgresql://u@h/reg?sslmode=require", "postgresql+psycopg://u@h/reg?sslmode=require"),
        ("mysql://root@127.0.0.1:3306/reg", "mysql+pymysql://root@127.0.0.1:3306/reg"),
        ("sqlite:////tmp/x.sqlite", "sqlite:////tmp/x.sqlite"),
        (
            json.dumps(
                {
                    "conn_type": "postgres",
                    "host": "h",
                    "login": "u",
                    "password": "pw",
                    "schema": "reg",
                    "port": 5433,
                }
            ),
            "postgresql+psycopg://u:pw@h:5433/reg",
        ),
        (
            json.dumps({"conn_type": "mysql", "host": "h", "login": "root", "schema": "reg"}),
            "mysql+pymysql://root@h/reg",
        ),
    ],
)
def test_airflow_connection_forms(raw: str, expected: str) -> None:
    assert parse_airflow_connection(raw).render_as_string(hide_password=False) == expected


def test_default_url_fills_landing(
    settings: Settings, contracts: Contracts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_GOVBASE_SAMR", raising=False)
    url = connection_url(settings, contracts.source("samr_registry"))
    assert url.database == f"{settings.landing}/samr_registry/registry.sqlite"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        ("", ""),
        (" a ", " a "),
        (True, "true"),
        (10, "10"),
        (0.1, "0.1"),
        (1e17, "1e+17"),
        (1e14, "100000000000000"),
        (Decimal("100.00"), "100.00"),
        (Decimal("1E+2"), "100"),
        (date(2024, 1, 2), "2024-01-02"),
        (datetime(2024, 1, 2, 3, 4, 5), "2024-01-02 03:04:05"),
        (b"\x01\xff", "01ff"),
    ],
)
def test_value_text(value: object, text: str | None) -> None:
    assert value_text(value) == text
