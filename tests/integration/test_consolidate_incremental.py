"""Incremental consolidation (issue 12.9) on the demo's later deliveries, against its truth.

Home A consolidates each delivery as it comes (the base drop, the next day's, one four
months later: deaths, marriages, moves, births, deregistrations); home B ingests the same
three deliveries and consolidates once. Incremental must equal full: in place (`--full`
with the same model: identical tables, ids included) and in a fresh home (the same
clusters, up to the ids' numbering, and the same golden values); and its accuracy is
measured beside a full run that trains its own model.
"""

from __future__ import annotations

import itertools
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from etl import meta
from etl.config import Settings, get_settings
from etl.contracts import get_contracts
from etl.demo import generate
from etl.pipeline import run_source
from etl.resolve import store
from etl.resolve.evaluate import evaluate, truth_of
from etl.resolve.stage import consolidate

pytestmark = pytest.mark.integration

PERSONS = 2500
SEED = 31
DROPS = (("20261101", "2026-11-01"), ("20261102", "2026-11-02"), ("20270301", "2027-03-01"))
ENTITIES = ("person", "legal_entity")


def _deliver(settings: Settings, i: int) -> None:
    drop, day = DROPS[i]
    generate(settings, persons=PERSONS, seed=SEED, drop_date=drop)
    for source in sorted(get_contracts(settings).sources):
        run_source(source, day, f"run-{i + 1}", settings=settings)


def _core(settings: Settings, table: str) -> pd.DataFrame:
    with meta.connect(settings, read_only=True) as con:
        frame = store.read_core(con, settings, table)
    assert frame is not None, table
    return frame


def _runs(settings: Settings) -> pd.DataFrame:
    with meta.connect(settings, read_only=True) as con:
        return con.execute("select * from meta.resolve_run order by finished_at").df()


@dataclass
class Homes:
    a: Settings  # consolidated after every delivery
    a_full: Settings  # a before its last run, then a full rebuild with the same model
    b: Settings  # the three deliveries, then one consolidation with a's models
    b_trained: Settings  # the same, training its own model
    records: list[pd.DataFrame] = field(default_factory=list)  # a's core.person_record after each run


def _merging_decision(settings: Settings) -> tuple[str, str]:
    """A pair of records in two masters to accept before the last run, so that its delta
    merges masters: a pair the truth says belongs together where the model kept it apart,
    else (the model missed none) the first two records of two masters without a valid ID."""
    recs = _core(settings, "person_record")
    with meta.connect(settings, read_only=True) as con:
        true = truth_of(con, settings, "person", recs)
    recs = recs.assign(true=true.to_numpy()).sort_values("rec_id", ignore_index=True)
    apart = recs.dropna(subset=["true"]).drop_duplicates(["true", "person_id"])
    missed = apart[apart.duplicated("true", keep=False)]
    if len(missed):
        first = missed[missed["true"] == missed["true"].iloc[0]]
        pair = sorted(first["rec_id"].iloc[:2])
    else:
        loose = recs[~recs["has_valid_id"]].drop_duplicates("person_id")
        pair = sorted(loose["rec_id"].iloc[:2])
    return pair[0], pair[1]


def _decide(settings: Settings, pair: tuple[str, str]) -> None:
    with meta.connect(settings) as con:
        store.ensure(con)
        con.execute(
            "insert into meta.review_decision values ('person', ?, ?, 'accept', 'test', ?)",
            [*pair, meta.now()],
        )


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Homes:
    root = tmp_path_factory.mktemp("incremental")
    a = get_settings(root / "a")
    records = []
    for i in range(len(DROPS)):
        _deliver(a, i)
        if i == len(DROPS) - 1:  # the last delta also merges two masters (a clerical decision)
            pair = _merging_decision(a)
            _decide(a, pair)
            shutil.copytree(a.home, root / "a_full")
        consolidate(a)
        records.append(_core(a, "person_record"))
    a_full = get_settings(root / "a_full")
    consolidate(a_full, mode="full")
    b = get_settings(root / "b")
    for i in range(len(DROPS)):
        _deliver(b, i)
    _decide(b, pair)
    shutil.copytree(b.home, root / "b_trained")
    with meta.connect(a, read_only=True) as con:
        models = {e: str(a.warehouse / str(store.last_model_path(con, e))) for e in ENTITIES}
    consolidate(b, mode="full", models=models)
    b_trained = get_settings(root / "b_trained")
    consolidate(b_trained)
    return Homes(a=a, a_full=a_full, b=b, b_trained=b_trained, records=records)


def test_later_runs_score_only_new_and_changed_records(homes: Homes) -> None:
    runs = _runs(homes.a)
    person = runs[runs["entity"] == "person"].reset_index(drop=True)
    assert list(person["mode"]) == ["train", "incremental", "incremental"]
    assert (person.loc[0, "records_scored"] == person.loc[0, "records"]) and person.loc[
        0, "records"
    ] > PERSONS
    for run in (1, 2):
        scored, records = int(person.loc[run, "records_scored"]), int(person.loc[run, "records"])
        assert 0 < scored < records / 10, (run, scored, records)
    # what was scored is exactly what is new or changed: every other record kept its hash
    before, after = (f.set_index("rec_id")["content_hash"] for f in homes.records[1:])
    changed = int((after.reindex(before.index) != before).sum()) + len(after.index.difference(before.index))
    assert changed == int(person.loc[2, "records_scored"])
    assert len(after.index.difference(before.index)) > 0  # the later drop brought new records (births)
    assert (person["model_path"] == person.loc[0, "model_path"]).all()  # one model, kept
    # survivorship chose again only the masters the deltas touched (the last one: a merge too)
    for run in (1, 2):
        chosen, masters = int(person.loc[run, "masters_chosen"]), int(person.loc[run, "masters"])
        assert 0 < chosen < masters / 2, (run, chosen, masters)
    assert int(person.loc[0, "masters_chosen"]) == int(person.loc[0, "masters"])


def test_incremental_equals_a_full_rebuild_in_place(homes: Homes) -> None:
    a, a_full = homes.a, homes.a_full
    assert set(_runs(a_full).tail(2)["mode"]) == {"full"}
    for entity in ENTITIES:
        id_col = f"{entity}_id"
        for table, key in (
            (f"{entity}_record", ["rec_id"]),
            (entity, [id_col]),
            (f"{entity}_pair", ["rec_id_l", "rec_id_r"]),
            (f"{entity}_id_map", [id_col, "run_id"]),
        ):
            x, y = _core(a, table), _core(a_full, table)
            if table.endswith("_pair"):  # the run that scored a pair: the full rebuild scored them all
                x, y = x.drop(columns="run_id"), y.drop(columns="run_id")
            if "run_id" in key:  # the last run's id differs between the homes
                x, y = (f[f["run_id"] != f["run_id"].max()] for f in (x, y))
            pd.testing.assert_frame_equal(
                x.sort_values(key, ignore_index=True), y.sort_values(key, ignore_index=True), obj=table
            )
    # what survivorship, history and the relations made of them: the same, row for row (the
    # incremental run chose again only the masters its delta touched, the full one all)
    runs = _runs(a).groupby("entity").tail(1).set_index("entity")
    assert (runs["masters_chosen"] < runs["masters"]).all()
    id_map = _core(a, "person_id_map")
    assert (id_map[id_map["run_id"] == runs.loc["person", "run_id"]]["reason"] == "merged").any()
    for table in (
        "provenance",
        "finding",
        "person_history",
        "legal_entity_history",
        "legal_representative",
        "employment",
        "person_source",
    ):
        x, y = (_core(h, table) for h in (a, a_full))
        x, y = (f.drop(columns=[c for c in ("run_id",) if c in f]) for f in (x, y))
        cols = list(x.columns)
        pd.testing.assert_frame_equal(
            x.sort_values(cols, ignore_index=True), y.sort_values(cols, ignore_index=True), obj=table
        )


def test_the_incremental_runs_layered_the_patched_tables_and_the_catalog_holds_them(homes: Homes) -> None:
    """The patched core tables of home A are layers over their base files (etl.resolve.layers):
    the equalities above read them composed; the published catalog holds what the views read."""
    import duckdb

    a = homes.a
    with meta.connect(a, read_only=True) as con:
        layers = dict(con.execute("select table_name, count(*) from meta.core_layer group by 1").fetchall())
        views = {t: sorted(map(str, con.execute(f"select * from core.{t}").fetchall())) for t in layers}
    assert {"provenance", "person_history"} <= set(layers), layers
    with duckdb.connect(str(a.catalog_path), read_only=True) as cat:
        for table, rows in views.items():
            assert sorted(map(str, cat.execute(f"select * from core.{table}").fetchall())) == rows, table


def _renaming(a: Settings, b: Settings, entity: str) -> dict[str, str]:
    """b's master ids -> a's, asserting that the two partitions of the records are equal."""
    id_col = f"{entity}_id"
    ra, rb = _core(a, f"{entity}_record"), _core(b, f"{entity}_record")
    assert set(ra["rec_id"]) == set(rb["rec_id"])
    m = ra[["rec_id", id_col]].merge(rb[["rec_id", id_col]], on="rec_id", suffixes=("_a", "_b"))
    assert m.groupby(f"{id_col}_a")[f"{id_col}_b"].nunique().max() == 1
    assert m.groupby(f"{id_col}_b")[f"{id_col}_a"].nunique().max() == 1
    return dict(zip(m[f"{id_col}_b"], m[f"{id_col}_a"], strict=True))


def test_incremental_equals_one_full_consolidation_of_all_deliveries(homes: Homes) -> None:
    a, b = homes.a, homes.b
    renames = {e: _renaming(a, b, e) for e in ENTITIES}
    for entity in ENTITIES:
        id_col = f"{entity}_id"
        ga = _core(a, entity).sort_values(id_col, ignore_index=True)
        gb = _core(b, entity)
        gb[id_col] = gb[id_col].map(renames[entity])
        if "legal_rep_person_id" in gb:
            gb["legal_rep_person_id"] = gb["legal_rep_person_id"].map(renames["person"]).astype("string")
        pd.testing.assert_frame_equal(ga, gb.sort_values(id_col, ignore_index=True), obj=entity)
    cols = ["entity", "master_id", "attribute", "_source", "record_key", "rule"]
    pa, pb = _core(a, "provenance")[cols], _core(b, "provenance")[cols].copy()
    for entity in ENTITIES:
        own = pb["entity"] == entity
        pb.loc[own, "master_id"] = pb.loc[own, "master_id"].map(renames[entity])
    key = ["entity", "master_id", "attribute"]
    pd.testing.assert_frame_equal(
        pa.sort_values(key, ignore_index=True), pb.sort_values(key, ignore_index=True)
    )


def test_incremental_accuracy_beside_a_freshly_trained_full_run(homes: Homes) -> None:
    incremental, trained = evaluate(homes.a), evaluate(homes.b_trained)
    for scores in (incremental, trained):
        (p_all, p_noid), (o_all, _) = scores["person"], scores["legal_entity"]
        assert p_all.precision >= 0.995 and p_all.recall >= 0.99, p_all
        assert p_noid.precision >= 0.98 and p_noid.recall >= 0.95, p_noid
        assert o_all.precision >= 0.995 and o_all.recall >= 0.99, o_all
    for entity in ENTITIES:
        for inc, full in zip(incremental[entity], trained[entity], strict=True):
            assert inc.records == full.records
            assert abs(inc.f1 - full.f1) <= 0.005, (entity, inc, full)


def test_ids_stay_and_history_records_the_events(homes: Homes) -> None:
    a = homes.a
    snaps = homes.records
    id_map = _core(a, "person_id_map")
    merged = dict(zip(id_map["person_id"], id_map["merged_into"], strict=True))
    for before, after in itertools.pairwise(snaps):
        old = before.set_index("rec_id")["person_id"]
        new = after.set_index("rec_id")["person_id"].reindex(old.index)
        moved = [(o, n) for o, n in zip(old, new, strict=True) if o != n]
        assert all(merged.get(o) == n for o, n in moved), moved[:5]
    events = pd.read_parquet(a.truth_dir / "events.parquet")
    kinds = set(events["kind"])
    assert {"death", "marriage", "move", "birth"} <= kinds
    history = _core(a, "person_history")
    assert history.groupby("person_id")["is_current"].sum().max() == 1
    versions = history.groupby("person_id").size()
    # the drops' events changed golden records: they have closed versions, dated by the drops
    assert (versions > 1).sum() > 0
    closed = history[~history["is_current"]]
    assert set(closed["valid_to"].dt.strftime("%Y-%m-%d")) <= {d for _, d in DROPS[1:]}


def test_the_cli_flags_choose_full_and_retrain(homes: Homes, tmp_path: Path) -> None:
    from etl.cli import app

    home = shutil.copytree(homes.a.home, tmp_path / "cli")
    runner = CliRunner()
    for flag, mode in (("--full", "full"), ("--retrain", "train"), (None, "incremental")):
        got = runner.invoke(app, ["consolidate", "--home", str(home), *([flag] if flag else [])])
        assert got.exit_code == 0, got.output
        assert f"person ({mode})" in got.output
    runs = _runs(get_settings(home))
    person = runs[runs["entity"] == "person"]
    assert person["model_path"].iloc[-1] == person["model_path"].iloc[-2] != person["model_path"].iloc[-3]


def test_changed_resolve_settings_train_a_new_model(homes: Homes, tmp_path: Path) -> None:
    home = shutil.copytree(homes.a.home, tmp_path / "changed")
    project = tmp_path / "project"
    shutil.copytree(get_settings().schemas_dir, project / "schemas")
    shutil.copytree(get_settings().expectations_dir, project / "expectations")
    person = project / "schemas" / "resolve" / "person.yml"
    person.write_text(
        person.read_text(encoding="utf-8").replace("u_max_pairs: 2000000", "u_max_pairs: 1500000"),
        encoding="utf-8",
    )
    settings = Settings(home=home, project_dir=project)
    summary = consolidate(settings)
    assert summary.entities["person"]["mode"] == "train"
    assert summary.entities["legal_entity"]["mode"] == "incremental"
    # the shared provenance: persons chosen anew in full, organisations patched; one row per
    # golden value of each entity's current masters, none left of a master gone
    prov = _core(settings, "provenance")
    assert not prov.duplicated(["entity", "master_id", "attribute"]).any()
    for entity in ENTITIES:
        id_col = f"{entity}_id"
        gold = _core(settings, entity)
        attrs = [
            c for c in gold.columns if c not in (id_col, "source_records", "sources", "legal_rep_person_id")
        ]
        own = prov[prov["entity"] == entity]
        assert len(own) == int(gold[attrs].notna().sum().sum()), entity
        assert set(own["master_id"]) <= set(gold[id_col]), entity


def test_the_demo_prints_the_linkage_figures(homes: Homes) -> None:
    from etl.orchestration.demo import linkage_lines

    lines = linkage_lines(homes.a)
    scores = evaluate(homes.a)
    runs = _runs(homes.a).groupby("entity").tail(1).set_index("entity")
    for entity in ENTITIES:
        (line,) = [ln for ln in lines if ln.split()[:1] == [entity]]
        every, no_id = scores[entity]
        assert (
            f"{every.precision:.4f} / {every.recall:.4f}; {no_id.precision:.4f} / {no_id.recall:.4f}" in line
        )
        records, masters = int(runs.loc[entity, "records"]), int(runs.loc[entity, "masters"])
        assert line.split()[1:4] == [str(records), str(masters), str(records - masters)]
    assert linkage_lines(get_settings(homes.a.home.parent / "nothing")) == []


def test_a_provenance_of_the_older_layout_is_chosen_again_whole(homes: Homes, tmp_path: Path) -> None:
    """A base whose core.provenance still carries the records' batch and row (before it named
    only the record) cannot be patched: the next run chooses every master again, whole."""
    import duckdb

    home = shutil.copytree(homes.a.home, tmp_path / "older")
    settings = get_settings(home)
    with meta.connect(settings, read_only=True) as con:
        file = store.core_file(con, settings, "provenance")
    assert file is not None
    old = duckdb.connect()
    try:
        old.execute(
            f"copy (select *, 'b' as _batch_id, 1::bigint as _row_number from read_parquet('{file}')) "
            f"to '{file}.old' (format parquet)"
        )
    finally:
        old.close()
    Path(f"{file}.old").replace(file)
    summary = consolidate(settings)
    for entity in ENTITIES:
        run = summary.entities[entity]
        assert run["mode"] == "incremental" and run["masters_chosen"] == run["masters"], entity
    prov = _core(settings, "provenance")
    assert "_batch_id" not in prov and not prov.duplicated(["entity", "master_id", "attribute"]).any()


def test_a_run_id_used_again_that_retrains_keeps_its_own_model(tmp_path: Path) -> None:
    """A consolidation run again under its run id (an Airflow retry or a cleared task) after
    that run committed, training again on more records: its model gets a folder of its own
    (the first run's stays, for the run that names it), meta.resolve_run names it, and the
    next run links with it: a full rebuild then scores every pair as the retrained run did."""
    from etl.resolve import model

    settings = get_settings(tmp_path / "home")
    generate(settings, persons=400, seed=SEED, drop_date=DROPS[0][0])
    for source in sorted(get_contracts(settings).sources):
        run_source(source, DROPS[0][1], "run-1", settings=settings)
    consolidate(settings, run_id="consolidate-again")
    generate(settings, persons=400, seed=SEED, drop_date=DROPS[2][0])
    for source in sorted(get_contracts(settings).sources):
        run_source(source, DROPS[2][1], "run-2", settings=settings)
    consolidate(settings, run_id="consolidate-again", mode="retrain")
    retrained = _core(settings, "person_pair")
    consolidate(settings, mode="full")  # with the current model: the one the retrained run named
    rebuilt = _core(settings, "person_pair")
    cols = ["rec_id_l", "rec_id_r", "match_weight"]
    assert (
        rebuilt[cols]
        .sort_values(cols, ignore_index=True)
        .equals(retrained[cols].sort_values(cols, ignore_index=True))
    )
    paths = list(_runs(settings).query("entity == 'person'")["model_path"])
    assert paths == [
        "core/_models/person/run=consolidate-again/model.json",
        "core/_models/person/run=consolidate-again.2/model.json",
        "core/_models/person/run=consolidate-again.2/model.json",
    ]
    first, second = (model.load(settings.warehouse, p) for p in paths[:2])
    assert first is not None and second is not None
    assert first.settings != second.settings  # trained on other records
