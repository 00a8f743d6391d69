"""Self-contained HTML pages for people: one stylesheet, tables that scroll, no external asset.

Every page is UTF-8 with its styles inline and no link, script or font from elsewhere, so it
opens on a machine without internet. Chinese text uses the CJK fonts the machine has (Noto
Sans CJK or WenQuanYi on Debian, YaHei or PingFang elsewhere). A table sits in a `div.scroll`:
a wide one scrolls sideways instead of overflowing the page.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

FONTS = (
    '"Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "Microsoft YaHei", '
    '"PingFang SC", "DejaVu Sans", sans-serif'
)
CSS = f"""
body {{ font-family: {FONTS}; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; }}
h1 {{ font-size: 1.5em; }} h2 {{ font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }}
.en {{ color: #666; font-size: 0.85em; margin-left: 0.3em; }}
.scroll {{ overflow-x: auto; max-width: 100%; margin: 0.5em 0; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f0f3f7; white-space: nowrap; }}
td.wide {{ min-width: 22em; }}
td.num, th.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.note {{ background: #f4f8f4; border-left: 4px solid #6a6; padding: 0.6em 1em; }}
.warn {{ background: #fbf4ec; border-left: 4px solid #c83; padding: 0.6em 1em; }}
.muted {{ color: #777; }}
figure {{ margin: 0.8em 0; }} figure svg {{ max-width: 100%; height: auto; }}
"""


def page(title: str, body: str, lang: str = "zh-Hans") -> str:
    """A whole HTML document: `title` is plain text, `body` is HTML."""
    return (
        f'<!doctype html>\n<html lang="{html.escape(lang)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def table(
    df: pd.DataFrame,
    headers: list[str] | None = None,
    table_id: str | None = None,
    html_columns: frozenset[str] = frozenset(),
    wide_columns: frozenset[str] = frozenset(),
) -> str:
    """`df` as an HTML table in a scrolling box. `headers` (HTML, one per column) replace the
    column names; numbers are right-aligned; cells are escaped (but those of `html_columns`,
    which hold HTML already); nulls are empty; `wide_columns` get room for sentences."""
    heads = headers if headers is not None else [html.escape(str(c)) for c in df.columns]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df]
    ths = "".join(
        f'<th class="num">{h}</th>' if n else f"<th>{h}</th>" for h, n in zip(heads, numeric, strict=True)
    )
    raw = [c in html_columns for c in df.columns]
    opening = ['<td class="wide">' if c in wide_columns else "<td>" for c in df.columns]
    rows = []
    for values in df.itertuples(index=False):
        cells = "".join(
            f'<td class="num">{_cell(v)}</td>' if n else f"{o}{v if r else _cell(v)}</td>"
            for v, n, r, o in zip(values, numeric, raw, opening, strict=True)
        )
        rows.append(f"<tr>{cells}</tr>")
    ident = f' id="{html.escape(table_id)}"' if table_id else ""
    return (
        f'<div class="scroll"><table{ident}><thead><tr>{ths}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _cell(value: object) -> str:
    """A cell's text: thousands separated, floats to two decimals, nulls empty."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool | np.bool_):
        return html.escape(str(value))
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else f"{float(value):,.2f}"
    return html.escape(str(value))


def note(text_html: str, kind: str = "note") -> str:
    """A short paragraph in a box instead of an empty table (kind: note | warn | muted)."""
    return f'<p class="{kind}">{text_html}</p>'
