"""The trained Splink model of an entity, kept between runs, and scoring with it.

A model is Splink's settings with their trained parameters (`linker.misc.save_model_to_json`)
and the term-frequency tables it was trained with (one per column with a term-frequency
adjustment). Training (schemas/resolve/<entity>.yml `training:`):
- probability_two_random_records_match from the config's deterministic rules and recall;
- u-probabilities from random sampling (seeded: same input, same model);
- m-probabilities from the records a valid identifier links (`exact_id` as label column),
  i.e. the ID-linked pairs are the labelled matches the model learns from.
No expectation maximisation runs, so training is deterministic.

The model is frozen between trainings, term frequencies included: a pair scores the same
in any run that uses the model, whichever other records the run holds. That is what lets
an incremental run score only its new and changed records and keep every other pair's
score (etl.resolve.linkage), and a full rebuild with the same model give the same pairs.
A value absent from the frozen term-frequency table gets no adjustment (Splink's rule).
A model is trained on the first run, after the entity's resolve settings changed (their
hash is kept with the model), and on `govbase consolidate --retrain`.

Kept in `warehouse/core/_models/<entity>/run=<run that trained it>/` (`run=<run>.<n>/`,
the smallest n >= 2 free, when a run id used again, by an Airflow retry or a cleared task,
trains again: a new model never takes a kept one's folder; meta.resolve_run.model_path
names the folder each run linked with): `model.json` (Splink), `govbase.json` (settings
hash, training run, term-frequency columns) and `tf_<column>.parquet` (value frequencies:
personal data, kept like staging, never published). Another home's model a run links with
(`consolidate(models=...)`, an absolute path outside this warehouse) is copied into one
such folder once: a later run with it finds the copy by its content (`kept_copy`).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from etl.faults import checkpoint
from etl.resolve.config import ResolveConfig, rule_sqls, splink_settings

log = logging.getLogger(__name__)

PAIR_COLUMNS = ["rec_id_l", "rec_id_r", "match_probability", "match_weight", "levels"]


@dataclass
class Model:
    settings: dict[str, Any]  # Splink's model JSON (empty: too few records to train)
    tf: dict[str, pd.DataFrame] = field(default_factory=dict)  # column -> (column, tf_<column>)
    config_hash: str = ""
    trained_run: str = ""
    path: str = ""  # its model.json relative to the warehouse root once kept ("": not kept here)


def config_hash(cfg: ResolveConfig) -> str:
    """A digest of an entity's resolve settings: a model trained under other settings is stale."""
    text = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _train(linker: Any, cfg: ResolveConfig, labelled: bool) -> None:
    from splink import block_on

    t = cfg.training
    rules = [block_on(*r) for r in t.prior.rules]
    linker.training.estimate_probability_two_random_records_match(rules, recall=t.prior.recall)
    linker.training.estimate_u_using_random_sampling(max_pairs=t.u_max_pairs, seed=t.seed)
    if labelled:
        linker.training.estimate_m_from_label_column("exact_id")


def _bound_prior(linker: Any, n: int) -> None:
    """Keep the prior strictly between 0 and 1. On a small batch (one department's few
    records) the deterministic rules can pair every record, or none: an estimate of 1 or 0
    has no match weight (log2 of 0 or infinity) and prediction would fail."""
    settings = linker._settings_obj  # Splink exposes no public setter for the trained prior
    pairs = max(n * (n - 1) / 2, 1.0)
    low, high = 1 / (pairs * 10), 1 - 1 / (pairs * 10)
    prior = settings._probability_two_random_records_match
    if not low <= prior <= high:
        log.warning("prior %.6g out of (0, 1) on %d records: bounded", prior, n)
        settings._probability_two_random_records_match = min(max(prior, low), high)


def _tf_columns(linker: Any) -> list[str]:
    return [c.unquote().name for c in linker._settings_obj._term_frequency_columns]


def train(records: pd.DataFrame, cfg: ResolveConfig, run_id: str) -> Model:
    """Train the entity's model on `records` (with features, context columns and exact_id)."""
    from splink import DuckDBAPI, Linker

    if len(records) < 2:
        return Model(settings={}, config_hash=config_hash(cfg), trained_run=run_id)
    db = DuckDBAPI()
    linker = Linker(db.register(records), splink_settings(cfg), log_level=logging.ERROR)
    labelled = bool(records["exact_id"].duplicated(keep=False)[records["exact_id"].notna()].any())
    _train(linker, cfg, labelled)
    _bound_prior(linker, len(records))
    tf = {c: linker.table_management.compute_tf_table(c).as_pandas_dataframe() for c in _tf_columns(linker)}
    return Model(
        settings=linker.misc.save_model_to_json(),
        tf={c: t.sort_values(c, ignore_index=True) for c, t in tf.items()},
        config_hash=config_hash(cfg),
        trained_run=run_id,
    )


# ---------------------------------------------------------------- keeping
def model_dir(entity: str, trained_run: str, n: int = 1) -> Path:
    """The `n`-th folder name of a model `trained_run` trained, relative to the warehouse
    root: `core/_models/<entity>/run=<trained_run>`, `run=<trained_run>.<n>` from n = 2."""
    return Path("core") / "_models" / entity / (f"run={trained_run}" if n == 1 else f"run={trained_run}.{n}")


def _texts(model: Model) -> tuple[str, str]:
    """The texts of a kept model's model.json and govbase.json."""
    about = {"config_hash": model.config_hash, "trained_run": model.trained_run, "tf": sorted(model.tf)}
    return json.dumps(model.settings, ensure_ascii=False, indent=1, sort_keys=True), json.dumps(
        about, indent=1
    )


def kept_copy(warehouse: Path, entity: str, model: Model) -> str:
    """The model.json (relative to the warehouse root) of a model kept in this warehouse
    with the same content as `model` (settings, training facts, term-frequency tables), in
    one of the folders `model_dir` names for its training run; "" if none. Another home's
    model (`load`ed from an absolute path outside this warehouse) is copied once, not again
    on every run that links with it."""
    text, about = _texts(model)
    for n in itertools.count(1):
        folder = warehouse / model_dir(entity, model.trained_run, n)
        if not folder.exists():
            return ""
        if (
            (folder / "govbase.json").is_file()
            and (folder / "govbase.json").read_text(encoding="utf-8") == about
            and (folder / "model.json").read_text(encoding="utf-8") == text
            and all(pd.read_parquet(folder / f"tf_{c}.parquet").equals(t) for c, t in model.tf.items())
        ):
            return (model_dir(entity, model.trained_run, n) / "model.json").as_posix()
    raise AssertionError("unreachable")


def save(warehouse: Path, entity: str, model: Model) -> str:
    """Keep a model; returns its model.json relative to the warehouse root. A model already
    kept in this warehouse (`load`ed, saved before, or another home's already copied here:
    `kept_copy`) stays where it is; any other, i.e. one this run trained, gets a new folder
    (`model_dir` with the smallest n whose folder does not exist): a run id used again that
    trains again (an Airflow retry, a cleared task, `--retrain`) keeps its own model, not
    the first one's under the same name."""
    if model.path and (warehouse / model.path).with_name("govbase.json").is_file():
        return model.path
    if kept := kept_copy(warehouse, entity, model):
        model.path = kept
        return kept
    rel = next(
        d
        for n in itertools.count(1)
        if not (warehouse / (d := model_dir(entity, model.trained_run, n))).exists()
    )
    folder = warehouse / rel
    folder.mkdir(parents=True)
    for col, table in model.tf.items():
        table.to_parquet(folder / f"tf_{col}.parquet", index=False)
    text, about = _texts(model)
    (folder / "model.json").write_text(text, encoding="utf-8")
    (folder / "govbase.json").write_text(about, encoding="utf-8")  # written last
    checkpoint("consolidate:after_model")
    model.path = (rel / "model.json").as_posix()
    return model.path


def load(warehouse: Path, model_path: str) -> Model | None:
    """The model kept at `model_path` (model.json, absolute or relative to the warehouse
    root), or None."""
    file = warehouse / model_path
    folder = file.parent
    if not (folder / "govbase.json").is_file():
        return None
    about = json.loads((folder / "govbase.json").read_text(encoding="utf-8"))
    try:  # where it is kept, when in this warehouse (`save` then keeps it there)
        path = file.resolve().relative_to(warehouse.resolve()).as_posix()
    except ValueError:  # another home's: `save` keeps a copy in this one
        path = ""
    return Model(
        settings=json.loads((folder / "model.json").read_text(encoding="utf-8")),
        tf={c: pd.read_parquet(folder / f"tf_{c}.parquet") for c in about["tf"]},
        config_hash=about["config_hash"],
        trained_run=about["trained_run"],
        path=path,
    )


# ---------------------------------------------------------------- scoring
def candidates(records: pd.DataFrame, delta: pd.Series, cfg: ResolveConfig) -> pd.Series:
    """The records a blocking rule pairs with a record of `delta` (delta records included).
    The records reach DuckDB as Arrow (no copy of their text) and the hits come back as
    positions, not record ids. A rule on columns is searched from the delta's side only
    (it pairs l with r exactly when it pairs r with l)."""
    mask = delta.to_numpy(dtype=bool)
    table = pa.Table.from_pandas(records, preserve_index=False)
    table = table.append_column("_delta", pa.array(mask)).append_column(
        "_pos", pa.array(np.arange(len(records), dtype=np.int64))
    )
    con = duckdb.connect()
    try:
        con.register("recs", table)
        sides = [
            f"select {keep}._pos from recs l join recs r on ({sql}) where {cond}"
            for rule, sql in zip(cfg.blocking_rules, rule_sqls(cfg), strict=True)
            for keep, cond in (("r", "l._delta and not r._delta"), ("l", "r._delta and not l._delta"))
            # a rule on columns (equal values, and SCORED) is symmetric: the delta on the
            # left finds every partner; a rule written as SQL may not be, so both sides
            if keep == "r" or not isinstance(rule, list)
        ]
        hit = con.sql(" union ".join(sides)).fetchnumpy()["_pos"]
    finally:
        con.close()
    out = mask.copy()
    out[np.asarray(hit, dtype=np.int64)] = True
    return pd.Series(out, index=records.index)


def score(
    records: pd.DataFrame, cfg: ResolveConfig, model: Model, delta: pd.Series | None = None
) -> pd.DataFrame:
    """The blocked pairs of `records` scored at or above the review threshold with `model`;
    with `delta` (a mask over records), only the pairs with at least one delta record."""
    from splink import DuckDBAPI, Linker

    if delta is not None:
        keep = candidates(records, delta, cfg)
        records = records[keep].assign(_delta=delta[keep].to_numpy(dtype=bool))
    if len(records) < 2 or not model.settings or (delta is not None and not records["_delta"].any()):
        return pd.DataFrame(
            {c: pd.Series(dtype="string" if c != "match_probability" else float) for c in PAIR_COLUMNS}
        )
    db = DuckDBAPI()
    frame = db.register(records)
    # no settings validation (it only logs; 0.05-0.2 s an entity): the model's settings are
    # the trained ones of a config the contracts load checked through Splink (config._check)
    linker = Linker(frame, copy.deepcopy(model.settings), log_level=logging.ERROR, validate_settings=False)
    for col, table in model.tf.items():
        linker.table_management.register_term_frequency_lookup(db.register(table), col)
    rules: list[Any] | None = None
    if delta is not None:
        rules = [f"({sql}) and (l._delta or r._delta)" for sql in rule_sqls(cfg)]
    pred = linker.inference.predict_within(
        frame,
        blocking_rules_to_generate_predictions=rules,
        threshold_match_probability=cfg.thresholds.review,
        warning_mode="never",
    )
    full = pred.as_pandas_dataframe()
    pairs = full[PAIR_COLUMNS[:4]].copy()
    pairs["levels"] = _levels(full, model.settings, full["match_probability"] < cfg.thresholds.match)
    return pairs.sort_values(["rec_id_l", "rec_id_r"], ignore_index=True)


def _levels(pred: pd.DataFrame, model: dict[str, Any], rows: pd.Series) -> pd.Series:
    """Per pair (where `rows`), the comparison level each comparison fell into and its
    match weight (log2 Bayes factor, with its term-frequency adjustment), as JSON (what a
    reviewer reads beside the masked values; no values)."""
    out = pd.Series(pd.NA, index=pred.index, dtype="string")
    if not rows.any():
        return out
    sub = pred[rows]
    parts: dict[str, list[str]] = {}
    for comp in model["comparisons"]:
        name = comp["output_column_name"]
        levels = comp["comparison_levels"]
        non_null = [lv for lv in levels if not lv.get("is_null_level")]
        labels = {len(non_null) - 1 - i: lv.get("label_for_charts", "") for i, lv in enumerate(non_null)}
        labels[-1] = "missing"
        weight = sub[f"mw_{name}"].astype(float)
        if f"mw_tf_adj_{name}" in sub:  # the term-frequency adjustment of the level
            weight = weight + sub[f"mw_tf_adj_{name}"].astype(float).fillna(0.0)
        parts[name] = [
            json.dumps(
                {"level": labels.get(int(g), str(g)), "match_weight": round(float(w), 3)}, ensure_ascii=False
            )
            for g, w in zip(sub[f"gamma_{name}"], weight, strict=True)
        ]
    names = list(parts)
    joined = [
        "{" + ", ".join(f"{json.dumps(n)}: {parts[n][i]}" for n in names) + "}" for i in range(len(sub))
    ]
    out[rows] = joined
    return out


__all__ = [
    "PAIR_COLUMNS",
    "Model",
    "candidates",
    "config_hash",
    "kept_copy",
    "load",
    "save",
    "score",
    "train",
]
