"""Contract `date` columns are DATE in every layer: staging (files and views), replayed
partitions, core (golden records, history, relations), `govbase asof` and the shares.

Which columns must be dates is read from the contracts (schemas/shared/*.yml), never
listed here. A warehouse written before dates were typed holds TIMESTAMP partitions: its
staging views read them as DATE beside the new ones.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from etl import meta
from etl.cli import app
from etl.config import Settings, get_settings
from etl.contracts import Contracts, get_contracts
from etl.demo import generate
from etl.load.replay import replay
from etl.load.warehouse import refresh_views
from etl.pipeline import run_source
from etl.publish.grants import load_sharing
from etl.publish.shares import build_shares, open_share
from etl.resolve import CORE_TABLES
from etl.resolve.config import load_resolve_configs
from etl.resolve.history import as_of_sql
from etl.resolve.stage import consolidate

pytestmark = pytest.mark.integration

DATE = "2026-11-01"
NEXT = "2026-11-02"


def _dates(contracts: Contracts, table: str) -> list[str]:
    return [c.name for c in contracts.tables[table].columns if c.type == "date"]


def _types(con: duckdb.DuckDBPyConnection, relation: str, params: list[str] | None = None) -> dict[str, str]:
    return {r[0]: r[1] for r in con.execute(f"describe {relation}", params or []).fetchall()}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The demo (small) ingested, consolidated and shared: a real run of every stage."""
    settings = get_settings(tmp_path_factory.mktemp("dates") / "home")
    generate(settings, persons=900, seed=31)
    for source in sorted(get_contracts(settings).sources):
        run_source(source, DATE, "run-1", settings=settings)
    consolidate(settings)
    # the next day's delivery, consolidated incrementally: history versions closed and
    # opened over the previous core files read back
    generate(settings, persons=900, seed=31, drop_date=NEXT.replace("-", ""))
    for source in sorted(get_contracts(settings).sources):
        run_source(source, NEXT, "run-2", settings=settings)
    summary = consolidate(settings)
    assert {e["mode"] for e in summary.entities.values()} == {"incremental"}
    contracts = get_contracts(settings)
    # the shares as the publish stage builds them, without its classification gate: on
    # the demo, individual businesses' credit codes (92...) make core.legal_entity.credit_code
    # a finding that stops every share (not a matter of dates)
    build_shares(settings, contracts, load_sharing(settings.schemas_dir, contracts.tables), [], DATE)
    return settings


def _con(settings: Settings) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    con.execute(f"set file_search_path = '{settings.warehouse}'")  # stored paths are relative to it
    return con


def test_every_contract_date_column_is_date_in_staging_views_and_files(run: Settings) -> None:
    contracts = get_contracts(run)
    dated = {t: _dates(contracts, t) for t in contracts.tables if _dates(contracts, t)}
    assert dated  # the contracts declare dates (person.birth_date among them)
    with _con(run) as con:
        for table, columns in dated.items():
            types = _types(con, f"staging.{table}")
            for c in columns:
                assert types[c] == "DATE", f"staging.{table}.{c} is {types[c]}"
                filled = con.execute(f"select count({c}) from staging.{table}").fetchall()[0][0]
                assert filled > 0, f"staging.{table}.{c} holds no date: nothing tested"
            assert types["_logical_date"] == "DATE"
            files = [
                r[0]
                for r in con.execute(
                    "select staging_path from meta.partition where table_name = ? and staging_path is not null",
                    [table],
                ).fetchall()
            ]
            assert files
            for f in files:
                schema = pq.read_schema(run.warehouse / f)  # stored relative to the root
                for c in columns:
                    assert schema.field(c).type == pa.date32(), f"{f}: {c} is {schema.field(c).type}"
        # real timestamps stay timestamps
        assert _types(con, "meta.partition")["published_at"] == "TIMESTAMP"
        assert _types(con, "meta.run_ledger")["finished_at"] == "TIMESTAMP"


def test_core_golden_history_and_relation_dates_are_date(run: Settings) -> None:
    contracts = get_contracts(run)
    configs = load_resolve_configs(run.schemas_dir, contracts.tables)
    with _con(run) as con:
        for entity, cfg in configs.items():
            attrs = [a for a in cfg.attributes if contracts.tables[entity].column(a).type == "date"]
            assert attrs, f"{entity}: no date attribute to test"
            for relation in (f"core.{entity}", f"core.{entity}_history"):
                types = _types(con, relation)
                for a in attrs:
                    assert types[a] == "DATE", f"{relation}.{a} is {types[a]}"
            history = _types(con, f"core.{entity}_history")
            assert history["valid_from"] == "DATE" and history["valid_to"] == "DATE"
            if entity == "person":  # the second delivery's events closed versions
                closed = con.execute(
                    "select count(*), min(valid_to) from core.person_history where valid_to is not null"
                ).fetchall()[0]
                assert closed[0] > 0 and str(closed[1]) == NEXT
            assert _types(con, f"core.{entity}_record")["_logical_date"] == "DATE"
        employment = _types(con, "core.employment")
        for c in _dates(contracts, "employment"):
            if c in employment:
                assert employment[c] == "DATE", f"core.employment.{c} is {employment[c]}"
        assert "start_date" in employment
        source = _types(con, "core.person_source")
        assert source["first_delivery"] == "DATE" and source["last_delivery"] == "DATE"
        # nothing of core is a time of day: no core column is a TIMESTAMP
        for table in CORE_TABLES:
            stamped = [c for c, t in _types(con, f"core.{table}").items() if t.startswith("TIMESTAMP")]
            assert not stamped, f"core.{table}: {stamped}"


def test_asof_yields_dates(run: Settings) -> None:
    contracts = get_contracts(run)
    with _con(run) as con:
        for entity in ("person", "legal_entity"):
            sql, params = as_of_sql(entity, DATE)
            types = _types(con, f"({sql})", params)
            for c in [*_dates(contracts, entity), "valid_from", "valid_to"]:
                if c in types:
                    assert types[c] == "DATE", f"asof {entity}.{c} is {types[c]}"
            assert types["valid_from"] == "DATE"
    out = CliRunner().invoke(
        app, ["asof", DATE, "legal_entity", "--limit", "5", "--home", str(run.home)], env={"COLUMNS": "400"}
    )
    assert out.exit_code == 0, out.output
    assert DATE in out.output  # valid_from, as a date
    assert "00:00:00" not in out.output


def test_share_date_columns_are_date_or_masked_text(run: Settings) -> None:
    contracts = get_contracts(run)
    shares = sorted((run.warehouse / "share").glob("*/share.duckdb"))
    assert shares
    as_is = 0
    for path in shares:
        con = open_share(path)
        try:
            grants = con.execute("select table_name, column_name, shared_as from share_grant").fetchall()
            for table_name, column, shared_as in grants:
                layer, name = table_name.split(".")
                if contracts.tables[name].column(column).type != "date" or shared_as == "pseudonym":
                    continue
                types = _types(con, f'"{layer}_{name}"')
                parquet = pq.read_schema(path.with_name(f"{layer}_{name}.parquet")).field(column).type
                if shared_as == "as is":
                    as_is += 1
                    assert types[column] == "DATE", f"{path.parent.name} {table_name}.{column}"
                    assert parquet == pa.date32()
                else:  # masked: the year only, as text
                    assert types[column] == "VARCHAR"
                    bad = con.execute(
                        f'select count(*) from "{layer}_{name}" where {column} is not null '
                        f"and not regexp_full_match({column}, '[0-9]{{4}}-\\*\\*-\\*\\*')"
                    ).fetchall()[0][0]
                    assert bad == 0
        finally:
            con.close()
    assert as_is  # a date is shared as is (market regulation's established_date)


# ---------------------------------------------------------------- partitions written before
def _make_old(settings: Settings, table: str, columns: list[str], sources: set[str] | None = None) -> int:
    """Rewrite the published staging files of `table` (of `sources`, default all) as the
    code before typed dates wrote them: the date columns as timestamp[ms]. Returns how many."""
    with meta.connect(settings, read_only=True) as con:
        files = con.execute(
            "select source, staging_path from meta.partition where table_name = ? and staging_path is not null",
            [table],
        ).fetchall()
    n = 0
    for source, f in files:
        if sources is not None and source not in sources:
            continue
        f = settings.warehouse / f  # stored relative to the root
        t = pq.read_table(f)
        for c in columns:
            i = t.schema.get_field_index(c)
            t = t.set_column(i, pa.field(c, pa.timestamp("ms")), t.column(i).cast(pa.timestamp("ms")))
        pq.write_table(t, f)
        n += 1
    return n


def _old_view(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """The staging view as the code before typed dates created it."""
    files = [
        r[0]
        for r in con.execute(
            "select staging_path from meta.partition where table_name = ? and staging_path is not null "
            "order by source, logical_date",
            [table],
        ).fetchall()
    ]
    listing = ", ".join(f"'{f}'" for f in files)
    con.execute(
        f"create or replace view staging.{table} as select * from "
        f"read_parquet([{listing}], union_by_name = true, hive_partitioning = false)"
    )


def test_old_timestamp_partitions_read_as_date_beside_new_ones(run: Settings, tmp_path: Path) -> None:
    """Half the person partitions rewritten as TIMESTAMP (an upgraded warehouse): the old
    view widens every date to TIMESTAMP; the view the loader creates reads all as DATE,
    with the same values."""
    settings = get_settings(tmp_path / "home")
    shutil.copytree(run.home, settings.home)
    # stored paths are relative to the warehouse root: the copy's catalog names its own files
    contracts = get_contracts(settings)
    table = contracts.tables["person"]
    dates = _dates(contracts, "person")
    key = "_source, _batch_id, _row_number"
    with meta.connect(settings, read_only=True) as con:
        before = con.execute(
            f"select {key}, {', '.join(dates)} from staging.person order by {key}"
        ).fetchall()
        sources = sorted({r[0] for r in con.execute("select _source from staging.person").fetchall()})
    assert len(sources) >= 2
    assert _make_old(settings, "person", dates, set(sources[::2])) >= 1
    with meta.connect(settings) as con:
        _old_view(con, "person")
        old_types = _types(con, "staging.person")
        assert all(old_types[c].startswith("TIMESTAMP") for c in dates)  # what the fix is for
        refresh_views(con, table)  # what every publish does
        types = _types(con, "staging.person")
        assert all(types[c] == "DATE" for c in dates)
        after = con.execute(f"select {key}, {', '.join(dates)} from staging.person order by {key}").fetchall()
    assert after == before


@pytest.mark.parametrize(("source", "table"), [("ps_hukou", "person"), ("hrss_insurance", "employment")])
def test_replay_writes_dates_also_over_an_old_timestamp_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, table: str
) -> None:
    """A wrong gender rule quarantines the women; the partition is then made old
    (TIMESTAMP). After the fix, replay rewrites the partition: every date DATE, the
    published rows' dates unchanged, the moved rows' dates those a fresh run stages."""
    project = tmp_path / "project"
    shutil.copytree(get_settings().schemas_dir, project / "schemas")
    shutil.copytree(get_settings().expectations_dir, project / "expectations")
    contract = project / "schemas" / "shared" / f"{table}.yml"
    good = contract.read_text(encoding="utf-8")
    right = "{accepted_values: gender}"
    assert good.count(right) == 1
    # an extra, wrong rule (the code-list check stays: the open data spec needs it)
    contract.write_text(good.replace(right, right + ', {pattern: "^1$"}'), encoding="utf-8")
    monkeypatch.setenv("GOVBASE_PROJECT_DIR", str(project))
    settings = get_settings(tmp_path / "home")
    generate(settings, persons=400, seed=5)
    run_source(source, DATE, "run-r", settings=settings)
    dates = _dates(get_contracts(settings), table)
    published = _dated_rows(settings, table, dates)
    assert _make_old(settings, table, dates) == 1

    contract.write_text(good, encoding="utf-8")  # the fix
    summary = replay(settings, get_contracts(settings), source)
    assert summary["moved"] > 10  # women, a few dozen even in a small delivery
    fresh = get_settings(tmp_path / "fresh")  # the same delivery, run with the fixed rule
    shutil.copytree(settings.landing, fresh.landing)
    run_source(source, DATE, "run-f", settings=fresh)
    with meta.connect(settings, read_only=True) as con:
        types = _types(con, f"staging.{table}")
        assert all(types[c] == "DATE" for c in dates)
        (path,) = con.execute(
            "select staging_path from meta.partition where table_name = ? and source = ?", [table, source]
        ).fetchall()[0]
    assert "-replay-" in path
    schema = pq.read_schema(settings.warehouse / path)
    assert all(schema.field(c).type == pa.date32() for c in dates)
    rows = _dated_rows(settings, table, dates)
    assert len(rows) == summary["moved"] + len(published)
    assert {k: rows[k] for k in published} == published  # the published rows' dates unchanged
    assert rows == _dated_rows(fresh, table, dates)  # the moved ones' as a run with the fix stages them


def _dated_rows(
    settings: Settings, table: str, dates: list[str]
) -> dict[tuple[str, int], tuple[object, ...]]:
    """The staged rows of `table` by (delivered file, row number): their dates."""
    with meta.connect(settings, read_only=True) as con:
        rows = con.execute(
            f"select b.file, s._row_number, {', '.join('s.' + c for c in dates)} from staging.{table} s "
            "join meta.extract_batch b on b.batch_id = s._batch_id"
        ).fetchall()
    out = {(r[0], int(r[1])): tuple(r[2:]) for r in rows}
    assert len(out) == len(rows)
    return out
