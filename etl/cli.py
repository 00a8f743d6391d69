"""The `govbase` command: the same code path Airflow's tasks call, without Airflow."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from etl.config import Settings, get_settings
from etl.errors import GovbaseError, WarehouseWriteError, write_error
from etl.resolve import cli as resolve_cli

app = typer.Typer(
    help="govbase: consolidate department data islands into the national basic information base.",
    no_args_is_help=True,
    add_completion=False,
)
quarantine_app = typer.Typer(help="Inspect, export and replay quarantined rows.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")
resolve_cli.register(app)
console = Console(stderr=True)
out = Console()

HomeOpt = Annotated[
    Path | None,
    typer.Option("--home", help="GOVBASE_HOME (default: $GOVBASE_HOME or ./var)", show_default=False),
]
SourcesOpt = Annotated[
    list[str] | None, typer.Option("--source", "-s", help="source name (repeatable); default: all sources")
]


#: --json (before or after the command): summaries as JSON on stdout instead of tables
_JSON = {"on": False}


def json_first(args: list[str]) -> list[str]:
    """The arguments with every `--json` (before a `--`) moved to the front, where the
    app's option is read: `govbase status --json` means `govbase --json status`."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a == "--json"]
    return flags[:1] + [a for a in args[:end] if a != "--json"] + args[end:]


@app.callback()
def _options(
    as_json: Annotated[
        bool, typer.Option("--json", help="print each summary as JSON (for scripts), not as tables")
    ] = False,
) -> None:
    """govbase: consolidate department data islands into the national basic information base."""
    _JSON["on"] = as_json
    # piped or redirected: never cut tables to 80 columns (COLUMNS, when set, still wins)
    for c in (out, console):
        if not c.is_terminal and "COLUMNS" not in os.environ:
            c.width = 100_000


def _fail(exc: Exception) -> NoReturn:
    console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
    raise typer.Exit(1)


def _waiting(message: str) -> None:
    """What a writer says while it waits for the home's writer lock (etl.lock)."""
    console.print(f"[yellow]{message}[/]", markup=True, highlight=False)


def _home_origin(home: Path | None) -> str:
    if home is not None:
        return "--home"
    return "GOVBASE_HOME" if os.environ.get("GOVBASE_HOME") else "the default ./var, GOVBASE_HOME unset"


def _settings(home: Path | None, *, create: bool = False, **overrides: Any) -> Settings:
    """The command's settings. A home that is not a folder is an error. A missing home is an
    error for a command that only reads (nothing is created); a command that writes
    (`create`) says that it creates it."""
    try:
        settings = get_settings(home, **overrides)
    except GovbaseError as exc:
        _fail(exc)
    where = f"{settings.home} (from {_home_origin(home)})"
    if settings.home.exists() and not settings.home.is_dir():
        _fail(GovbaseError(f"home {where} is not a folder"))
    if not settings.home.exists():
        if not create:
            _fail(
                GovbaseError(
                    f"home {where} does not exist; nothing was created. Check --home or GOVBASE_HOME "
                    "(`govbase demo-data` or `govbase run` create a home)"
                )
            )
        console.print(f"creating home {where}", markup=False, highlight=False)
    elif not create and not settings.duckdb_path.exists():
        _fail(
            GovbaseError(f"home {where} has no warehouse yet ({settings.duckdb_path}): nothing has run there")
        )
    return settings


def _show(
    title: str, columns: list[str], rows: list[list[Any]], styles: dict[str, Any] | None = None
) -> None:
    """A table on stdout; with --json, the same rows as a JSON list of objects. `styles`:
    per column, a function of the value giving its rich markup in the table."""
    if _JSON["on"]:
        data = [dict(zip(columns, r, strict=True)) for r in rows]
        out.print_json(json.dumps({"title": title, "rows": data}, default=str, ensure_ascii=False))
        return
    t = Table(title=title)
    for col in columns:
        t.add_column(col)
    styles = styles or {}
    for r in rows:
        t.add_row(*(styles[c](v) if c in styles else _cell(v) for c, v in zip(columns, r, strict=True)))
    out.print(t)


def _cell(value: Any) -> str:
    from rich.markup import escape

    return "-" if value is None else escape(str(value))


def _show_summary(title: str, summary: dict[str, Any]) -> None:
    """A summary dict as a two-column table (nested mappings one row per entry)."""
    rows: list[list[Any]] = []
    for key, value in summary.items():
        if isinstance(value, dict):
            rows += [[f"{key}: {k}", v] for k, v in value.items()] or [[key, "(none)"]]
        else:
            rows.append([key, value])
    if _JSON["on"]:
        out.print_json(json.dumps(summary, default=str, ensure_ascii=False))
    else:
        _show(title, ["", "value"], rows)


def _logical_date(value: str | None) -> str:
    """--date as YYYY-MM-DD (default: today); a malformed one stops the command before any work."""
    if value is None:
        return date.today().isoformat()
    try:
        parsed = date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        parsed = None
    if parsed is None:
        _fail(GovbaseError(f"--date {value!r}: not a date in the form YYYY-MM-DD"))
    return parsed.isoformat()


@app.command()
def contracts(
    home: HomeOpt = None,
    write_suites: Annotated[
        Path | None,
        typer.Option(
            "--write-suites",
            help="also write each table's full Great Expectations suite (built from schemas/shared "
            "and the hand-written part in expectations/) as <table>.json into this folder",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check every YAML contract (sources, shared tables, linkage, sharing grants, open datasets)
    and list the shared tables, sources and open datasets."""
    from etl.contracts import get_contracts

    settings = get_settings(home)
    try:
        c = get_contracts(settings)
        if write_suites is not None:
            from etl.validate.suites import write_suites as write

            reference_dir = settings.schemas_dir / "reference"
            for path in write(c.tables, settings.expectations_dir, reference_dir, write_suites):
                out.print(f"suite {path}")
    except GovbaseError as exc:
        _fail(exc)
    chosen = _project_origin(settings)
    if _JSON["on"]:
        sources = [
            {"source": s.name, "department": s.department, "kind": s.kind, "table": s.table,
             "schedule": s.schedule, "fields": len(s.fields)}
            for s in c.sources.values()
        ]  # fmt: skip
        doc = {"schemas_dir": str(settings.schemas_dir), "chosen_by": chosen, "sources": sources}
        out.print_json(json.dumps({**doc, "shared_tables": sorted(c.tables)}, ensure_ascii=False))
        return
    out.print(f"contracts read from {settings.schemas_dir} ({chosen})", markup=False, highlight=False)
    rows = [[s.name, s.department, s.kind, s.table, s.schedule, len(s.fields)] for s in c.sources.values()]
    _show("sources", ["source", "department", "kind", "table", "schedule", "fields"], rows)
    out.print(f"shared tables: {', '.join(sorted(c.tables))}")
    from etl.publish.openspec import load_open

    out.print(
        f"open datasets: {', '.join(sorted(load_open(settings.schemas_dir, c.tables).datasets)) or 'none'}"
    )


def _project_origin(settings: Settings) -> str:
    """How the folder holding schemas/ was chosen (etl.config._default_project_dir)."""
    if os.environ.get("GOVBASE_PROJECT_DIR"):
        return "GOVBASE_PROJECT_DIR"
    if settings.project_dir == Path(__file__).resolve().parent.parent:
        return "the checkout govbase is installed from; GOVBASE_PROJECT_DIR unset"
    return "the current directory; GOVBASE_PROJECT_DIR unset"


@app.command("demo-data")
def demo_data(
    persons: Annotated[int, typer.Option(help="size of the shared population")] = 2000,
    seed: Annotated[int, typer.Option(help="random seed: same seed, same bytes")] = 42,
    sql_url: Annotated[
        str | None,
        typer.Option(help="also write the SQL source into this SQLAlchemy URL (PostgreSQL, MariaDB)"),
    ] = None,
    drop_date: Annotated[
        str,
        typer.Option(
            help="delivery date YYYYMMDD in the file names; another date adds another drop, and a "
            "date after 20261101 shows the seed's events up to it (deaths, marriages, moves, ...)"
        ),
    ] = "20261101",
    home: HomeOpt = None,
) -> None:
    """Write realistic, messy department sources and their ground truth under $GOVBASE_HOME/landing/."""
    from etl.demo import generate

    settings = _settings(home, create=True)
    try:
        with console.status("generating department data...") as status:
            summary = generate(
                settings,
                persons=persons,
                seed=seed,
                sql_url=sql_url,
                progress=status.update,
                drop_date=drop_date,
            )
    except ValueError as exc:
        _fail(exc)
    out.print(str(summary), markup=False, highlight=False)
    out.print(f"landing: {settings.landing}")


@app.command()
def extract(
    source: SourcesOpt = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="re-extract files already extracted")
    ] = False,
    home: HomeOpt = None,
) -> None:
    """Read sources into raw Parquet (every value as text) and record each batch in meta."""
    from etl.contracts import get_contracts
    from etl.extract import extract as do_extract
    from etl.lock import writer_lock

    settings = _settings(home, create=True)
    try:
        with writer_lock(settings, "extract", say=_waiting):
            results = do_extract(settings, get_contracts(settings), source, full_refresh=full_refresh)
    except GovbaseError as exc:
        _fail(exc)
    rows = [[r.source, r.file, r.status, r.rows, r.flagged_rows, r.message or ""] for r in results]
    _show("extract", ["source", "file", "status", "rows", "flagged", "message"], rows)
    _say_skipped(Counter(r.source for r in results if r.status == "skipped"))
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)


@app.command()
def run(
    source: SourcesOpt = None,
    logical_date: Annotated[
        str | None, typer.Option("--date", help="logical date YYYY-MM-DD (default: today)")
    ] = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="re-extract files already extracted")
    ] = False,
    engine: Annotated[
        str | None,
        typer.Option(
            "--validation-engine",
            help="compiled (default: the suites' expectations as vectorized checks, GE semantics) "
            "or ge (every expectation through Great Expectations); env GOVBASE_VALIDATION_ENGINE",
        ),
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Run extract, normalize, validate and load for each source, then refresh reports and Data Docs."""
    from etl.config import VALIDATION_ENGINES

    if engine is not None and engine not in VALIDATION_ENGINES:
        _fail(GovbaseError(f"--validation-engine {engine!r}: use one of {', '.join(VALIDATION_ENGINES)}"))
    from etl import meta
    from etl.contracts import get_contracts
    from etl.lock import WriterBusy, writer_lock

    settings = _settings(home, create=True, validation_engine=engine)
    try:
        contracts = get_contracts(settings)
        names = source or sorted(contracts.sources)
        for n in names:
            contracts.source(n)
    except GovbaseError as exc:
        _fail(exc)
    day = _logical_date(logical_date)
    run_id = meta.new_run_id()
    try:
        # one writer per home: the whole run (every source, then the publish) holds the lock
        with writer_lock(settings, run_id, say=_waiting):
            failures = _run_sources(settings, names, day, run_id, full_refresh)
            _publish_after_run(settings, day, run_id, names, failures)
    except WriterBusy as exc:  # another writer held the home past GOVBASE_LOCK_TIMEOUT
        _fail(exc)
    try:
        _print_reconciliation(settings, run_id)
    except Exception as exc:  # e.g. a full disk: the catalog cannot even be opened
        if (err := write_error(exc, "the warehouse (reconciliation)")) is None:
            raise
        failures["reconciliation"] = str(err)
    for name, msg in failures.items():
        console.print(f"[bold red]{name}:[/] {msg}")
    if _JSON["on"]:
        return _exit_if(bool(failures))
    out.print(
        f"run {run_id}: catalog {settings.catalog_path}; reports {settings.reports_dir}; "
        f"run report {settings.reports_dir / 'runs' / (run_id + '.html')}; "
        f"Data Docs {settings.docs_dir / 'index.html'}",
        markup=False,
        highlight=False,
    )
    _exit_if(bool(failures))


def _exit_if(failed: bool) -> None:
    if failed:
        raise typer.Exit(1)


def _publish_after_run(
    settings: Settings, day: str, run_id: str, names: list[str], failures: dict[str, str]
) -> None:
    from etl.pipeline import run_publish

    try:
        run_publish(day, run_id, names, settings=settings)
    except WarehouseWriteError as exc:  # the run fails; said after the reconciliation
        failures["publish"] = str(exc)
    except GovbaseError as exc:  # reports are secondary: say so, keep the run's verdict
        console.print(f"[yellow]publish: {exc}[/]")


def _say_skipped(skipped: Mapping[str, int]) -> None:
    """Where a source's files were all extracted before, say so and how to extract them again."""
    for name, n in skipped.items():
        if n:
            console.print(
                f"{name}: {n} file(s) were already extracted by an earlier run and are skipped; "
                "--full-refresh extracts them again",
                markup=False,
                highlight=False,
            )


def _run_sources(
    settings: Settings, names: list[str], day: str, run_id: str, full_refresh: bool
) -> dict[str, str]:
    """Every stage of each source in turn, with a progress bar; returns the failures by
    source (one source failing does not stop the others)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from etl.pipeline import STAGES, run_stage

    failures: dict[str, str] = {}
    skipped: dict[str, int] = {}
    with Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        TextColumn("{task.fields[stage]:<10}"),
        TextColumn("{task.fields[rows]:>10,} rows"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        for name in names:
            task = bar.add_task(name, total=len(STAGES), stage="", completed=0, rows=0)
            # rows done by the current stage; once the source is done, the rows it delivered
            rows: dict[str, int] = dict.fromkeys(STAGES, 0)

            def tick(stage: str, n: int, task: Any = task, rows: dict[str, int] = rows) -> None:
                rows[stage] = rows.get(stage, 0) + n
                bar.update(task, rows=rows[stage])

            for i, stage in enumerate(STAGES):
                bar.update(task, stage=stage, completed=i, rows=0)
                try:
                    summary = run_stage(
                        stage, name, day, run_id, settings=settings, full_refresh=full_refresh, progress=tick
                    )
                    if stage == "extract":
                        skipped[name] = summary.get("skipped", 0)
                except Exception as exc:  # one source failing must not hide the others
                    failures[name] = (
                        str(exc) if isinstance(exc, GovbaseError) else f"{type(exc).__name__}: {exc}"
                    )
                    bar.update(task, stage="FAILED")
                    break
            else:
                bar.update(task, stage="done", completed=len(STAGES), rows=rows["extract"])
    _say_skipped(skipped)
    return failures


def _print_reconciliation(settings: Settings, run_id: str | None = None, limit: int = 20) -> bool:
    """The reconciliation of a run (or the latest runs), from the published catalog."""
    from etl.published import read_catalog

    with read_catalog(settings) as con:
        where = "where run_id = ?" if run_id else ""
        rows = con.execute(
            "select run_id, source, logical_date, strftime(started_at, '%Y-%m-%d %H:%M:%S'), "
            "round(epoch(finished_at) - epoch(started_at), 1), extracted, loaded, quarantined, balanced, "
            f"status, failure from meta.reconciliation {where} order by started_at desc, source "
            f"limit {int(limit)}",
            [run_id] if run_id else [],
        ).fetchall()
    columns = ["run", "source", "date", "started", "seconds", "extracted", "loaded", "quarantined"]
    _show(
        "reconciliation" + (f" of {run_id}" if run_id else " (recent runs)"),
        [*columns, "balanced", "status", "failure"],
        [list(r) for r in rows],
        {
            "balanced": lambda b: "[green]yes[/]" if b else "[red]no[/]",
            "status": lambda v: "[red]failed[/]" if v == "failed" else _cell(v),
        },
    )
    return all(r[8] for r in rows)


@app.command()
def status(
    limit: Annotated[int, typer.Option(help="how many rows")] = 20,
    home: HomeOpt = None,
) -> None:
    """Show recent runs per source: start, duration, rows, whether each reconciles
    (extracted = loaded + quarantined) and why a failed one failed, as published (a run's
    sources appear as each is loaded; never waits for the writer)."""
    try:
        _print_reconciliation(_settings(home), None, limit)
    except GovbaseError as exc:  # CatalogMissing: the first run is still writing
        _fail(exc)


@app.command()
def publish(
    logical_date: Annotated[str | None, typer.Option("--date", help="logical date YYYY-MM-DD")] = None,
    home: HomeOpt = None,
) -> None:
    """Refresh the rejection reports, Data Docs, data dictionary, catalog comments,
    classification findings, department shares (warehouse/share/<department>/; needs
    GOVBASE_PSEUDONYM_KEY), open data with its DCAT-AP catalog (warehouse/open/) and the latest
    run's report."""
    from etl import meta
    from etl.pipeline import run_publish

    try:
        summary = run_publish(
            _logical_date(logical_date), meta.new_run_id("publish"), settings=_settings(home)
        )
    except GovbaseError as exc:
        _fail(exc)
    _show_summary("publish", summary)


@app.command()
def report(
    run_id: Annotated[
        str | None, typer.Option("--run", help="run id (see `govbase status`); default: the latest run")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Write the run report, one self-contained HTML page (rows by department and stage, quarantine
    reasons, quality over the last runs, linkage, classification findings, open data, shares)
    to reports/runs/<run_id>.html and reports/runs/latest.html."""
    from etl.contracts import get_contracts
    from etl.publish.run_report import build_run_report

    settings = _settings(home)
    try:
        path = build_run_report(settings, get_contracts(settings), run_id)
    except GovbaseError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(GovbaseError(f"cannot write the run report under {settings.reports_dir}: {exc}"))
    out.print(f"run report {path}", markup=False, highlight=False)


@app.command()
def dictionary(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="folder to write into (default: $GOVBASE_HOME/reports/standard)",
            show_default=False,
        ),
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Write the data dictionary (dictionary.html) and a JSON Schema per shared table
    (schema/<table>.schema.json), generated from the contracts; govbase publish writes them too."""
    from etl.contracts import get_contracts
    from etl.publish.dictionary import build_dictionary

    settings = get_settings(home)
    try:
        d = build_dictionary(settings, get_contracts(settings), output)
    except GovbaseError as exc:
        _fail(exc)
    out.print(f"dictionary {d.html}")
    for path in d.schemas.values():
        out.print(f"schema {path}")


@app.command()
def classify(home: HomeOpt = None) -> None:
    """Sample every staged and core column, detect personal data by content, keep the findings
    in meta.classification_finding and list the columns whose content warrants a higher level."""
    from etl import meta
    from etl.contracts import get_contracts
    from etl.lock import writer_lock
    from etl.publish import classify as cls

    settings = _settings(home)
    try:
        contracts = get_contracts(settings)
        with writer_lock(settings, "classify", say=_waiting), meta.connect(settings) as con:
            findings = cls.classify(con, contracts)
            cls.record(con, meta.new_run_id("classify"), findings)
    except GovbaseError as exc:
        _fail(exc)
    for f in findings:
        out.print(f.message())
    out.print(f"{len(findings)} finding(s)")


def _quarantine_frame(source: str, home: Path | None) -> tuple[object, object]:
    """The quarantine of a source (file names masked by content) and its delivered values, masked."""
    from etl.contracts import get_contracts
    from etl.publish.masking import mask_content
    from etl.publish.reports import masked_values, quarantined_rows
    from etl.published import read_catalog

    settings = _settings(home)
    try:
        contracts = get_contracts(settings)
        with read_catalog(settings) as con:  # the published catalog: never waits for (nor stops) a load
            q = quarantined_rows(con, contracts, source)
    except GovbaseError as exc:
        _fail(exc)
    if len(q):
        q["file"] = mask_content(q["file"])
    return q, (masked_values(contracts, source, q["raw"]) if len(q) else None)


@quarantine_app.command("list")
def quarantine_list(
    source: Annotated[str, typer.Option("--source", "-s", help="source name")],
    limit: Annotated[int, typer.Option(help="how many rows")] = 50,
    home: HomeOpt = None,
) -> None:
    """List quarantined rows of a source with their reasons (values masked)."""
    import pandas as pd

    q, _ = _quarantine_frame(source, home)
    assert isinstance(q, pd.DataFrame)
    if q.empty:
        out.print(f"no quarantined rows for {source}")
        return
    counts = q["reasons"].str.split(",").explode().value_counts()
    head = q.head(limit)
    rows = head[["_logical_date", "file", "_row_number", "reasons"]].astype(object).values.tolist()
    _show(f"quarantine of {source}: {len(q)} row(s)", ["date", "file", "row", "reasons"], rows)
    if not _JSON["on"]:
        out.print("by reason: " + ", ".join(f"{k} {v}" for k, v in counts.items()), markup=False)


@quarantine_app.command("show")
def quarantine_show(
    source: Annotated[str, typer.Option("--source", "-s", help="source name")],
    row: Annotated[int, typer.Option(help="row number in its file")],
    home: HomeOpt = None,
) -> None:
    """Show one quarantined row: reasons in plain words and its delivered values (masked)."""
    import pandas as pd

    from etl.publish.i18n import Words

    q, masked = _quarantine_frame(source, home)
    assert isinstance(q, pd.DataFrame)
    words = Words(get_settings(home).report_language)
    hit = list(q.index[q["_row_number"] == row]) if len(q) else []
    if len(hit) == 0:
        _fail(GovbaseError(f"no quarantined row {row} for source {source}"))
    i = hit[0]
    r = q.loc[i]
    out.print(
        f"[bold]{source}[/] file {r['file']} row {row} (logical date {r['_logical_date']}, batch {r['_batch_id']})"
    )
    for code in str(r["reasons"]).split(","):
        out.print(f"  [red]{code}[/]: {words.reason(code)}")
    out.print(f"  checks: {r['failed_expectations']}")
    assert isinstance(masked, pd.DataFrame)
    for col, val in masked.loc[i].items():
        if col == "_extra" and pd.isna(val):
            continue  # no fields beyond the header: nothing to show
        out.print(f"  {col} = " + ("(not delivered)" if pd.isna(val) else str(val)), markup=False)


@quarantine_app.command("export")
def quarantine_export(
    source: Annotated[str, typer.Option("--source", "-s", help="source name")],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV file to write")] = Path(
        "quarantine.csv"
    ),
    home: HomeOpt = None,
) -> None:
    """Export the quarantined rows of a source to CSV (values masked, reasons in plain words in the
    report language, GOVBASE_REPORT_LANGUAGE)."""
    import pandas as pd

    from etl.publish.csvfile import write_csv
    from etl.publish.i18n import Words
    from etl.publish.masking import mask_frame

    if output.is_dir():
        _fail(GovbaseError(f"-o {output}: is a folder; name the CSV file to write"))
    if not output.parent.is_dir():
        _fail(GovbaseError(f"-o {output}: folder {output.parent} does not exist (create it first)"))
    q, masked = _quarantine_frame(source, home)
    assert isinstance(q, pd.DataFrame)
    if q.empty:
        out.print(f"no quarantined rows for {source}")
        return
    assert isinstance(masked, pd.DataFrame)
    df = pd.DataFrame(
        {
            "file": q["file"],
            "row": q["_row_number"],
            "logical_date": q["_logical_date"],
            "reason_codes": q["reasons"],
            "reasons": q["reasons"].map(Words(get_settings(home).report_language).reasons),
        }
    )
    try:  # masked by content as well (file names too), formula-like cells neutralized
        write_csv(mask_frame(pd.concat([df, masked], axis=1)), output)
    except GovbaseError as exc:
        _fail(exc)
    out.print(f"{len(df)} row(s) written to {output}")


@quarantine_app.command("replay")
def quarantine_replay(
    source: Annotated[str, typer.Option("--source", "-s", help="source name")],
    home: HomeOpt = None,
) -> None:
    """Re-validate quarantined rows with the current contracts; move those that now pass (counted once)."""
    from etl.contracts import get_contracts
    from etl.load.replay import replay

    settings = _settings(home)
    try:
        summary = replay(settings, get_contracts(settings), source)
    except GovbaseError as exc:
        _fail(exc)
    _show_summary(f"replay of {source}", summary)


def main() -> None:  # pragma: no cover - console entry
    app(args=json_first(sys.argv[1:]), prog_name="govbase")


if __name__ == "__main__":  # pragma: no cover
    main()
