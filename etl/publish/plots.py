"""Plots for the run report, drawn by matplotlib (Agg, no display) as inline SVG.

Text stays text in the SVG (`svg.fonttype: none`): the browser draws it with the page's
fonts, so Chinese labels render wherever the page's CJK fonts are installed, and a test can
read the labels. matplotlib lays the text out with the first CJK font it finds on the
machine (Noto Sans CJK, WenQuanYi ...), DejaVu Sans otherwise. Each plot gets its own
`svg.hashsalt`, so element ids are stable from run to run and distinct between the plots
of one page. No pyplot: figures are plain `Figure` objects, nothing global is left behind.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Sequence
from functools import cache
from typing import Any

from matplotlib import font_manager, rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

#: CJK fonts to lay out Chinese labels with, in order of preference
CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "Microsoft YaHei", "PingFang SC")
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)
COLOURS = ("#4878a8", "#d9822b", "#6a9f58", "#b5535b", "#8a6bb0", "#7f7f7f")


@cache
def _fonts() -> list[str]:
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return [f for f in CJK_FONTS if f in installed] + ["DejaVu Sans"]


def _svg(fig: Figure, name: str) -> str:
    buf = io.StringIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing")  # no CJK font: the browser has one
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buf.getvalue()
    svg = _METADATA.sub("", text[text.find("<svg") :], count=1)  # the XML prolog and the RDF block
    return f'<figure class="plot" id="plot-{name}">{svg}</figure>'


def _style(name: str) -> Any:  # matplotlib types the rc keys as literals
    return {
        "svg.fonttype": "none",
        "svg.hashsalt": f"govbase-{name}",
        "font.family": "sans-serif",
        "font.sans-serif": _fonts(),
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }


def stacked_bars(
    name: str, labels: Sequence[str], series: dict[str, Sequence[float]], title: str, xlabel: str
) -> str:
    """Horizontal bars, one per label, stacked from `series` (legend: the series' names)."""
    with rc_context(_style(name)):
        fig = Figure(figsize=(7.5, 0.45 * len(labels) + 1.2))
        ax = fig.subplots()
        left = [0.0] * len(labels)
        for (legend, values), colour in zip(series.items(), COLOURS, strict=False):
            ax.barh(list(labels), list(values), left=left, label=legend, color=colour)
            left = [a + float(b) for a, b in zip(left, values, strict=True)]
        ax.invert_yaxis()
        ax.set_title(title, loc="left")
        ax.set_xlabel(xlabel)
        if len(series) > 1:
            ax.legend(loc="lower right", frameon=False)
        return _svg(fig, name)


def grouped_bars(
    name: str, labels: Sequence[str], series: dict[str, Sequence[float]], title: str, ylabel: str
) -> str:
    """Vertical bars side by side, a group per label, a bar per series."""
    with rc_context(_style(name)):
        fig = Figure(figsize=(6, 3.2))
        ax = fig.subplots()
        width = 0.8 / max(len(series), 1)
        for i, ((legend, values), colour) in enumerate(zip(series.items(), COLOURS, strict=False)):
            xs = [x + i * width for x in range(len(labels))]
            bars = ax.bar(xs, list(values), width=width, label=legend, color=colour)
            ax.bar_label(bars, fmt="{:,.0f}", fontsize=8)
        ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(labels))], list(labels))
        ax.set_title(title, loc="left")
        ax.set_ylabel(ylabel)
        ax.legend(frameon=False)
        return _svg(fig, name)


def rate_over_runs(
    name: str,
    runs: Sequence[str],
    rates: Sequence[float],
    counts: Sequence[float],
    title: str,
    labels: tuple[str, str],
) -> str:
    """The acceptance rate of each run as a line (left axis, percent) over its rejected rows
    as bars (right axis); `labels` name the two."""
    with rc_context(_style(name)):
        fig = Figure(figsize=(7.5, 3.2))
        ax = fig.subplots()
        xs = list(range(len(runs)))
        other = ax.twinx()
        other.bar(xs, list(counts), color=COLOURS[1], alpha=0.35, label=labels[1])
        other.set_ylabel(labels[1])
        ax.set_zorder(other.get_zorder() + 1)
        ax.patch.set_visible(False)
        ax.plot(xs, list(rates), marker="o", color=COLOURS[0], label=labels[0])
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel(labels[0])
        low = min(rates, default=1.0)
        ax.set_ylim(max(0.0, low - (1 - low) * 0.5 - 0.01), 1.0)
        ax.set_xticks(xs, list(runs), rotation=20, ha="right", fontsize=7)
        ax.set_title(title, loc="left")
        return _svg(fig, name)
