"""Fidelio's neutral Markdown subset and its conversion per platform.

Templates write ``**bold**``, ``_italic_``, `` `code` `` and ``[label](https://url)``.
Values put into templates are escaped with :func:`escape` (the renderer does it for every
``{{ value }}``), so a name or a suggestion text can never inject markup, HTML or a Slack
``<!channel>`` mention.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache

_SPECIAL = "\\*_`[]"
_LINK = re.compile(r"\[((?:\\.|[^\]\\])*)\]\((https?://[^\s)]+)\)")
#: A run of characters that start no markup: taken whole rather than one by one.
_PLAIN_RUN = re.compile(r"[^\\\[*_`]+")
#: Converted texts kept per target: a question, a card or a thank-you goes to many people in
#: the same words, and converting is pure (the same text always gives the same result).
_CONVERTED = 512


@dataclass(frozen=True)
class Span:
    kind: str  # text | bold | italic | code | link
    text: str
    url: str = ""


def escape(value: object) -> str:
    """Make any value literal inside neutral markup."""
    return "".join("\\" + ch if ch in _SPECIAL else ch for ch in str(value))


_ESCAPED = re.compile(r"\\(.)")


def _unescape(text: str) -> str:
    return _ESCAPED.sub(r"\1", text) if "\\" in text else text


def parse(text: str) -> list[Span]:
    """Split neutral markup into spans; unmatched markers are kept as literal text."""
    spans: list[Span] = []
    buf: list[str] = []
    i, n = 0, len(text)

    def flush() -> None:
        if buf:
            spans.append(Span("text", "".join(buf)))
            buf.clear()

    while i < n:
        plain = _PLAIN_RUN.match(text, i)
        if plain:
            buf.append(plain.group())
            i = plain.end()
            continue
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            buf.append(text[i + 1])
            i += 2
            continue
        if ch == "[":
            match = _LINK.match(text, i)
            if match:
                flush()
                # A URL filled in by a template was escaped like any value: read it back.
                url = _unescape(match.group(2))
                spans.append(Span("link", _unescape(match.group(1)), url))
                i = match.end()
                continue
        for marker, kind in (("**", "bold"), ("_", "italic"), ("`", "code")):
            if text.startswith(marker, i):
                end = _find_closing(text, marker, i + len(marker))
                if end is not None:
                    flush()
                    spans.append(Span(kind, _unescape(text[i + len(marker) : end])))
                    i = end + len(marker)
                    break
        else:
            buf.append(ch)
            i += 1
            continue
    flush()
    return spans


def _find_closing(text: str, marker: str, start: int) -> int | None:
    i = start
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "\n" and marker != "`":
            return None
        if text.startswith(marker, i):
            return i if i > start else None
        i += 1
    return None


#: The Telegram HTML tag of each kind of span but links (plain text has none).
_HTML_TAGS = {"bold": "b", "italic": "i", "code": "code"}


@lru_cache(maxsize=_CONVERTED)
def to_telegram_html(text: str) -> str:
    """Telegram ``parse_mode=HTML``: only b, i, code and a tags; everything else escaped."""
    out = []
    for span in parse(text):
        body = html.escape(span.text, quote=False)
        if span.kind == "link":
            out.append(f'<a href="{html.escape(span.url)}">{body}</a>')
        elif tag := _HTML_TAGS.get(span.kind):
            out.append(f"<{tag}>{body}</{tag}>")
        else:
            out.append(body)
    return "".join(out)


def _slack_escape(text: str) -> str:
    # Slack's own rule: only &, < and > are control characters in mrkdwn text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_SLACK_FORMATTING = re.compile(r"([*_~`])")
#: The mrkdwn mark around bold and italic spans.
_SLACK_MARKS = {"bold": "*", "italic": "_"}


def _slack_literal(text: str) -> str:
    """Literal text for mrkdwn. Slack has no escape for *, _, ~ and `, so a zero-width space
    after each keeps a name like ``**boss**`` from turning bold."""
    return _SLACK_FORMATTING.sub("\\1\u200b", _slack_escape(text))


@lru_cache(maxsize=_CONVERTED)
def to_slack_mrkdwn(text: str) -> str:
    """Slack mrkdwn: *bold*, _italic_, `code`, <url|label>."""
    out = []
    for span in parse(text):
        body = _slack_literal(span.text)
        if span.kind == "code":
            # Inside code Slack does not format, so only the control characters are escaped.
            out.append(f"`{_slack_escape(span.text).replace('`', 'ˋ')}`")
        elif span.kind == "link":
            out.append(f"<{_slack_escape(span.url)}|{body}>")
        else:
            mark = _SLACK_MARKS.get(span.kind, "")
            out.append(f"{mark}{body}{mark}")
    return "".join(out)


@lru_cache(maxsize=_CONVERTED)
def to_plain(text: str) -> str:
    """Plain text for the console and for notification fallbacks."""
    out = []
    for span in parse(text):
        out.append(f"{span.text} ({span.url})" if span.kind == "link" else span.text)
    return "".join(out)
