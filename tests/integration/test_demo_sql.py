"""write_registry / generate(sql_url=...) against real PostgreSQL and MariaDB (skipped when unreachable)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from etl.config import Settings
from etl.demo import generate
from etl.demo.sources import SAMR_COLUMNS

pytestmark = pytest.mark.integration

SERVERS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306",
}


@pytest.fixture(params=sorted(SERVERS))
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    kind = request.param
    server = SERVERS[kind]
    admin_db = "postgres" if kind == "postgresql" else "mysql"
    name = f"govbase_demo_test_{uuid.uuid4().hex[:8]}"
    try:
        admin = create_engine(f"{server}/{admin_db}", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"{kind} not reachable at {server}: {exc.__class__.__name__}")
    try:
        yield f"{server}/{name}" + ("?charset=utf8mb4" if kind == "mariadb" else "")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


def test_sql_url_receives_same_rows_as_sqlite(settings: Settings, db_url: str) -> None:
    summary = generate(settings, persons=1500, seed=3, sql_url=db_url)
    lite = sqlite3.connect(settings.landing / "samr_registry" / "registry.sqlite")
    cols = ", ".join(["id", *SAMR_COLUMNS])
    expected = pd.read_sql(f"SELECT {cols} FROM enterprise_registry ORDER BY id", lite)
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            got = pd.read_sql(text(f"SELECT {cols} FROM enterprise_registry ORDER BY id"), conn)
    finally:
        engine.dispose()
    assert len(got) == summary.sources["samr_registry"].rows == len(expected)
    pd.testing.assert_frame_equal(got.astype(object), expected.astype(object), check_dtype=False)
