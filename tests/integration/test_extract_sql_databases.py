"""The SQL source for real: SQLite, PostgreSQL (127.0.0.1:5432, postgres, trust) and MariaDB
(127.0.0.1:3306, root, no password), each in a database created for the test and dropped after.
A server that can't be reached skips its case with the reason."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from etl.config import Settings
from etl.contracts import Contracts
from etl.extract import extract_source, raw_batches
from etl.meta import connect

pytestmark = pytest.mark.integration

SERVERS = {
    "postgresql": (
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        "postgres://postgres@127.0.0.1:5432/{db}",
    ),
    "mariadb": ("mysql+pymysql://root@127.0.0.1:3306/", "mysql://root@127.0.0.1:3306/{db}"),
}


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def database(
    request: pytest.FixtureRequest, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """SQLAlchemy URL of an empty database; AIRFLOW_CONN_GOVBASE_SAMR points at it (Airflow URI form)."""
    kind = request.param
    if kind == "sqlite":
        monkeypatch.delenv("AIRFLOW_CONN_GOVBASE_SAMR", raising=False)
        path = settings.source_landing("samr_registry") / "registry.sqlite"
        path.parent.mkdir(parents=True)
        yield f"sqlite:///{path}"  # the contract's default_url
        return
    admin_url, airflow_uri = SERVERS[kind]
    name = f"govbase_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as c:
            c.execute(sa.text(f"create database {name}"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"{kind} unreachable: {str(exc.orig).splitlines()[0]}")
    monkeypatch.setenv("AIRFLOW_CONN_GOVBASE_SAMR", airflow_uri.format(db=name))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f"drop database {name}" + (" with (force)" if kind == "postgresql" else "")))
        admin.dispose()


def _table(md: sa.MetaData) -> sa.Table:
    return sa.Table(
        "enterprise_registry",
        md,
        sa.Column(
            "id", sa.Integer, primary_key=True, autoincrement=True
        ),  # undeclared surrogate key: not drift
        sa.Column("tyshxydm", sa.String(18)),
        *(sa.Column(c, sa.String(200)) for c in ("qymc", "qylx", "fddbr", "fddbr_sfzh", "zs_xzqh", "zs")),
        sa.Column("zczb", sa.Numeric(18, 2)),
        sa.Column("clrq", sa.Date),
        sa.Column("djzt", sa.String(20)),
        sa.Column("hy", sa.String(50)),
        sa.Column("updated_at", sa.DateTime),
    )


def _row(code: str, updated: datetime, **kw: Any) -> dict[str, Any]:
    row = {
        "tyshxydm": code,
        "qymc": f"某某科技有限公司{code[-2:]}",
        "qylx": "有限责任公司",
        "fddbr": "张三",
        "fddbr_sfzh": "11010519491231002X",
        "zs_xzqh": "110105",
        "zs": " 北京市朝阳区 ",
        "zczb": Decimal("100.50"),
        "clrq": date(2001, 2, 3),
        "djzt": "存续",
        "hy": "",
        "updated_at": updated,
    }
    row.update(kw)
    return row


def _insert(url: str, rows: list[dict[str, Any]], create: bool = False) -> None:
    engine = sa.create_engine(url)
    md = sa.MetaData()
    table = _table(md)
    with engine.begin() as c:
        if create:
            md.create_all(c)
        c.execute(table.insert(), rows)
    engine.dispose()


def _raw(settings: Settings, batch_path: Any) -> list[dict[str, Any]]:
    return pq.read_table(batch_path).to_pylist()


def test_sql_incremental_pull(database: str, settings: Settings, contracts: Contracts) -> None:
    src = contracts.source("samr_registry").model_copy(update={"chunk_rows": 2})
    t = datetime(2024, 1, 1, 8, 0, 0)
    _insert(
        database,
        [
            _row("91110000600037341L", t.replace(hour=9)),
            _row("91110000600037342A", t),
            _row("91110000600037340B", t.replace(hour=9), zczb=None, hy=None),  # ties on updated_at: id order
        ],
        create=True,
    )

    [first] = extract_source(settings, src)
    assert (first.status, first.rows, first.watermark_from) == ("extracted", 3, None)
    out = _raw(settings, first.raw_path)
    assert [r["tyshxydm"] for r in out] == ["91110000600037342A", "91110000600037341L", "91110000600037340B"]
    assert [r["id"] for r in out] == ["2", "1", "3"] and [r["_row_number"] for r in out] == [1, 2, 3]
    assert (
        out[0]["zs"] == " 北京市朝阳区 "
        and out[0]["hy"] == ""
        and out[2]["hy"] is None
        and out[2]["zczb"] is None
    )
    assert out[0]["zczb"] in {"100.50", "100.5"} and out[0]["clrq"] == "2001-02-03"
    assert (
        out[2]["updated_at"].startswith("2024-01-01 09:00:00") and first.watermark_to == out[2]["updated_at"]
    )
    with connect(settings) as con:
        assert con.execute(
            "select key, value, boundary from meta.watermark where source = 'samr_registry'"
        ).fetchone() == ("updated_at", first.watermark_to, '[["1"], ["3"]]')  # the ids at the watermark

    # A row committed after the pull with the watermark's own key value (a late transaction
    # stamped 09:00:00) is pulled next time; the two delivered at 09:00:00 are not pulled again.
    _insert(
        database,
        [
            _row("91110000600037343C", t.replace(day=2)),
            _row("91110000600037344D", t.replace(day=3)),
            _row("91110000600037345E", t.replace(hour=9)),
        ],
    )
    [second] = extract_source(settings, src)
    assert (second.status, second.rows, second.watermark_from) == ("extracted", 3, first.watermark_to)
    assert [r["tyshxydm"] for r in _raw(settings, second.raw_path)] == [
        "91110000600037345E",
        "91110000600037343C",
        "91110000600037344D",
    ]
    assert "2 row(s) at updated_at" in (second.message or "")
    assert second.watermark_to is not None and second.watermark_to.startswith("2024-01-03 08:00:00")

    [third] = extract_source(settings, src)
    assert (third.status, third.rows, third.raw_path) == ("skipped", 0, None)

    [full] = extract_source(settings, src, full_refresh=True)
    assert (full.status, full.rows) == ("extracted", 6)
    assert [b.rows for b in raw_batches(settings, "samr_registry")] == [3, 3, 6]


def test_sql_schema_drift_and_missing_column(database: str, settings: Settings, contracts: Contracts) -> None:
    src = contracts.source("samr_registry")
    _insert(database, [_row("91110000600037341L", datetime(2024, 1, 1))], create=True)
    engine = sa.create_engine(database)
    with engine.begin() as c:
        c.execute(sa.text("alter table enterprise_registry add column new_col varchar(10)"))
    engine.dispose()
    [res] = extract_source(settings, src)
    assert res.status == "failed" and "undeclared column(s) new_col" in (res.message or "")
    [warned] = extract_source(settings, src.model_copy(update={"schema_drift": "warn"}))
    assert warned.status == "extracted" and "new_col" in _raw(settings, warned.raw_path)[0]


def test_sql_missing_table(database: str, settings: Settings, contracts: Contracts) -> None:
    if database.startswith("sqlite"):
        sa.create_engine(database).connect().close()  # creates the empty file
    [res] = extract_source(settings, contracts.source("samr_registry"))
    assert res.status == "failed" and "no table enterprise_registry" in (res.message or "")


def test_sql_watermark_from_before_boundaries(
    database: str, settings: Settings, contracts: Contracts
) -> None:
    """A watermark recorded without the delivered rows at its value (an older warehouse)
    reads strictly after it, delivers nothing twice, and records them from then on."""
    src = contracts.source("samr_registry")
    t = datetime(2024, 1, 1, 8, 0, 0)
    _insert(database, [_row("91110000600037341L", t), _row("91110000600037342A", t)], create=True)
    [first] = extract_source(settings, src)
    with connect(settings) as con:
        con.execute("update meta.watermark set boundary = null")
    _insert(database, [_row("91110000600037343C", t.replace(day=2))])
    [second] = extract_source(settings, src)
    assert (second.status, second.rows) == ("extracted", 1)
    assert [r["tyshxydm"] for r in _raw(settings, second.raw_path)] == ["91110000600037343C"]
    with connect(settings) as con:
        assert con.execute("select boundary from meta.watermark").fetchone() == ('[["3"]]',)
    assert first.rows == 2
