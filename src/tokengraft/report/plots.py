"""PNG plots for the HTML report, embedded as ``data:`` URIs.

matplotlib is imported inside each function, and figures are drawn on the Agg canvas directly
(no ``pyplot``, no global backend switch), so importing this module costs nothing and a plot
never opens a window.
"""

from __future__ import annotations

import base64
import io as stdio
from collections.abc import Mapping, Sequence
from typing import Any

from tokengraft.report.html import esc

WIDTH, HEIGHT, DPI = 8.0, 3.6, 100


def _figure() -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot(1, 1, 1)


def _colours(n: int) -> list[Any]:
    """``n`` distinct colours: matplotlib's tab10, or tab20 beyond ten series."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _legend(axes: Any, n: int) -> None:
    """A legend for several series; beside the plot when there are many."""
    if n > 6:
        axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    elif n > 1:
        axes.legend(fontsize="small")


def image(figure: Any, alt: str) -> str:
    """The figure as an ``<img>`` with a base64 PNG ``data:`` URI.

    Args:
        figure: a matplotlib ``Figure``.
        alt: the image's alternative text.

    Returns:
        The ``<img>`` element.
    """
    buffer = stdio.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img class="plot" alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def grouped_bars(
    values: Mapping[str, Mapping[str, float]],
    *,
    title: str,
    ylabel: str,
    log: bool = False,
) -> str:
    """Bars of ``values[series][category]``, one colour per series, grouped by category.

    Args:
        values: series (a tokenizer, a method) -> category (a language, a scenario) -> value.
        title: the plot title.
        ylabel: the y axis label.
        log: a logarithmic y axis.

    Returns:
        The ``<img>`` element ("" when there is nothing to plot).
    """
    categories = list(dict.fromkeys(c for series in values.values() for c in series))
    if not categories:
        return ""
    figure, axes = _figure()
    width = 0.8 / max(1, len(values))
    colours = _colours(len(values))
    for k, (name, series) in enumerate(values.items()):
        xs = [i + k * width for i, c in enumerate(categories) if c in series]
        heights = [series[c] for c in categories if c in series]
        axes.bar(xs, heights, width=width, label=name, color=colours[k])
    axes.set_xticks([i + (len(values) - 1) * width / 2 for i in range(len(categories))])
    if len(categories) > 6:
        axes.set_xticklabels(categories, rotation=30, ha="right", rotation_mode="anchor")
    else:
        axes.set_xticklabels(categories)
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    if log:
        axes.set_yscale("log")
    _legend(axes, len(values))
    return image(figure, title)


def histogram(
    counts: Mapping[str, Mapping[int, float]], *, title: str, xlabel: str, ylabel: str
) -> str:
    """Step lines of ``counts[series][x]`` (a distribution per series, e.g. token lengths).

    Args:
        counts: series -> x value -> count or share.
        title: the plot title.
        xlabel: the x axis label.
        ylabel: the y axis label.

    Returns:
        The ``<img>`` element ("" when there is nothing to plot).
    """
    if not any(counts.values()):
        return ""
    figure, axes = _figure()
    for name, series in counts.items():
        xs = sorted(series)
        axes.step(xs, [series[x] for x in xs], where="mid", label=name)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    if len(counts) > 1:
        axes.legend(fontsize="small")
    return image(figure, title)


def points(
    series: Mapping[str, Sequence[float]], *, title: str, ylabel: str, log: bool = False
) -> str:
    """Values of each series as dots over their rank (e.g. repeat probabilities).

    Args:
        series: name -> values.
        title: the plot title.
        ylabel: the y axis label.
        log: a logarithmic y axis.

    Returns:
        The ``<img>`` element ("" when there is nothing to plot).
    """
    if not any(series.values()):
        return ""
    figure, axes = _figure()
    for name, values in series.items():
        axes.plot(range(1, len(values) + 1), list(values), "o", label=name, markersize=4)
    axes.set_title(title)
    axes.set_xlabel("rank")
    axes.set_ylabel(ylabel)
    if log:
        axes.set_yscale("log")
    axes.legend(fontsize="small")
    return image(figure, title)
