"""Rejection reports: per department, every quarantined row with its reasons in
plain words and its delivered values masked, as CSV and HTML, so the department
can fix its data at the source.

Delivered fields are masked by the mask kind of the shared column they map to;
fields that map to no column (and overflow of ragged rows) are redacted. Every cell is
then masked by content too (etl.publish.masking): a resident ID, mobile phone or an
individual business's credit code is masked wherever it sits. The CSV is written by
etl.publish.csvfile (formula-like cells neutralized, UTF-8 with a BOM).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from etl import meta
from etl.config import Settings
from etl.contracts import Contracts
from etl.publish.csvfile import write_csv
from etl.publish.masking import mask, mask_frame
from etl.quality import REASONS


@dataclass(frozen=True)
class Report:
    department: str
    rows: int
    csv: Path
    html: Path


def _plain(reasons: str) -> str:
    return " ".join(REASONS.get(r, r) for r in reasons.split(",") if r)


def quarantined_rows(con: duckdb.DuckDBPyConnection, contracts: Contracts, source: str) -> pd.DataFrame:
    """The currently published quarantine of one source, joined to file names, from `con`:
    the writer's file for the reports (the writer holds the lock), the published catalog
    for the quarantine commands (etl.published.read_catalog: never waits for the writer)."""
    table = contracts.source(source).table
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema='quarantine' and table_name=?",
        [table],
    ).fetchall()
    if not exists or not exists[0][0]:
        return pd.DataFrame()
    return con.execute(
        f"select q.* replace (cast(q._logical_date as varchar) as _logical_date), b.file "
        f"from quarantine.{table} q left join meta.extract_batch b on b.batch_id = q._batch_id "
        "where q._source = ? order by q._logical_date, b.file, q._row_number",
        [source],
    ).df()


def masked_values(contracts: Contracts, source: str, raw_json: pd.Series) -> pd.DataFrame:
    """Delivered values of quarantined rows, one column per delivered field, masked."""
    src = contracts.source(source)
    table = contracts.tables[src.table]
    values = pd.DataFrame(
        [json.loads(r) if isinstance(r, str) else {} for r in raw_json], index=raw_json.index
    )
    out = pd.DataFrame(index=raw_json.index)
    for f in src.fields:
        if f.name not in values.columns:
            continue
        kind = table.column(f.to).mask if f.to else "redact"
        out[f.name] = mask(values[f.name], kind)
    for extra in [c for c in values.columns if c not in out.columns and not c.startswith("_row_error")]:
        out[extra] = mask(values[extra], "redact")
    return out


def build_rejection_reports(settings: Settings, contracts: Contracts) -> list[Report]:
    """Write reports/<department>/rejections.csv and .html from the published quarantine."""
    by_dept: dict[str, list[pd.DataFrame]] = {}
    with meta.connect(settings) as con:  # the writer's own file: the publish stage holds the lock
        quarantined = {s: quarantined_rows(con, contracts, s) for s in contracts.sources}
    for src in contracts.sources.values():
        q = quarantined[src.name]
        if q.empty:
            continue
        body = pd.DataFrame(
            {
                "source": q["_source"],
                "file": q["file"].fillna(""),
                "row": q["_row_number"].astype("int64"),
                "logical_date": q["_logical_date"].astype("string"),
                "reason_codes": q["reasons"],
                "reasons": q["reasons"].map(_plain),
            }
        )
        body = pd.concat([body, masked_values(contracts, src.name, q["raw"]).add_prefix("value:")], axis=1)
        body = mask_frame(body)  # file names and any other text: personal data masked by content
        by_dept.setdefault(src.department, []).append(body)
    reports = []
    for dept in sorted({s.department for s in contracts.sources.values()}):
        frames = by_dept.get(dept, [])
        df = (
            pd.concat(frames, ignore_index=True)
            if frames
            else pd.DataFrame(columns=["source", "file", "row", "logical_date", "reason_codes", "reasons"])
        )
        folder = settings.reports_dir / dept
        folder.mkdir(parents=True, exist_ok=True)
        csv_path, html_path = folder / "rejections.csv", folder / "rejections.html"
        write_csv(df, csv_path)
        names = sorted({s.department_name for s in contracts.sources.values() if s.department == dept})
        counts = (
            df["reason_codes"].str.split(",").explode().value_counts() if len(df) else pd.Series(dtype=int)
        )
        summary = "".join(
            f"<li><b>{html.escape(str(k))}</b> ({v}): {html.escape(REASONS.get(str(k), ''))}</li>"
            for k, v in counts.items()
        )
        html_path.write_text(
            "<!doctype html><html><head><meta charset='utf-8'><title>govbase rejections: "
            f"{html.escape(dept)}</title><style>body{{font-family:sans-serif}}table{{border-collapse:collapse;"
            "font-size:12px}}td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>"
            f"<h1>Rejected rows: {html.escape(' / '.join(names))}</h1>"
            f"<p>{len(df)} row(s) were quarantined. Sensitive values are masked. Please correct them at the source "
            "and deliver again; each row names its file and row number.</p>"
            f"<ul>{summary}</ul>"
            + df.astype(object).where(df.notna(), "").to_html(index=False, escape=True)
            + "</body></html>",
            encoding="utf-8",
        )
        reports.append(Report(dept, len(df), csv_path, html_path))
    return reports
