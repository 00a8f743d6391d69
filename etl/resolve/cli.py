"""`govbase consolidate` and `govbase evaluate`: the consolidate stage without Airflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from etl.config import get_settings
from etl.errors import GovbaseError

console = Console(stderr=True)
out = Console()
HomeOpt = Annotated[
    Path | None,
    typer.Option("--home", help="GOVBASE_HOME (default: $GOVBASE_HOME or ./var)", show_default=False),
]


def consolidate(home: HomeOpt = None) -> None:
    """Link staged records into master persons and organisations; build schema core."""
    from etl.resolve.stage import consolidate as run

    try:
        summary = run(get_settings(home))
    except GovbaseError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    out.print(str(summary), markup=False, highlight=False)


def evaluate(home: HomeOpt = None) -> None:
    """Compare core's linkage with the demo ground truth: pairwise precision, recall, F1, clusters."""
    from etl.resolve.evaluate import evaluate as run

    settings = get_settings(home)
    if not settings.truth_dir.is_dir():
        console.print(f"[bold red]error:[/] no ground truth under {settings.truth_dir} (demo data only)")
        raise typer.Exit(1)
    t = Table(title="linkage against the ground truth")
    for col in ("entity", "records", "precision", "recall", "F1", "clusters", "true clusters"):
        t.add_column(col)
    for entity, scores in run(settings).items():
        for label, s in zip(("all", "without valid id"), scores, strict=True):
            t.add_row(
                f"{entity} ({label})",
                str(s.records),
                f"{s.precision:.4f}",
                f"{s.recall:.4f}",
                f"{s.f1:.4f}",
                str(s.clusters),
                str(s.true_clusters),
            )
    out.print(t)


def register(app: typer.Typer) -> None:
    app.command("consolidate")(consolidate)
    app.command("evaluate")(evaluate)
