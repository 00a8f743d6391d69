"""Department-facing text: Chinese reasons and headings with English alongside (or one of
them, by GOVBASE_REPORT_LANGUAGE), dates shown as dates, a note instead of an empty table,
and the pages' stylesheet intact (issue 14.6)."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest

from etl.config import get_settings
from etl.errors import GovbaseError
from etl.publish import pages
from etl.publish.i18n import WORDS, Words
from etl.publish.reports import department_html, shown_dates
from etl.quality import REASONS, REASONS_ZH

pytestmark = pytest.mark.unit

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_reason_and_phrase_has_both_languages() -> None:
    assert set(REASONS_ZH) == set(REASONS)
    for code, text in REASONS_ZH.items():
        assert CJK.search(text), code
        assert not CJK.search(REASONS[code].replace("万/亿", "")), code
    for key, (zh, en) in WORDS.items():
        assert CJK.search(zh) and not CJK.search(en), key
        # the same template fields in both languages
        assert set(re.findall(r"\{(\w+)\}", zh)) == set(re.findall(r"\{(\w+)\}", en)), key


@pytest.mark.parametrize("language", ["zh-en", "zh", "en"])
def test_the_language_setting_picks_the_words(language: str) -> None:
    words = Words(language)
    text = words.text("rows_rejected", n=7) + words.reason("missing_required")
    assert "7" in text
    assert bool(CJK.search(text)) == (language != "en")
    assert ("rejected" in text) == (language != "zh")
    bilingual = words.html("rejections_title")
    assert ('<span class="en" lang="en">' in bilingual) == (language == "zh-en")


def test_the_language_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("GOVBASE_REPORT_LANGUAGE", raising=False)
    assert get_settings(tmp_path).report_language == "zh-en"
    monkeypatch.setenv("GOVBASE_REPORT_LANGUAGE", "zh")
    assert get_settings(tmp_path).report_language == "zh"
    monkeypatch.setenv("GOVBASE_REPORT_LANGUAGE", "fr")
    with pytest.raises(GovbaseError, match="use one of zh-en, zh, en"):
        get_settings(tmp_path)


def test_excel_serials_are_shown_as_dates() -> None:
    serials = [45292, 46293, 21916, 61]
    values = pd.Series([str(s) for s in serials] + ["1985-02-30", "", None, "1990年3月5日"], dtype="string")
    shown = shown_dates(values, "date")
    epoch = dt.date(1899, 12, 30)  # Excel's 1900 system from serial 61 on
    assert list(shown[:4]) == [(epoch + dt.timedelta(days=s)).isoformat() for s in serials]
    # anything else stays as delivered: the department must see what it sent
    assert list(shown[4:].fillna("<NA>")) == ["1985-02-30", "", "<NA>", "1990年3月5日"]
    assert shown_dates(pd.Series(["0"], dtype="string"), "date_1904").tolist() == ["1904-01-01"]


def test_a_department_with_nothing_rejected_gets_a_note_not_an_empty_table() -> None:
    words = Words("zh-en")
    delivered = pd.DataFrame(
        {
            "source": ["tax_registration"],
            "logical_date": ["2026-11-01"],
            "files": ["a.csv"],
            "delivered": [40],
            "loaded": [40],
            "rejected": [0],
            "acceptance_rate": [1.0],
        }
    )
    body = department_html("税务局", {}, delivered, words)
    assert words.html("nothing_rejected") in body
    assert body.count("<table") == 1  # the deliveries, nothing else
    assert "100.0%" in body


def test_the_run_report_knows_every_stage() -> None:
    from etl.pipeline import STAGES
    from etl.publish.run_report import STAGES as REPORTED

    assert REPORTED == STAGES


def test_the_stylesheet_has_balanced_braces() -> None:
    """The old report's `}}` (an f-string escape in a plain string) closed a rule early and
    dropped the cell styles that followed."""
    depth = 0
    for ch in pages.CSS:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth in (0, 1)
    assert depth == 0
    assert re.search(r"th, td \{[^}]*border: 1px solid", pages.CSS)
    assert re.search(r"\.scroll \{[^}]*overflow-x: auto", pages.CSS)
