"""Linkage settings per entity: `schemas/resolve/<entity>.yml`.

One file per master entity (person, legal_entity). It says which staged tables carry
records of the entity and which of their columns hold which attribute (`inputs`), which
derived columns linkage compares (`features`, DuckDB SQL over the attributes), the exact
key (a valid identifier links exactly), and the Splink model: blocking rules, comparisons
(a `splink.comparison_library` class with its arguments, or explicit SQL levels), term
frequency adjustments, training and the match / review thresholds.

Everything is checked when the contracts load (`govbase contracts`): an unknown column in
a comparison, a blocking rule on a column the records lack, a threshold out of range, an
input table or column the shared contracts do not have raises ContractError naming the
file, the key and the problem.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NoReturn

import sqlglot
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlglot import exp

from etl.contracts import SharedTable, parse_contract
from etl.errors import ContractError

#: columns every linkage record carries besides its attributes and features
RECORD_COLUMNS = ("rec_id", "_table", "_source", "_batch_id", "_row_number", "_logical_date", "record_key")
#: the delivery lineage and span (etl.resolve.records) say when a record was delivered, not what
#: it holds: comparisons and blocking rules may not read them, nor does the content hash (an
#: incremental run scores a pair again only when a record's content changed)
DELIVERY_COLUMNS = ("_batch_id", "_row_number", "_logical_date", "_first_delivery", "_last_delivery")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Input(_Strict):
    """A staged table holding records of the entity: attribute -> column of that table."""

    table: str
    columns: dict[str, str] = Field(min_length=1)
    #: a row is a record of the entity only when one of these attributes is present
    require_any: list[str] = Field(default_factory=list)


class Level(_Strict):
    """An explicit comparison level: a SQL condition over `<column>_l` / `<column>_r`."""

    sql: str = Field(min_length=1)
    label: str = Field(min_length=1)
    is_null: bool = Field(False, description="the null level (no evidence either way)")
    term_frequency: str | None = Field(None, description="column whose frequency adjusts this level")
    m_probability: float | None = Field(
        None, gt=0, le=1, description="fixed m (with u_probability: not trained)"
    )
    u_probability: float | None = Field(
        None, gt=0, le=1, description="fixed u (with m_probability: not trained)"
    )

    @model_validator(mode="after")
    def _fixed_pair(self) -> Level:
        if (self.m_probability is None) != (self.u_probability is None):
            raise ValueError("fix both m_probability and u_probability, or neither")
        return self


class Comparison(_Strict):
    """One comparison: either a library class (`kind` + `column` + `args`) or explicit `levels`."""

    name: str | None = Field(None, description="output column name (default: the column)")
    kind: str | None = Field(None, description="a class of splink.comparison_library, e.g. ExactMatch")
    column: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    term_frequency: bool = False
    levels: list[Level] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Comparison:
        if self.levels is None:
            if not self.kind or not self.column:
                raise ValueError("a comparison needs kind + column, or levels")
        else:
            if self.kind:
                raise ValueError("give either kind or levels, not both")
            if not self.name:
                raise ValueError("a comparison with levels needs a name")
        return self

    @property
    def output_name(self) -> str:
        return self.name or str(self.column)


class Prior(_Strict):
    """probability_two_random_records_match from deterministic rules and their recall."""

    rules: list[list[str]] = Field(min_length=1)
    recall: float = Field(gt=0, le=1)


class Training(_Strict):
    u_max_pairs: float = Field(1e6, gt=0)
    seed: int = 42
    prior: Prior


class Thresholds(_Strict):
    match: float = Field(description="match probability at or above which a pair links")
    review: float = Field(description="pairs from here up to match go to clerical review")

    @model_validator(mode="after")
    def _range(self) -> Thresholds:
        for key in ("match", "review"):
            v = getattr(self, key)
            if not 0 < v < 1:
                raise ValueError(f"{key} = {v}: a probability strictly between 0 and 1")
        if self.review > self.match:
            raise ValueError(f"review ({self.review}) must not exceed match ({self.match})")
        return self


class ResolveConfig(_Strict):
    name: str = Field(description="the entity: a shared table whose golden records this builds")
    description: str = Field(min_length=1)
    id_prefix: str = Field(pattern=r"^[A-Z]{1,3}$", description="master ids: prefix + zero-padded sequence")
    id_digits: int = Field(10, ge=6, le=18)
    exact_key: str = Field(description="attribute whose valid value links records exactly")
    exact_key_check: Literal["resident_id", "credit_code"] = Field(
        description="the checksum a value of exact_key must pass to link exactly"
    )
    inputs: list[Input] = Field(min_length=1)
    features: dict[str, str] = Field(default_factory=dict, description="derived column -> DuckDB SQL")
    context: list[str] = Field(
        default_factory=list,
        description="other entities resolved first; column <entity>_id holds the master their resolution gave "
        "the same source record (e.g. the organisation of a legal representative or an employee)",
    )
    blocking_rules: list[list[str] | str] = Field(min_length=1)
    comparisons: list[Comparison] = Field(min_length=1)
    training: Training
    thresholds: Thresholds

    @property
    def attributes(self) -> list[str]:
        seen: dict[str, None] = {}
        for i in self.inputs:
            seen.update(dict.fromkeys(i.columns))
        return list(seen)

    @property
    def linkage_columns(self) -> set[str]:
        ctx = {f"{c}_id" for c in self.context}
        record = set(RECORD_COLUMNS) - set(DELIVERY_COLUMNS)
        return set(self.attributes) | set(self.features) | record | ctx


# ---------------------------------------------------------------- checks
def _sql_columns(sql: str) -> set[str]:
    return {c.name for c in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Column)}


def _side_columns(sql: str) -> set[str]:
    """Columns a pairwise condition uses, without their _l / _r suffix."""
    out = set()
    for c in _sql_columns(sql):
        out.add(c[:-2] if c.endswith(("_l", "_r")) else c)
    return out


def _comparison_classes() -> dict[str, type]:
    import splink.comparison_library as cl

    return {n: c for n, c in vars(cl).items() if inspect.isclass(c) and n[0].isupper()}


Fail = Callable[[str, str], NoReturn]


def _check_inputs(cfg: ResolveConfig, tables: dict[str, SharedTable], fail: Fail) -> None:
    if cfg.name not in tables:
        fail("name", f"{cfg.name!r} is not a shared table; known: {', '.join(sorted(tables))}")
    entity = tables[cfg.name]
    for i, inp in enumerate(cfg.inputs):
        if inp.table not in tables:
            fail(f"inputs[{i}].table", f"{inp.table!r} is not a shared table")
        cols = set(tables[inp.table].column_names)
        for attr, col in inp.columns.items():
            if col not in cols:
                fail(f"inputs[{i}].columns.{attr}", f"{col!r} is not a column of {inp.table}")
            if attr not in entity.column_names:
                fail(f"inputs[{i}].columns.{attr}", f"{attr!r} is not a column of {cfg.name}")
        for attr in inp.require_any:
            if attr not in inp.columns:
                fail(f"inputs[{i}].require_any", f"{attr!r} is not among this input's columns")
    for i, other in enumerate(cfg.context):
        if other == cfg.name or other not in tables:
            fail(f"context[{i}]", f"{other!r} is not another entity")


def _check_columns(cfg: ResolveConfig, fail: Fail) -> None:
    """exact_key, features, blocking and prior rules name columns the records have."""
    attrs = set(cfg.attributes) | set(RECORD_COLUMNS)
    if cfg.exact_key not in attrs:
        fail("exact_key", f"{cfg.exact_key!r} is not an attribute of the inputs")
    for name, sql in cfg.features.items():
        try:
            used = _sql_columns(sql)
        except sqlglot.errors.ParseError as exc:
            fail(f"features.{name}", f"not a SQL expression: {exc}")
        unknown = sorted(used - attrs)
        if unknown:
            fail(
                f"features.{name}",
                f"unknown column(s) {', '.join(unknown)}; attributes: {', '.join(sorted(attrs))}",
            )
    known = cfg.linkage_columns
    for i, rule in enumerate(cfg.blocking_rules):
        try:
            used = set(rule) if isinstance(rule, list) else _side_columns(rule)
        except sqlglot.errors.ParseError as exc:
            fail(f"blocking_rules[{i}]", f"not a SQL condition: {exc}")
        unknown = sorted(used - known)
        if unknown:
            fail(f"blocking_rules[{i}]", f"blocks on column(s) the records lack: {', '.join(unknown)}")
    for i, prior in enumerate(cfg.training.prior.rules):
        unknown = sorted(set(prior) - known)
        if unknown:
            fail(f"training.prior.rules[{i}]", f"unknown column(s) {', '.join(unknown)}")


def _check(cfg: ResolveConfig, tables: dict[str, SharedTable], file: str) -> None:
    def fail(key: str, problem: str) -> NoReturn:
        raise ContractError(file, key, problem)

    _check_inputs(cfg, tables, fail)
    _check_columns(cfg, fail)
    known, classes = cfg.linkage_columns, _comparison_classes()
    for i, comp in enumerate(cfg.comparisons):
        _check_comparison(comp, f"comparisons[{i}]", known, classes, fail)
        if comp.levels is not None:
            try:
                splink_comparison(comp)
            except Exception as exc:  # Splink's own check of the levels, reported where declared
                fail(f"comparisons[{i}].levels", f"Splink rejects these levels: {type(exc).__name__}: {exc}")


def _check_comparison(
    comp: Comparison, key: str, known: set[str], classes: dict[str, type], fail: Any
) -> None:
    if comp.levels is None:
        if comp.kind not in classes:
            fail(
                f"{key}.kind",
                f"{comp.kind!r} is not a splink comparison; known: {', '.join(sorted(classes))}",
            )
        if comp.column not in known:
            fail(f"{key}.column", f"unknown column {comp.column!r}; known: {', '.join(sorted(known))}")
        try:
            build_comparison(comp).get_comparison("duckdb")
        except Exception as exc:  # the library's own argument check, reported where it was declared
            fail(f"{key}.args", f"{comp.kind} rejects these arguments: {exc}")
        return
    if not any(lv.is_null for lv in comp.levels):
        fail(f"{key}.levels", "needs one null level (is_null: true)")
    for j, lv in enumerate(comp.levels):
        try:
            used = _side_columns(lv.sql)
        except sqlglot.errors.ParseError as exc:
            fail(f"{key}.levels[{j}].sql", f"not a SQL condition: {exc}")
        unknown = sorted(used - known)
        if unknown:
            fail(f"{key}.levels[{j}].sql", f"unknown column(s) {', '.join(unknown)}")
        if lv.term_frequency and lv.term_frequency not in known:
            fail(f"{key}.levels[{j}].term_frequency", f"unknown column {lv.term_frequency!r}")


# ---------------------------------------------------------------- Splink settings
def build_comparison(comp: Comparison) -> Any:
    """The Splink comparison (a ComparisonCreator or a settings dict) declared by `comp`."""
    if comp.levels is None:
        cls = _comparison_classes()[str(comp.kind)]
        made = cls(comp.column, **comp.args)
        if comp.term_frequency:
            made = made.configure(term_frequency_adjustments=True)
        return made
    levels = []
    for lv in comp.levels:
        level: dict[str, Any] = {"sql_condition": lv.sql, "label_for_charts": lv.label}
        if lv.is_null:
            level["is_null_level"] = True
        if lv.term_frequency:
            level["tf_adjustment_column"] = lv.term_frequency
            level["tf_adjustment_weight"] = 1.0
        if lv.m_probability is not None:
            level.update(
                m_probability=lv.m_probability,
                u_probability=lv.u_probability,
                fix_m_probability=True,
                fix_u_probability=True,
            )
        levels.append(level)
    return {"output_column_name": comp.name, "comparison_levels": levels}


def splink_comparison(comp: Comparison) -> Any:
    """The comparison as Splink builds it for DuckDB (raises what Splink raises)."""
    from splink.internals.comparison import Comparison as SplinkComparison

    made = build_comparison(comp)
    if isinstance(made, dict):
        return SplinkComparison(**made, sqlglot_dialect="duckdb")
    return made.get_comparison("duckdb")


#: the pairs a blocking rule hands to Splink: not two records that both carry a valid
#: identifier (`exact_id`). Those the identifiers decide (the same identifier is one entity,
#: two different ones are two, unless a clerical decision says otherwise), so the model's
#: score of such a pair could never become an edge or a review item: scoring them was most
#: of the work (about nine pairs in ten where nine records in ten carry a valid identifier).
SCORED = "(l.exact_id is null or r.exact_id is null)"


def rule_sqls(cfg: ResolveConfig) -> list[str]:
    """The blocking rules as DuckDB conditions over `l` and `r`, each limited to the pairs
    the model decides (`SCORED`)."""
    from splink import block_on

    return [
        f"({block_on(*r).get_blocking_rule('duckdb').blocking_rule_sql if isinstance(r, list) else r}) and {SCORED}"
        for r in cfg.blocking_rules
    ]


def splink_settings(cfg: ResolveConfig) -> Any:
    """Splink SettingsCreator for deduplicating the entity's records (unique id rec_id)."""
    from splink import SettingsCreator
    from splink.blocking_rule_library import CustomRule

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="rec_id",
        blocking_rules_to_generate_predictions=[CustomRule(sql) for sql in rule_sqls(cfg)],
        comparisons=[build_comparison(c) for c in cfg.comparisons],
        # the comparison level (gamma) and weight of each comparison, for clerical review; the
        # matching values come along in memory but are never stored
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=True,
    )


# ---------------------------------------------------------------- loading
def load_resolve_config(path: Path, tables: dict[str, SharedTable]) -> ResolveConfig:
    cfg: ResolveConfig = parse_contract(ResolveConfig, path)
    _check(cfg, tables, str(path))
    return cfg


#: the last configs loaded: (their files' stat, the tables they were checked against, the
#: configs). Loading checks every comparison through Splink (its SQL parsed by sqlglot), and
#: a consolidate run loads them twice (the contracts check them): the second load is free
#: while the files and the very same table objects are unchanged.
_LAST: list[tuple[tuple[tuple[str, int, int], ...], dict[str, SharedTable], dict[str, ResolveConfig]]] = []


def load_resolve_configs(schemas_dir: Path, tables: dict[str, SharedTable]) -> dict[str, ResolveConfig]:
    """Every `schemas/resolve/*.yml`, checked against the shared tables."""
    folder = schemas_dir / "resolve"
    files = sorted(folder.glob("*.yml"))
    stamp = tuple((str(p.resolve()), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    if _LAST and _LAST[0][0] == stamp and _same_tables(_LAST[0][1], tables):
        return dict(_LAST[0][2])
    configs = _load_resolve_configs(folder, files, tables)
    _LAST[:] = [(stamp, tables, configs)]
    return dict(configs)


def _same_tables(a: dict[str, SharedTable], b: dict[str, SharedTable]) -> bool:
    """The very same table objects (the contracts keep the tables they were checked with in
    a dict of their own: compare the tables, not the dicts)."""
    return a.keys() == b.keys() and all(a[k] is b[k] for k in a)


def _load_resolve_configs(
    folder: Path, files: list[Path], tables: dict[str, SharedTable]
) -> dict[str, ResolveConfig]:
    configs = {p.stem: load_resolve_config(p, tables) for p in files}
    for name, cfg in configs.items():
        for i, other in enumerate(cfg.context):
            if other not in configs:
                raise ContractError(
                    str(folder / f"{name}.yml"), f"context[{i}]", f"no resolve settings for {other!r}"
                )
            if name in configs[other].context:
                raise ContractError(
                    str(folder / f"{name}.yml"), f"context[{i}]", f"{other!r} needs {name!r} first"
                )
    return configs


def resolution_order(configs: dict[str, ResolveConfig]) -> list[ResolveConfig]:
    """Entities in an order where every context entity comes before the ones using it."""
    done: list[str] = []
    pending = dict(sorted(configs.items()))
    while pending:
        ready = [n for n, c in pending.items() if all(o in done for o in c.context)]
        if not ready:
            raise ContractError("schemas/resolve", "context", f"circular context among {', '.join(pending)}")
        done.append(ready[0])
        pending.pop(ready[0])
    return [configs[n] for n in done]
