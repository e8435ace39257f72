"""A briefing as each channel will show it, in each of its languages.

The messages are the ones people get: the card (:func:`bot.briefings.service.card_reply`)
and what *Read more* opens (:func:`bot.briefings.body.body_reply`), rendered by Fidelio's
one renderer (:class:`bot.render.Renderer`, the chat templates of ``content/templates``)
for each channel, then put in each platform's markup by the functions its adapter uses:
Telegram HTML (:func:`bot.markup.to_telegram_html`), Slack mrkdwn
(:func:`bot.markup.to_slack_mrkdwn`) and the console's plain text
(:func:`bot.markup.to_plain`, its choices numbered as :func:`bot.channels.console.choice_keys`
numbers them). Nothing here words a message of its own.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from bot.briefings.body import body_reply
from bot.briefings.content import Briefing
from bot.briefings.service import card_reply
from bot.channels.console import choice_keys
from bot.config import Settings
from bot.db.models import Campaign
from bot.markup import to_plain, to_slack_mrkdwn, to_telegram_html
from bot.render import Renderer
from bot.replies import Reply

CHANNELS = ("telegram", "slack", "console")
#: The buttons of a preview lead nowhere: they carry no campaign.
PREVIEW_CAMPAIGN = 0


@cache
def renderer(templates: Path, default_locale: str, timezone: str) -> Renderer:
    """The chat renderer over ``templates`` (one per configuration, built once)."""
    return Renderer(templates, default_locale, timezone)


def _shown(reply: Reply, chat: Renderer, locale: str, channel: str, zone: str) -> dict[str, Any]:
    message = chat.render(reply, locale, channel, zone)
    labels = [button.label for button in message.buttons]
    if channel == "telegram":
        return {"markup": to_telegram_html(message.text), "buttons": labels, "html": True}
    if channel == "slack":
        return {"markup": to_slack_mrkdwn(message.text), "buttons": labels, "html": False}
    keys = choice_keys(message.buttons)
    choices = "  ".join(f"[{key}] {label}" for key, label in zip(keys, labels, strict=True))
    return {
        "markup": to_plain(message.text),
        "buttons": [choices] if choices else [],
        "html": False,
    }


def previews(settings: Settings, briefing: Briefing, timezone: str) -> list[dict[str, Any]]:
    """For each language of ``briefing``: the card and *Read more* on every channel, for a
    reader in ``timezone``."""
    chat = renderer(
        settings.content_dir / "templates",
        settings.organisation.default_locale,
        settings.organisation.default_timezone,
    )
    campaign = Campaign(id=PREVIEW_CAMPAIGN)  # never stored: only its id goes in the buttons
    out = []
    for locale in briefing.locales:
        messages = {
            "card": card_reply(campaign, briefing, late=False),
            "body": body_reply(
                PREVIEW_CAMPAIGN, briefing, locale, timezone, with_ack=briefing.ack_required
            ),
        }
        out.append(
            {
                "locale": locale,
                "messages": [
                    {
                        "what": what,
                        "channels": {
                            channel: _shown(reply, chat, locale, channel, timezone)
                            for channel in CHANNELS
                        },
                    }
                    for what, reply in messages.items()
                ],
            }
        )
    return out
