"""The `govbase` command: the same code path Airflow's tasks call, without Airflow."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from etl.config import get_settings
from etl.errors import GovbaseError

app = typer.Typer(
    help="govbase: consolidate department data islands into the national basic information base.",
    no_args_is_help=True,
    add_completion=False,
)
quarantine_app = typer.Typer(help="Inspect, export and replay quarantined rows.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")
console = Console(stderr=True)
out = Console()

HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="GOVBASE_HOME (default: $GOVBASE_HOME or ./var)", show_default=False)
]
SourcesOpt = Annotated[
    list[str] | None, typer.Option("--source", "-s", help="source name (repeatable); default: all sources")
]


def _fail(exc: Exception) -> None:
    console.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(1)


@app.command()
def contracts(home: HomeOpt = None) -> None:
    """Check every YAML contract and list the shared tables and sources."""
    from etl.contracts import get_contracts

    try:
        c = get_contracts(get_settings(home))
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
        str | None, typer.Option(help="also write the SQL source into this SQLAlchemy URL (PostgreSQL, MariaDB)")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Write realistic, messy department sources and their ground truth under $GOVBASE_HOME/landing/."""
    from etl.demo import generate

    settings = get_settings(home)
    with console.status("generating department data...") as status:
        summary = generate(settings, persons=persons, seed=seed, sql_url=sql_url, progress=status.update)
    out.print(summary)
    out.print(f"landing: {settings.landing}")


@app.command()
def extract(
    source: SourcesOpt = None,
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="re-extract files already extracted")] = False,
    home: HomeOpt = None,
) -> None:
    """Read sources into raw Parquet (every value as text) and record each batch in meta."""
    from etl.contracts import get_contracts
    from etl.extract import extract as do_extract

    settings = get_settings(home)
    try:
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


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())

_ = date
