"""Conformance reports: per department, how its deliveries meet the standard, beside its
rejection report (reports/<department>/conformance.{html,csv}, conformance_trend.csv).

Read from what validation kept per delivery (etl.validate.conformance: meta.field_profile,
meta.field_defect) and meta.validation_result, for each source its last deliveries (runs):
- per delivered field: records, filled (non-empty) values, valid values (filled, without a
  defect on the column the field feeds), valid share, defects by kind, and whether it meets
  the standard (no defect at all). A defect on a column fed by several fields (a combine
  rule) counts for each of them; one on the whole row (ragged, open quote ...) is its own line;
- per delivery: the defect rate (quarantined rows / records) and the rate of each kind,
  and whether it is better or worse than the delivery before (the trend);
- for the department: the rate of each kind over the latest delivery of each of its sources.

Counts only, no values: nothing here is personal data. CSVs go through etl.publish.csvfile;
the page speaks the report language (Settings.report_language, etl.publish.i18n).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape

from etl import meta
from etl.config import Settings
from etl.contracts import Contracts, Source
from etl.publish.csvfile import write_csv
from etl.publish.dictionary import TEMPLATES, zh
from etl.publish.i18n import Words
from etl.quality import REASONS
from etl.validate.conformance import ANY, DDL, ROW

#: deliveries per source the trend looks back over
LAST_DELIVERIES = 10
MISSING = "missing_required"
#: the department's rate of rows with any defect (quarantined rows / records)
ANY_KEY = "any"


@dataclass(frozen=True)
class ConformanceReport:
    department: str
    deliveries: int
    html: Path
    csv: Path
    trend_csv: Path


def _frames(con: duckdb.DuckDBPyConnection, source: str, last: int) -> tuple[pd.DataFrame, ...]:
    """The last `last` deliveries of a source (oldest first), their profiles and defects."""
    runs = con.execute(
        "select p.run_id, cast(p.logical_date as varchar) as logical_date, max(p.records) as records, "
        "max(p.validated_at) as validated_at, max(v.source_rows_quarantined) as quarantined "
        "from meta.field_profile p left join meta.validation_result v using (run_id, source) "
        "where p.source = ? group by all order by logical_date desc, validated_at desc limit ?",
        [source, last],
    ).df()
    runs = runs.iloc[::-1].reset_index(drop=True)
    ids = runs["run_id"].tolist() or [""]
    marks = ", ".join("?" * len(ids))
    profile = con.execute(
        f"select run_id, field, column_name, records, filled from meta.field_profile "
        f"where source = ? and run_id in ({marks})",
        [source, *ids],
    ).df()
    defects = con.execute(
        f"select run_id, column_name, reason, rows from meta.field_defect where source = ? and run_id in ({marks})",
        [source, *ids],
    ).df()
    return runs, profile, defects


def _defect_column(src: Source, field: str, column: str | None) -> str | None:
    if column is not None and not (isinstance(column, float) and pd.isna(column)):
        return column
    return "record_key" if field in src.record_key else None


def field_lines(src: Source, profile: pd.DataFrame, defects: pd.DataFrame) -> list[dict[str, Any]]:
    """One delivery's lines, one per delivered field (plus the whole row and any column no field
    feeds that had defects): records, filled, valid, valid_share, meets, defects by kind."""
    by_col: dict[str, dict[str, int]] = {}
    for c, r, n in defects[defects["column_name"] != ANY][["column_name", "reason", "rows"]].itertuples(
        index=False
    ):
        by_col.setdefault(str(c), {})[str(r)] = int(n)
    records = int(profile["records"].max()) if len(profile) else 0
    lines, covered = [], set()
    for field, column, filled in profile[["field", "column_name", "filled"]].itertuples(index=False):
        col = _defect_column(src, field, column)
        covered.add(col)
        lines.append(_line(field, col, records, int(filled), by_col.get(col or "", {})))
    for col in sorted(set(by_col) - covered):
        label = "(whole row)" if col == ROW else f"(column {col})"
        lines.append(_line(label, None if col == ROW else col, records, None, by_col[col]))
    return lines


def _line(
    field: str, column: str | None, records: int, filled: int | None, kinds: dict[str, int]
) -> dict[str, Any]:
    defective = sum(kinds.values())
    valid = None if filled is None else max(filled - sum(n for k, n in kinds.items() if k != MISSING), 0)
    return {
        "field": field,
        "column": column or "",
        "records": records,
        "filled": filled,
        "valid": valid,
        "valid_share": (valid / filled) if filled and valid is not None else None,
        "defects": defective,
        "meets_standard": defective == 0,
        "kinds": kinds,
    }


def trend(runs: pd.DataFrame, defects: pd.DataFrame) -> list[dict[str, Any]]:
    """Per delivery (oldest first): records, quarantined rows, defect rate, rate by kind, change."""
    out: list[dict[str, Any]] = []
    anywhere = defects[defects["column_name"] == ANY]
    for r in runs.to_dict("records"):
        records = int(r["records"])
        kinds = {
            str(k): int(n)
            for k, n in anywhere[anywhere["run_id"] == r["run_id"]][["reason", "rows"]].itertuples(
                index=False
            )
        }
        quarantined = 0 if pd.isna(r["quarantined"]) else int(r["quarantined"])
        rate = quarantined / records if records else 0.0
        change = (
            ""
            if not out
            else (
                "worse"
                if rate > out[-1]["defect_rate"]
                else "better"
                if rate < out[-1]["defect_rate"]
                else "same"
            )
        )
        out.append(
            {
                "run_id": r["run_id"],
                "logical_date": r["logical_date"],
                "records": records,
                "quarantined": quarantined,
                "defect_rate": rate,
                "kinds": kinds,
                "rates": {k: n / records if records else 0.0 for k, n in kinds.items()},
                "change": change,
            }
        )
    return out


def source_conformance(
    con: duckdb.DuckDBPyConnection, src: Source, last: int = LAST_DELIVERIES
) -> dict[str, Any]:
    """Everything the report shows of one source: its deliveries with their field lines and trend."""
    runs, profile, defects = _frames(con, src.name, last)
    deliveries = []
    for r in runs.itertuples(index=False):
        lines = field_lines(
            src, profile[profile["run_id"] == r.run_id], defects[defects["run_id"] == r.run_id]
        )
        deliveries.append({"run_id": r.run_id, "logical_date": r.logical_date, "lines": lines})
    return {"source": src, "deliveries": deliveries, "trend": trend(runs, defects)}


def _kinds_in(sources: list[dict[str, Any]]) -> list[str]:
    seen = {k for s in sources for t in s["trend"] for k in t["kinds"]}
    return [k for k in REASONS if k in seen] + sorted(seen - set(REASONS))


def _csv_frames(sources: list[dict[str, Any]], kinds: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    lines, trends = [], []
    for s in sources:
        for d in s["deliveries"]:
            for ln in d["lines"]:
                row = {"source": s["source"].name, "logical_date": d["logical_date"], "run_id": d["run_id"]}
                row.update({k: v for k, v in ln.items() if k != "kinds"})
                row.update({f"defects:{k}": ln["kinds"].get(k, 0) for k in kinds})
                lines.append(row)
        for t in s["trend"]:
            row = {"source": s["source"].name, **{k: v for k, v in t.items() if k not in ("kinds", "rates")}}
            row.update({f"rate:{k}": t["rates"].get(k, 0.0) for k in kinds})
            trends.append(row)
    head = [
        "source",
        "logical_date",
        "run_id",
        "field",
        "column",
        "records",
        "filled",
        "valid",
        "valid_share",
        "defects",
        "meets_standard",
    ]
    tcols = ["source", "run_id", "logical_date", "records", "quarantined", "defect_rate", "change"]
    return (
        pd.DataFrame(lines, columns=[*head, *[f"defects:{k}" for k in kinds]]),
        pd.DataFrame(trends, columns=[*tcols, *[f"rate:{k}" for k in kinds]]),
    )


def department_rates(sources: list[dict[str, Any]]) -> dict[str, float]:
    """Rate of each kind over the latest delivery of each source of a department."""
    latest = [s["trend"][-1] for s in sources if s["trend"]]
    records = sum(t["records"] for t in latest)
    kinds: dict[str, int] = {}
    for t in latest:
        for k, n in t["kinds"].items():
            kinds[k] = kinds.get(k, 0) + n
    rates = {k: n / records for k, n in kinds.items()} if records else {}
    rates[ANY_KEY] = sum(t["quarantined"] for t in latest) / records if records else 0.0
    return rates


def build_conformance_reports(
    settings: Settings, contracts: Contracts, last: int = LAST_DELIVERIES
) -> list[ConformanceReport]:
    """Write reports/<department>/conformance.html, conformance.csv and conformance_trend.csv."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    env.filters["zh"] = zh
    env.filters["pct"] = lambda v: "" if v is None else f"{100 * v:.2f}%"
    reports = []
    with meta.connect(settings) as con:
        con.execute(DDL)
        by_dept: dict[str, list[dict[str, Any]]] = {}
        for name in sorted(contracts.sources):
            src = contracts.sources[name]
            by_dept.setdefault(src.department, []).append(source_conformance(con, src, last))
    for dept, sources in sorted(by_dept.items()):
        kinds = _kinds_in(sources)
        lines, trends = _csv_frames(sources, kinds)
        folder = settings.reports_dir / dept
        folder.mkdir(parents=True, exist_ok=True)
        csv_path, trend_path, html_path = (
            folder / "conformance.csv",
            folder / "conformance_trend.csv",
            folder / "conformance.html",
        )
        write_csv(lines, csv_path)
        write_csv(trends, trend_path)
        page = env.get_template("conformance.html").render(
            department=dept,
            names=sorted({s["source"].department_name for s in sources}),
            sources=sources,
            kinds=kinds,
            rates=department_rates(sources),
            w=Words(settings.report_language),
            ANY_KEY=ANY_KEY,
            last=last,
        )
        html_path.write_text(page, encoding="utf-8")
        deliveries = sum(len(s["deliveries"]) for s in sources)
        reports.append(ConformanceReport(dept, deliveries, html_path, csv_path, trend_path))
    return reports


__all__ = [
    "LAST_DELIVERIES",
    "ConformanceReport",
    "build_conformance_reports",
    "field_lines",
    "source_conformance",
    "trend",
]
