"""Extract the demo generator's landing files: raw row counts equal each source's own count,
taken here independently with the standard library; a second extract adds nothing; GBK,
GB18030 and BOM files keep their Chinese text exactly."""

from __future__ import annotations

import csv
import json
import sqlite3
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from etl.config import Settings
from etl.contracts import Contracts
from etl.extract import extract, raw_batches

pytestmark = pytest.mark.integration

demo = pytest.importorskip("etl.demo", reason="etl.demo not there yet")
if not hasattr(demo, "generate"):
    pytest.skip("etl.demo.generate not there yet", allow_module_level=True)


def _csv_rows(path: Path, encoding: str) -> list[list[str]]:
    with path.open(encoding=encoding, newline="") as fh:
        return [r for r in csv.reader(fh) if r]


def _lines(path: Path, encoding: str) -> list[str]:
    return [ln for ln in path.read_text(encoding=encoding).split("\n") if ln.strip()]


def _xlsx_data_rows(path: Path, header_rows: int) -> int:
    ns = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    with zipfile.ZipFile(path) as z:
        root = ET.fromstring(z.read("xl/worksheets/sheet1.xml"))
    filled = [
        row
        for row in root.iter(f"{ns}row")
        if any(c.find(f"{ns}v") is not None or c.find(f"{ns}is") is not None for c in row)
    ]
    return len(filled) - header_rows


def _sqlite_rows(path: Path) -> int:
    with sqlite3.connect(path) as con:
        return int(con.execute("select count(*) from enterprise_registry").fetchone()[0])


def _xml_records(path: Path) -> int:
    return sum(1 for _, el in ET.iterparse(path) if el.tag == "record")


COUNTERS: dict[str, Callable[[Path], int]] = {
    "ps_hukou": lambda p: len(_csv_rows(p, "gbk")) - 1,
    "tax_registration": lambda p: len(_csv_rows(p, "utf-8-sig")) - 1,
    "stats_indicators": lambda p: len(_csv_rows(p, "utf-8")) - 1,
    "hrss_insurance": lambda p: _xlsx_data_rows(p, 2),
    "nhc_health": lambda p: len(_lines(p, "utf-8")),
    "ca_marriage": _xml_records,
    "ca_assistance": lambda p: len(_lines(p, "gb18030")),
    "samr_registry": _sqlite_rows,
}


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from etl.config import get_settings

    settings = get_settings(tmp_path_factory.mktemp("demo_home"))
    demo.generate(settings, persons=2000, seed=7)
    return settings


def _raw(settings: Settings, source: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for b in raw_batches(settings, source):
        assert b.raw_path is not None
        out += pq.read_table(b.raw_path).to_pylist()
    return out


def test_raw_counts_match_the_sources(landed: Settings, contracts: Contracts) -> None:
    assert set(COUNTERS) == set(contracts.sources), "a new source needs an independent counter here"
    results = extract(landed, contracts)
    assert {r.status for r in results} == {"extracted"}, [(r.source, r.message) for r in results]
    for name, count in COUNTERS.items():
        src = contracts.source(name)
        files = (
            [landed.source_landing(name) / "registry.sqlite"]
            if src.kind == "sql"
            else sorted(landed.source_landing(name).glob(src.location or ""))
        )
        assert files, name
        expected = sum(count(f) for f in files)
        assert len(_raw(landed, name)) == expected, name
        assert sum(b.rows for b in raw_batches(landed, name)) == expected, name

    again = extract(landed, contracts)
    assert {r.status for r in again} == {"skipped"}
    assert sum(len(raw_batches(landed, n)) for n in COUNTERS) == len(results)


def test_chinese_text_round_trips_exactly(landed: Settings, contracts: Contracts) -> None:
    extract(landed, contracts, ["ps_hukou", "tax_registration", "ca_assistance"])
    for name, encoding in (("ps_hukou", "gbk"), ("tax_registration", "utf-8-sig")):
        [path] = sorted(landed.source_landing(name).glob(contracts.source(name).location or ""))
        header, *rows = _csv_rows(path, encoding)
        raw = _raw(landed, name)
        assert len(raw) == len(rows)
        for got, want in zip(raw, rows, strict=True):
            assert [got[c] for c in header] == want[: len(header)], (name, got["_row_number"])
            if len(want) > len(header):
                assert json.loads(str(got["_extra"])) == want[len(header) :]
                assert str(got["_row_error"]).startswith("ragged")
        assert any(any("\u4e00" <= ch <= "\u9fff" for ch in str(r[header[1]])) for r in raw), name

    src = contracts.source("ca_assistance")
    [path] = sorted(landed.source_landing("ca_assistance").glob(src.location or ""))
    lines = _lines(path, "gb18030")
    raw = _raw(landed, "ca_assistance")
    for f in src.fields:
        assert f.start is not None and f.width is not None
        assert [r[f.name] for r in raw] == [ln[f.start : f.start + f.width] for ln in lines], f.name
