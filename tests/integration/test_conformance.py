"""Conformance reports on real runs (issue 13.7): three deliveries of the household register,
the second with defects planted into rows the demo left clean (worse), the third without the
rows the demo made defective (better). The expected counts come from the delivered files, the
demo's truth and the planting, never from the pipeline's own figures."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from pathlib import Path

import lxml.html
import pandas as pd
import pytest

from etl import meta
from etl.config import Settings, get_settings
from etl.contracts import get_contracts
from etl.demo import generate
from etl.pipeline import run_source
from etl.publish.conformance import build_conformance_reports
from etl.quality import DEFECTS
from etl.validate.conformance import ANY

pytestmark = pytest.mark.integration

SOURCE = "ps_hukou"
DEPARTMENT = "public_security"
#: delivered field -> (bad value maker, the reason the standard gives it)
PLANTS = {
    "公民身份号码": (lambda v: v[:-1] + ("0" if v[-1] != "0" else "1"), "resident_id_checksum"),
    "性别": (lambda v: "X", "invalid_code"),
    "联系电话": (lambda v: "12345", "invalid_phone"),
}


@dataclass
class Deliveries:
    settings: Settings
    files: list[Path]
    planted: dict[str, int]  # field -> rows planted in the second delivery
    dropped: int  # rows left out of the third


def _lines(path: Path) -> tuple[str, list[str]]:
    text = path.read_bytes().decode("gbk").rstrip("\n").split("\n")
    return text[0], text[1:]


def _write(path: Path, header: str, lines: list[str]) -> Path:
    path.write_bytes((header + "\n" + "\n".join(lines) + "\n").encode("gbk"))
    return path


def _bad(codes: str) -> bool:
    return any(not DEFECTS[c].repairable for c in codes.split(",") if c)


@pytest.fixture(scope="module", params=[23, 41])
def deliveries(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Deliveries:
    seed = request.param
    settings = get_settings(tmp_path_factory.mktemp(f"conformance{seed}") / "home")
    generate(settings, persons=1500, seed=seed)
    first = next((settings.landing / SOURCE).glob("hukou_*.csv"))
    run_source(SOURCE, "2026-11-01", "run-1", settings=settings)
    header, lines = _lines(first)
    names = header.split(",")
    truth = pd.read_parquet(settings.truth_dir / f"{SOURCE}.parquet").set_index("row_number")["defects"]
    clean = [i for i in range(len(lines)) if truth.get(i + 1, "") == ""]
    rng = random.Random(seed)
    sizes = [rng.randint(2, 9) for _ in PLANTS]
    picked = rng.sample(clean, sum(sizes))
    planted, worse = {}, list(lines)
    bounds = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
    groups = [picked[a:b] for a, b in itertools.pairwise(bounds)]
    for (field, (make, _)), rows in zip(PLANTS.items(), groups, strict=True):
        k = names.index(field)
        for i in rows:
            cells = worse[i].split(",")
            cells[k] = make(cells[k])
            worse[i] = ",".join(cells)
        planted[field] = len(rows)
    second = _write(first.with_name("hukou_20261102.csv"), header, worse)
    run_source(SOURCE, "2026-11-02", "run-2", settings=settings)
    kept = [ln for i, ln in enumerate(lines) if not _bad(truth.get(i + 1, ""))]
    third = _write(first.with_name("hukou_20261103.csv"), header, kept)
    run_source(SOURCE, "2026-11-03", "run-3", settings=settings)
    build_conformance_reports(settings, get_contracts(settings))
    return Deliveries(settings, [first, second, third], planted, len(lines) - len(kept))


def _report(d: Deliveries) -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = d.settings.reports_dir / DEPARTMENT
    lines = pd.read_csv(folder / "conformance.csv", encoding="utf-8-sig", dtype={"run_id": str})
    trend = pd.read_csv(folder / "conformance_trend.csv", encoding="utf-8-sig")
    return lines[lines["source"] == SOURCE], trend[trend["source"] == SOURCE]


def _filled(path: Path) -> dict[str, int]:
    header, lines = _lines(path)
    names = header.split(",")
    cells = [ln.split(",") for ln in lines]
    return {n: sum(1 for c in cells if len(c) > i and c[i].strip()) for i, n in enumerate(names)}


def test_records_and_filled_values_are_the_delivered_files(deliveries: Deliveries) -> None:
    lines, _ = _report(deliveries)
    for run, path in zip(["run-1", "run-2", "run-3"], deliveries.files, strict=True):
        got = lines[lines["run_id"] == run].set_index("field")
        filled = _filled(path)
        records = len(_lines(path)[1])
        assert (got["records"] == records).all()
        for field, n in filled.items():
            assert got.loc[field, "filled"] == n, (run, field)


def test_the_first_delivery_counts_what_the_demo_made_defective(deliveries: Deliveries) -> None:
    """Kinds in delivery 1 = the truth's non-repairable defects of the delivered rows."""
    _, trend = _report(deliveries)
    truth = pd.read_parquet(deliveries.settings.truth_dir / f"{SOURCE}.parquet")
    bad = truth[truth["defects"].map(_bad)]
    first = trend[trend["run_id"] == "run-1"].iloc[0]
    assert first["quarantined"] == len(bad) > 0
    with meta.connect(deliveries.settings, read_only=True) as con:
        kinds = dict(
            con.execute(
                "select reason, rows from meta.field_defect where run_id = 'run-1' and column_name = ?", [ANY]
            ).fetchall()
        )
    expected: dict[str, int] = {}
    for codes in bad["defects"]:
        for reason in {DEFECTS[c].reason for c in codes.split(",") if c and not DEFECTS[c].repairable}:
            expected[str(reason)] = expected.get(str(reason), 0) + 1
    assert kinds == expected
    assert first["defect_rate"] == pytest.approx(len(bad) / len(truth))


def test_the_second_delivery_adds_exactly_the_planted_defects(deliveries: Deliveries) -> None:
    lines, trend = _report(deliveries)
    one = lines[lines["run_id"] == "run-1"].set_index("field")
    two = lines[lines["run_id"] == "run-2"].set_index("field")
    for field, (_, reason) in PLANTS.items():
        n = deliveries.planted[field]
        assert two.loc[field, f"defects:{reason}"] - one.loc[field].get(f"defects:{reason}", 0) == n
        assert two.loc[field, "defects"] - one.loc[field, "defects"] == n
        assert two.loc[field, "valid"] == two.loc[field, "filled"] - two.loc[field, "defects"]
        assert not two.loc[field, "meets_standard"]
    untouched = [f for f in two.index if f not in PLANTS]
    assert (two.loc[untouched, "defects"] == one.loc[untouched, "defects"]).all()
    t = trend.set_index("run_id")
    records = len(_lines(deliveries.files[1])[1])
    assert t.loc["run-2", "quarantined"] - t.loc["run-1", "quarantined"] == sum(deliveries.planted.values())
    assert t.loc["run-2", "defect_rate"] == pytest.approx(t.loc["run-2", "quarantined"] / records)
    assert t.loc["run-2", "change"] == "worse"


def test_the_third_delivery_is_better_and_meets_the_standard(deliveries: Deliveries) -> None:
    lines, trend = _report(deliveries)
    three = lines[lines["run_id"] == "run-3"]
    assert deliveries.dropped > 0
    assert (three["defects"] == 0).all() and three["meets_standard"].all()
    assert (three["valid"] == three["filled"]).all()
    t = trend.set_index("run_id")
    assert list(t.index) == ["run-1", "run-2", "run-3"]  # oldest first
    assert t.loc["run-3", "quarantined"] == 0 and t.loc["run-3", "change"] == "better"


def test_the_html_report_shows_the_trend_and_is_self_contained(deliveries: Deliveries) -> None:
    page = (deliveries.settings.reports_dir / DEPARTMENT / "conformance.html").read_text(encoding="utf-8")
    doc = lxml.html.fromstring(page)
    assert not doc.xpath("//script | //link | //img") and not doc.xpath("//@src")
    changes = [td.get("data-change") for td in doc.xpath("//td[@data-change]")]
    assert changes == ["", "worse", "better"]
    assert doc.get("lang") == "zh-Hans" and "变差" in page and "改善" in page
    zh = " ".join(e.text_content() for e in doc.xpath('//*[@lang="zh-Hans"]'))
    assert all(field in zh for field in PLANTS)
