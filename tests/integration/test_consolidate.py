"""Consolidation against the demo's ground truth: accuracy, stable ids, provenance, relations.

The truth (landing/_truth/) says which person or organisation every delivered row belongs
to; nothing here asks the linkage what it thinks it did.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from demohome import DEMO_PERSONS, DEMO_SEED, copy_home, ingest

from etl import meta
from etl.config import Settings, get_settings
from etl.demo import generate
from etl.pipeline import run_source
from etl.resolve import CORE_TABLES, store
from etl.resolve.evaluate import evaluate
from etl.resolve.stage import consolidate

pytestmark = pytest.mark.integration

PERSONS = DEMO_PERSONS  # the session demo of tests/integration/conftest.py
SEED = DEMO_SEED
RULES = {"trust", "recent", "complete", "frequent", "only_value", "tie_break"}


def _ingest(settings: Settings, day: str = "2026-11-01", run: str = "run-1") -> None:
    ingest(settings, day, run)


@pytest.fixture(scope="module")
def staged(demo_staged_home: Path) -> Path:
    """A home with the demo ingested, not yet consolidated (copied by the tests that consolidate)."""
    return demo_staged_home


def _copy(staged: Path, dest: Path) -> Settings:
    return copy_home(staged, dest)


@pytest.fixture(scope="module")
def consolidated(demo_consolidated: Settings) -> Settings:
    return demo_consolidated


def _core(settings: Settings, table: str) -> pd.DataFrame:
    with meta.connect(settings, read_only=True) as con:
        frame = store.read_core(con, settings, table)
    assert frame is not None, table
    return frame


def test_linkage_meets_the_accuracy_targets(consolidated: Settings) -> None:
    scores = evaluate(consolidated)
    (p_all, p_noid), (o_all, _) = scores["person"], scores["legal_entity"]
    assert p_all.records > 1.5 * PERSONS  # records of several departments took part
    assert p_all.precision >= 0.995 and p_all.recall >= 0.99, p_all
    assert p_noid.records > 0
    assert p_noid.precision >= 0.98 and p_noid.recall >= 0.95, p_noid
    assert o_all.precision >= 0.995 and o_all.recall >= 0.99, o_all


def test_core_is_queryable_in_the_catalog_and_every_record_has_one_master(consolidated: Settings) -> None:
    with meta.connect(consolidated, read_only=True) as con:
        masters = con.execute("select count(*), count(distinct person_id) from core.person").fetchall()[0]
        records = con.execute("select count(*), count(distinct rec_id) from core.person_record").fetchall()[0]
        orphans = con.execute(
            "select count(*) from core.person_record r anti join core.person p using (person_id)"
        ).fetchall()[0][0]
        staged = con.execute(
            "select (select count(*) from staging.person) + (select count(*) from staging.employment)"
            " + (select count(*) from staging.legal_entity where legal_rep_name is not null or legal_rep_id is not null)"
        ).fetchall()[0][0]
        paths = [r[0] for r in con.execute("select path from meta.core_table").fetchall()]
        names = {r[0] for r in con.execute("select table_name from meta.core_table").fetchall()}
        model = con.execute("select model_path from meta.resolve_run where entity = 'person'").fetchall()[0][
            0
        ]
    assert masters[0] == masters[1] > 0
    assert records[0] == records[1] == staged
    assert orphans == 0
    assert all(not Path(p).is_absolute() and p.startswith("core/") for p in paths)
    assert names == set(CORE_TABLES)  # the consolidate DAG emits one Asset per table
    assert not Path(model).is_absolute() and (consolidated.warehouse / model).is_file()
    ids = _core(consolidated, "person")["person_id"]
    assert ids.str.fullmatch(r"P\d{10}").all()


def test_every_golden_value_traces_to_a_staged_record_and_names_its_rule(consolidated: Settings) -> None:
    prov = _core(consolidated, "provenance")
    gold = _core(consolidated, "person")
    attrs = [c for c in gold.columns if c not in ("person_id", "source_records", "sources")]
    values = int(gold[attrs].notna().sum().sum())
    person_prov = prov[prov["entity"] == "person"]
    assert len(person_prov) == values
    assert set(prov["rule"]) <= RULES and "trust" in set(prov["rule"])
    # a value's record is its row in the entity's record table (its latest delivery: batch
    # and row), which is a staged row
    with meta.connect(consolidated, read_only=True) as con:
        con.register("prov", prov)
        missing = con.execute(
            """
            with r as (select 'person' as entity, * exclude (person_id) from core.person_record
                       union all by name
                       select 'legal_entity' as entity, * exclude (legal_entity_id) from core.legal_entity_record)
            select count(*) from prov p left join r on r.entity = p.entity and r.rec_id = p.rec_id
            where r.rec_id is null or r._source <> p._source or r.record_key <> p.record_key
               or not exists (
                select 1 from (
                    select _source, _batch_id, _row_number, record_key from staging.person
                    union all select _source, _batch_id, _row_number, record_key from staging.employment
                    union all select _source, _batch_id, _row_number, record_key from staging.legal_entity
                ) s where s._source = r._source and s._batch_id = r._batch_id
                    and s._row_number = r._row_number and s.record_key = r.record_key)
            """
        ).fetchall()[0][0]
    assert missing == 0
    assert not {"_batch_id", "_row_number"} & set(prov.columns)  # the delivery is the record's


def test_identical_inputs_give_identical_ids_and_golden_records(
    staged: Path, consolidated: Settings, tmp_path: Path
) -> None:
    other = _copy(staged, tmp_path / "again")
    consolidate(other)
    for table, key in (
        ("person_record", "rec_id"),
        ("person", "person_id"),
        ("legal_entity", "legal_entity_id"),
    ):
        a = _core(consolidated, table).sort_values(key, ignore_index=True)
        b = _core(other, table).sort_values(key, ignore_index=True)
        pd.testing.assert_frame_equal(a, b)


def _redeliver_hukou(
    settings: Settings, key: str | None = None, day: str = "20261102", row: int = 0
) -> tuple[str, str]:
    """The household register delivers its first day's records again (on `day`), one of
    them (the one whose key is `key`, else the `row`-th) moved to a new address. Returns
    (the moved record's key, its new address)."""
    import csv
    import io

    day1 = settings.source_landing("ps_hukou") / "hukou_20261101.csv"
    rows = list(csv.reader(io.StringIO(day1.read_text(encoding="gbk"))))
    header, data = rows[0], rows[1:]
    addr, col = header.index("住址"), header.index("人员编号")
    at = row if key is None else next(i for i, r in enumerate(data) if r[col] == key)
    data[at][addr] = data[at][addr] + "东区1号"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *data])
    (day1.parent / f"hukou_{day}.csv").write_text(out.getvalue(), encoding="gbk")
    return data[at][col], data[at][addr]


def test_a_redelivered_record_is_the_same_record_updated_and_ids_stay(staged: Path, tmp_path: Path) -> None:
    settings = _copy(staged, tmp_path / "later")
    consolidate(settings)
    first = _core(settings, "person_record").set_index("rec_id")
    before = first["person_id"]
    key, address = _redeliver_hukou(settings)
    run_source("ps_hukou", "2026-11-02", "run-2", settings=settings)
    consolidate(settings)
    after = _core(settings, "person_record")
    assert after["rec_id"].is_unique
    assert set(after["rec_id"]) == set(before.index)  # redelivered records are the same records
    now = after.set_index("rec_id")["person_id"].reindex(before.index)
    assert (now == before).all()  # no master id changed
    hukou = after[after["_source"] == "ps_hukou"].set_index("rec_id")
    # lineage: the earliest delivery of the record's current content: the moved record's
    # new address came in the later delivery, every other record was sent again unchanged
    dates = hukou["_logical_date"].astype(str)
    assert dates[f"person|ps_hukou|{key}"] == "2026-11-02"
    assert set(dates.drop(f"person|ps_hukou|{key}")) == {"2026-11-01"}
    same = hukou.index.drop(f"person|ps_hukou|{key}")
    lineage = ["_batch_id", "_row_number", "_logical_date"]
    assert hukou.loc[same, lineage].equals(first.loc[same, lineage])  # the first delivery's rows
    assert (
        hukou.loc[f"person|ps_hukou|{key}", "_batch_id"] != first.loc[f"person|ps_hukou|{key}", "_batch_id"]
    )
    with meta.connect(settings, read_only=True) as con:  # the record table: a layer of the one moved record
        patch = con.execute(
            "select drop_rows, add_rows from meta.core_layer where table_name = 'person_record'"
        ).fetchall()
    assert patch == [(1, 1)]
    src = _core(settings, "person_source")
    held = src[src["source"] == "ps_hukou"]
    assert set(held["last_delivery"].astype(str)) == {"2026-11-02"}  # the span of its deliveries
    assert set(held["first_delivery"].astype(str)) == {"2026-11-01"}
    moved = before[f"person|ps_hukou|{key}"]
    gold = _core(settings, "person").set_index("person_id")
    assert gold.loc[moved, "address"] == address  # the most recent address survives
    prov = _core(settings, "provenance")
    row = prov[(prov["master_id"] == moved) & (prov["attribute"] == "address")].iloc[0]
    assert (row["_source"], row["record_key"], row["rule"]) == ("ps_hukou", key, "recent")


def test_a_record_table_with_a_column_this_version_lacks_is_written_whole(
    staged: Path, tmp_path: Path
) -> None:
    """A record table an older version wrote with another column: the next incremental run
    writes the table whole (a patch of it would lack that column), without the column."""

    settings = _copy(staged, tmp_path / "older")
    consolidate(settings)
    with meta.connect(settings, read_only=True) as con:
        rel = con.execute("select path from meta.core_table where table_name = 'person_record'").fetchall()
    file = settings.warehouse / rel[0][0]
    local = duckdb.connect()
    local.execute(
        f"copy (select *, 'x' as legacy from read_parquet({meta.sql_literal(str(file))})) "
        f"to {meta.sql_literal(str(file) + '.tmp')} (format parquet)"
    )
    local.close()
    Path(str(file) + ".tmp").replace(file)
    _redeliver_hukou(settings)
    run_source("ps_hukou", "2026-11-02", "run-2", settings=settings)
    consolidate(settings)
    after = _core(settings, "person_record")
    assert "legacy" not in after.columns and after["rec_id"].is_unique
    with meta.connect(settings, read_only=True) as con:
        for table in ("core_patch", "core_layer"):
            patched = con.execute(f"select count(*) from meta.{table} where table_name = 'person_record'")
            assert patched.fetchall() == [(0,)]


def test_a_snapshot_sent_again_unchanged_does_not_outrank_a_change(staged: Path, tmp_path: Path) -> None:
    """`recent` compares when each value was delivered as it is: the household register
    moves a person on 2 November, the health commission sends its whole file again
    unchanged on 3 November (its old address for the person among it): the new address
    survives, and the health records keep the lineage of their first delivery."""
    settings = _copy(staged, tmp_path / "snapshot")
    consolidate(settings)
    recs = _core(settings, "person_record")
    gold = _core(settings, "person").set_index("person_id")
    prov = _core(settings, "provenance")
    by = recs.groupby("person_id")["_source"].agg(set)
    both = set(by[by.map(lambda s: {"ps_hukou", "nhc_health"} <= s)].index)
    won = prov[
        (prov["attribute"] == "address") & (prov["_source"] == "nhc_health") & prov["master_id"].isin(both)
    ]
    assert len(won), "no person whose address came from health and who is in the register"
    master = sorted(won["master_id"])[0]
    hukou_key = recs[(recs["person_id"] == master) & (recs["_source"] == "ps_hukou")]["record_key"].iloc[0]
    old = gold.loc[master, "address"]
    key, address = _redeliver_hukou(settings, hukou_key)
    run_source("ps_hukou", "2026-11-02", "run-2", settings=settings)
    health = settings.source_landing("nhc_health")  # the whole file again, one other record changed
    theirs = set(recs[(recs["person_id"] == master) & (recs["_source"] == "nhc_health")]["record_key"])
    lines = (health / "health_20261101.jsonl").read_text(encoding="utf-8").splitlines()
    other = next(i for i, line in enumerate(lines) if not any(f'"{k}"' in line for k in theirs))
    lines[other] = lines[other].replace('"detail":"', '"detail":"附', 1)
    (health / "health_20261103.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_source("nhc_health", "2026-11-03", "run-3", settings=settings)
    consolidate(settings)
    gold = _core(settings, "person").set_index("person_id")
    assert address != old and gold.loc[master, "address"] == address
    prov = _core(settings, "provenance")
    row = prov[(prov["master_id"] == master) & (prov["attribute"] == "address")].iloc[0]
    assert (row["_source"], row["record_key"], row["rule"]) == ("ps_hukou", key, "recent")
    after = _core(settings, "person_record")
    changed = json.loads(lines[other])["record_id"]
    dates = after[after["_source"] == "nhc_health"].set_index("record_key")["_logical_date"].astype(str)
    assert dates[changed] == "2026-11-03" and set(dates.drop(changed)) == {"2026-11-01"}
    consolidate(settings, mode="full")  # a full rebuild decides as the incremental run did
    assert _core(settings, "person").set_index("person_id").loc[master, "address"] == address


def test_lineage_is_the_first_delivery_of_the_current_content(staged: Path, tmp_path: Path) -> None:
    """Deliveries A, B, A of one record: its lineage is the third (its content since then);
    A, A, A: the first; the span of its deliveries is kept for core.person_source."""
    from etl.contracts import get_contracts
    from etl.resolve.config import load_resolve_configs
    from etl.resolve.records import load_records

    settings = _copy(staged, tmp_path / "aba")
    key, _ = _redeliver_hukou(settings, day="20261102")  # B: the first record moved
    run_source("ps_hukou", "2026-11-02", "run-2", settings=settings)
    second_key, _ = _redeliver_hukou(settings, day="20261103", row=1)  # A again, the second record moved
    run_source("ps_hukou", "2026-11-03", "run-3", settings=settings)
    contracts = get_contracts(settings)
    cfg = load_resolve_configs(settings.schemas_dir, contracts.tables)["person"]
    with meta.connect(settings, read_only=True) as con:
        recs = load_records(con, cfg, contracts).set_index("rec_id")
        third = con.execute(
            "select distinct _batch_id from staging.person where _source = 'ps_hukou' and _logical_date = '2026-11-03'"
        ).fetchall()
    hukou = recs[recs["_source"] == "ps_hukou"]
    moved = hukou.loc[f"person|ps_hukou|{key}"]
    assert str(moved["_logical_date"])[:10] == "2026-11-03"
    second = f"person|ps_hukou|{second_key}"
    assert str(hukou.loc[second, "_logical_date"])[:10] == "2026-11-03"  # A, A, C: the third
    others = hukou.drop([f"person|ps_hukou|{key}", second])
    assert len(others) and set(others["_logical_date"].astype(str).str[:10]) == {"2026-11-01"}
    assert {str(d)[:10] for d in hukou["_first_delivery"]} == {"2026-11-01"}
    assert {str(d)[:10] for d in hukou["_last_delivery"]} == {"2026-11-03"}
    assert len(third) == 1 and moved["_batch_id"] == third[0][0]


def test_the_current_model_is_incremental_however_its_path_is_given(
    consolidated: Settings, tmp_path: Path
) -> None:
    """`consolidate(models=...)` names a kept model.json: the current model, given relative
    to the warehouse root, absolute, or as another home's copy of it, links incrementally
    (the previous linkage built on); a model other than the current one links in full."""
    from etl.contracts import get_contracts
    from etl.resolve.config import load_resolve_configs
    from etl.resolve.stage import _basis

    cfg = load_resolve_configs(consolidated.schemas_dir, get_contracts(consolidated).tables)["person"]
    with meta.connect(consolidated, read_only=True) as con:
        current = store.last_model_path(con, "person")
        assert current is not None
        elsewhere = tmp_path / "other" / "warehouse" / current
        shutil.copytree((consolidated.warehouse / current).parent, elsewhere.parent)
        other = tmp_path / "retrained" / "model.json"
        shutil.copytree(elsewhere.parent, other.parent)
        settings = json.loads(other.read_text(encoding="utf-8"))
        settings["probability_two_random_records_match"] /= 2
        other.write_text(json.dumps(settings), encoding="utf-8")
        spellings = [None, current, str(consolidated.warehouse / current), f"./{current}", str(elsewhere)]
        for path in spellings:
            ran, kept, previous = _basis(con, consolidated, cfg, "incremental", path)
            assert (ran, kept is not None and kept.path, previous is not None) == (
                "incremental",
                current,
                True,
            ), path
        ran, kept, previous = _basis(con, consolidated, cfg, "incremental", str(other))
        assert (ran, kept is not None and kept.path, previous) == ("full", "", None)
    on_disk = sorted(p.name for p in (consolidated.warehouse / current).parent.parent.iterdir())
    assert on_disk == [(consolidated.warehouse / current).parent.name]  # nothing copied (read only)


def test_relations_link_masters(consolidated: Settings) -> None:
    reps = _core(consolidated, "legal_representative")
    orgs = _core(consolidated, "legal_entity")
    persons = set(_core(consolidated, "person")["person_id"])
    assert len(reps) and set(reps["person_id"]) <= persons
    assert orgs["legal_rep_person_id"].notna().mean() > 0.95
    emp = _core(consolidated, "employment")
    assert len(emp) and emp["legal_entity_id"].notna().all() and set(emp["person_id"]) <= persons
    src = _core(consolidated, "person_source")
    assert set(src["source"]) >= {"ps_hukou", "nhc_health", "hrss_insurance"}
    # the island-breaking view: many persons are known to more than one department
    assert (src.groupby("person_id")["source"].nunique() > 1).mean() > 0.5


def _settings_with_review_band(home: Path, tmp_path: Path) -> Settings:
    """The project's contracts with a wide review band (review threshold 0.05), so the
    queue holds pairs at this size."""
    project = tmp_path / "project"
    shutil.copytree(get_settings().schemas_dir, project / "schemas")
    shutil.copytree(get_settings().expectations_dir, project / "expectations")
    person = project / "schemas" / "resolve" / "person.yml"
    person.write_text(
        person.read_text(encoding="utf-8").replace("review: 0.8", "review: 0.05"), encoding="utf-8"
    )
    return Settings(home=home, project_dir=project)


def test_review_decisions_win_over_the_model_on_every_later_run(staged: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from etl.cli import app
    from etl.resolve import review

    settings = _settings_with_review_band(_copy(staged, tmp_path / "review").home, tmp_path)
    consolidate(settings)
    queued = review.queue(settings, "person")
    assert len(queued) > 0
    records = _core(settings, "person_record")
    # reject a pair the model linked (a record without an ID and one with), accept one it did not
    no_id = records[~records["has_valid_id"]]
    linked = records[records["person_id"].isin(no_id["person_id"]) & records["has_valid_id"]].iloc[0]
    partner = no_id[no_id["person_id"] == linked["person_id"]].iloc[0]
    # accept a pair the model keeps apart: that no-ID record and a record of another master
    other = records[(records["person_id"] != partner["person_id"]) & (records["_table"] == "person")].iloc[0]
    review.decide_records(settings, "person", linked["rec_id"], partner["rec_id"], "reject")
    review.decide_records(settings, "person", partner["rec_id"], other["rec_id"], "accept")
    runner = CliRunner()
    env = {"GOVBASE_HOME": str(settings.home), "GOVBASE_PROJECT_DIR": str(settings.project_dir)}
    queued_pair = queued.iloc[0]
    shown = runner.invoke(app, ["review", "show", queued_pair["pair_id"]], env=env)
    assert shown.exit_code == 0, shown.output
    assert "comparison levels" in shown.output and "match weight" in shown.output
    with meta.connect(settings, read_only=True) as con:
        names = set(con.execute("select name from staging.person").df()["name"].dropna())
    assert not any(n in shown.output for n in names if len(n) >= 2)  # names are masked
    decided = runner.invoke(app, ["review", "reject", queued_pair["pair_id"], "--by", "reviewer-1"], env=env)
    assert decided.exit_code == 0, decided.output
    for _ in range(2):  # applied on every later run
        consolidate(settings)
        now = _core(settings, "person_record").set_index("rec_id")["person_id"]
        assert now[linked["rec_id"]] != now[partner["rec_id"]]
        assert now[partner["rec_id"]] == now[other["rec_id"]]
        assert now[queued_pair["rec_id_l"]] != now[queued_pair["rec_id_r"]]
    assert queued_pair["pair_id"] not in set(review.queue(settings, "person")["pair_id"])
    # the masters the records left or joined keep their ids
    assert now[linked["rec_id"]] == linked["person_id"] and now[other["rec_id"]] == other["person_id"]


def test_a_later_delivery_with_events_updates_the_base_through_history(staged: Path, tmp_path: Path) -> None:
    """Day 2: the departments deliver again with the seed's deaths, marriages, moves and
    deregistrations up to that date. Ids stay (except recorded merges), and history says
    what the base held on each day."""
    from etl.resolve.evaluate import truth_of
    from etl.resolve.history import as_of_sql

    settings = _copy(staged, tmp_path / "events")
    consolidate(settings)
    before = _core(settings, "person_record").set_index("rec_id")["person_id"]
    orgs_before = _core(settings, "legal_entity_record").set_index("rec_id")["legal_entity_id"]
    generate(settings, persons=PERSONS, seed=SEED, drop_date="20261102")
    _ingest(settings, "2026-11-02", "run-2")
    consolidate(settings)
    after = _core(settings, "person_record").set_index("rec_id")["person_id"]
    id_map = _core(settings, "person_id_map")
    merged = dict(zip(id_map["person_id"], id_map["merged_into"], strict=True))
    common = before.index.intersection(after.index)
    changed = [(o, n) for o, n in zip(before[common], after[common], strict=True) if o != n]
    assert all(merged.get(o) == n for o, n in changed), changed[:5]  # only recorded merges
    org_after = _core(settings, "legal_entity_record").set_index("rec_id")["legal_entity_id"]
    kept = orgs_before.index.intersection(org_after.index)  # a patched file keeps no row order
    assert (org_after[kept] == orgs_before[kept]).all()
    events = pd.read_parquet(settings.truth_dir / "events.parquet")
    with meta.connect(settings, read_only=True) as con:
        recs = _core(settings, "person_record")
        recs["true"] = truth_of(con, settings, "person", recs)
        master_of = recs.dropna(subset=["true"]).drop_duplicates("true").set_index("true")["person_id"]
        deaths = events[(events["kind"] == "death") & (events["date"].astype(str) <= "2026-11-02")]
        dead = [master_of[e] for e in deaths["entity_id"] if e in master_of.index]
        assert dead, "the later delivery records deaths"
        day = {}
        for d in ("2026-11-01", "2026-11-02"):
            sql, params = as_of_sql("person", d)
            day[d] = con.execute(f"select person_id, alive from ({sql})", params).df().set_index("person_id")
        assert day["2026-11-01"].loc[dead, "alive"].all()  # alive as of the earlier date
        assert not day["2026-11-02"].loc[dead, "alive"].any()  # deceased as of the later one
        dereg = events[(events["kind"] == "deregistration") & (events["date"].astype(str) <= "2026-11-02")]
        orgs = _core(settings, "legal_entity_record")
        orgs["true"] = truth_of(con, settings, "legal_entity", orgs)
        org_of = orgs.dropna(subset=["true"]).drop_duplicates("true").set_index("true")["legal_entity_id"]
        gone = [org_of[e] for e in dereg["entity_id"] if e in org_of.index]
        assert gone, "the later delivery deregisters organisations"
        status = {}
        for d in ("2026-11-01", "2026-11-02"):
            sql, params = as_of_sql("legal_entity", d)
            status[d] = con.execute(f"select legal_entity_id, status from ({sql})", params).df()
            status[d] = status[d].set_index("legal_entity_id")["status"]
        assert (status["2026-11-01"][gone] == "active").all()
        assert (status["2026-11-02"][gone] != "active").all()
    history = _core(settings, "person_history")
    assert history.groupby("person_id")["is_current"].sum().max() == 1  # one current version per master


HOLD_WRITER_FILE = """
import sys, time, duckdb
from etl.config import get_settings
from etl.lock import writer_lock
settings = get_settings(sys.argv[1])
with writer_lock(settings, "analyst-on-the-writer-file"):
    con = duckdb.connect(str(settings.duckdb_path))  # read-write: DuckDB's file lock held
    print("held", flush=True)
    time.sleep(120)
"""


def test_consolidate_publishes_core_and_its_readers_never_wait_for_the_writer(
    consolidated: Settings,
) -> None:
    """The published catalog carries schema core as consolidate left it; review list, asof
    and evaluate read it while another process holds both the writer lock and
    a read-write connection on the writer's file."""
    from typer.testing import CliRunner

    from etl.cli import app
    from etl.resolve import review

    with meta.connect(consolidated, read_only=True) as con:
        last_run = con.execute(
            "select run_id from meta.resolve_run order by finished_at desc limit 1"
        ).fetchall()[0][0]
        written = con.execute("select count(*), sum(hash(person_id)) from core.person").fetchall()
    with duckdb.connect(str(consolidated.catalog_path), read_only=True) as con:
        published = {
            t
            for (t,) in con.execute(
                "select table_name from duckdb_tables() where schema_name = 'core'"
            ).fetchall()
        }
        assert con.execute("select run_id from meta.published").fetchall() == [(last_run,)]
        assert con.execute("select count(*), sum(hash(person_id)) from core.person").fetchall() == written
    assert set(CORE_TABLES) <= published
    expected_queue = review.queue(consolidated)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITER_FILE, str(consolidated.home)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        queue = review.queue(consolidated)  # (the demo's default band queues no pair at this size)
        assert queue.equals(expected_queue)
        scores = evaluate(consolidated)
        assert scores["person"][0].precision >= 0.995
        home = ["--home", str(consolidated.home)]
        asof = CliRunner().invoke(app, ["asof", "2026-11-01", "person", "--limit", "3", *home])
        assert asof.exit_code == 0, asof.output
        assert "masters" in asof.output
        listed = CliRunner().invoke(app, ["review", "list", *home])
        assert listed.exit_code == 0 and f"review queue ({len(queue)} pairs)" in listed.output, listed.output
    finally:
        holder.kill()
        holder.wait()


def test_consolidate_before_anything_is_staged_is_a_clear_error(tmp_path: Path) -> None:
    """A home whose run could not write staging (or that never ran): consolidate says so,
    as a GovbaseError the CLI prints, not a traceback."""
    from etl.errors import StageOrderError

    settings = get_settings(tmp_path / "home")
    generate(settings, persons=20, seed=3)  # deliveries only, nothing loaded
    with pytest.raises(StageOrderError, match=r"no staged table holds \w+ records yet: load the sources"):
        consolidate(settings)


def test_consolidate_after_only_the_person_sources_links_the_persons(tmp_path: Path) -> None:
    """The consolidate DAG runs by itself after each department's ingest: when only person
    sources have delivered, the persons are consolidated (organisation ids still null) and
    the organisations wait for their own delivery, instead of the whole run failing."""
    settings = get_settings(tmp_path / "home")
    generate(settings, persons=60, seed=5)
    run_source("nhc_health", "2026-11-01", "run-1", settings=settings)
    summary = consolidate(settings)
    assert set(summary.entities) == {"person"}
    with meta.connect(settings, read_only=True) as con:
        masters = con.execute("select count(*) from core.person").fetchall()[0][0]
    assert masters > 0
