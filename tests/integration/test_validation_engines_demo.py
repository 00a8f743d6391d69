"""The compiled validation engine and Great Expectations agree on demo batches.

Demo data through extract + normalize (real DuckDB file, demo generation: an integration
test), as staged for validation, and the same rows with realistic slips: SuiteRunner
reports the same failures with either engine. The generated-frame comparisons are in
tests/unit/test_validation_engines.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow.ipc as ipc
import pytest

from etl.config import Settings, get_settings
from etl.contracts import Contracts, SharedTable, get_contracts
from etl.demo import generate
from etl.pipeline import run_stage
from etl.validate.runner import ENGINES, SuiteRunner
from etl.workdir import WorkDir

pytestmark = pytest.mark.integration

FULLWIDTH = str.maketrans(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "０１２３４５６７８９ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ",
)

# ---------------------------------------------------------------- (b) demo batches as staged
DATE = "2026-11-01"
RUN_ID = "engines-agree"
SOURCES = [
    "ca_assistance",
    "ca_marriage",
    "hrss_insurance",
    "nhc_health",
    "ps_hukou",
    "samr_registry",
    "stats_indicators",
    "tax_registration",
]
LINEAGE = ("_source", "_batch_id", "_row_number")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, pd.DataFrame]]:
    """Demo data (1500 persons, seed 7) extracted and normalized: the staged rows per source."""
    settings = get_settings(tmp_path_factory.mktemp("engines") / "home")
    generate(settings, persons=1500, seed=7)
    assert sorted(get_contracts(settings).sources) == SOURCES
    staged = {}
    for source in SOURCES:
        run_stage("extract", source, DATE, RUN_ID, settings=settings)
        run_stage("normalize", source, DATE, RUN_ID, settings=settings)
        path = WorkDir.of(settings, source, DATE, RUN_ID).staged
        staged[source] = ipc.open_file(path).read_all().to_pandas()
    return settings, staged


def _mangle(value: Any, kind: int) -> Any:
    """Slips a staged value could carry if a transform let it through (no newlines: see the tests at the end)."""
    v = "未知" if pd.isna(value) else str(value)
    return [v.translate(FULLWIDTH), v + "号", v[:-1], v.lower() + "x", "0" + v, " " + v, v[::-1], None][kind]


def _perturbed(df: pd.DataFrame, table: SharedTable, rng: np.random.Generator) -> pd.DataFrame:
    """The staged rows with ~3% of the values of each column slipped and ~2% of the rows duplicated."""
    out = df.copy()
    n = len(out)
    for col in table.column_names:
        pos = rng.choice(n, size=max(1, n // 30), replace=False)
        s = out[col]
        if pd.api.types.is_string_dtype(s.dtype):
            kinds = rng.integers(8, size=len(pos))
            out.iloc[pos, out.columns.get_loc(col)] = [
                _mangle(v, int(k)) for v, k in zip(s.iloc[pos], kinds, strict=True)
            ]
        elif pd.api.types.is_float_dtype(s.dtype):
            out.iloc[pos, out.columns.get_loc(col)] = np.where(
                rng.random(len(pos)) < 0.5, -s.iloc[pos].abs() - 1, s.iloc[pos] * 1e4
            )
        elif pd.api.types.is_datetime64_any_dtype(s.dtype):
            out.iloc[pos, out.columns.get_loc(col)] = s.iloc[pos] + pd.Timedelta(days=1)
    dup = rng.choice(n, size=max(1, n // 50))
    return pd.concat([out, out.iloc[dup]], ignore_index=True)


def _outcomes(summary: dict[str, Any]) -> dict[tuple[Any, ...], tuple[bool, int, float | None]]:
    """Per expectation of a suite result: (success, unexpected_count, unexpected_percent)."""
    out = {}
    for r in summary.get("results", []):
        cfg, res = r["expectation_config"], r["result"]
        kw = cfg["kwargs"]
        key = (
            cfg["type"],
            kw.get("column"),
            tuple(kw.get("column_list", ())),
            kw.get("regex"),
            cfg["meta"]["reason"],
        )
        pct = res.get("unexpected_percent")
        out[key] = (bool(r["success"]), int(res["unexpected_count"]), None if pct is None else round(pct, 9))
    return out


def _validate(
    settings: Settings, contracts: Contracts, source: str, df: pd.DataFrame, engine: str
) -> tuple[set[tuple[int, str, str]], dict[tuple[Any, ...], tuple[bool, int, float | None]]]:
    runner = SuiteRunner(
        settings.expectations_dir, contracts.table_of(source), contracts.source(source), engine=engine
    )
    failures, summary = runner.validate_rows(df)
    got = set(zip(failures["position"].astype(int), failures["reason"], failures["expectation"], strict=True))
    return got, _outcomes(summary)


@pytest.mark.parametrize("variant", ["staged", "slipped"])
@pytest.mark.parametrize("source", SOURCES)
def test_engines_agree_on_demo_batches(
    demo: tuple[Settings, dict[str, pd.DataFrame]], source: str, variant: str
) -> None:
    settings, staged = demo
    contracts = get_contracts(settings)
    df = staged[source]
    if variant == "slipped":
        df = _perturbed(df, contracts.table_of(source), np.random.default_rng([7, SOURCES.index(source)]))
    by_engine = {e: _validate(settings, contracts, source, df, e) for e in ENGINES}
    (compiled_failures, compiled_outcomes), (ge_failures, ge_outcomes) = (
        by_engine["compiled"],
        by_engine["ge"],
    )
    assert compiled_failures == ge_failures, (
        f"compiled only: {sorted(compiled_failures - ge_failures)[:10]}",
        f"GE only: {sorted(ge_failures - compiled_failures)[:10]}",
    )
    assert compiled_outcomes == ge_outcomes
    assert len(ge_outcomes) == len(
        SuiteRunner(
            settings.expectations_dir, contracts.table_of(source), contracts.source(source)
        ).row_expectations
    )
    if variant == "slipped":
        assert ge_failures, "the slips should fail some expectation"


def test_demo_batches_do_fail_expectations(demo: tuple[Settings, dict[str, pd.DataFrame]]) -> None:
    """Normalization quarantines most defects, but not all: the comparison above is not vacuous."""
    settings, staged = demo
    contracts = get_contracts(settings)
    failing = {s for s in SOURCES if _validate(settings, contracts, s, staged[s], "compiled")[0]}
    assert failing, "no demo source fails a row expectation as staged"
    assert {"ps_hukou", "hrss_insurance", "samr_registry", "stats_indicators"} <= set(staged)
