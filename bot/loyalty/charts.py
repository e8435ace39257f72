"""Loyalty charts as PNG bytes (matplotlib, Agg backend: no display needed).

Every figure drawn here has already passed bot.loyalty.anonymity: charts only draw.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


@dataclass(frozen=True)
class TrendPoint:
    """One round on the trend line (None = not reportable for this group)."""

    label: str
    index: float | None
    enps: float | None


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def summary_chart(
    trend: list[TrendPoint],
    segments: dict[str, float],
    favorable: dict[str, float],
    *,
    title: str,
    labels: dict[str, str],
) -> bytes:
    """Three panels: index and eNPS over rounds, segment shares, favorable % by dimension."""
    fig, (ax_trend, ax_seg, ax_dim) = plt.subplots(1, 3, figsize=(15, 4.5))
    fig.suptitle(title)
    fig.subplots_adjust(wspace=0.55)
    xs = list(range(len(trend)))
    ax_trend.plot(
        xs,
        [p.index if p.index is not None else float("nan") for p in trend],
        marker="o",
        label=labels.get("index", "index"),
    )
    ax_trend.plot(
        xs,
        [p.enps if p.enps is not None else float("nan") for p in trend],
        marker="s",
        label=labels.get("enps", "eNPS"),
    )
    ax_trend.set_xticks(xs, [p.label for p in trend], rotation=45, ha="right", fontsize=8)
    ax_trend.set_ylim(-100, 100)
    ax_trend.axhline(0, color="grey", linewidth=0.5)
    ax_trend.set_title(labels.get("trend", "trend"))
    ax_trend.legend(loc="lower left", fontsize=8)
    names = list(segments)
    ax_seg.barh(names, [100 * segments[n] for n in names], color="tab:green")
    ax_seg.set_xlim(0, 100)
    ax_seg.set_title(labels.get("segments", "segments"))
    ax_seg.invert_yaxis()
    dims = list(favorable)
    ax_dim.barh(dims, [favorable[d] for d in dims], color="tab:blue")
    ax_dim.set_xlim(0, 100)
    ax_dim.set_title(labels.get("favorable", "favorable %"))
    ax_dim.invert_yaxis()
    return _png(fig)


def heatmap_chart(
    teams: list[str],
    dimensions: list[str],
    values: list[list[float | None]],
    *,
    title: str,
    labels: dict[str, str],
) -> bytes:
    """Teams x dimensions favorable %; a suppressed cell (None) is left blank."""
    import numpy as np

    data = np.array(
        [[np.nan if v is None else v for v in row] for row in values] or [[np.nan]], dtype=float
    )
    fig, ax = plt.subplots(
        figsize=(max(6, 1.1 * len(dimensions) + 3), max(3, 0.45 * len(teams) + 2))
    )
    image = ax.imshow(np.ma.masked_invalid(data), cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(dimensions)), dimensions, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(teams)), teams, fontsize=8)
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            text = labels.get("suppressed", "–") if value is None else f"{value:.0f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label=labels.get("favorable", "favorable %"))
    ax.set_title(title)
    return _png(fig)
