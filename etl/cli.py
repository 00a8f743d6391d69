"""The `govbase` command: the same code path Airflow's tasks call, without Airflow."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from etl.config import Settings, get_settings
from etl.errors import GovbaseError
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


def _fail(exc: Exception) -> NoReturn:
    console.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(1)


def _waiting(message: str) -> None:
    """What a writer says while it waits for the home's writer lock (etl.lock)."""
    console.print(f"[yellow]{message}[/]", markup=True, highlight=False)


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
    """Check every YAML contract and list the shared tables and sources."""
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
    t = Table(title="sources")
    for col in ("source", "department", "kind", "table", "schedule", "fields"):
        t.add_column(col)
    for s in c.sources.values():
        t.add_row(s.name, s.department, s.kind, s.table, str(s.schedule), str(len(s.fields)))
    out.print(t)
    out.print(f"shared tables: {', '.join(sorted(c.tables))}")


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

    settings = get_settings(home)
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

    settings = get_settings(home)
    try:
        with writer_lock(settings, "extract", say=_waiting):
            results = do_extract(settings, get_contracts(settings), source, full_refresh=full_refresh)
    except GovbaseError as exc:
        _fail(exc)
    t = Table(title="extract")
    for col in ("source", "file", "status", "rows", "flagged", "message"):
        t.add_column(col)
    for r in results:
        t.add_row(r.source, str(r.file), r.status, str(r.rows), str(r.flagged_rows), r.message or "")
    out.print(t)
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
    from etl.lock import writer_lock

    try:
        settings = get_settings(home, validation_engine=engine)
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
            _publish_after_run(settings, day, run_id, names)
    except GovbaseError as exc:  # WriterBusy: another writer held the home past the timeout
        _fail(exc)
    _print_reconciliation(settings, run_id)
    for name, msg in failures.items():
        console.print(f"[bold red]{name}:[/] {msg}")
    out.print(
        f"run {run_id}: catalog {settings.catalog_path}; reports {settings.reports_dir}; "
        f"Data Docs {settings.docs_dir / 'index.html'}"
    )
    if failures:
        raise typer.Exit(1)


def _publish_after_run(settings: Settings, day: str, run_id: str, names: list[str]) -> None:
    from etl.pipeline import run_publish

    try:
        run_publish(day, run_id, names, settings=settings)
    except GovbaseError as exc:  # reports are secondary: say so, keep the run's verdict
        console.print(f"[yellow]publish: {exc}[/]")


def _run_sources(
    settings: Settings, names: list[str], day: str, run_id: str, full_refresh: bool
) -> dict[str, str]:
    """Every stage of each source in turn, with a progress bar; returns the failures by
    source (one source failing does not stop the others)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from etl.pipeline import STAGES, run_stage

    failures: dict[str, str] = {}
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
                    run_stage(
                        stage, name, day, run_id, settings=settings, full_refresh=full_refresh, progress=tick
                    )
                except Exception as exc:  # one source failing must not hide the others
                    failures[name] = (
                        str(exc) if isinstance(exc, GovbaseError) else f"{type(exc).__name__}: {exc}"
                    )
                    bar.update(task, stage="FAILED")
                    break
            else:
                bar.update(task, stage="done", completed=len(STAGES), rows=rows["extract"])
    return failures


def _print_reconciliation(settings: Settings, run_id: str | None = None, limit: int = 20) -> bool:
    """The reconciliation of a run (or the latest runs), from the published catalog."""
    from etl.published import read_catalog

    with read_catalog(settings) as con:
        where = "where run_id = ?" if run_id else ""
        rows = con.execute(
            f"select run_id, source, logical_date, extracted, loaded, quarantined, balanced, status, failure "
            f"from meta.reconciliation {where} order by started_at desc, source limit {int(limit)}",
            [run_id] if run_id else [],
        ).fetchall()
    t = Table(title="reconciliation" + (f" of {run_id}" if run_id else " (recent runs)"))
    for col in ("run", "source", "date", "extracted", "loaded", "quarantined", "balanced", "status"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            str(r[0]),
            r[1],
            str(r[2]),
            *(str(x) if x is not None else "-" for x in r[3:6]),
            "[green]yes[/]" if r[6] else "[red]no[/]",
            r[7] if r[7] != "failed" else "[red]failed[/]",
        )
    out.print(t)
    return all(r[6] for r in rows)


@app.command()
def status(
    limit: Annotated[int, typer.Option(help="how many rows")] = 20,
    home: HomeOpt = None,
) -> None:
    """Show recent runs and whether each reconciles (extracted = loaded + quarantined), as
    published (a run's sources appear as each is loaded; never waits for the writer)."""
    try:
        _print_reconciliation(get_settings(home), None, limit)
    except GovbaseError as exc:
        _fail(exc)


@app.command()
def publish(
    logical_date: Annotated[str | None, typer.Option("--date", help="logical date YYYY-MM-DD")] = None,
    home: HomeOpt = None,
) -> None:
    """Refresh the rejection reports, Data Docs, classification findings and department shares
    (warehouse/share/<department>/; needs GOVBASE_PSEUDONYM_KEY)."""
    from etl import meta
    from etl.pipeline import run_publish

    try:
        summary = run_publish(
            _logical_date(logical_date), meta.new_run_id("publish"), settings=get_settings(home)
        )
    except GovbaseError as exc:
        _fail(exc)
    out.print(summary)


@app.command()
def classify(home: HomeOpt = None) -> None:
    """Sample every staged and core column, detect personal data by content, keep the findings
    in meta.classification_finding and list the columns whose content warrants a higher level."""
    from etl import meta
    from etl.contracts import get_contracts
    from etl.lock import writer_lock
    from etl.publish import classify as cls

    settings = get_settings(home)
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

    settings = get_settings(home)
    contracts = get_contracts(settings)
    try:  # the published catalog: never waits for (nor stops) a load
        with read_catalog(settings) as con:
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
    t = Table(title=f"quarantine of {source}: {len(q)} row(s)")
    for col in ("date", "file", "row", "reasons"):
        t.add_column(col)
    head = q.head(limit)
    for d, f, n, why in zip(
        head["_logical_date"], head["file"], head["_row_number"], head["reasons"], strict=True
    ):
        t.add_row(str(d), str(f), str(n), why)
    out.print(t)
    out.print("by reason: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@quarantine_app.command("show")
def quarantine_show(
    source: Annotated[str, typer.Option("--source", "-s", help="source name")],
    row: Annotated[int, typer.Option(help="row number in its file")],
    home: HomeOpt = None,
) -> None:
    """Show one quarantined row: reasons in plain words and its delivered values (masked)."""
    import pandas as pd

    from etl.quality import REASONS

    q, masked = _quarantine_frame(source, home)
    assert isinstance(q, pd.DataFrame)
    hit = list(q.index[q["_row_number"] == row]) if len(q) else []
    if len(hit) == 0:
        _fail(GovbaseError(f"no quarantined row {row} for source {source}"))
    i = hit[0]
    r = q.loc[i]
    out.print(
        f"[bold]{source}[/] file {r['file']} row {row} (logical date {r['_logical_date']}, batch {r['_batch_id']})"
    )
    for code in str(r["reasons"]).split(","):
        out.print(f"  [red]{code}[/]: {REASONS.get(code, code)}")
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
    """Export the quarantined rows of a source to CSV (values masked, reasons in plain words)."""
    import pandas as pd

    from etl.publish.csvfile import write_csv
    from etl.publish.masking import mask_frame
    from etl.quality import REASONS

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
            "reasons": q["reasons"].map(lambda s: " ".join(REASONS.get(c, c) for c in s.split(","))),
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

    settings = get_settings(home)
    try:
        summary = replay(settings, get_contracts(settings), source)
    except GovbaseError as exc:
        _fail(exc)
    out.print(summary)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
