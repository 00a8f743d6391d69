"""The Great Expectations Data Docs of a real pipeline (the session fixture `published`: two
days ingested and published), read in headless Chromium with every request that leaves the
machine recorded and refused (issue 14.1).

What the pages must show is read from the warehouse and the stored results here, never typed
in: the index lists every stored validation result and every suite; each page's suite link
leads to a page; the pages are styled by the site's own copies of bootstrap, bootstrap-table
and Font Awesome; a custom expectation reads as a sentence; the rows normalize rejected for a
column are on that column's validation. Screenshots are kept under $GOVBASE_HOME/screenshots/."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from browserkit import browser, needs_chromium, open_page

from etl import meta
from etl.config import Settings
from etl.contracts import get_contracts
from etl.publish.docs_offline import remote_references

pytestmark = pytest.mark.integration

#: a page of the site drawn: bootstrap-table (the site's copy) has made its tables
_DRAWN = "!!(window.jQuery && jQuery.fn.bootstrapTable) && document.querySelectorAll('.bootstrap-table').length > 0"
#: the rows bootstrap-table holds in a tab of the index ("Validation Results", "Expectation Suites")
_TABLE_DATA = "sel => $(document.querySelector(sel).querySelector('table[data-toggle=table]')).bootstrapTable('getData')"


def _sql(settings: Settings, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with meta.connect(settings, read_only=True) as con:
        return con.execute(query, params or []).fetchall()


def _stored_results(settings: Settings) -> list[tuple[str, str, str]]:
    """(run, batch identifier, suite) of every result validation kept (the JSON behind the
    pages), the batch identifier as the pages name it: <source>__<date>__<rows|batch><i>."""
    out = []
    query = "select source, run_id, cast(logical_date as varchar), ge_result_path from meta.validation_result"
    for source, run_id, day, path in _sql(settings, query):
        results = json.loads((settings.warehouse / path).read_text(encoding="utf-8"))
        for kind in ("rows", "batch"):
            out += [
                (run_id, f"{source}__{day}__{kind}{i}", r["suite_name"]) for i, r in enumerate(results[kind])
            ]
    return sorted(out)


def _shot(settings: Settings, name: str) -> Path:
    folder = settings.home / "screenshots"
    folder.mkdir(exist_ok=True)
    return folder / name


def test_no_page_fetches_from_outside_and_every_suite_link_leads_to_a_page(
    published: tuple[Settings, str],
) -> None:
    settings, _ = published
    docs = settings.docs_dir
    pages = sorted(docs.rglob("*.html"))
    validations = [p for p in pages if p.is_relative_to(docs / "validations")]
    assert len(validations) == len(_stored_results(settings)) > 0
    for page in [*pages, *(docs / "static" / "styles").glob("*.css")]:
        text = page.read_text(encoding="utf-8")
        assert remote_references(text) == [], page
        # every file a page fetches is in the site
        for ref in re.findall(r'(?:src|href)="([^"#:]+\.(?:css|js|png|ico|svg))"', text):
            assert (page.parent / ref).resolve().is_file(), (page, ref)
    for page in validations:
        text = page.read_text(encoding="utf-8")
        (suite_link,) = set(re.findall(r'Expectation Suite:</span>\s*<a href="([^"]+)"', text))
        assert (page.parent / suite_link).resolve().is_file(), (page, suite_link)


@browser
@needs_chromium
def test_the_index_lists_the_validations_styled_without_the_internet(published: tuple[Settings, str]) -> None:
    settings, _ = published
    stored = _stored_results(settings)
    shot = _shot(settings, "data_docs_index.png")
    with open_page(settings.docs_dir / "index.html", ready=_DRAWN) as (page, outside):
        listed = page.evaluate(_TABLE_DATA, "#Validation-Results")
        drawn = page.locator("#Validation-Results tbody tr").count()
        suites = page.evaluate(_TABLE_DATA, "#Expectation-Suites")
        navbar = page.eval_on_selector(".navbar", "e => getComputedStyle(e).position")
        font = page.evaluate("getComputedStyle(document.body).fontFamily")
        icons = page.eval_on_selector(".fas", "e => getComputedStyle(e).fontFamily")
        icon_font = page.evaluate(
            "document.fonts.ready.then(() => document.fonts.check('900 16px \"Font Awesome 6 Free\"'))"
        )
        logo = page.eval_on_selector(".navbar-brand img", "i => [i.naturalWidth, new URL(i.src).protocol]")
        page.screenshot(path=str(shot), full_page=False)
    assert outside == []
    # bootstrap-table (the site's copy) drew every stored result, each with its own page
    shown = sorted(
        (r["run_name"], r["_batch_identifier_sort"], r["_expectation_suite_name_sort"]) for r in listed
    )
    assert shown == stored and drawn > 0
    assert all((settings.docs_dir / r["_table_row_link_path"]).is_file() for r in listed)
    # every suite: those of the contracts and those the results name, each with its page
    tables = set(get_contracts(settings).tables)
    assert {r["expectation_suite_name"] for r in suites} == tables | {suite for *_, suite in stored}
    assert all((settings.docs_dir / r["_table_row_link_path"]).is_file() for r in suites)
    assert navbar == "sticky"  # bootstrap's .sticky-top, not the browser's static
    assert font.startswith("-apple-system")  # bootstrap's font stack, not the default serif
    assert "Font Awesome" in icons and icon_font is True  # the icons' web font, from the site
    assert logo[0] > 0 and logo[1] == "file:"
    assert shot.stat().st_size > 20_000
    print(f"\nData Docs index screenshot {shot}")


def _normalize_rejections(settings: Settings) -> tuple[str, str, str, str, int]:
    """(table, source, run, column, rows) of the delivery and column with the most rows
    normalize rejected, counted in the quarantine (failed_expectations names normalize:<column>)."""
    best: tuple[str, str, str, str, int] | None = None
    for table in sorted(get_contracts(settings).tables):
        rows = _sql(
            settings,
            f"select _source, _run_id, substr(e, 11) c, count(*) n from quarantine.{table}, "
            "unnest(string_split(failed_expectations, ',')) t(e) where e like 'normalize:%' "
            "group by all order by n desc, _source, c limit 1",
        )
        for source, run_id, column, n in rows:
            if best is None or n > best[4]:
                best = (table, source, run_id, column, n)
    assert best is not None, "the demo data of the fixture has no value normalize rejects"
    return best


@browser
@needs_chromium
def test_a_validation_page_shows_sentences_and_normalize_rejections(published: tuple[Settings, str]) -> None:
    settings, _ = published
    table, source, run_id, column, rejected = _normalize_rejections(settings)
    (path,) = (settings.docs_dir / "validations" / table / run_id).glob(f"*/{source}__*__rows0.html")
    shot = _shot(settings, "data_docs_validation.png")
    with open_page(path, ready=_DRAWN) as (page, outside):
        sections = page.eval_on_selector_all(
            ".ge-section",
            "ss => ss.map(s => [s.querySelector('h5') ? s.querySelector('h5').innerText.trim() : '', "
            "[...s.querySelectorAll('tbody tr')].map(r => r.innerText.replace(/\\s+/g, ' ').trim())])",
        )
        suite_href = page.eval_on_selector(
            "xpath=//span[normalize-space()='Expectation Suite:']/following-sibling::a[1]",
            "a => a.getAttribute('href')",
        )
        badge = page.eval_on_selector(".badge", "e => getComputedStyle(e).display")
        page.screenshot(path=str(shot), full_page=True)
        if suite_href:
            page.goto((path.parent / suite_href).resolve().as_uri())
            suite_title = page.title()
            suite_text = page.locator("body").inner_text()
    assert outside == []
    by_column = {name: rows for name, rows in sections if name}
    # normalize's rejections of the column, beside the column's own checks
    (line,) = [r for r in by_column[column] if "must be accepted by normalize" in r]
    assert re.search(rf"\b{rejected} unexpected values found", line), line
    quarantined = _sql(
        settings,
        f"select count(*) from quarantine.{table} where _source = ? and _run_id = ? and "
        "list_contains(string_split(failed_expectations, ','), ?)",
        [source, run_id, f"normalize:{column}"],
    )[0][0]
    assert quarantined == rejected
    # the custom expectations read as sentences, never GE's fallback expect_...(**{...})
    text = " ".join(r for rows in by_column.values() for r in rows)
    assert "expect_" not in text and "**" not in text
    if table == "person":
        assert "must equal the birth date encoded in the resident ID" in text
    assert badge == "inline-block"  # bootstrap's .badge styles the column names
    # the suite link resolves to the table's suite page
    assert suite_href and suite_title and table in suite_text and "expect_" not in suite_text
    assert shot.stat().st_size > 50_000
    print(f"\nData Docs validation page screenshot {shot}")
