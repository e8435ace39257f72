"""Charts as PNG bytes (matplotlib, Agg), for chat summaries, digests and reports.

Each call builds its own ``Figure`` and renders it through an Agg canvas: no pyplot, so no
global figure state is shared between calls (or threads), and nothing is left open. Output is
deterministic: fixed size and DPI, and no timestamp or software name in the PNG metadata, so
the same inputs give the same bytes.

Texts on the images come from ``labels`` (translated by the caller, e.g. from
content/templates/<locale>/labels.yaml); a missing key falls back to an English default.
Figures are written as ``locale`` writes numbers (bot/locale.py).
"""

from __future__ import annotations

import hashlib
import io
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from bot.locale import format_number, format_pct

P = ParamSpec("P")

#: Fallback texts; callers pass translated ones. ``{n}`` and ``{team}`` are filled in.
DEFAULT_LABELS = {
    "index": "Loyalty index (0–100)",
    "enps": "eNPS (−100…+100)",
    "trend": "Trend over rounds",
    "index_trend": "Loyalty index by round (0–100)",
    "enps_trend": "eNPS by round (−100…+100)",
    "segments": "Segments",
    "favorable": "Favorable %",
    "no_data": "No data to show",
    "suppressed": "Hidden: too few answers to show without identifying people",
    "n": "n={n}",
    "low_precision": "* low precision: fewer than {n} answers; bars: 95% range",
    "row_subtree": "{team} (with its sub-teams)",
    "row_organisation": "{team} (whole organisation)",
    "apostle": "Apostles",
    "mercenary": "Mercenaries",
    "hostage": "Hostages",
    "loose_cannon": "Loose cannons",
    "quiet_defector": "Quiet defectors",
    "disloyal_unknown": "Disloyal, advocacy unknown",
    "about_apostle": "satisfied and intend to stay",
    "about_mercenary": "satisfied but may leave",
    "about_hostage": "not satisfied but intend to stay",
    "about_loose_cannon": "not satisfied, may leave, would not recommend us (eNPS 0–6)",
    "about_quiet_defector": "not satisfied, may leave, would still recommend us (eNPS 7–10)",
    "about_disloyal_unknown": "not satisfied, may leave, skipped the eNPS question",
}
_DPI = 100
_METADATA = {"Software": None}  # no version string: identical bytes across installs
_INDEX_COLOR = "#1f5f8b"
_ENPS_COLOR = "#d9822b"
_SEGMENT_COLORS = {
    "apostle": "#2e8b57",
    "mercenary": "#6a9fd4",
    "hostage": "#e0b23c",
    "loose_cannon": "#c0392b",
    "quiet_defector": "#8e6c9e",
    "disloyal_unknown": "#9e9e9e",
}
_SUPPRESSED_COLOR = "#d9d9d9"
#: The mark of a low-precision figure (fewer answers than ``precise_from``).
LOW_PRECISION_MARK = "*"


@dataclass(frozen=True)
class TrendPoint:
    """One round of the trend: its label (e.g. the round's date), its figures if any, how
    many answers each counts and their 95 % ranges."""

    label: str
    index: float | None
    enps: float | None
    index_n: int | None = None
    enps_n: int | None = None
    index_ci: tuple[float, float] | None = None
    enps_ci: tuple[float, float] | None = None


def translated_labels(label: Callable[[str], str]) -> dict[str, str]:
    """Every chart text from labels.yaml: ``chart.<key>``; the segments' names from
    ``seg.<name>`` (the ones the summaries use) and their one-line meaning from
    ``seg.about.<name>``, for example
    ``translated_labels(lambda key: renderer.label(key, person.locale))``."""
    return {key: label(_label_key(key)) for key in DEFAULT_LABELS}


def _label_key(key: str) -> str:
    if key in _SEGMENT_COLORS:
        return f"seg.{key}"
    if key.startswith("about_") and key[len("about_") :] in _SEGMENT_COLORS:
        return f"seg.about.{key[len('about_') :]}"
    return f"chart.{key}"


def _text(labels: dict[str, str], key: str, **fill: Any) -> str:
    text = labels.get(key) or DEFAULT_LABELS.get(key, key)
    for name, value in fill.items():
        text = text.replace("{" + name + "}", str(value))
    return text


def segment_legend(labels: dict[str, str], names: list[str] | None = None) -> list[str]:
    """One line per segment: its name and what it means (the summary chart's legend)."""
    return [
        f"{_text(labels, name)}: {_text(labels, f'about_{name}')}"
        for name in (names if names is not None else list(_SEGMENT_COLORS))
    ]


def row_label(name: str, covers: str, labels: dict[str, str]) -> str:
    """A heat map row's label by what it covers: ``team`` (the team alone, it has no
    sub-teams), ``subtree`` (the team and every team under it) or ``organisation`` (a root
    team whose subtree is every team)."""
    if covers == "subtree":
        return _text(labels, "row_subtree", team=name)
    if covers == "organisation":
        return _text(labels, "row_organisation", team=name)
    return name


def figure_png(figure: Figure) -> bytes:
    """A figure as PNG bytes (the same figure gives the same bytes: no time stamp)."""
    canvas = FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    canvas.print_png(buffer, metadata=_METADATA)
    return buffer.getvalue()


def _no_data(ax: Any, title: str, labels: dict[str, str]) -> None:
    ax.set_title(title, fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#bbbbbb")
    ax.text(
        0.5,
        0.5,
        _text(labels, "no_data"),
        ha="center",
        va="center",
        color="#777777",
        transform=ax.transAxes,
    )


def _usable(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def _low(n: int | None, precise_from: int) -> bool:
    return n is not None and 0 < n < precise_from


def _n_text(n: int | None, precise_from: int, labels: dict[str, str], locale: str) -> str:
    if n is None:
        return ""
    mark = LOW_PRECISION_MARK if _low(n, precise_from) else ""
    return _text(labels, "n", n=format_number(n, locale)) + mark


def _measure_panel(
    ax: Any,
    trend: list[TrendPoint],
    labels: dict[str, str],
    measure: str,
    precise_from: int,
    locale: str,
) -> None:
    """One measure by round on its own axis: the index on 0–100, eNPS on −100…+100 (with
    its zero line). Every point is written out with its n; a low-precision point is hollow
    and its n marked; bars show the 95 % range."""
    is_index = measure == "index"
    title = _text(labels, "index_trend" if is_index else "enps_trend")
    ax.set_gid(measure)
    points = [
        (x, p.index, p.index_n, p.index_ci) if is_index else (x, p.enps, p.enps_n, p.enps_ci)
        for x, p in enumerate(trend)
    ]
    if not any(_usable(value) for _, value, _, _ in points):
        _no_data(ax, title, labels)
        return
    color = _INDEX_COLOR if is_index else _ENPS_COLOR
    low_limit, high_limit = (0.0, 100.0) if is_index else (-100.0, 100.0)
    xs = list(range(len(trend)))
    ax.set_title(title, fontsize=11)
    ax.plot(
        xs,
        [value if _usable(value) else math.nan for _, value, _, _ in points],
        color=color,
        linewidth=1.5,
        zorder=2,
    )
    for x, value, n, ci in points:
        if not _usable(value):
            continue
        assert value is not None
        low = _low(n, precise_from)
        if ci is not None:
            ax.errorbar(
                [x],
                [value],
                yerr=[[max(0.0, value - ci[0])], [max(0.0, ci[1] - value)]],
                fmt="none",
                ecolor=color,
                alpha=0.45,
                capsize=3,
                zorder=1,
            )
        ax.plot(
            [x],
            [value],
            marker="o",
            markersize=7,
            color=color,
            markerfacecolor="white" if low else color,
            markeredgewidth=1.5,
            zorder=3,
            gid="low_precision" if low else "point",
        )
        shown = format_number(value, locale, signed=not is_index)
        ax.annotate(
            shown + (LOW_PRECISION_MARK if low else ""),
            (x, value),
            textcoords="offset points",
            xytext=(7, 4),
            ha="left",
            fontsize=8,
            color=color,
            fontweight="bold",
        )
    ax.set_ylim(low_limit, high_limit)
    if not is_index:
        ax.axhline(0, color="#666666", linewidth=0.8, alpha=0.6, zorder=0)
    ax.set_ylabel(_text(labels, measure), color=color, fontsize=9)
    ax.set_xticks(xs)
    ax.set_xticklabels(
        [
            "\n".join(part for part in (p.label, _n_text(n, precise_from, labels, locale)) if part)
            for p, (_, _, n, _) in zip(trend, points, strict=True)
        ],
        fontsize=8,
    )
    ax.grid(axis="y", alpha=0.3)
    ax.set_xlim(-0.5, len(xs) - 0.5)


def _segments_panel(
    ax: Any,
    segments: dict[str, float],
    labels: dict[str, str],
    intervals: dict[str, tuple[float, float] | None] | None = None,
    n: int | None = None,
    precise_from: int = 30,
    locale: str = "en",
) -> None:
    ax.set_gid("segments")
    if not segments:
        _no_data(ax, _text(labels, "segments"), labels)
        return
    names = list(segments)
    shares = [100.0 * segments[name] for name in names]
    colors = [_SEGMENT_COLORS.get(name, "#999999") for name in names]
    title = _text(labels, "segments")
    if n is not None:
        title = f"{title}, {_n_text(n, precise_from, labels, locale)}"
    ax.set_title(title, fontsize=11)
    # Each share's 95 % Wilson interval as an error bar (MEASUREMENT.md, segments).
    spans = [(intervals or {}).get(name) for name in names]
    xerr = None
    if any(spans):
        xerr = [
            [
                max(0.0, share - span[0]) if span else 0.0
                for share, span in zip(shares, spans, strict=True)
            ],
            [
                max(0.0, span[1] - share) if span else 0.0
                for share, span in zip(shares, spans, strict=True)
            ],
        ]
    bars = ax.barh(
        [_text(labels, name) for name in names],
        shares,
        color=colors,
        xerr=xerr,
        error_kw={"ecolor": "#444444", "capsize": 3, "elinewidth": 1},
    )
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.bar_label(bars, labels=[format_pct(s, locale) for s in shares], padding=3, fontsize=8)
    ax.tick_params(axis="y", labelsize=9)
    ax.grid(axis="x", alpha=0.3)
    # What each segment means, one line each, under the panel and from the figure's left
    # edge (the lines are longer than the panel is wide).
    ax.legend(
        handles=[Patch(facecolor=color) for color in colors],
        labels=segment_legend(labels, names),
        loc="upper left",
        bbox_to_anchor=(0.01, -0.12),
        bbox_transform=blended_transform_factory(ax.figure.transFigure, ax.transAxes),
        fontsize=8,
        frameon=False,
        handlelength=1.2,
    )


def _favorable_panel(
    ax: Any,
    favorable: dict[str, float],
    labels: dict[str, str],
    counts: dict[str, int] | None = None,
    precise_from: int = 30,
    locale: str = "en",
) -> None:
    ax.set_gid("favorable")
    if not favorable:
        _no_data(ax, _text(labels, "favorable"), labels)
        return
    ordered = sorted(favorable.items(), key=lambda item: (-item[1], item[0]))
    ax.set_title(_text(labels, "favorable"), fontsize=11)
    values = [value for _, value in ordered]
    cmap = colormaps["RdYlGn"]
    bars = ax.barh([name for name, _ in ordered], values, color=[cmap(v / 100.0) for v in values])
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    texts = []
    for name, value in ordered:
        n = (counts or {}).get(name)
        count = f"  {_n_text(n, precise_from, labels, locale)}" if n else ""
        texts.append(format_pct(value, locale) + count)
    ax.bar_label(bars, labels=texts, padding=3, fontsize=8)
    ax.tick_params(axis="y", labelsize=9)
    ax.grid(axis="x", alpha=0.3)


#: Charts already drawn, by a digest of what each was drawn from. Drawing a summary takes a
#: few hundred milliseconds and a closed round's released figures never change, so the
#: same picture is asked for again and again (every manager of one team, each page view,
#: the digest and the report). The key is everything the picture is made of, so a hit is
#: the picture that would be drawn; it holds nothing that was not released, and no name.
_DRAWN: OrderedDict[str, bytes] = OrderedDict()
_DRAWN_MOST = 64
# Matplotlib's drawing is not safe across threads; the web console draws off the event loop.
_DRAWING = threading.Lock()
_KEEPING = threading.Lock()


def png_chart(draw: Callable[P, Figure]) -> Callable[P, bytes]:
    """A function taking the arguments of ``draw`` and giving its figure as PNG bytes (the
    same arguments give the same bytes, drawn once while they are asked for)."""

    def chart(*args: P.args, **kwargs: P.kwargs) -> bytes:
        made_of = repr((draw.__qualname__, args, sorted(kwargs.items())))
        key = hashlib.sha256(made_of.encode()).hexdigest()
        with _KEEPING:
            png = _DRAWN.get(key)
            if png is not None:
                _DRAWN.move_to_end(key)
                return png
        # A picture already drawn is handed out while another one is being drawn.
        with _DRAWING:
            png = figure_png(draw(*args, **kwargs))
        with _KEEPING:
            _DRAWN[key] = png
            if len(_DRAWN) > _DRAWN_MOST:
                _DRAWN.popitem(last=False)
        return png

    return chart


def summary_figure(
    trend: list[TrendPoint],
    segments: dict[str, float],
    favorable: dict[str, float],
    *,
    title: str,
    labels: dict[str, str],
    segment_intervals: dict[str, tuple[float, float] | None] | None = None,
    segment_n: int | None = None,
    favorable_n: dict[str, int] | None = None,
    precise_from: int = 30,
    locale: str = "en",
) -> Figure:
    """The summary: four panels, each on its own scale: the loyalty index by round (0–100);
    eNPS by round (−100…+100, zero line); segment shares (segment key -> share 0..1) with a
    one-line legend per segment saying what it means; and the dimensions' favorable %
    (dimension label -> 0..100), best first.

    Every figure is written out with how many answers it counts (``index_n``/``enps_n`` of
    each :class:`TrendPoint`, ``segment_n``, ``favorable_n`` per dimension); one counting
    fewer than ``precise_from`` (``loyalty.precise_from``) is marked low precision
    (:data:`LOW_PRECISION_MARK`, hollow points), explained in a note at the bottom.
    Bars show 95 % ranges where given (``*_ci``, ``segment_intervals`` in percent).

    ``labels``: see :data:`DEFAULT_LABELS` (and :func:`translated_labels`). An empty input
    draws its panel with the ``no_data`` text. ``locale`` decides how figures are written.

    The panels carry the gids ``index``, ``enps``, ``segments`` and ``favorable``.
    """
    figure = Figure(figsize=(8, 14), dpi=_DPI, layout="constrained")
    figure.suptitle(title, fontsize=13, fontweight="bold")
    index_ax, enps_ax, segments_ax, favorable_ax = figure.subplots(
        4, 1, height_ratios=[1.0, 1.0, 1.5, 1.2]
    )
    _measure_panel(index_ax, trend, labels, "index", precise_from, locale)
    _measure_panel(enps_ax, trend, labels, "enps", precise_from, locale)
    _segments_panel(
        segments_ax, segments, labels, segment_intervals, segment_n, precise_from, locale
    )
    _favorable_panel(favorable_ax, favorable, labels, favorable_n, precise_from, locale)
    note = figure.supxlabel(
        _text(labels, "low_precision", n=precise_from), x=0.01, ha="left", fontsize=8
    )
    note.set_color("#555555")
    note.set_gid("low_precision")
    return figure


#: The summary chart as one PNG (the arguments of :func:`summary_figure`).
summary_chart = png_chart(summary_figure)


def heatmap_figure(
    teams: list[str],
    dimensions: list[str],
    values: list[list[float | None]],
    *,
    title: str,
    labels: dict[str, str],
    locale: str = "en",
) -> Figure:
    """Teams (rows) × dimensions (columns) favorable %, 0–100, each cell written out.

    ``None`` marks a suppressed cell: it is drawn grey and hatched, and the legend under the
    map says why (``labels["suppressed"]``). A team the round's plan does not release has a
    row of such cells. ``teams`` are the rows' labels as shown (:func:`row_label` names a
    parent's row by what it covers). ``labels`` keys: ``favorable`` (colour bar),
    ``suppressed`` (legend), ``no_data`` (shown when there are no teams or no dimensions).
    ``locale`` decides how the figures are written.
    """
    if len(values) != len(teams) or any(len(row) != len(dimensions) for row in values):
        raise ValueError("values must have one row per team and one column per dimension")
    width = min(16.0, 3.5 + 0.9 * max(1, len(dimensions)) + 0.07 * max(map(len, teams or [""])))
    height = min(24.0, 2.6 + 0.4 * max(1, len(teams)))
    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    ax = figure.subplots()
    if not teams or not dimensions:
        _no_data(ax, title, labels)
        return figure
    ax.set_title(title, fontsize=12, fontweight="bold")
    cmap = colormaps["RdYlGn"]
    norm = Normalize(0, 100)
    grid = [[math.nan if v is None else v for v in row] for row in values]
    image = ax.imshow(grid, cmap=cmap, norm=norm, aspect="auto")
    for r, row in enumerate(values):
        for c, value in enumerate(row):
            if value is None:
                ax.add_patch(
                    _cell(c, r, facecolor=_SUPPRESSED_COLOR, hatch="///", edgecolor="#888888")
                )
            else:
                ax.text(c, r, format_number(value, locale), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(dimensions)))
    ax.set_xticklabels(dimensions, rotation=35, ha="right", fontsize=9)
    ax.set_yticks(range(len(teams)))
    ax.set_yticklabels(teams, fontsize=9)
    colorbar = figure.colorbar(image, ax=ax, shrink=0.8)
    colorbar.set_label(_text(labels, "favorable"))
    if any(v is None for row in values for v in row):
        figure.legend(
            handles=[
                Patch(
                    facecolor=_SUPPRESSED_COLOR,
                    hatch="///",
                    edgecolor="#888888",
                    label=_text(labels, "suppressed"),
                )
            ],
            loc="outside lower center",
            fontsize=8,
            frameon=False,
        )
    return figure


#: The heat map as one PNG (the arguments of :func:`heatmap_figure`).
heatmap_chart = png_chart(heatmap_figure)


def _cell(column: int, row: int, **style: Any) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((column - 0.5, row - 0.5), 1, 1, **style)
