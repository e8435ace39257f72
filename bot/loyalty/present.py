"""Summaries as text-ready values and charts, in the reader's language."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.locale import format_day, format_number, format_pct
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


def round_day(label: str, locale: str) -> str:
    """A round's label (its opening day, ``2027-02-01``) as the reader writes a date:
    ``1 Feb 2027``, ``1 feb 2027``."""
    return format_day(date.fromisoformat(label), locale)


def _range(ci: tuple[float, float] | None, locale: str, signed: bool = False) -> str:
    if ci is None:
        return ""
    return f"{format_number(ci[0], locale, signed=signed)} … {format_number(ci[1], locale, signed=signed)}"


def _change(change: Change | None, locale: str) -> dict[str, Any] | None:
    if change is None:
        return None
    return {"delta": format_number(change.delta, locale, signed=True), "beyond_noise": change.clear}


def scope_name(summary_scope: Any, locale: str) -> str:
    return ORG_NAME.get(locale, ORG_NAME["en"]) if summary_scope.is_org else summary_scope.name


def summary_context(summary: Summary, locale: str, texts: dict[str, str]) -> dict[str, Any]:
    """Everything summaries/summary.j2 shows, formatted in ``locale`` (numbers rounded,
    percentages with their sign, ranges joined, rounds named by their date)."""
    h = summary.headline
    precise = summary.precise_from
    segments = []
    if h.segments:
        for name in SEGMENTS:
            ci = (h.segment_ci or {}).get(name)
            segments.append(
                {
                    "name": texts.get(f"seg.{name}", name),
                    "share": format_pct(100 * h.segments[name], locale),
                    "range": _range(ci, locale),
                }
            )
    return {
        "scope": scope_name(summary.scope, locale),
        "organisation": summary.scope.is_org,
        "latest": round_day(h.label, locale),
        "rounds": len(summary.rounds),
        "reportable_rounds": sum(1 for r in summary.rounds if r.reportable),
        "index": format_number(h.index, locale),
        "index_n": h.index_n,
        "index_ci": _range(h.index_ci, locale) if h.index_n and h.index_n < precise else "",
        "alpha": None if h.alpha is None else format_number(h.alpha, locale, decimals=2),
        "enps": format_number(h.enps, locale, signed=True),
        "enps_n": h.enps_n,
        "enps_ci": _range(h.enps_ci, locale, signed=True),
        "enps_low_precision": bool(h.enps_n and h.enps_n < precise),
        "product_nps": (
            None if h.product_nps is None else format_number(h.product_nps, locale, signed=True)
        ),
        "product_nps_ci": _range(h.product_nps_ci, locale, signed=True),
        "response_rate": format_pct(h.response_rate, locale),
        "respondents": h.respondents,
        "invited": h.invited,
        "segments": segments,
        "segment_n": h.segment_n,
        "strongest": [
            {
                "name": dimension_name(texts, d.dimension),
                "favorable": format_pct(d.favorable, locale),
            }
            for d in summary.strongest
        ],
        "weakest": [
            {
                "name": dimension_name(texts, d.dimension),
                "favorable": format_pct(d.favorable, locale),
            }
            for d in summary.weakest
        ],
        "previous": round_day(summary.previous.label, locale) if summary.previous else None,
        "index_change": _change(summary.index_change, locale),
        "enps_change": _change(summary.enps_change, locale),
        "k": summary.k,
    }


def rounds_context(summary: Summary, locale: str, texts: dict[str, str]) -> list[dict[str, Any]]:
    """The summary's figures round by round, formatted in ``locale`` (the trend the chart
    draws, as a table): a round the plan does not release for this group has no figure."""
    out: list[dict[str, Any]] = []
    for r in summary.rounds:
        row: dict[str, Any] = {"label": round_day(r.label, locale), "reportable": r.reportable}
        if r.reportable:
            row |= {
                "respondents": format_number(r.respondents, locale),
                "invited": format_number(r.invited, locale) if r.invited else "",
                "response_rate": format_pct(r.response_rate, locale) if r.invited else "",
                "index": format_number(r.index, locale),
                "index_range": _range(r.index_ci, locale),
                "enps": format_number(r.enps, locale, signed=r.enps is not None),
                "enps_range": _range(r.enps_ci, locale, signed=True),
                "alpha": "" if r.alpha is None else format_number(r.alpha, locale, decimals=2),
                "segments": [
                    {
                        "name": texts.get(f"seg.{name}", name),
                        "share": format_pct(100 * r.segments[name], locale),
                    }
                    for name in SEGMENTS
                    if r.segments and name in r.segments
                ],
            }
        out.append(row)
    return out


def heatmap_context(heat: HeatMap, texts: dict[str, str], locale: str) -> dict[str, Any]:
    """The heat map as a table (what :func:`heatmap_png` draws): each row named by what it
    covers, each cell its favorable % or None where the plan shows nothing."""
    chart_texts = chart_labels(texts)
    return {
        "dimensions": [dimension_name(texts, d) for d in heat.dimensions],
        "rows": [
            {
                "name": row_label(row.name, row.covers, chart_texts),
                "cells": [None if v is None else format_pct(v, locale) for v in row.cells],
                "reason": row.reason,
            }
            for row in heat.rows
        ],
    }


def chart_labels(texts: dict[str, str]) -> dict[str, str]:
    return translated_labels(lambda key: texts.get(key, ""))


def summary_png(summary: Summary, locale: str, texts: dict[str, str]) -> bytes:
    """The summary's chart: the index and eNPS by round on scales of their own, each with
    its n and a low-precision mark under ``loyalty.precise_from``; segments with what each
    means; dimensions."""
    trend = [
        TrendPoint(
            round_day(r.label, locale), r.index, r.enps, r.index_n, r.enps_n, r.index_ci, r.enps_ci
        )
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
        locale=locale,
    )


def heatmap_png(heat: HeatMap, texts: dict[str, str], locale: str = "en") -> bytes:
    """The heat map: every team of the round, a parent's row named by what it covers, the
    cells of a team the plan does not release drawn as hidden, with the reason."""
    chart_texts = chart_labels(texts)
    return heatmap_chart(
        [row_label(row.name, row.covers, chart_texts) for row in heat.rows],
        [dimension_name(texts, d) for d in heat.dimensions],
        heat.values,
        title=texts.get("chart.heatmap", "heatmap"),
        labels=chart_texts,
        locale=locale,
    )


def summary_replies(
    shown: Summary, locale: str, texts: dict[str, str], digest: str | None = None
) -> list[Reply]:
    """The text and the chart of one summary; ``digest``, the label of the round that has
    just closed, opens the text of a digest."""
    context = summary_context(shown, locale, texts)
    closed = round_day(digest, locale) if digest else None
    return [
        Reply("summaries/summary", {**context, "digest": closed}),
        Reply(
            "summaries/chart",
            {"scope": context["scope"]},
            image=summary_png(shown, locale, texts),
            image_name="loyalty-summary.png",
        ),
    ]
