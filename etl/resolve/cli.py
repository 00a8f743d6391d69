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


def consolidate(
    home: HomeOpt = None,
    full: Annotated[
        bool, typer.Option("--full", help="relink every staged record (default: only new and changed ones)")
    ] = False,
    retrain: Annotated[
        bool, typer.Option("--retrain", help="train a new Splink model first, then relink every record")
    ] = False,
) -> None:
    """Link staged records into master persons and organisations; build schema core.

    By default a run links only the records that are new or changed since the last run
    against the existing masters, with the model kept from the last training (the first
    run, and a run after schemas/resolve/*.yml changed, train one). Master ids stay."""
    from etl.resolve.stage import consolidate as run

    mode = "retrain" if retrain else "full" if full else "incremental"
    try:
        summary = run(get_settings(home), mode=mode)
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


review_app = typer.Typer(
    help="Clerical review of pairs scored between the review and the match threshold.", no_args_is_help=True
)
EntityOpt = Annotated[
    str | None, typer.Option("--entity", "-e", help="person or legal_entity (default: both)")
]


@review_app.command("list")
def review_list(entity: EntityOpt = None, home: HomeOpt = None) -> None:
    """The open review queue: pair ids, record ids and match probabilities (no values)."""
    from etl.resolve.review import queue

    try:
        q = queue(get_settings(home), entity)
    except GovbaseError as exc:  # CatalogMissing: no catalog published yet and the writer busy
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    t = Table(title=f"review queue ({len(q)} pairs)")
    for col in ("pair", "entity", "left record", "right record", "probability", "weight"):
        t.add_column(col)
    for r in q.to_dict("records"):
        t.add_row(
            str(r["pair_id"]),
            str(r["entity"]),
            str(r["rec_id_l"]),
            str(r["rec_id_r"]),
            f"{r['match_probability']:.4f}",
            f"{r['match_weight']:.2f}",
        )
    out.print(t)


@review_app.command("show")
def review_show(
    pair: Annotated[str, typer.Argument(help="pair id from `review list`")], home: HomeOpt = None
) -> None:
    """A pair's masked values side by side, its comparison levels and match weight."""
    from etl.resolve.review import show

    try:
        p = show(get_settings(home), pair)
    except GovbaseError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    t = Table(
        title=f"{p.entity} pair {p.pair_id}: probability {p.match_probability:.4f}, weight {p.match_weight:.2f}"
    )
    for col in ("attribute", p.rec_id_l, p.rec_id_r):
        t.add_column(col)
    for attr, left, right in zip(p.values.index, p.values["left"], p.values["right"], strict=True):
        t.add_row(str(attr), _text(left), _text(right))
    out.print(t)
    lv = Table(title="comparison levels")
    for col in ("comparison", "level", "match weight"):
        lv.add_column(col)
    for name, info in p.levels.items():
        lv.add_row(name, str(info["level"]), f"{info['match_weight']:+.2f}")
    out.print(lv)


def _decide(pair: str, decision: str, by: str | None, home: Path | None) -> None:
    from etl.resolve.review import decide

    try:
        decide(get_settings(home), pair, decision, by)
    except GovbaseError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    out.print(f"pair {pair}: {decision}ed; applied by the next `govbase consolidate`")


ByOpt = Annotated[str | None, typer.Option("--by", help="who decided (kept with the decision)")]
PairArg = Annotated[str, typer.Argument(help="pair id from `review list`")]


@review_app.command("accept")
def review_accept(pair: PairArg, by: ByOpt = None, home: HomeOpt = None) -> None:
    """The two records are one entity: they are linked on every later run."""
    _decide(pair, "accept", by, home)


@review_app.command("reject")
def review_reject(pair: PairArg, by: ByOpt = None, home: HomeOpt = None) -> None:
    """The two records are different entities: they are kept apart on every later run."""
    _decide(pair, "reject", by, home)


def _text(v: object) -> str:
    import pandas as pd

    return "" if v is None or v is pd.NA or str(v) in ("<NA>", "nan", "NaT") else str(v)


def asof(
    day: Annotated[str, typer.Argument(help="date YYYY-MM-DD")],
    table: Annotated[str, typer.Argument(help="person or legal_entity")],
    limit: Annotated[int, typer.Option(help="rows to print (masked)")] = 20,
    home: HomeOpt = None,
) -> None:
    """What the base said on a past date: the golden records valid on DAY (SCD2 history), masked."""
    import datetime as dt

    from etl.contracts import get_contracts
    from etl.publish.masking import mask
    from etl.published import read_catalog
    from etl.resolve.history import as_of_sql

    settings = get_settings(home)
    tables = get_contracts(settings).tables
    try:
        dt.date.fromisoformat(day)
    except ValueError:
        console.print(f"[bold red]error:[/] {day!r} is not a date YYYY-MM-DD")
        raise typer.Exit(1) from None
    if table not in ("person", "legal_entity"):
        console.print(f"[bold red]error:[/] {table!r}: use person or legal_entity")
        raise typer.Exit(1)
    sql, params = as_of_sql(table, day)
    with read_catalog(settings) as con:  # the published catalog: never waits for the writer
        n = con.execute(f"select count(*) from ({sql})", params).fetchall()[0][0]
        rows = con.execute(f"{sql} order by {table}_id limit {int(limit)}", params).df()
    shared = tables[table]
    for col in rows.columns:
        if col in shared.column_names:
            rows[col] = mask(rows[col].astype("string"), shared.column(col).mask)
    t = Table(title=f"core.{table} as of {day}: {n} masters (first {len(rows)}, masked)")
    for col in rows.columns:
        t.add_column(col)
    for rec in rows.astype("string").fillna("").to_dict("records"):
        t.add_row(*(str(v) for v in rec.values()))
    out.print(t)


def register(app: typer.Typer) -> None:
    """Add consolidate, evaluate and the review sub-commands to the govbase command."""
    app.command("consolidate")(consolidate)
    app.command("evaluate")(evaluate)
    app.command("asof")(asof)
    app.add_typer(review_app, name="review")
