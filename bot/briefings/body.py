"""Render a briefing body for one reader: Jinja2 (sandboxed) then Markdown -> neutral markup."""

from __future__ import annotations

import re

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from bot.briefings.content import Briefing
from bot.locale import format_local_time
from bot.render import Trusted
from bot.replies import Reply, ReplyButton

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_HEADING = re.compile(r"^#{1,6}\s+(.*)$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")


def render_body(briefing: Briefing, locale: str, timezone: str) -> str:
    """The body in the reader's language with dates in their time zone, as neutral markup."""
    chosen = briefing.locale_for(locale)
    text = _ENV.from_string(briefing.body[chosen]).render(
        title=briefing.text(briefing.title, chosen),
        kind=briefing.kind,
        launch_local=format_local_time(briefing.launch_at, timezone, chosen),
        expires_local=format_local_time(briefing.expires_at, timezone, chosen),
    )
    return markdown_to_neutral(text)


def markdown_to_neutral(text: str) -> str:
    """Headings become bold lines and list markers bullets; the rest is already our subset."""
    lines = []
    for line in text.splitlines():
        heading = _HEADING.match(line)
        bullet = _BULLET.match(line)
        if heading:
            lines.append(f"**{heading.group(1).strip()}**")
        elif bullet:
            lines.append(f"{bullet.group(1)}• {bullet.group(2)}")
        else:
            lines.append(line.rstrip())
    return "\n".join(lines).strip()


def body_reply(
    campaign_id: int, briefing: Briefing, locale: str, timezone: str, *, with_ack: bool
) -> Reply:
    """What *Read more* shows: the body for the reader, the FAQ, and *Got it* (``with_ack``:
    the briefing asks for it and the reader has not given it yet)."""
    chosen = briefing.locale_for(locale)
    buttons = (ReplyButton("got_it", "brief_ack", str(campaign_id)),) if with_ack else ()
    return Reply(
        "briefings/body",
        {
            "title": briefing.title,
            "body": Trusted(render_body(briefing, locale, timezone)),
            "faq": [{"q": f.q[chosen], "a": f.a[chosen]} for f in briefing.faq],
        },
        buttons,
    )
