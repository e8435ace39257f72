"""Charts as PNG bytes (matplotlib, Agg), for chat summaries, digests and reports.

Each call builds its own ``Figure`` and renders it through an Agg canvas: no pyplot, so no
global figure state is shared between calls (or threads), and nothing is left open. Output is
deterministic: fixed size and DPI, and no timestamp or software name in the PNG metadata, so
the same inputs give the same bytes.

Texts on the images come from ``labels`` (translated by the caller, e.g. from
content/templates/<locale>/labels.yaml); a missing key falls back to an English default.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch

#: Fallback texts; callers pass translated ones.
DEFAULT_LABELS = {
    "index": "Loyalty index (0–100)",
    "enps": "eNPS (−100…100)",
    "trend": "Trend over rounds",
    "segments": "Segments",
    "favorable": "Favorable %",
    "no_data": "No data to show",
    "suppressed": "Suppressed (too few answers)",
    "apostle": "Apostles",
    "mercenary": "Mercenaries",
    "hostage": "Hostages",
    "loose_cannon": "Loose cannons",
    "quiet_defector": "Quiet defectors",
    "disloyal_unknown": "Disloyal, advocacy unknown",
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


@dataclass(frozen=True)
class TrendPoint:
    """One round of the trend: its label (e.g. the round's date) and its figures, if any."""

    label: str
    index: float | None
    enps: float | None


def translated_labels(label: Callable[[str], str]) -> dict[str, str]:
    """Every chart text from labels.yaml: ``chart.<key>``, and the segments' names from
    ``seg.<name>`` (the ones the summaries use), for example
    ``translated_labels(lambda key: renderer.label(key, person.locale))``."""
    return {
        key: label(f"seg.{key}" if key in _SEGMENT_COLORS else f"chart.{key}")
        for key in DEFAULT_LABELS
    }


def _text(labels: dict[str, str], key: str) -> str:
    return labels.get(key) or DEFAULT_LABELS.get(key, key)


def _png(figure: Figure) -> bytes:
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


def _trend_panel(ax: Any, trend: list[TrendPoint], labels: dict[str, str]) -> None:
    if not any(_usable(p.index) or _usable(p.enps) for p in trend):
        _no_data(ax, _text(labels, "trend"), labels)
        return
    xs = list(range(len(trend)))
    index = [p.index if _usable(p.index) else math.nan for p in trend]
    enps = [p.enps if _usable(p.enps) else math.nan for p in trend]
    ax.set_title(_text(labels, "trend"), fontsize=11)
    ax.plot(xs, index, marker="o", color=_INDEX_COLOR, label=_text(labels, "index"))
    ax.set_ylim(0, 100)
    ax.set_ylabel(_text(labels, "index"), color=_INDEX_COLOR)
    ax.set_xticks(xs)
    ax.set_xticklabels([p.label for p in trend], rotation=30, ha="right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    second = ax.twinx()
    second.plot(
        xs, enps, marker="s", linestyle="--", color=_ENPS_COLOR, label=_text(labels, "enps")
    )
    second.set_ylim(-100, 100)
    second.axhline(0, color=_ENPS_COLOR, linewidth=0.6, alpha=0.4)
    second.set_ylabel(_text(labels, "enps"), color=_ENPS_COLOR)
    lines = ax.get_lines()[:1] + second.get_lines()[:1]
    ax.legend(lines, [line.get_label() for line in lines], loc="lower left", fontsize=8)
    if len(xs) == 1:
        ax.set_xlim(-0.5, 0.5)


def _segments_panel(
    ax: Any,
    segments: dict[str, float],
    labels: dict[str, str],
    intervals: dict[str, tuple[float, float] | None] | None = None,
) -> None:
    if not segments:
        _no_data(ax, _text(labels, "segments"), labels)
        return
    names = list(segments)
    shares = [100.0 * segments[name] for name in names]
    colors = [_SEGMENT_COLORS.get(name, "#999999") for name in names]
    ax.set_title(_text(labels, "segments"), fontsize=11)
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
    ax.bar_label(bars, labels=[f"{s:.0f}%" for s in shares], padding=3, fontsize=8)
    ax.tick_params(axis="y", labelsize=9)
    ax.grid(axis="x", alpha=0.3)


def _favorable_panel(ax: Any, favorable: dict[str, float], labels: dict[str, str]) -> None:
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
    ax.bar_label(bars, labels=[f"{v:.0f}%" for v in values], padding=3, fontsize=8)
    ax.tick_params(axis="y", labelsize=9)
    ax.grid(axis="x", alpha=0.3)


def summary_chart(
    trend: list[TrendPoint],
    segments: dict[str, float],
    favorable: dict[str, float],
    *,
    title: str,
    labels: dict[str, str],
    segment_intervals: dict[str, tuple[float, float] | None] | None = None,
) -> bytes:
    """One PNG with three panels: the trend of the loyalty index (0–100, left axis) and eNPS
    (−100…100, right axis) over rounds; segment shares (segment key -> share 0..1); and the
    dimensions' favorable % (dimension label -> 0..100), best first.

    ``labels`` keys: ``index``, ``enps``, ``trend``, ``segments``, ``favorable``, ``no_data``,
    and one per segment key (``apostle``, ``mercenary``, ``hostage``, ``loose_cannon``,
    ``quiet_defector``, ``disloyal_unknown``). ``segment_intervals`` (segment key -> 95 %
    range in percent) draws error bars. An empty input draws its panel with the ``no_data``
    text.
    """
    figure = Figure(figsize=(8, 10), dpi=_DPI, layout="constrained")
    figure.suptitle(title, fontsize=13, fontweight="bold")
    top, middle, bottom = figure.subplots(3, 1, height_ratios=[1.2, 0.8, 1.2])
    _trend_panel(top, trend, labels)
    _segments_panel(middle, segments, labels, segment_intervals)
    _favorable_panel(bottom, favorable, labels)
    return _png(figure)


def heatmap_chart(
    teams: list[str],
    dimensions: list[str],
    values: list[list[float | None]],
    *,
    title: str,
    labels: dict[str, str],
) -> bytes:
    """Teams (rows) × dimensions (columns) favorable %, 0–100, each cell written out.

    ``None`` marks a suppressed cell (too few answers): it is drawn grey and hatched, with a
    legend entry. ``labels`` keys: ``favorable`` (colour bar), ``suppressed`` (legend),
    ``no_data`` (shown when there are no teams or no dimensions).
    """
    if len(values) != len(teams) or any(len(row) != len(dimensions) for row in values):
        raise ValueError("values must have one row per team and one column per dimension")
    width = min(16.0, 3.0 + 0.9 * max(1, len(dimensions)))
    height = min(24.0, 2.2 + 0.4 * max(1, len(teams)))
    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    ax = figure.subplots()
    if not teams or not dimensions:
        _no_data(ax, title, labels)
        return _png(figure)
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
                ax.text(c, r, f"{value:.0f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(dimensions)))
    ax.set_xticklabels(dimensions, rotation=35, ha="right", fontsize=9)
    ax.set_yticks(range(len(teams)))
    ax.set_yticklabels(teams, fontsize=9)
    colorbar = figure.colorbar(image, ax=ax, shrink=0.8)
    colorbar.set_label(_text(labels, "favorable"))
    if any(v is None for row in values for v in row):
        ax.legend(
            handles=[
                Patch(
                    facecolor=_SUPPRESSED_COLOR,
                    hatch="///",
                    edgecolor="#888888",
                    label=_text(labels, "suppressed"),
                )
            ],
            loc="upper center",
            bbox_to_anchor=(0.5, -0.25),
            fontsize=8,
            frameon=False,
        )
    return _png(figure)


def _cell(column: int, row: int, **style: Any) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((column - 0.5, row - 0.5), 1, 1, **style)
