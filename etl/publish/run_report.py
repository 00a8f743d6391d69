"""The run report: one self-contained HTML page per run under reports/runs/.

`build_run_report` reads the warehouse catalog (read-only) and writes
`reports/runs/<run_id>.html` (and the same page as `reports/runs/latest.html`) with:

- rows by department and stage: the run's ledger (latest attempt of each stage), with the
  loaded and quarantined rows of each department plotted;
- quarantine reasons: the run's rows in `quarantine.<table>`, by reason and department;
- quality over the last runs: acceptance rate (loaded / extracted) and rejected rows of the
  last `LAST_RUNS` runs of meta.reconciliation, with the batches failing validation;
- linkage: the latest consolidation of each entity (meta.resolve_run: records, masters,
  merges, splits, pairs for review), the open review queue (core.review_queue) and the
  decisions taken (meta.review_decision);
- classification findings: the latest `govbase classify` scan (meta.classification_run,
  meta.classification_finding; examples are masked at the scan);
- datasets opened (folders under warehouse/open/, and the catalog beside them) and
  department shares refreshed (warehouse/share/<department>/share.duckdb, opened the way a
  department opens it).

Sections whose tables or folders do not exist yet say so ("none yet"). The plots are inline
SVG (etl.publish.plots), the styles inline (etl.publish.pages): the page loads nothing from
anywhere. Words follow `Settings.report_language`. Text that could carry personal data
(ledger messages, file names) is masked by content.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from etl import meta
from etl.config import Settings
from etl.contracts import Contracts
from etl.errors import GovbaseError
from etl.publish.i18n import Words
from etl.publish.masking import mask_content

LAST_RUNS = 10
#: the stages of etl.pipeline.STAGES, in order (not imported from there: that loads every stage)
STAGES = ("extract", "normalize", "validate", "load")
RUNS_DIR = "runs"


@dataclass
class RunFacts:
    """What the run report shows, read from the warehouse (None: not there yet)."""

    run_id: str | None
    header: dict[str, str] = field(default_factory=dict)
    stages: pd.DataFrame = field(default_factory=pd.DataFrame)
    reasons: pd.DataFrame = field(default_factory=pd.DataFrame)
    quality: pd.DataFrame = field(default_factory=pd.DataFrame)
    linkage: pd.DataFrame | None = None
    linkage_run: tuple[str, str] | None = None
    classification: tuple[str, str, pd.DataFrame] | None = None
    open_data: pd.DataFrame | None = None
    catalogs: list[str] = field(default_factory=list)
    shares: pd.DataFrame | None = None


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        f"{s}.{t}"
        for s, t in con.execute("select table_schema, table_name from information_schema.tables").fetchall()
    }


def latest_run(con: duckdb.DuckDBPyConnection) -> str | None:
    row = con.execute(
        "select run_id from meta.reconciliation order by started_at desc, run_id desc limit 1"
    ).fetchall()
    return row[0][0] if row else None


def run_header(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, str]:
    row = con.execute(
        "select string_agg(distinct cast(logical_date as varchar), ', ' order by cast(logical_date as varchar)), "
        "min(started_at), max(finished_at), "
        "case when bool_and(status = 'ok') then 'ok' else string_agg(distinct status, ', ') end "
        "from meta.reconciliation where run_id = ?",
        [run_id],
    ).fetchall()[0]
    return {
        "run": run_id,
        "dates": str(row[0]),
        "started": _time(row[1]),
        "finished": _time(row[2]),
        "status": str(row[3]),
    }


def _time(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, dt.datetime) else str(value or "")


def stage_rows(con: duckdb.DuckDBPyConnection, contracts: Contracts, run_id: str) -> pd.DataFrame:
    """One row per source of the run: department, the rows out of each stage, the rows
    quarantined, the status (the latest attempt of each stage counts)."""
    df = con.execute(
        "select source, stage, rows_out, rows_quarantined, status, message from meta.run_ledger "
        "where run_id = ? and stage <> 'replay' "
        "qualify row_number() over (partition by source, stage order by finished_at desc) = 1",
        [run_id],
    ).df()
    if df.empty:
        return df
    wide = df.pivot(index="source", columns="stage", values="rows_out").reindex(columns=list(STAGES))
    out = pd.DataFrame(index=wide.index)
    out["department"] = [_department(contracts, s) for s in wide.index]
    for stage in STAGES:
        out[stage] = wide[stage].astype("Int64")
    by_source = df.groupby("source")
    out["quarantined"] = by_source["rows_quarantined"].max().astype("Int64")
    out["status"] = by_source["status"].agg(lambda s: "ok" if (s == "ok").all() else "failed")
    out["message"] = by_source["message"].agg(lambda m: "; ".join(str(x) for x in m.dropna()))
    out["message"] = mask_content(out["message"].astype("string"))
    return out.reset_index().sort_values(["department", "source"], ignore_index=True)


def _department(contracts: Contracts, source: str) -> str:
    src = contracts.sources.get(source)
    return f"{src.department_name}" if src else source


def quarantine_reasons(con: duckdb.DuckDBPyConnection, contracts: Contracts, run_id: str) -> pd.DataFrame:
    """Rows of the run now in quarantine, by department and reason code (a row counts once
    under each of its reasons)."""
    names = sorted(t for s, t in (n.split(".") for n in _tables(con)) if s == "quarantine")
    if not names:
        return pd.DataFrame(columns=["department", "reason", "rows"])
    rows = " union all ".join(
        f'select _source as source, reasons from quarantine."{t}" where _run_id = $run' for t in names
    )
    df = con.execute(
        f"select source, reason, count(*) as rows from (select source, unnest(string_split(reasons, ',')) "
        f"as reason from ({rows})) where reason <> '' group by all",
        {"run": run_id},
    ).df()
    df["department"] = [_department(contracts, s) for s in df["source"]]
    return (
        df.groupby(["department", "reason"])["rows"]
        .sum()
        .reset_index()
        .sort_values(["rows", "reason"], ascending=[False, True], ignore_index=True)
    )


def quality(con: duckdb.DuckDBPyConnection, limit: int = LAST_RUNS) -> pd.DataFrame:
    """The last runs, oldest first: sources, rows extracted, loaded and quarantined, the
    acceptance rate (loaded / extracted), sources not ok, batches failing validation."""
    return con.execute(
        "with r as (select run_id, min(started_at) as started, count(*) as sources, "
        " sum(extracted)::bigint as extracted, sum(loaded)::bigint as loaded, "
        " sum(quarantined)::bigint as quarantined, "
        " count(*) filter (where status <> 'ok') as not_ok from meta.reconciliation group by run_id "
        " order by started desc limit ?), "
        "v as (select run_id, count(*) filter (where not success) as validation_failed "
        " from meta.validation_result group by run_id) "
        "select r.run_id, strftime(r.started, '%Y-%m-%d %H:%M:%S') as started, r.sources, r.extracted, r.loaded, "
        "r.quarantined, case when r.extracted > 0 then r.loaded / r.extracted end as acceptance_rate, "
        "r.not_ok, coalesce(v.validation_failed, 0) as validation_failed "
        "from r left join v using (run_id) order by r.started, r.run_id",
        [limit],
    ).df()


def linkage(
    con: duckdb.DuckDBPyConnection, tables: set[str]
) -> tuple[pd.DataFrame | None, tuple[str, str] | None]:
    """The latest consolidation of each entity, with its open review queue and decisions."""
    if "meta.resolve_run" not in tables:
        return None, None
    df = con.execute(
        "select entity, run_id, finished_at, records, with_valid_id, pairs_linked, masters, merged, split, "
        "findings, review_pairs from meta.resolve_run "
        "qualify row_number() over (partition by entity order by finished_at desc) = 1 order by entity"
    ).df()
    if df.empty:
        return None, None
    queue = (
        dict(con.execute("select entity, count(*) from core.review_queue group by entity").fetchall())
        if "core.review_queue" in tables
        else {}
    )
    decided = (
        dict(con.execute("select entity, count(*) from meta.review_decision group by entity").fetchall())
        if "meta.review_decision" in tables
        else {}
    )
    df["review_open"] = [int(queue.get(e, 0)) for e in df["entity"]]
    df["decisions"] = [int(decided.get(e, 0)) for e in df["entity"]]
    last = df.sort_values("finished_at").iloc[-1]
    return df.drop(columns=["run_id", "finished_at"]), (str(last["run_id"]), _time(last["finished_at"]))


def classification(con: duckdb.DuckDBPyConnection, tables: set[str]) -> tuple[str, str, pd.DataFrame] | None:
    """The latest scan: its run id, time and findings (None before the first scan)."""
    if "meta.classification_run" in tables:
        runs = con.execute(
            "select run_id, classified_at from meta.classification_run order by classified_at desc limit 1"
        ).fetchall()
    elif "meta.classification_finding" in tables:  # a catalog from before scans were recorded
        runs = con.execute(
            "select run_id, max(found_at) from meta.classification_finding group by run_id order by 2 desc limit 1"
        ).fetchall()
    else:
        return None
    if not runs:
        return None
    run_id, at = runs[0]
    findings = (
        con.execute(
            "select schema_name || '.' || table_name || '.' || column_name as column_name, declared, kind, warranted, "
            "share, sampled, examples from meta.classification_finding where run_id = ? order by share desc, 1",
            [run_id],
        ).df()
        if "meta.classification_finding" in tables
        else pd.DataFrame()
    )
    return str(run_id), _time(at), findings


def open_datasets(settings: Settings, contracts: Contracts) -> tuple[pd.DataFrame | None, list[str]]:
    """Each folder under warehouse/open/ (a dataset): its title (schemas/open/), files, bytes,
    rows (of its Parquet file), suppressed cells (of an aggregate), last change; and the
    catalogs (*.jsonld) found there."""
    root = settings.layer("open")
    if not root.is_dir():
        return None, []
    titles = _open_titles(settings, contracts)
    rows = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        files = sorted(f for f in folder.rglob("*") if f.is_file())
        if files:
            parquet = [f for f in files if f.suffix == ".parquet"]
            rows.append(
                {
                    "dataset": folder.name,
                    "title": titles.get(folder.name, ""),
                    "files": ", ".join(f.relative_to(folder).as_posix() for f in files),
                    "bytes": sum(f.stat().st_size for f in files),
                    "rows": sum(pq.read_metadata(f).num_rows for f in parquet) if parquet else None,
                    "suppressed": _suppressed(parquet),
                    "modified": _time(dt.datetime.fromtimestamp(max(f.stat().st_mtime for f in files))),
                }
            )
    catalogs = sorted(p.relative_to(settings.warehouse).as_posix() for p in root.rglob("*.jsonld"))
    return (pd.DataFrame(rows).astype({"rows": "Int64", "suppressed": "Int64"}) if rows else None), catalogs


def _suppressed(parquet: list[Path]) -> int | None:
    """Cells an aggregate suppressed (its `suppressed` column); None for other files."""
    total = None
    for f in parquet:
        if "suppressed" in pq.read_schema(f).names:
            total = (total or 0) + int(pq.read_table(f, columns=["suppressed"]).column(0).to_pandas().sum())
    return total


def _open_titles(settings: Settings, contracts: Contracts) -> dict[str, str]:
    """Dataset name -> title from schemas/open/ (none when the folder is absent or malformed:
    the report shows the folders all the same)."""
    from etl.publish.openspec import load_open

    try:
        return {
            name: d.title for name, d in load_open(settings.schemas_dir, contracts.tables).datasets.items()
        }
    except (GovbaseError, OSError):
        return {}


def shares(settings: Settings) -> pd.DataFrame | None:
    """Each department share, opened as its department opens it: refresh time, key version,
    tables and rows."""
    from etl.publish.shares import SHARE_FILE, open_share

    files = sorted((settings.warehouse / "share").glob(f"*/{SHARE_FILE}"))
    rows = []
    for path in files:
        con = open_share(path)
        try:
            names = [
                r[0]
                for r in con.execute("select table_name from information_schema.tables order by 1").fetchall()
            ]
            info = con.execute("select * from share_info").df() if "share_info" in names else pd.DataFrame()
            data = [n for n in names if n not in ("share_info", "share_grant")]
            counts = {n: con.execute(f'select count(*) from "{n}"').fetchall()[0][0] for n in data}
        finally:
            con.close()
        first = info.iloc[0] if len(info) else pd.Series(dtype=object)
        rows.append(
            {
                "department": str(first.get("department_name", path.parent.name)),
                "refreshed_at": str(first.get("refreshed_at", "")),
                "key_version": str(first.get("key_version", "")),
                "tables": ", ".join(f"{n} ({c:,})" for n, c in counts.items()),
                "rows": int(sum(counts.values())),
            }
        )
    return pd.DataFrame(rows) if rows else None


def _which_run(
    con: duckdb.DuckDBPyConnection, run_id: str | None, latest_if_unknown: bool, settings: Settings
) -> str | None:
    """`run_id` when the warehouse knows it; else the latest run (None when there is none),
    or an error without `latest_if_unknown`."""
    if run_id is None:
        return latest_run(con)
    known = con.execute("select count(*) from meta.reconciliation where run_id = ?", [run_id]).fetchall()
    if known[0][0]:
        return run_id
    if latest_if_unknown:
        return latest_run(con)
    raise GovbaseError(f"no run {run_id!r} in {settings.duckdb_path} (see `govbase status`)")


def gather(
    settings: Settings, contracts: Contracts, run_id: str | None = None, latest_if_unknown: bool = False
) -> RunFacts:
    """Read every section of the report for `run_id` (default: the latest run). A run the
    warehouse does not know is an error, or the latest run with `latest_if_unknown`."""
    if not settings.duckdb_path.exists():
        raise GovbaseError(f"no warehouse at {settings.duckdb_path}: run `govbase run` first")
    with meta.connect(settings, read_only=True) as con:
        tables = _tables(con)
        facts = RunFacts(_which_run(con, run_id, latest_if_unknown, settings))
        if facts.run_id is not None:  # the run's own sections
            facts.header = run_header(con, facts.run_id)
            facts.stages = stage_rows(con, contracts, facts.run_id)
            facts.reasons = quarantine_reasons(con, contracts, facts.run_id)
            facts.quality = quality(con)
        facts.linkage, facts.linkage_run = linkage(con, tables)
        facts.classification = classification(con, tables)
    facts.open_data, facts.catalogs = open_datasets(settings, contracts)
    facts.shares = shares(settings)
    return facts


def build_run_report(
    settings: Settings, contracts: Contracts, run_id: str | None = None, latest_if_unknown: bool = False
) -> Path:
    """Write reports/runs/<run_id>.html (and latest.html); returns the run's page."""
    from etl.publish.run_page import render

    facts = gather(settings, contracts, run_id, latest_if_unknown)
    words = Words(settings.report_language)
    text = render(facts, words)
    folder = settings.reports_dir / RUNS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{facts.run_id or 'no-run'}.html"
    path.write_text(text, encoding="utf-8")
    (folder / "latest.html").write_text(text, encoding="utf-8")
    return path


__all__ = ["LAST_RUNS", "RunFacts", "build_run_report", "gather"]
