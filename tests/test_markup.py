"""Neutral markup: conversion per platform and injection safety of rendered values."""

from __future__ import annotations

from bot.markup import escape, parse, to_plain, to_slack_mrkdwn, to_telegram_html
from bot.render import Renderer
from bot.replies import Reply

from .harness import REPO


def test_spans() -> None:
    spans = parse("Hi **Ada**, _see_ `help` and [docs](https://example.org/x).")
    assert [(s.kind, s.text) for s in spans] == [
        ("text", "Hi "),
        ("bold", "Ada"),
        ("text", ", "),
        ("italic", "see"),
        ("text", " "),
        ("code", "help"),
        ("text", " and "),
        ("link", "docs"),
        ("text", "."),
    ]


def test_platform_conversions() -> None:
    text = "**New** price <b> & _promo_ [site](https://example.org)"
    assert to_telegram_html(text) == (
        '<b>New</b> price &lt;b&gt; &amp; <i>promo</i> <a href="https://example.org">site</a>'
    )
    assert to_slack_mrkdwn(text) == "*New* price &lt;b&gt; &amp; _promo_ <https://example.org|site>"
    assert to_plain(text) == "New price <b> & promo site (https://example.org)"


def test_unmatched_markers_stay_literal() -> None:
    assert to_plain("2 * 3 = 6 and snake_case") == "2 * 3 = 6 and snake_case"


def test_escaped_values_cannot_inject() -> None:
    evil = "**boss** <!channel> <a href='x'>click</a> [x](https://evil.example)"
    html = to_telegram_html("Name: " + escape(evil))
    assert "<b>" not in html and "<a" not in html
    slack = to_slack_mrkdwn("Name: " + escape(evil))
    assert "<!channel>" not in slack and "*boss*" not in slack and "<https://" not in slack


def test_renderer_escapes_every_value() -> None:
    renderer = Renderer(REPO / "content" / "templates")
    message = renderer.render(
        Reply(
            "whoami",
            {
                "name": "**Eve** <script>",
                "email": "e@x",
                "team": "_T_",
                "role": "employee",
                "language": "en",
                "channel": "telegram",
            },
        ),
        "en",
    )
    assert to_telegram_html(message.text).startswith("<b>**Eve** &lt;script&gt;</b>")


def test_every_template_exists_in_both_languages() -> None:
    root = REPO / "content" / "templates"
    english = {p.relative_to(root / "en") for p in (root / "en").rglob("*.j2")}
    italian = {p.relative_to(root / "it") for p in (root / "it").rglob("*.j2")}
    assert english == italian
