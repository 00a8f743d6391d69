"""Rejection reports: per department, every quarantined row with its reasons in
plain words and its delivered values masked, as CSV and HTML, so the department
can fix its data at the source.

The words are the department's: headings, instructions and reasons in Simplified Chinese
with the English alongside, or one of them (`Settings.report_language`,
GOVBASE_REPORT_LANGUAGE; etl.publish.i18n). Delivered fields keep their delivered names as
column headers, and a date field delivered as an Excel serial number (46293) is shown as
the date it stands for. The page opens with each delivery's acceptance rate (rows loaded
against rows delivered, from meta.partition); a department with nothing rejected gets a
short note instead of an empty table.

Delivered fields are masked by the mask kind of the shared column they map to;
fields that map to no column (and overflow of ragged rows) are redacted. Every cell is
then masked by content too (etl.publish.masking): a resident ID, mobile phone or an
individual business's credit code is masked wherever it sits. The CSV is written by
etl.publish.csvfile (formula-like cells neutralized, UTF-8 with a BOM).
"""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from etl import meta
from etl.config import Settings
from etl.contracts import Contracts
from etl.faults import checkpoint
from etl.normalize import dates
from etl.publish import pages
from etl.publish.csvfile import write_csv
from etl.publish.i18n import Words
from etl.publish.masking import mask, mask_content, mask_frame

#: the columns every report row starts with (the delivered fields follow)
FIXED = ["source", "file", "row", "logical_date", "reason_codes", "reasons"]
_DATE_TRANSFORMS = {"date": dates.date, "date_1904": dates.date_1904}


@dataclass(frozen=True)
class Report:
    department: str
    rows: int
    csv: Path
    html: Path


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


def shown_dates(values: pd.Series, transform: str) -> pd.Series:
    """A date field as a department reads it: a bare Excel serial (46293) becomes the date it
    stands for (YYYY-MM-DD, by the field's own transform); any other text stays as delivered."""
    text = values.astype("string")
    serial = text.str.fullmatch(r"\s*[0-9]{1,7}(?:\.[0-9]+)?\s*", na=False)
    if not serial.any():
        return text
    parsed, _ = _DATE_TRANSFORMS[transform](text[serial], today=dt.date(9999, 12, 31))
    iso = pd.Series(pd.to_datetime(parsed).dt.strftime("%Y-%m-%d"), index=parsed.index, dtype="string")
    return text.mask(serial & iso.reindex(text.index).notna(), iso.reindex(text.index))


def masked_values(contracts: Contracts, source: str, raw_json: pd.Series) -> pd.DataFrame:
    """Delivered values of quarantined rows, one column per delivered field (named as
    delivered), dates shown as dates, masked."""
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
        delivered = values[f.name]
        for t in (t for t in f.transforms if t in _DATE_TRANSFORMS):
            delivered = shown_dates(delivered, t)
        out[f.name] = mask(delivered, kind)
    for extra in [c for c in values.columns if c not in out.columns and not c.startswith("_row_error")]:
        out[extra] = mask(values[extra], "redact")
    return out


def deliveries(settings: Settings, contracts: Contracts, department: str) -> pd.DataFrame:
    """One row per published delivery (source, logical date) of a department: its files, the
    source rows loaded and rejected, and the acceptance rate (loaded / delivered)."""
    sources = sorted(s.name for s in contracts.sources.values() if s.department == department)
    with meta.connect(settings, read_only=True) as con:
        df = con.execute(
            "select p.source, cast(p.logical_date as varchar) as logical_date, "
            "(select string_agg(distinct b.file, ', ' order by b.file) from meta.extract_batch b "
            " where b.source = p.source and b.logical_date = p.logical_date and b.status = 'extracted') as files, "
            "p.source_rows + p.rows_quarantined as delivered, p.source_rows as loaded, "
            "p.rows_quarantined as rejected from meta.partition p "
            "where list_contains(?, p.source) order by p.source, p.logical_date",
            [sources],
        ).df()
    df["files"] = mask_content(df["files"].fillna("").astype("string"))
    df["acceptance_rate"] = (df["loaded"] / df["delivered"]).where(df["delivered"] > 0)
    return df


def _rows(contracts: Contracts, source: str, q: pd.DataFrame, words: Words) -> pd.DataFrame:
    """The report rows of one source: where, when, why, then the delivered values."""
    body = pd.DataFrame(
        {
            "source": q["_source"],
            "file": q["file"].fillna(""),
            "row": q["_row_number"].astype("int64"),
            "logical_date": q["_logical_date"].astype("string"),
            "reason_codes": q["reasons"],
            "reasons": q["reasons"].map(words.reasons),
        }
    )
    values = masked_values(contracts, source, q["raw"])
    values.columns = [f"{c} (delivered)" if c in FIXED else c for c in values.columns]
    return mask_frame(pd.concat([body, values], axis=1))  # file names too: masked by content


def build_rejection_reports(settings: Settings, contracts: Contracts) -> list[Report]:
    """Write reports/<department>/rejections.csv and .html from the published quarantine."""
    words = Words(settings.report_language)
    by_dept: dict[str, dict[str, pd.DataFrame]] = {}
    with meta.connect(settings) as con:  # the writer's own file: the publish holds the lock
        quarantined = {s: quarantined_rows(con, contracts, s) for s in contracts.sources}
    for src in contracts.sources.values():
        q = quarantined[src.name]
        if not q.empty:
            by_dept.setdefault(src.department, {})[src.name] = _rows(contracts, src.name, q, words)
    reports = []
    for dept in sorted({s.department for s in contracts.sources.values()}):
        frames = by_dept.get(dept, {})
        df = pd.concat(frames.values(), ignore_index=True) if frames else pd.DataFrame(columns=FIXED)
        folder = settings.reports_dir / dept
        folder.mkdir(parents=True, exist_ok=True)
        csv_path, html_path = folder / "rejections.csv", folder / "rejections.html"
        write_csv(df, csv_path)
        names = sorted({s.department_name for s in contracts.sources.values() if s.department == dept})
        body = department_html(" / ".join(names), frames, deliveries(settings, contracts, dept), words)
        html_path.write_text(
            pages.page(f"{words.text('rejections_title')}: {' / '.join(names)}", body, words.html_lang),
            encoding="utf-8",
        )
        reports.append(Report(dept, len(df), csv_path, html_path))
        checkpoint("publish:after_report")
    return reports


def department_html(
    name: str, frames: dict[str, pd.DataFrame], delivery_rows: pd.DataFrame, words: Words
) -> str:
    """The body of a department's report: deliveries and acceptance rates, reasons, rows."""
    rows = sum(len(f) for f in frames.values())
    parts = [
        f"<h1>{words.html('rejections_title')}: {html.escape(name)}</h1>",
        f"<p>{words.html('rejections_intro')}</p>",
        f"<h2>{words.html('deliveries')}</h2>",
        _deliveries_html(delivery_rows, words),
        f"<h2>{words.html('by_reason')}</h2>",
    ]
    if not rows:
        parts.append(pages.note(words.html("nothing_rejected")))
        return "".join(parts)
    codes = pd.concat([f["reason_codes"] for f in frames.values()]).str.split(",").explode()
    counts = codes[codes != ""].value_counts()
    reasons = pd.DataFrame({"code": counts.index, "rows": counts.to_numpy()})
    heads = [words.html("reason_codes"), words.html("rows"), words.html("reason")]
    reasons["reason"] = [words.reason_html(c) for c in reasons["code"]]
    parts += [
        f"<p>{words.html('rows_rejected', n=rows)}</p>",
        pages.table(reasons, heads, "reasons", html_columns=frozenset({"reason"})),
        f"<h2>{words.html('rejected_rows')}</h2>",
    ]
    for source, frame in frames.items():
        fixed = [words.html(c) for c in FIXED]
        delivered = [html.escape(str(c)) for c in frame.columns[len(FIXED) :]]
        shown = frame.copy()  # numbers stay numbers (right-aligned); empty cells stay empty
        shown["reasons"] = [
            "<br>".join(words.reason_html(c) for c in codes.split(",") if c)
            for codes in frame["reason_codes"]
        ]
        table = pages.table(
            shown, fixed + delivered, f"rows-{source}", frozenset({"reasons"}), frozenset({"reasons"})
        )
        parts += [f"<h3>{html.escape(source)}</h3>", table]
    return "".join(parts)


def _deliveries_html(df: pd.DataFrame, words: Words) -> str:
    if df.empty:
        return pages.note(words.html("no_deliveries"), "muted")
    shown = df.assign(acceptance_rate=df["acceptance_rate"].map(lambda r: "" if pd.isna(r) else f"{r:.1%}"))
    heads = [
        words.html(k)
        for k in ("source", "logical_date", "files", "delivered", "loaded", "rejected", "acceptance_rate")
    ]
    return f"<p>{words.html('deliveries_intro')}</p>" + pages.table(shown, heads, "deliveries")
