"""One static HTML page: sections of tables, plots and token boundaries, written atomically.

The page needs no server and no network: the CSS is inline and every plot is a PNG embedded as a
``data:`` URI (:mod:`tokengraft.report.plots`). Builders of sections from the JSON the commands
write live in :mod:`tokengraft.report.sections` and :mod:`tokengraft.report.audit_page`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tokengraft.version import __version__

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 70em; color: #222;
       background: #fff; line-height: 1.4; }
h1 { border-bottom: 2px solid #4a7ab0; padding-bottom: .2em; }
h2 { margin-top: 2em; color: #2c5580; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
th { background: #e8eef6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img.plot { max-width: 100%; display: block; margin: .8em 0; }
.tokens { font-family: monospace; white-space: pre-wrap; line-height: 2; margin: .3em 0 1em; }
.tok { padding: .1em 0; border-radius: 3px; margin-right: 1px; }
.c0 { background: #fde2a8; } .c1 { background: #b9e4c9; } .c2 { background: #c6d8f5; }
.c3 { background: #f5c6d8; } .c4 { background: #e0d2f5; } .c5 { background: #cdeff2; }
.warn { color: #9a4b00; }
.meta { color: #666; font-size: .85em; }
"""
COLOURS = 6  # the .c0 .. .c5 classes of token spans


@dataclass(frozen=True, kw_only=True)
class Section:
    """One titled part of the page.

    Attributes:
        title: the heading (plain text; escaped when rendered).
        body: HTML of the section, already escaped where it shows data.
    """

    title: str
    body: str


def esc(value: object) -> str:
    """``value`` as HTML text (quotes escaped too)."""
    return html.escape(str(value), quote=True)


def fmt(value: object, digits: int = 4) -> str:
    """A table cell's text: floats to ``digits`` significant digits, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An HTML table; numbers are right-aligned and formatted with :func:`fmt`.

    Args:
        headers: column titles.
        rows: one sequence of cell values per row.

    Returns:
        The ``<table>`` element.

    Example:
        >>> table(["a", "b"], [[1, 0.5]]).count("<td")
        2
    """
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for value in row:
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            cells.append(f"<td{' class=num' if numeric else ''}>{esc(fmt(value))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def token_spans(tokens: Sequence[str]) -> str:
    """Tokens as adjacent coloured spans, so that their boundaries show.

    Args:
        tokens: the text of each token, in order.

    Returns:
        A ``<div class="tokens">`` of ``<span>`` elements, one per token.
    """
    spans = "".join(
        f'<span class="tok c{i % COLOURS}" title="{i}">{esc(t)}</span>'
        for i, t in enumerate(tokens)
    )
    return f'<div class="tokens">{spans}</div>'


def bullet_list(items: Sequence[str], css: str = "") -> str:
    """An HTML list of plain-text items (escaped)."""
    cls = f' class="{css}"' if css else ""
    return f"<ul{cls}>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def render_html(title: str, sections: Sequence[Section]) -> str:
    """The whole page as a string.

    Args:
        title: the page title and top heading.
        sections: the sections, in order.

    Returns:
        A complete HTML5 document with inline CSS and no external resource.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">written by tokengraft {esc(__version__)}</p>',
    ]
    for section in sections:
        parts.append(f"<section><h2>{esc(section.title)}</h2>{section.body}</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html(path: Path, title: str, sections: Sequence[Section]) -> None:
    """Write the page to ``path`` atomically (through ``tokengraft.io``).

    Args:
        path: the HTML file to write; its directory is created.
        title: the page title.
        sections: the sections, in order.

    Raises:
        TokengraftError: the file cannot be written.
    """
    from tokengraft import io

    io.write_text(Path(path), render_html(title, sections))
