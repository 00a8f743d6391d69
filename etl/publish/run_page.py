"""The run report's HTML: one section per part of RunFacts (etl.publish.run_report), a table
and, where people would rather look than read, a plot. Tables carry ids (`stages`,
`reasons`, `quality`, `linkage`, `findings`, `open-data`, `shares`) for tools and tests."""

from __future__ import annotations

import pandas as pd

from etl.publish import pages, plots
from etl.publish.i18n import Words
from etl.publish.run_report import STAGES, RunFacts


def _h2(words: Words, key: str) -> str:
    return f'<h2 id="section-{key}">{words.html(key)}</h2>'


def _none(words: Words) -> str:
    return pages.note(words.html("none_yet"), "muted")


def stages_section(facts: RunFacts, words: Words) -> str:
    df = facts.stages
    if df.empty:
        return _h2(words, "by_department") + _none(words)
    heads = [words.html(k) for k in ("source", "department")]
    heads += [words.html(f"stage_{s}") for s in STAGES]
    heads += [words.html(k) for k in ("quarantined", "status", "message")]
    cols = ["source", "department", *STAGES, "quarantined", "status", "message"]
    by_dept = df.groupby("department", sort=True)[["load", "quarantined"]].sum()
    plot = plots.stacked_bars(
        "by-department",
        list(by_dept.index),
        {
            words.text("stage_load"): by_dept["load"].fillna(0).astype(float).tolist(),
            words.text("quarantined"): by_dept["quarantined"].fillna(0).astype(float).tolist(),
        },
        words.text("by_department"),
        words.text("rows_axis"),
    )
    return _h2(words, "by_department") + plot + pages.table(df[cols], heads, "stages")


def reasons_section(facts: RunFacts, words: Words) -> str:
    df = facts.reasons
    if df.empty:
        return _h2(words, "quarantine_reasons") + pages.note(words.html("no_quarantine"))
    totals = df.groupby("reason")["rows"].sum().sort_values(ascending=False, kind="stable")
    plot = plots.stacked_bars(
        "reasons",
        list(totals.index),
        {words.text("rows_axis"): totals.astype(float).tolist()},
        words.text("quarantine_reasons"),
        words.text("rows_axis"),
    )
    shown = df.assign(words=[words.reason_html(c) for c in df["reason"]])
    heads = [words.html(k) for k in ("department", "reason_codes", "rows", "reason")]
    table = pages.table(shown, heads, "reasons", frozenset({"words"}), frozenset({"words"}))
    return _h2(words, "quarantine_reasons") + plot + table


def quality_section(facts: RunFacts, words: Words) -> str:
    df = facts.quality
    if df.empty:
        return _h2(words, "quality") + _none(words)
    plot = plots.rate_over_runs(
        "quality",
        [str(s) for s in df["started"]],
        df["acceptance_rate"].fillna(1.0).astype(float).tolist(),
        df["quarantined"].fillna(0).astype(float).tolist(),
        words.text("quality"),
        (words.text("acceptance_rate"), words.text("quarantined")),
    )
    shown = df.assign(acceptance_rate=df["acceptance_rate"].map(lambda r: "" if pd.isna(r) else f"{r:.2%}"))
    keys = ("run", "started", "sources", "stage_extract", "stage_load", "quarantined", "acceptance_rate")
    heads = [words.html(k) for k in (*keys, "not_ok", "validation_failed")]
    return _h2(words, "quality") + plot + pages.table(shown, heads, "quality")


def linkage_section(facts: RunFacts, words: Words) -> str:
    df = facts.linkage
    if df is None or facts.linkage_run is None:
        return _h2(words, "linkage") + _none(words)
    run, at = facts.linkage_run
    plot = plots.grouped_bars(
        "linkage",
        list(df["entity"]),
        {
            words.text("records"): df["records"].astype(float).tolist(),
            words.text("masters"): df["masters"].astype(float).tolist(),
        },
        words.text("linkage"),
        words.text("rows_axis"),
    )
    keys = ("entity", "records", "with_valid_id", "pairs_linked", "masters", "merged", "split", "findings")
    heads = [words.html(k) for k in (*keys, "review_pairs", "review_open", "decisions")]
    intro = f"<p>{words.html('linkage_as_of', run=run, at=at)}</p>"
    return _h2(words, "linkage") + intro + plot + pages.table(df, heads, "linkage")


def classification_section(facts: RunFacts, words: Words) -> str:
    if facts.classification is None:
        return _h2(words, "classification") + _none(words)
    run, at, df = facts.classification
    intro = f"<p>{words.html('classification_as_of', run=run, at=at, n=len(df))}</p>"
    if df.empty:
        return _h2(words, "classification") + intro + pages.note(words.html("no_findings"))
    shown = df.assign(share=df["share"].map(lambda r: f"{r:.1%}"))
    keys = ("column", "declared", "kind", "warranted", "share", "sampled", "examples")
    table = pages.table(shown, [words.html(k) for k in keys], "findings")
    return _h2(words, "classification") + intro + table


def open_section(facts: RunFacts, words: Words) -> str:
    catalogs = "".join(f"<p>{words.html('catalog', path=c)}</p>" for c in facts.catalogs)
    if facts.open_data is None:
        return _h2(words, "open_data") + _none(words) + catalogs
    heads = [words.html(k) for k in ("dataset", "title", "files", "bytes", "rows", "suppressed", "modified")]
    return _h2(words, "open_data") + pages.table(facts.open_data, heads, "open-data") + catalogs


def shares_section(facts: RunFacts, words: Words) -> str:
    if facts.shares is None:
        return _h2(words, "shares") + _none(words)
    heads = [words.html(k) for k in ("department", "refreshed_at", "key_version", "tables", "rows")]
    return _h2(words, "shares") + pages.table(facts.shares, heads, "shares")


SECTIONS = (
    stages_section,
    reasons_section,
    quality_section,
    linkage_section,
    classification_section,
    open_section,
    shares_section,
)


def render(facts: RunFacts, words: Words) -> str:
    """The whole page."""
    title = f"{words.text('run_title')}: {facts.run_id}" if facts.run_id else words.text("run_title")
    head = f"<h1>{words.html('run_title')}</h1>"
    if facts.run_id is None:
        head += pages.note(words.html("no_run"), "warn")
    else:
        head += f'<p id="run-header">{words.html("run_intro", **facts.header)}</p>'
    body = head + "".join(section(facts, words) for section in SECTIONS)
    return pages.page(title, body, words.html_lang)
