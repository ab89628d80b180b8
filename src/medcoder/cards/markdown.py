"""Markdown and HTML formatting for generated cards: escaping, numbers, tables, the HTML page.

Values from MLflow (tags, run names, reasons) are written as inert text: one line, Markdown
punctuation escaped. The HTML page is the Markdown rendered by markdown-it-py (CommonMark + GFM
tables) with raw HTML disabled, so nothing in a tag value can inject markup or scripts, and the
Markdown and HTML documents cannot drift apart.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence

import pandas as pd

NOT_AVAILABLE = "Not available"

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


def esc(text: object) -> str:
    """Text from MLflow as inert Markdown: one line; characters that start emphasis, code, links or HTML,
    or end a table cell, escaped (values are never placed at the start of a line)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def code(text: object) -> str:
    """An identifier (run id, digest, code) in backticks; falls back to escaped text if it has a backtick."""
    text = " ".join(str(text).split())
    return f"`{text}`" if "`" not in text and text else esc(text)


def fmt(value: float | None) -> str:
    """A metric value: 4 decimals; NaN (undefined on the data) and missing are spelled out."""
    if value is None:
        return NOT_AVAILABLE
    if math.isnan(value):
        return "NaN (undefined on this split)"
    return f"{value:.4f}"


def fmt_count(value: object) -> str:
    """A count from a metric, param or table (MLflow and CSV store them as floats or strings) as an integer."""
    if value is None:
        return NOT_AVAILABLE
    try:
        number = float(value)
    except (TypeError, ValueError):
        return esc(value)
    return NOT_AVAILABLE if math.isnan(number) else str(int(round(number)))


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """A Markdown (GFM) table; `right` lists the column indexes to right-align (numbers)."""
    rule = ["---:" if i in right else "---" for i in range(len(header))]
    lines = [f"| {' | '.join(header)} |", f"|{'|'.join(rule)}|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines)


def not_available(why: str) -> str:
    return f"{NOT_AVAILABLE}: {why}"


COUNT_COLUMNS: frozenset[str] = frozenset(
    {"train_count", "support", "tp", "fp", "fn", "n_codes", "n_present", "n_notes"}
)


def frame_table(frame: pd.DataFrame) -> str:
    """A logged table as Markdown: counts as integers, other numbers to 4 decimals, text escaped."""
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    rows = [
        [fmt_count(v) if c in COUNT_COLUMNS else fmt(float(v)) if c in numeric else esc(v) for c, v in record.items()]
        for record in frame.to_dict("records")
    ]
    return md_table(
        [esc(c) for c in frame.columns], rows, right=[i for i, c in enumerate(frame.columns) if c in numeric]
    )


CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif; max-width: 60rem;
       margin: 2rem auto; padding: 0 1rem; line-height: 1.45; color: #1b1b1b; }
h1 { border-bottom: 2px solid #444; padding-bottom: .3rem; }
h2 { border-bottom: 1px solid #bbb; padding-bottom: .2rem; margin-top: 2.2rem; }
h4 { margin-bottom: .3rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .92rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; vertical-align: top; }
th { background: #f2f2f2; }
code { background: #f4f4f4; padding: 0 .2rem; font-size: .88em; overflow-wrap: anywhere; }
img { max-width: 100%; border: 1px solid #ddd; }
blockquote { margin: 1rem 0; padding: .4rem 1rem; border-left: 4px solid #888; background: #f7f7f7; }
"""


def render_html(markdown: str, title: str) -> str:
    """A standalone HTML page of `markdown`: inline CSS, no external asset, raw HTML escaped."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )
