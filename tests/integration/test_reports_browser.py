"""The run report and a department's rejection report, rendered in headless Chromium from a
real pipeline (demo data of two days ingested, consolidated, classified, shares published:
the session fixture `published` of tests/integration/conftest.py).

Every figure the tests compare is read from the warehouse with SQL here, never typed in; the
pages must load nothing from outside the file (every other request is recorded and refused);
screenshots are kept under the home's reports/ (issue 13.9, issue 14.6)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from browserkit import browser, needs_chromium, open_page
from typer.testing import CliRunner

from etl import meta
from etl.cli import app
from etl.config import Settings, get_settings
from etl.contracts import get_contracts
from etl.publish.i18n import Words
from etl.publish.run_report import build_run_report
from etl.quality import REASONS_ZH

pytestmark = pytest.mark.integration


def _cjk_font() -> bool:
    try:
        out = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return False
    return bool(out.strip())


needs_cjk_font = pytest.mark.skipif(
    not _cjk_font(), reason="no CJK font (`make browser` installs fonts-noto-cjk): Chinese would be boxes"
)


def _sql(settings: Settings, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with meta.connect(settings, read_only=True) as con:
        return con.execute(query, params or []).fetchall()


def _rows(page: Any, table_id: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"#{table_id} tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))"
    )


def _int(text: str) -> int:
    return int(text.replace(",", "")) if text else 0


@browser
@needs_chromium
@needs_cjk_font
def test_the_run_report_shows_the_warehouse(published: tuple[Settings, str]) -> None:
    settings, run_id = published
    contracts = get_contracts(settings)
    page_path = settings.reports_dir / "runs" / f"{run_id}.html"
    shot = settings.reports_dir / "runs" / "run_report.png"
    with open_page(page_path) as (page, outside):
        assert page.locator("h1").inner_text().startswith("运行报告")
        assert run_id in page.locator("#run-header").inner_text()
        stages = {r[0]: r for r in _rows(page, "stages")}
        reasons = _rows(page, "reasons")
        quality = _rows(page, "quality")
        linkage = {r[0]: r for r in _rows(page, "linkage")}
        findings = _rows(page, "findings")
        shares = _rows(page, "shares")
        open_text = page.locator("#section-open_data + *").inner_text()
        opened = _rows(page, "open-data")
        svg_texts = page.eval_on_selector_all("figure.plot svg", "s => s.map(x => x.textContent)")
        page.screenshot(path=str(shot), full_page=True)
    assert outside == []
    # rows by department and stage: the run's ledger, per source (latest attempt per stage)
    ledger = _sql(
        settings,
        "select source, stage, rows_out, rows_quarantined from meta.run_ledger where run_id = ? "
        "qualify row_number() over (partition by source, stage order by finished_at desc) = 1",
        [run_id],
    )
    assert set(stages) == {s for s, *_ in ledger}
    for source, stage, rows_out, quarantined in ledger:
        column = {"extract": 2, "normalize": 3, "validate": 4, "load": 5}[stage]
        assert _int(stages[source][column]) == rows_out, (source, stage)
        assert stages[source][1] == contracts.sources[source].department_name
        if stage == "load":
            assert _int(stages[source][6]) == quarantined, source
    # quarantine reasons: the run's rows in quarantine, a row under each of its reasons
    tables = sorted({s.table for s in contracts.sources.values()})
    union = " union all ".join(f"select reasons from quarantine.{t} where _run_id = $1" for t in tables)
    expected = dict(
        _sql(
            settings,
            f"select r, count(*) from (select unnest(string_split(reasons, ',')) r from ({union})) group by r",
            [run_id],
        )
    )
    shown: dict[str, int] = {}
    for _, code, rows, words in reasons:
        shown[code] = shown.get(code, 0) + _int(rows)
        assert REASONS_ZH[code] in words  # in Chinese, the English beside it
    assert shown == expected and expected
    # quality over the last runs: both runs, the acceptance rate of each
    runs = _sql(
        settings,
        "select run_id, sum(loaded) / sum(extracted) from meta.reconciliation group by run_id order by min(started_at)",
    )
    assert [r[0] for r in quality] == [r for r, _ in runs]
    assert [r[6] for r in quality] == [f"{rate:.2%}" for _, rate in runs]
    # linkage: masters are the rows of the core tables, the open queue core.review_queue
    for entity, key in (("person", "person"), ("legal_entity", "legal_entity")):
        assert _int(linkage[entity][4]) == _sql(settings, f"select count(*) from core.{key}")[0][0]
        queue = _sql(settings, "select count(*) from core.review_queue where entity = ?", [entity])[0][0]
        assert _int(linkage[entity][9]) == queue
    # classification: the latest scan's findings, examples masked
    scan = _sql(settings, "select run_id from meta.classification_run order by classified_at desc limit 1")[
        0
    ][0]
    expected_findings = _sql(
        settings,
        "select schema_name || '.' || table_name || '.' || column_name from meta.classification_finding "
        "where run_id = ?",
        [scan],
    )
    assert sorted(r[0] for r in findings) == sorted(c for (c,) in expected_findings)
    # shares: one per department share file, with its rows
    files = sorted((settings.warehouse / "share").glob("*/share.duckdb"))
    assert len(shares) == len(files) > 0
    assert sum(_int(r[4]) for r in shares) > 0
    # open data: one row per dataset folder, its rows those of its Parquet file; none: says so
    folders = sorted(p for p in (settings.warehouse / "open").glob("*") if p.is_dir())
    if folders:
        assert [r[0] for r in opened] == [p.name for p in folders]
        for row, folder in zip(opened, folders, strict=True):
            parquet = str(folder / f"{folder.name}.parquet")
            assert _int(row[4]) == _sql(settings, "select count(*) from read_parquet(?)", [parquet])[0][0]
    else:
        assert open_text.startswith(Words().text("none_yet").split(" / ")[0])
    # plots: inline SVG with their labels as text, Chinese department names among them
    assert len(svg_texts) >= 4
    assert any(contracts.sources["ps_hukou"].department_name in t for t in svg_texts)
    assert shot.stat().st_size > 50_000
    print(f"\nrun report {page_path}; screenshot {shot}")


@browser
@needs_chromium
@needs_cjk_font
def test_a_department_report_speaks_chinese_and_gives_acceptance_rates(
    published: tuple[Settings, str],
) -> None:
    settings, _ = published
    contracts = get_contracts(settings)
    dept = "human_resources_social_security"  # an Excel source: its dates arrive as serials
    (source,) = [s for s in contracts.sources.values() if s.department == dept]
    folder = settings.reports_dir / dept
    shot = folder / "rejections.png"
    with open_page(folder / "rejections.html", width=1000) as (page, outside):
        headings = page.eval_on_selector_all("h1, h2", "hs => hs.map(h => h.innerText)")
        deliveries = _rows(page, "deliveries")
        detail = page.locator(f"#rows-{source.name}")
        rejected = detail.locator("tbody tr").count() if detail.count() else 0
        header = detail.locator("th").all_inner_texts() if detail.count() else []
        cells = _rows(page, f"rows-{source.name}") if rejected else []
        border = page.eval_on_selector("td", "td => getComputedStyle(td).borderTopWidth")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        note = page.locator("p.note").all_inner_texts()
        page.screenshot(path=str(shot), full_page=True)
    assert outside == []
    assert headings[0].startswith("拒收记录") and "Rejected rows" in headings[0]
    assert [h.split()[0] for h in headings[1:3]] == ["报送情况", "拒收原因"]
    assert border == "1px"  # the cell styles are applied (the CSS no longer drops them)
    assert overflow <= 0  # wide tables scroll inside their box, the page does not
    partitions = _sql(
        settings,
        "select cast(logical_date as varchar), source_rows, rows_quarantined from meta.partition "
        "where source = ? order by logical_date",
        [source.name],
    )
    assert [(r[1], _int(r[4]), _int(r[5])) for r in deliveries] == [(d, a, q) for d, a, q in partitions]
    assert [r[6] for r in deliveries] == [f"{a / (a + q):.1%}" for _, a, q in partitions]
    in_quarantine = _sql(
        settings, f"select count(*) from quarantine.{source.table} where _source = ?", [source.name]
    )[0][0]
    assert rejected == in_quarantine
    if not rejected:
        assert note and note[0].startswith("本部门报送的数据全部通过校验")
        return
    delivered = [f.name for f in source.fields]
    named = {h for h in header[6:] if not h.startswith("_")}  # _extra: fields beyond the header
    assert named and named <= set(delivered)  # the delivered names, no "value:"
    dates = [f.name for f in source.fields if "date" in f.transforms]
    for name in (n for n in dates if n in header):
        shown = [r[header.index(name)] for r in cells if r[header.index(name)]]
        assert shown and all(re.fullmatch(r"\d{4}-(\d{2}|\*\*)-(\d{2}|\*\*)", v) for v in shown), shown
    assert shot.stat().st_size > 20_000
    print(f"\ndepartment report screenshot {shot}")


def test_sections_without_data_say_none_yet_and_open_data_is_read_from_its_folder(
    tmp_path: Path,
) -> None:
    settings = get_settings(tmp_path / "home")
    runner = CliRunner()
    missing = runner.invoke(app, ["report", "--home", str(settings.home)])
    assert missing.exit_code == 1 and "does not exist; nothing was created" in missing.output
    assert not settings.home.exists()  # a read-only command creates nothing
    with meta.connect(settings):
        pass
    contracts = get_contracts(settings)
    text = build_run_report(settings, contracts).read_text(encoding="utf-8")
    assert "仓库中尚无运行记录" in text and text.count("暂无") >= 5
    dataset = settings.warehouse / "open" / "population_by_region"
    dataset.mkdir(parents=True)
    (dataset / "population_by_region.csv").write_bytes("地区,人数\n110105,1200\n".encode())
    (settings.warehouse / "open" / "catalog.jsonld").write_text("{}", encoding="utf-8")
    text = build_run_report(settings, contracts).read_text(encoding="utf-8")
    size = (dataset / "population_by_region.csv").stat().st_size
    assert re.search(
        rf"<td>population_by_region</td><td></td><td>population_by_region.csv</td><td class=\"num\">{size}",
        text,
    )
    assert "open/catalog.jsonld" in text
    unknown = runner.invoke(app, ["report", "--run", "run-nope", "--home", str(settings.home)])
    assert unknown.exit_code == 1 and "no run 'run-nope'" in unknown.output
