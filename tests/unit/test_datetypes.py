"""Typed dates (etl.datetypes): the casts, the staging view over old and new partitions,
and validation of dates as DATE values (date32, datetime.date) in both engines."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl.config import Settings
from etl.contracts import Contracts
from etl.datetypes import DATE, arrow_dates, as_dates, as_datetimes, core_dates, date_columns, date_view
from etl.validate.runner import SuiteRunner, columns_of

pytestmark = pytest.mark.unit


def test_date_columns_come_from_the_contracts(contracts: Contracts) -> None:
    for table in contracts.tables.values():
        declared = {c.name for c in table.columns if c.type == "date"}
        assert set(date_columns(table)) == declared
        assert declared <= core_dates(contracts)
    assert "birth_date" in date_columns(contracts.tables["person"])
    assert {"valid_from", "valid_to", "_logical_date"} <= core_dates(contracts)


def test_as_dates_takes_datetime64_date_objects_and_a_mix() -> None:
    frame = pd.DataFrame(
        {
            "a": pd.to_datetime(["1985-03-02", None, "1900-03-01"]).astype("datetime64[ms]"),
            "b": pd.Series([dt.date(1985, 3, 2), None, pd.Timestamp("2001-01-01")], dtype=object),
            "c": ["x", "y", "z"],
        }
    )
    out = as_dates(frame, ["a", "b", "absent"])
    assert out["a"].dtype == DATE and out["b"].dtype == DATE and out["c"].dtype == frame["c"].dtype
    assert out["a"].tolist()[0] == dt.date(1985, 3, 2) and pd.isna(out["a"].tolist()[1])
    assert out["b"].tolist()[2] == dt.date(2001, 1, 1)
    assert frame["a"].dtype == "datetime64[ms]"  # the input is left as it was
    assert pa.Table.from_pandas(out).schema.field("a").type == pa.date32()
    back = as_datetimes(out)
    assert str(back["a"].dtype).startswith("datetime64") and back["a"].iloc[0] == pd.Timestamp("1985-03-02")


def test_arrow_dates_casts_timestamps_and_leaves_dates() -> None:
    t = pa.table(
        {
            "d": pa.array([dt.datetime(1985, 3, 2), None], pa.timestamp("ms")),
            "e": pa.array([dt.date(2000, 1, 1), None], pa.date32()),
            "s": ["a", "b"],
        }
    )
    out = arrow_dates(t, ["d", "e", "absent"])
    assert out.schema.field("d").type == pa.date32() and out.schema.field("e").type == pa.date32()
    assert out.column("d").to_pylist() == [dt.date(1985, 3, 2), None]
    assert out.schema.field("s").type == t.schema.field("s").type


def test_the_view_reads_timestamp_and_date_files_as_date(tmp_path: Path) -> None:
    """union_by_name widens DATE to TIMESTAMP when an old file holds TIMESTAMP; the view
    casts back, keeps the column order, and skips a date column no file holds."""
    old, new = tmp_path / "old.parquet", tmp_path / "new.parquet"
    pq.write_table(pa.table({"k": [1], "d": pa.array([dt.datetime(1985, 3, 2)], pa.timestamp("ms"))}), old)
    pq.write_table(pa.table({"k": [2], "d": pa.array([dt.date(1990, 7, 1)], pa.date32())}), new)
    con = duckdb.connect()
    body = f"select * from read_parquet(['{old}', '{new}'], union_by_name = true)"
    assert dict(con.execute(f"describe {body}").fetchall()[i][:2] for i in range(2))["d"].startswith(
        "TIMESTAMP"
    )
    view = date_view(con, body, ["d", "not_in_any_file"])
    assert [r[:2] for r in con.execute(f"describe {view}").fetchall()] == [("k", "BIGINT"), ("d", "DATE")]
    assert con.execute(f"select k, d from ({view}) order by k").fetchall() == [
        (1, dt.date(1985, 3, 2)),
        (2, dt.date(1990, 7, 1)),
    ]


def _persons(births: list[str | None]) -> pd.DataFrame:
    ids = ["11010519491231002X"] * len(births)  # female, born 1949-12-31
    n = len(births)
    df = pd.DataFrame(
        {
            "resident_id": pd.array(ids, dtype="string"),
            "name": pd.array(["张三"] * n, dtype="string"),
            "gender": pd.array(["2"] * n, dtype="string"),
            "birth_date": pd.to_datetime(pd.Series(births)).astype("datetime64[ms]"),
            "record_key": pd.array([f"R{i}" for i in range(n)], dtype="string"),
        }
    )
    df["_batch_id"] = "b1"
    df["_row_number"] = range(1, n + 1)
    return df


def _as_validate_reads(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """What validate reads back from the staged Arrow file normalize wrote."""
    return pa.Table.from_pandas(as_dates(df, columns), preserve_index=False).to_pandas()


def _as_objects(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = df.copy()
    for c in columns:
        out[c] = pd.Series([None if pd.isna(v) else v.date() for v in df[c]], dtype=object)
    return out


@pytest.mark.parametrize("engine", ["compiled", "ge"])
@pytest.mark.parametrize("form", ["date32", "objects"])
def test_birth_date_agreement_judges_dates_as_it_judged_datetimes(
    contracts: Contracts, settings: Settings, engine: str, form: str
) -> None:
    runner = SuiteRunner(
        settings.expectations_dir, contracts.tables["person"], contracts.sources["ps_hukou"], engine=engine
    )
    frame = _persons(["1949-12-31", "1950-01-01", None, "1949-12-30", "1949-12-31"])
    typed = (_as_validate_reads if form == "date32" else _as_objects)(frame, ["birth_date"])
    assert not str(typed["birth_date"].dtype).startswith("datetime64")
    todo = [e for e in runner.row_expectations if set(columns_of(e["kwargs"])) <= set(frame.columns)]
    before, _ = runner.validate_rows(frame, todo)
    after, _ = runner.validate_rows(typed, todo)
    got = sorted(zip(after["position"], after["reason"], strict=True))
    assert got == sorted(zip(before["position"], before["reason"], strict=True))
    assert got == [(1, "resident_id_birth_mismatch"), (3, "resident_id_birth_mismatch")]


@pytest.mark.parametrize("engine", ["compiled", "ge"])
@pytest.mark.parametrize("form", ["date32", "objects"])
def test_a_key_holding_a_date_is_unique_as_dates(
    contracts: Contracts, settings: Settings, engine: str, form: str
) -> None:
    """employment.keys ends with start_date: two rows the same but for the day are distinct."""
    table = contracts.tables["employment"]
    runner = SuiteRunner(settings.expectations_dir, table, contracts.sources["hrss_insurance"], engine=engine)
    starts = ["2020-01-01", "2020-01-02", "2020-01-01", None, None]
    frame = pd.DataFrame(
        {
            "resident_id": pd.array(["11010519491231002X"] * 5, dtype="string"),
            "employer_credit_code": pd.array(["91110105MA00000001"] * 5, dtype="string"),
            "insurance_type": pd.array(["pension"] * 5, dtype="string"),
            "start_date": pd.to_datetime(pd.Series(starts)).astype("datetime64[ms]"),
            "record_key": pd.array([f"E{i}" for i in range(5)], dtype="string"),
            "_batch_id": "b1",
            "_row_number": range(1, 6),
        }
    )
    unique = [e for e in runner.row_expectations if e["type"] == "expect_compound_columns_to_be_unique"]
    assert unique and "start_date" in unique[0]["kwargs"]["column_list"]
    typed = (_as_validate_reads if form == "date32" else _as_objects)(frame, date_columns(table))
    before, _ = runner.validate_rows(frame, unique)
    after, _ = runner.validate_rows(typed, unique)
    got = sorted(zip(after["position"], after["reason"], strict=True))
    assert got == sorted(zip(before["position"], before["reason"], strict=True))
    assert {p for p, _ in got} >= {0, 2} and 1 not in {p for p, _ in got}
