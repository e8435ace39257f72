"""Summaries as text-ready values and charts, in the reader's language."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.loyalty.charts import (
    TrendPoint,
    heatmap_chart,
    row_label,
    summary_chart,
    translated_labels,
)
from bot.loyalty.metrics import SEGMENTS
from bot.loyalty.service import Change, HeatMap, Summary
from bot.render import read_labels
from bot.replies import Reply

ORG_NAME = {"en": "the organisation", "it": "l'organizzazione"}


_labels_file = lru_cache(maxsize=8)(read_labels)


def labels(templates_dir: Path, locale: str) -> dict[str, str]:
    """labels.yaml of ``locale`` over the English one."""
    return {
        **_labels_file(templates_dir / "en" / "labels.yaml"),
        **_labels_file(templates_dir / locale / "labels.yaml"),
    }


def dimension_name(texts: dict[str, str], dimension: str) -> str:
    return texts.get(f"dim.{dimension}", dimension.replace("_", " "))


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    rounded = round(value)
    if signed:
        return f"+{rounded}" if rounded > 0 else ("0" if rounded == 0 else f"−{-rounded}")
    return str(rounded)


def _range(ci: tuple[float, float] | None, signed: bool = False) -> str:
    if ci is None:
        return ""
    return f"{_num(ci[0], signed)} … {_num(ci[1], signed)}"


def _change(change: Change | None) -> dict[str, Any] | None:
    if change is None:
        return None
    return {"delta": _num(change.delta, signed=True), "beyond_noise": change.clear}


def scope_name(summary_scope: Any, locale: str) -> str:
    return ORG_NAME.get(locale, ORG_NAME["en"]) if summary_scope.is_org else summary_scope.name


def summary_context(summary: Summary, locale: str, texts: dict[str, str]) -> dict[str, Any]:
    """Everything summaries/summary.j2 shows, formatted (numbers rounded, ranges joined)."""
    h = summary.headline
    precise = summary.precise_from
    segments = []
    if h.segments:
        for name in SEGMENTS:
            ci = (h.segment_ci or {}).get(name)
            segments.append(
                {
                    "name": texts.get(f"seg.{name}", name),
                    "share": _num(100 * h.segments[name]),
                    "range": _range(ci),
                }
            )
    return {
        "scope": scope_name(summary.scope, locale),
        "organisation": summary.scope.is_org,
        "latest": h.label,
        "rounds": len(summary.rounds),
        "reportable_rounds": sum(1 for r in summary.rounds if r.reportable),
        "index": _num(h.index),
        "index_n": h.index_n,
        "index_ci": _range(h.index_ci) if h.index_n and h.index_n < precise else "",
        "alpha": None if h.alpha is None else f"{h.alpha:.2f}",
        "enps": _num(h.enps, signed=True),
        "enps_n": h.enps_n,
        "enps_ci": _range(h.enps_ci, signed=True),
        "enps_low_precision": bool(h.enps_n and h.enps_n < precise),
        "product_nps": None if h.product_nps is None else _num(h.product_nps, signed=True),
        "product_nps_ci": _range(h.product_nps_ci, signed=True),
        "response_rate": _num(h.response_rate),
        "respondents": h.respondents,
        "invited": h.invited,
        "segments": segments,
        "segment_n": h.segment_n,
        "strongest": [
            {"name": dimension_name(texts, d.dimension), "favorable": _num(d.favorable)}
            for d in summary.strongest
        ],
        "weakest": [
            {"name": dimension_name(texts, d.dimension), "favorable": _num(d.favorable)}
            for d in summary.weakest
        ],
        "previous": summary.previous.label if summary.previous else None,
        "index_change": _change(summary.index_change),
        "enps_change": _change(summary.enps_change),
        "k": summary.k,
    }


def chart_labels(texts: dict[str, str]) -> dict[str, str]:
    return translated_labels(lambda key: texts.get(key, ""))


def summary_png(summary: Summary, locale: str, texts: dict[str, str]) -> bytes:
    """The summary's chart: the index and eNPS by round on scales of their own, each with
    its n and a low-precision mark under ``loyalty.precise_from``; segments with what each
    means; dimensions."""
    trend = [
        TrendPoint(r.label, r.index, r.enps, r.index_n, r.enps_n, r.index_ci, r.enps_ci)
        for r in summary.rounds
    ]
    # Keyed by segment (the chart colours each one and names it from ``chart_labels``).
    segments = {}
    if summary.headline.segments:
        segments = {name: summary.headline.segments[name] for name in SEGMENTS}
    favorable = {dimension_name(texts, d.dimension): d.favorable for d in summary.dimensions}
    return summary_chart(
        trend,
        segments,
        favorable,
        title=scope_name(summary.scope, locale),
        labels=chart_labels(texts),
        segment_intervals=summary.headline.segment_ci,
        segment_n=summary.headline.segment_n if segments else None,
        favorable_n={dimension_name(texts, d.dimension): d.n for d in summary.dimensions},
        precise_from=summary.precise_from,
    )


def heatmap_png(heat: HeatMap, texts: dict[str, str]) -> bytes:
    """The heat map: every team of the round, a parent's row named by what it covers, the
    cells of a team the plan does not release drawn as hidden, with the reason."""
    chart_texts = chart_labels(texts)
    return heatmap_chart(
        [row_label(row.name, row.covers, chart_texts) for row in heat.rows],
        [dimension_name(texts, d) for d in heat.dimensions],
        heat.values,
        title=texts.get("chart.heatmap", "heatmap"),
        labels=chart_texts,
    )


def summary_replies(
    shown: Summary, locale: str, texts: dict[str, str], digest: str | None = None
) -> list[Reply]:
    """The text and the chart of one summary."""
    context = summary_context(shown, locale, texts)
    return [
        Reply("summaries/summary", {**context, "digest": digest}),
        Reply(
            "summaries/chart",
            {"scope": context["scope"]},
            image=summary_png(shown, locale, texts),
            image_name="loyalty-summary.png",
        ),
    ]
