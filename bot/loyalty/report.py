"""HR's loyalty report in several formats: text, JSON, CSV, PNG and one self-contained HTML
file (charts embedded as base64). It only formats a Summary that the anonymity rules have
already released."""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any

from bot import csvsafe
from bot.locale import format_number
from bot.loyalty.present import dimension_name, round_day, scope_name, summary_png
from bot.loyalty.service import Summary, Unreportable
from bot.markup import to_plain
from bot.render import Renderer

FORMATS = ("text", "json", "csv", "png", "html")


def as_text(
    result: Summary | Unreportable, renderer: Renderer, locale: str, texts: dict[str, str]
) -> str:
    from bot.loyalty.present import summary_context

    parts: list[str] = []
    summary = _shown(result)
    if isinstance(result, Unreportable):
        parts.append(
            renderer.text(
                "summaries/not_enough",
                locale,
                {
                    "team": scope_name(result.scope, locale),
                    "parent": scope_name(summary.scope, locale) if summary else None,
                },
            )
        )
    if summary is not None:
        context = {**summary_context(summary, locale, texts), "digest": None}
        parts.append(renderer.text("summaries/summary", locale, context))
    return "\n\n".join(to_plain(p) for p in parts)


def as_json(result: Summary | Unreportable) -> str:
    summary = _shown(result)
    data: dict[str, Any] = {
        "reportable": isinstance(result, Summary),
        "asked": scope_name(result.scope, "en"),
        "summary": summary.as_dict() if summary else None,
    }
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


def as_csv(result: Summary | Unreportable) -> str:
    """Long format: one row per figure (round or window, measure, n, value, low, high)."""
    buffer = io.StringIO()
    # Team names come from the directory import: no cell may run as a formula.
    writer = csvsafe.writer(buffer)
    writer.writerow(["scope", "round", "measure", "n", "value", "low", "high"])
    summary = _shown(result)
    if summary is None:
        return buffer.getvalue()
    scope = scope_name(summary.scope, "en")

    def row(round_: str, measure: str, n: Any, value: Any, ci: Any = None) -> None:
        low, high = ci if ci else ("", "")
        writer.writerow([scope, round_, measure, _cell(n), _cell(value), _cell(low), _cell(high)])

    for r in summary.rounds:
        if not r.reportable:
            row(r.label, "suppressed", "", "")
            continue
        row(r.label, "response_rate", r.invited, r.response_rate)
        row(r.label, "loyalty_index", r.index_n, r.index, r.index_ci)
        row(r.label, "cronbach_alpha", r.alpha_n, r.alpha)
        row(r.label, "enps", r.enps_n, r.enps, r.enps_ci)
        row(r.label, "product_nps", r.product_nps_n, r.product_nps, r.product_nps_ci)
        for name, share in (r.segments or {}).items():
            ci = (r.segment_ci or {}).get(name)
            row(r.label, f"segment_{name}_pct", r.segment_n, 100 * share, ci)
    for d in summary.dimensions:
        row("window", f"favorable_pct_{d.dimension}", d.n, d.favorable, d.favorable_ci)
        row("window", f"score_{d.dimension}", d.n, d.score)
    return buffer.getvalue()


def as_html(
    result: Summary | Unreportable,
    renderer: Renderer,
    locale: str,
    texts: dict[str, str],
    heatmap: bytes | None = None,
) -> str:
    """One self-contained HTML file: text, tables and the charts as data: URIs, every heading
    and label in ``locale`` (labels.yaml's ``report.*``)."""
    summary = _shown(result)

    def t(key: str) -> str:
        return html.escape(texts.get(f"report.{key}", key))

    title = t("title")
    body = [f"<h1>{title}</h1>"]
    body.append(f"<pre>{html.escape(as_text(result, renderer, locale, texts))}</pre>")
    if summary is not None:
        body.append(_img(summary_png(summary, locale, texts), t("summary_chart")))
        headings = ("round", "respondents", "index", "enps", "range", "alpha")
        body.append(
            f"<h2>{t('rounds')}</h2><table><tr>"
            + "".join(f"<th>{t(h)}</th>" for h in headings)
            + "</tr>"
        )
        for r in summary.rounds:
            ci = ""
            if r.enps_ci:
                low, high = (format_number(v, locale, signed=True) for v in r.enps_ci)
                ci = f"{low} … {high}"
            body.append(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(str(v))}</td>"
                    for v in (
                        round_day(r.label, locale),
                        format_number(r.respondents, locale)
                        if r.reportable
                        else texts.get("report.not_reportable", "not reportable"),
                        format_number(r.index, locale),
                        format_number(r.enps, locale, signed=r.enps is not None),
                        ci,
                        "" if r.alpha is None else format_number(r.alpha, locale, decimals=2),
                    )
                )
                + "</tr>"
            )
        body.append(
            f"</table><h2>{t('dimensions')}</h2><table><tr>"
            + "".join(f"<th>{t(h)}</th>" for h in ("dimension", "n", "favorable", "score"))
            + "</tr>"
        )
        for d in summary.dimensions:
            body.append(
                f"<tr><td>{html.escape(dimension_name(texts, d.dimension))}</td>"
                f"<td>{format_number(d.n, locale)}</td>"
                f"<td>{format_number(d.favorable, locale)}</td>"
                f"<td>{format_number(d.score, locale)}</td></tr>"
            )
        body.append("</table>")
    if heatmap:
        body.append(_img(heatmap, t("heatmap")))
    style = "body{font-family:sans-serif;max-width:1100px;margin:2em auto}td,th{padding:2px 8px;border-bottom:1px solid #ddd}img{max-width:100%}"
    return (
        f'<!doctype html><html lang="{locale}"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{style}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def _img(png: bytes, alt: str) -> str:
    """``alt`` is already escaped."""
    return f'<img alt="{alt}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _cell(value: Any) -> Any:
    # Figures stay numbers (rounded), so csvsafe leaves a negative eNPS numeric.
    if value is None:
        return ""
    if isinstance(value, float):
        return round(value, 4)
    return value


def _shown(result: Summary | Unreportable) -> Summary | None:
    return result if isinstance(result, Summary) else result.fallback
