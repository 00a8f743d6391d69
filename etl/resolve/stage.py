"""The consolidate stage: staging -> core (master entities, golden records, relations).

For each entity with a `schemas/resolve/<entity>.yml` (person, legal_entity):
records from every staged table that carries it -> linkage (exact + Splink) -> stable
master ids -> golden records by survivorship -> provenance and findings. Then the relations
keyed by master ids. Writes, in one publish (see etl.resolve.store):

- core.<entity>: one golden record per master (`<entity>_id`);
- core.<entity>_record: one row per source record -> its master;
- core.<entity>_id_map: ids merged into others or split from them, by run;
- core.<entity>_history: SCD2 versions of the golden records (etl.resolve.history);
- core.provenance: one row per golden value: the record it came from and the rule;
- core.finding: conflicts for a person's eye (two valid ids in a cluster, a valid ID whose
  birth date or gender another record contradicts);
- core.review_queue: pairs scored between the review and the match threshold;
- core.legal_representative, core.employment, core.person_source: relations.
The trained Splink model of each entity is kept per run (meta.resolve_run.model_path).
An incremental run whose survivorship builds on the previous run's gives core.<entity> and
core.provenance as `store.Patch`es of their current files (the rows of the masters it chose
again), and core.<entity>_record as one (the records it changed) unless most records
changed, so the kept rows never pass through pandas; a full run gives whole frames.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from etl import meta
from etl.config import Settings, get_settings
from etl.contracts import Contracts, get_contracts
from etl.datetypes import as_datetimes, core_dates
from etl.debris import sweep_core
from etl.errors import StageOrderError, writing
from etl.frames import duck_df, isin, lookup
from etl.lock import writer_lock
from etl.normalize.identifiers import birth_date_mismatch, gender_mismatch
from etl.published import publishing
from etl.resolve import golden, history, ids, model, store
from etl.resolve.config import ResolveConfig, load_resolve_configs, resolution_order
from etl.resolve.layers import Layered, base_file, relation
from etl.resolve.linkage import Linkage, Previous, exact_ids, link
from etl.resolve.records import load_records
from etl.resolve.relations import file_columns, relations

log = logging.getLogger(__name__)

#: how a run may link: `incremental` (default: new and changed records against the base,
#: a full pass where there is no base yet), `full` (every staged record, with the current
#: model), `retrain` (train a new model, then every staged record)
MODES = ("incremental", "full", "retrain")

FINDING_COLUMNS = ["entity", "kind", "master_id", "rec_ids", "attribute", "detail", "run_id"]


@dataclass
class EntityResult:
    entity: str
    records: pd.DataFrame  # the linkage records with master_id
    #: the tables to publish (core.<entity>, its record table: `store.Patch`es after an
    #: incremental survivorship); `_provenance`, `_finding`, `_review`: its share of those
    tables: dict[str, pd.DataFrame | store.Patch] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    last_value: int = 0


@dataclass
class ConsolidateSummary:
    run_id: str
    entities: dict[str, dict[str, Any]]
    #: wall seconds per step (`<entity>:<step>`, then relations, history, write, catalog)
    seconds: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"consolidate {self.run_id}"]
        for e, r in self.entities.items():
            lines.append(
                f"  {e} ({r['mode']}): {r['records']} records, {r['records_scored']} scored -> {r['masters']} masters "
                f"({r['with_valid_id']} with a valid identifier; {r['pairs_linked']} pairs linked by the model, "
                f"{r['review_pairs']} for review, {r['merged']} merged, {r['split']} split, {r['findings']} findings)"
            )
        return "\n".join(lines)


@contextmanager
def _timed(seconds: dict[str, float] | None, step: str) -> Iterator[None]:
    """Add the block's wall seconds to seconds[step] (and log them)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        took = time.perf_counter() - started
        if seconds is not None:
            seconds[step] = seconds.get(step, 0.0) + took
        log.info("consolidate: %s %.2f s", step, took)


#: what `_id_findings` checks: the attribute against the one a valid resident ID encodes
ID_CHECKS = (("birth_date", birth_date_mismatch), ("gender", gender_mismatch))
ID_KINDS = tuple(f"{attr}_contradicts_id" for attr, _ in ID_CHECKS)


def _id_findings(recs: pd.DataFrame, cfg: ResolveConfig, run_id: str) -> list[dict[str, Any]]:
    """A valid resident ID whose master holds a record with another birth date or gender
    (per master: `recs` may be the records of some masters only)."""
    if cfg.exact_key_check != "resident_id":
        return []
    master_id = recs.groupby("master_id")["exact_id"].first()
    the_id = recs["master_id"].map(master_id).astype("string")
    out = []
    for attr, check in ID_CHECKS:
        if attr not in recs:
            continue
        differ, _ = check(the_id.fillna(""), recs[attr])
        for m, grp in recs[differ].groupby("master_id"):
            out.append(
                {
                    "entity": cfg.name,
                    "kind": f"{attr}_contradicts_id",
                    "master_id": m,
                    "rec_ids": ",".join(sorted(grp["rec_id"])),
                    "attribute": attr,
                    "detail": f"{len(grp)} record(s) disagree with the {attr} the resident ID encodes",
                    "run_id": run_id,
                }
            )
    return out


def _review_queue(
    pairs: pd.DataFrame, recs: pd.DataFrame, cfg: ResolveConfig, decided: pd.DataFrame
) -> pd.DataFrame:
    q = pairs[pairs["match_probability"] < cfg.thresholds.match]
    # the identifiers of the queue's records only (an index over every record cost more)
    ends = pd.concat([q["rec_id_l"], q["rec_id_r"]], ignore_index=True)
    keyed = recs.loc[isin(recs["rec_id"], ends), ["rec_id", "exact_id"]].set_index("rec_id")["exact_id"]
    both = keyed.reindex(q["rec_id_l"]).notna().to_numpy() & keyed.reindex(q["rec_id_r"]).notna().to_numpy()
    q = q[~both]
    if len(decided):
        done = set(zip(decided["rec_id_l"], decided["rec_id_r"], strict=True))
        undecided = [(a, b) not in done for a, b in zip(q["rec_id_l"], q["rec_id_r"], strict=True)]
        q = q[np.array(undecided, dtype=bool)]  # a mask even when empty ([] would select no columns)
    q = q.assign(
        entity=cfg.name, pair_id=[pair_id(a, b) for a, b in zip(q["rec_id_l"], q["rec_id_r"], strict=True)]
    )
    return q.sort_values(["match_probability", "pair_id"], ascending=[False, True], ignore_index=True)


def pair_id(rec_id_l: str, rec_id_r: str) -> str:
    """A short, stable handle of a record pair for the review commands (record ids carry no personal data)."""
    return hashlib.sha256(f"{rec_id_l}\x1f{rec_id_r}".encode()).hexdigest()[:10]


RECORD_COLUMNS = [
    "rec_id",
    "master_id",
    "_table",
    "_source",
    "_batch_id",
    "_row_number",
    "record_key",
    "_logical_date",
]


def _assign_ids(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    cfg: ResolveConfig,
    linkage: Linkage,
    run_id: str,
) -> ids.Assignment:
    """Master ids for this run's clusters, given the ids the previous run gave their records
    (its core.<entity>_record). Incremental: the linkage says which records kept their
    previous master (`Linkage.reclustered`) and the master each record had
    (`Linkage.previous_master`), so only the clusters it computed again are mapped."""
    id_col = f"{cfg.name}_id"
    last = store.last_value(con, cfg.name)
    if linkage.previous_master is not None and linkage.reclustered is not None:
        again = linkage.reclustered
        was = linkage.previous_master
        prev = pd.DataFrame({"rec_id": linkage.clusters["rec_id"][again], "master_id": was[again]}).dropna()
        return ids.assign(
            linkage.clusters,
            prev,
            last_value=last,
            prefix=cfg.id_prefix,
            digits=cfg.id_digits,
            run_id=run_id,
            kept=was.where(~again),
        )
    held = store.read_core(con, settings, f"{cfg.name}_record", columns=["rec_id", id_col])
    prev = (
        held.rename(columns={id_col: "master_id"})
        if held is not None
        else pd.DataFrame(columns=["rec_id", "master_id"])
    )
    return ids.assign(
        linkage.clusters, prev, last_value=last, prefix=cfg.id_prefix, digits=cfg.id_digits, run_id=run_id
    )


def _previous(con: duckdb.DuckDBPyConnection, settings: Settings, entity: str) -> Previous | None:
    """The previous run's pairs and record table (its file), or None (no base, or one without
    them)."""
    path = store.core_source(con, settings, f"{entity}_record")
    if path is None or "content_hash" not in pq.read_schema(base_file(path)).names:
        return None
    pairs = store.read_core(con, settings, f"{entity}_pair")
    if pairs is None:
        return None
    return Previous(pairs=pairs, records=path, id_col=f"{entity}_id")


def _basis(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    cfg: ResolveConfig,
    mode: str,
    model_path: str | None,
) -> tuple[str, model.Model | None, Previous | None]:
    """How this run links the entity: (what it does: incremental, full or train; the model, None
    to train one; the previous linkage to build on). `model_path`: a kept model (its model.json,
    absolute or relative to the warehouse root) instead of the current one (reproducing a run).
    It is the current one, and the run incremental, by where it is kept (`model.load` resolves
    the path against the warehouse root; another home's model by its copy here, if any), not
    by how the path is spelled."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: one of {', '.join(MODES)}")
    current = store.last_model_path(con, cfg.name)
    path = model_path or current
    kept = model.load(settings.warehouse, path) if path and mode != "retrain" else None
    if kept is None:
        return "train", None, None
    if kept.config_hash != model.config_hash(cfg):
        log.warning("%s: the resolve settings changed since model %s: training a new one", cfg.name, path)
        return "train", None, None
    kept.path = kept.path or model.kept_copy(settings.warehouse, cfg.name, kept)
    same = current is not None and kept.path == current
    previous = _previous(con, settings, cfg.name) if mode == "incremental" and same else None
    return ("incremental" if previous is not None else "full"), kept, previous


def _golden_base(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    cfg: ResolveConfig,
    rules: str,
    records: Path | Layered | None,
) -> golden.Base | None:
    """The previous run's survivorship to build on, or None: none yet, or chosen under other
    rules or trust ranks (`golden.rules_hash`), or by a version that kept no such digest."""
    row = con.execute(
        "select survivorship_hash from meta.resolve_run where entity = ? "
        "order by finished_at desc, run_id desc limit 1",
        [cfg.name],
    ).fetchall()
    if not row or row[0][0] != rules:
        return None
    if records is None or store.core_file(con, settings, cfg.name) is None:
        return None
    if "content_hash" not in file_columns(con, settings, f"{cfg.name}_record"):  # an older version's
        return None
    # a provenance of an older layout (with the records' batch and row) is chosen again whole
    if file_columns(con, settings, "provenance") != golden.PROVENANCE_COLUMNS:
        return None
    return golden.Base(records=records, id_column=f"{cfg.name}_id")


@dataclass
class Survived:
    """An entity's survivorship: its golden table and its provenance rows, whole frames (every
    master chosen) or `store.Patch`es of the current files (`touched`: the masters chosen
    again, whose findings are found again; None when every master was)."""

    golden: pd.DataFrame | store.Patch
    provenance: pd.DataFrame | store.Patch
    masters: int
    touched: list[str] | None = None


def _survive(
    cfg: ResolveConfig,
    contracts: Contracts,
    trust: pd.DataFrame,
    recs: pd.DataFrame,
    base: golden.Base | None,
    run_id: str,
) -> Survived:
    """Every master chosen (`base` None), or the masters the delta touched, the others kept
    in their files: the golden table a patch keyed by the entity's id, the provenance one
    keyed (entity, master_id), each dropping the touched masters and adding the choices of
    those that still exist (`golden.Increment`). New provenance rows carry this run's
    `run_id`, kept ones the run's that chose them."""
    ent, id_col, attrs = cfg.name, f"{cfg.name}_id", cfg.attributes
    table = contracts.tables[ent]
    if base is None:
        chosen, gold = golden.survive(recs, table, attrs, trust, id_col)
        return Survived(golden=gold, provenance=chosen.assign(entity=ent, run_id=run_id), masters=len(gold))
    inc = golden.choose_incremental(recs, table, attrs, trust, base)
    masters = pd.Series(inc.touched, dtype="string")
    return Survived(
        golden=store.Patch(
            key=(id_col,),
            drop=pd.DataFrame({id_col: masters}),
            add=inc.golden.rename(columns={"master_id": id_col}),
        ),
        provenance=store.Patch(
            key=("entity", "master_id"),
            drop=pd.DataFrame({"entity": ent, "master_id": masters}),
            add=inc.chosen.assign(entity=ent, run_id=run_id)[golden.PROVENANCE_COLUMNS],
        ),
        masters=int(recs["master_id"].nunique()),
        touched=inc.touched,
    )


def _linkage_findings(
    linkage: Linkage, assigned: pd.DataFrame, cfg: ResolveConfig, run_id: str
) -> list[dict[str, Any]]:
    """The linkage's conflicts as finding rows, naming the masters the records went to
    (looked up for the findings' records only, not indexed over every record)."""
    named = {r for f in linkage.findings for r in f["rec_ids"]}
    sub = assigned.loc[isin(assigned["rec_id"], named), ["rec_id", "master_id"]]
    master_of = dict(zip(sub["rec_id"], sub["master_id"], strict=True))
    return [
        {
            "entity": cfg.name,
            "kind": f["kind"],
            "master_id": ",".join(sorted({master_of[r] for r in f["rec_ids"]})),
            "rec_ids": ",".join(f["rec_ids"]),
            "attribute": cfg.exact_key,
            "detail": f["detail"],
            "run_id": run_id,
        }
        for f in linkage.findings
    ]


def _same(a: pd.Series, b: pd.Series) -> bool:
    """Whether two text columns hold the same values in the same order."""
    if len(a) != len(b):
        return False
    if len(a) == 0:
        return True
    x, y = (pa.array(v.astype("string").array).cast(pa.string()) for v in (a, b))
    return bool(pc.all(pc.equal(x, y).fill_null(False)).as_py())


def _with_masters(
    recs: pd.DataFrame, assigned: pd.DataFrame, linkage: Linkage, cfg: ResolveConfig
) -> pd.DataFrame:
    """The records with their master_id and exact_id (the valid identifier, null where there
    is none), the exact key replaced by it: only a valid identifier may survive into a golden
    record. `assigned` (rec_id, master_id) is ordered by rec_id, as load_records orders the
    records: then the columns are set in place of a join."""
    if _same(recs["rec_id"], assigned["rec_id"]):
        recs = recs.assign(master_id=assigned["master_id"].to_numpy())
    else:
        recs = recs.merge(assigned, on="rec_id")
    if linkage.exact_id is not None:
        got = linkage.exact_id
        same = _same(recs["rec_id"], got.index.to_series())
        recs["exact_id"] = (got if same else got.reindex(recs["rec_id"])).to_numpy()
    else:
        recs["exact_id"] = exact_ids(recs, cfg).to_numpy()
    recs[cfg.exact_key] = recs["exact_id"]
    return recs


def resolve_entity(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    contracts: Contracts,
    cfg: ResolveConfig,
    run_id: str,
    context: dict[str, pd.Series] | None = None,
    mode: str = "incremental",
    model_path: str | None = None,
    seconds: dict[str, float] | None = None,
) -> EntityResult:
    """Link, id and survive one entity; the frames to publish. `context`: for each entity of
    `cfg.context`, rec_id -> the master its resolution gave that source record. `mode`,
    `model_path`: see `consolidate`; `seconds`: wall seconds per step are added there."""
    started = meta.now()
    ent = cfg.name
    with _timed(seconds, f"{ent}:load"):
        recs = load_records(con, cfg, contracts)
        for other in cfg.context:
            recs[f"{other}_id"] = lookup(recs["rec_id"], (context or {})[other]).astype("string")
        decided = store.decisions(con, ent)
        ran, kept, previous = _basis(con, settings, cfg, mode, model_path)
    with _timed(seconds, f"{ent}:link"):
        linkage: Linkage = link(recs, cfg, decided, model=kept, previous=previous, run_id=run_id)
    with _timed(seconds, f"{ent}:ids"):
        got = _assign_ids(con, settings, cfg, linkage, run_id)
        recs = _with_masters(recs, got.records, linkage, cfg)
    with _timed(seconds, f"{ent}:survivorship"):
        # the previous record table's file, for survivorship (read by DuckDB, as linkage and ids do)
        before = store.core_source(con, settings, f"{ent}_record") if ran == "incremental" else None
        trust = golden.trust_table(contracts, {i.table: i.columns for i in cfg.inputs})
        rules = golden.rules_hash(contracts.tables[ent], cfg.attributes, trust)
        base = _golden_base(con, settings, cfg, rules, before) if ran == "incremental" else None
        if base is not None:  # only the masters the delta touched chosen again
            recs["content_hash"] = lookup(recs["rec_id"], linkage.hashes)
        survived = _survive(cfg, contracts, trust, recs, base, run_id)
        recs = recs.drop(columns="content_hash", errors="ignore")
    with _timed(seconds, f"{ent}:findings"):
        return _entity_result(
            con, settings, cfg, run_id, started, ran, recs, linkage, got, survived, rules, decided, before
        )


def _findings(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    cfg: ResolveConfig,
    run_id: str,
    recs: pd.DataFrame,
    linkage: Linkage,
    got: ids.Assignment,
    touched: list[str] | None,
) -> pd.DataFrame:
    """The entity's findings: the linkage's (found again every run: a cluster split for its
    identifiers is clustered again every run) and the identifier checks', per master: with `touched` (an incremental
    survivorship) only of the masters it chose again, the previous run's kept for every
    other master (the same records with the same values: the same finding). A finding
    carries the `run_id` of the run that found it: a kept one the earlier run's."""
    found = _linkage_findings(linkage, got.records, cfg, run_id)
    previous = store.read_core(con, settings, "finding", entity=cfg.name) if touched is not None else None
    if touched is None or previous is None:  # every master checked
        return pd.DataFrame(found + _id_findings(recs, cfg, run_id), columns=FINDING_COLUMNS)
    read = [c for c in ("rec_id", "master_id", "exact_id", *(a for a, _ in ID_CHECKS)) if c in recs]
    sub = recs[read][isin(recs["master_id"], touched)]
    checked = pd.DataFrame(_id_findings(sub, cfg, run_id), columns=FINDING_COLUMNS)
    kept = previous[previous["kind"].isin(ID_KINDS) & ~isin(previous["master_id"], touched)]
    by_id = [f for f in (kept[FINDING_COLUMNS], checked) if len(f)]
    ordered = (  # as a full run lists them: by check, then master
        pd.concat(by_id, ignore_index=True).sort_values(["attribute", "master_id"], ignore_index=True)
        if by_id
        else checked
    )
    parts = [f for f in (pd.DataFrame(found, columns=FINDING_COLUMNS), ordered) if len(f)]
    return pd.concat(parts, ignore_index=True) if parts else checked


def _record_table(
    recs: pd.DataFrame, linkage: Linkage, id_col: str, before: Path | Layered | None
) -> pd.DataFrame | store.Patch:
    """core.<entity>_record: whole (`before` None: a full run), or a patch of the previous
    run's (`before`: its file, read by DuckDB) keyed by rec_id: the records gone or whose row changed dropped, the
    new and changed ones added (compared in DuckDB: a changed delivery changes a record's
    content and lineage, a merge its master; an unchanged redelivery nothing). Whole again
    when most records changed (a new rule or layout: the frame is at hand, and a patch of
    nearly every row costs more to write and to apply)."""
    table = recs[RECORD_COLUMNS].assign(
        has_valid_id=recs["exact_id"].notna(), content_hash=lookup(recs["rec_id"], linkage.hashes)
    )
    table = table.rename(columns={"master_id": id_col})
    if before is None:
        return table.sort_values("rec_id", ignore_index=True)
    cols = list(table.columns)
    con = duckdb.connect()
    try:
        con.register("cur", table)
        prev = relation(before)
        held = {r[0] for r in con.execute(f"describe select * from {prev}").fetchall()}
        if set(cols) != held:  # a record table of an older version (other columns): written whole
            return table.sort_values("rec_id", ignore_index=True)
        con.execute(f"create view prev as select {', '.join(cols)} from {prev}")
        differs = " or ".join(f'c."{c}" is distinct from p."{c}"' for c in cols if c != "rec_id")
        new = f"from cur c left join prev p using (rec_id) where p.rec_id is null or {differs}"
        con.execute(f"create temp table added as select c.* {new}")  # the one join of both tables
        if con.execute("select count(*) from added").fetchall()[0][0] > len(table) // 2:
            return table.sort_values("rec_id", ignore_index=True)  # most rows change: whole
        # as Arrow (pd.ArrowDtype): the rows pass to the patch's file without Python objects
        add = con.sql("select * from added order by rec_id").to_arrow_table()
        drop = duck_df(
            con, "select rec_id from prev anti join cur using (rec_id) union all select rec_id from added"
        )
    finally:
        con.close()
    return store.Patch(key=("rec_id",), drop=drop, add=add.to_pandas(types_mapper=pd.ArrowDtype))


def _entity_result(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    cfg: ResolveConfig,
    run_id: str,
    started: Any,
    ran: str,
    recs: pd.DataFrame,
    linkage: Linkage,
    got: ids.Assignment,
    survived: Survived,
    rules: str,
    decided: pd.DataFrame,
    before: Path | Layered | None,
) -> EntityResult:
    """The findings, review queue, record table and run row of a resolved entity. After an
    incremental survivorship the record table is a patch of the previous one (`before`: its file)."""
    ent, id_col = cfg.name, f"{cfg.name}_id"
    findings = _findings(con, settings, cfg, run_id, recs, linkage, got, survived.touched)
    id_map = got.id_map.rename(columns={"master_id": id_col})
    old_map = store.read_core(con, settings, f"{ent}_id_map")
    if old_map is not None:
        id_map = pd.concat([old_map, id_map], ignore_index=True)
    queue = _review_queue(linkage.pairs, recs, cfg, decided)
    record_table = _record_table(
        recs, linkage, id_col, before if isinstance(survived.golden, store.Patch) else None
    )
    touched = survived.touched
    run = {
        "run_id": run_id,
        "entity": ent,
        "mode": ran,
        **{
            k: linkage.stats[k]
            for k in ("records", "with_valid_id", "records_scored", "pairs_scored", "pairs_linked")
        },
        "masters": survived.masters,
        "masters_chosen": survived.masters if touched is None else len(touched),
        "survivorship_hash": rules,
        "merged": int((got.id_map["reason"] == "merged").sum()),
        "split": int((got.id_map["reason"] == "split").sum()),
        "findings": len(findings),
        "review_pairs": len(queue),
        "model_path": model.save(settings.warehouse, ent, linkage.model),
        "started_at": started,
        "finished_at": meta.now(),
    }
    return EntityResult(
        entity=ent,
        records=recs,
        tables={
            ent: survived.golden,
            f"{ent}_record": record_table,
            f"{ent}_id_map": id_map,
            f"{ent}_pair": linkage.pairs,
            "_provenance": survived.provenance,
            "_finding": findings,
            "_review": queue,
        },
        run=run,
        last_value=got.last_value,
    )


def _merge_shared(
    con: duckdb.DuckDBPyConnection, settings: Settings, results: list[EntityResult]
) -> dict[str, pd.DataFrame | store.Patch]:
    """The entities' tables, and the tables they share: the findings and the review queue
    (whole frames), the provenance: a whole frame, or a patch keyed (entity, master_id)
    when an entity patched its own (an entity chosen in full then drops every master of
    its rows in the current file and adds all its rows)."""
    tables: dict[str, pd.DataFrame | store.Patch] = {}
    for res in results:
        tables.update({k: v for k, v in res.tables.items() if not k.startswith("_")})
    for key, name in (("_finding", "finding"), ("_review", "review_queue")):
        shares = [_frame(r.tables[key]) for r in results]
        parts = [f for f in shares if len(f)]
        tables[name] = pd.concat(parts, ignore_index=True) if parts else shares[0]
    patches = [r.tables["_provenance"] for r in results if isinstance(r.tables["_provenance"], store.Patch)]
    if not patches:
        frames = [_frame(r.tables["_provenance"]) for r in results]
        parts = [f for f in frames if len(f)]
        tables["provenance"] = pd.concat(parts, ignore_index=True) if parts else frames[0]
        return tables
    columns = list(patches[0].add.columns)
    drops, adds = [], []
    for r in results:
        p = r.tables["_provenance"]
        if isinstance(p, store.Patch):
            drops.append(p.drop)
            adds.append(p.add[columns])
            continue
        drops.append(_masters_of(con, settings, r.entity))
        adds.append(p[columns])
    tables["provenance"] = store.Patch(
        key=("entity", "master_id"),
        drop=pd.concat(drops, ignore_index=True),
        add=pd.concat([a for a in adds if len(a)] or adds[:1], ignore_index=True),
    )
    return tables


def _masters_of(con: duckdb.DuckDBPyConnection, settings: Settings, entity: str) -> pd.DataFrame:
    """(entity, master_id) of every master of `entity` in core.provenance's current file."""
    file = store.core_source(con, settings, "provenance")
    if file is None:
        return pd.DataFrame({"entity": pd.Series(dtype="string"), "master_id": pd.Series(dtype="string")})
    local = duckdb.connect()  # the file read apart from `con` (its pending results untouched)
    try:
        return duck_df(
            local,
            f"select distinct entity, master_id from {relation(file)} where entity = ?",
            [entity],
        )
    finally:
        local.close()


def _frame(item: pd.DataFrame | store.Patch) -> pd.DataFrame:
    if not isinstance(item, pd.DataFrame):
        raise TypeError("a whole frame expected, not a patch")
    return item


def _history(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    entity: str,
    gold: pd.DataFrame | store.Patch,
    as_of: dt.date,
) -> pd.DataFrame | store.Patch:
    """core.<entity>_history after this run, given its golden table: a patch of the
    previous history (history.scd2_patch for a golden patch: only the masters it drops or
    adds are read; history.scd2_frame_patch for a whole golden table: only the masters
    whose golden record changed), the whole when there is none yet or the golden table has
    a column the history lacks."""
    id_col, name = f"{entity}_id", f"{entity}_history"
    previous = store.core_source(con, settings, name)
    if isinstance(gold, store.Patch):
        base = store.core_source(con, settings, entity)
        if previous is not None and base is not None:
            patch = history.scd2_patch(con, previous, base, gold, id_col, as_of)
            if patch is not None:
                return patch
        gold = as_datetimes(duck_df(con, store.patched(con, settings, entity, gold)))
    elif previous is not None:
        patch = history.scd2_frame_patch(con, previous, gold, id_col, as_of)
        if patch is not None:
            return patch
    return history.scd2(store.read_core(con, settings, name), gold, id_col, as_of)


def consolidate(
    settings: Settings | None = None,
    run_id: str | None = None,
    mode: str = "incremental",
    models: dict[str, str] | None = None,
) -> ConsolidateSummary:
    """Build schema core from the current staging views. `mode` (MODES): `incremental`
    links the new and changed records against the base, `full` relinks every staged record
    with the current model, `retrain` trains a new model first; the first run and a run
    after the resolve settings changed train. `models`: entity -> a kept model.json
    (relative to the warehouse root) to link with instead of the current model."""
    settings = settings or get_settings()
    seconds: dict[str, float] = {}
    with _timed(seconds, "contracts"):
        contracts = get_contracts(settings)
        configs = load_resolve_configs(settings.schemas_dir, contracts.tables)
    run_id = run_id or meta.new_run_id("consolidate")
    # one writer per home (etl.lock): consolidate waits for a run or a stage to finish; the
    # new core reaches readers in a new published catalog (etl.published) once it is
    # committed. A home that cannot be written (full disk, no permission): one clear error
    with (
        writer_lock(settings, run_id, say=log.warning),
        publishing(settings, run_id),
        writing("the core tables"),
        meta.connect(settings) as con,
    ):
        store.ensure(con)
        sweep_core(con, settings)  # core files and models of a consolidation killed before its commit
        results: list[EntityResult] = []
        waiting: list[StageOrderError] = []
        for cfg in resolution_order(configs):
            ctx = {r.entity: r.records.set_index("rec_id")["master_id"] for r in results}
            # an entity nothing has delivered yet gives no context: its ids stay null until
            # a later consolidation (the DAG runs on each department's delivery by itself)
            ctx.update({o: pd.Series(dtype="string") for o in cfg.context if o not in ctx})
            path = (models or {}).get(cfg.name)
            try:
                results.append(
                    resolve_entity(con, settings, contracts, cfg, run_id, ctx, mode, path, seconds)
                )
            except StageOrderError as exc:  # no staged records of this entity yet
                log.warning("consolidate %s skipped: %s", cfg.name, exc)
                waiting.append(exc)
        if not results and waiting:
            raise waiting[0]
        tables = _merge_shared(con, settings, results)
        by = {r.entity: r for r in results}
        with _timed(seconds, "relations"):
            if "person" in by and "legal_entity" in by:
                persons, orgs = by["person"].records, by["legal_entity"].records
                tables.update(relations(con, contracts, persons, orgs, tables, settings))
        to_publish: dict[str, pd.DataFrame | store.Patch] = dict(tables)  # a table whole or as a patch
        with _timed(seconds, "history"):
            for r in results:
                as_of = pd.to_datetime(r.records["_logical_date"]).max().date()
                to_publish[f"{r.entity}_history"] = _history(
                    con, settings, r.entity, to_publish[r.entity], as_of
                )
        with _timed(seconds, "write"):
            store.publish(
                con,
                settings,
                run_id,
                to_publish,
                sequences={r.entity: r.last_value for r in results},
                runs=[r.run for r in results],
                dates=core_dates(contracts),
            )
        written = time.perf_counter()
    seconds["catalog"] = (
        time.perf_counter() - written
    )  # the published catalog, refreshed as `publishing` ends
    return ConsolidateSummary(run_id=run_id, entities={r.entity: r.run for r in results}, seconds=seconds)


__all__ = ["ConsolidateSummary", "consolidate", "resolve_entity"]
