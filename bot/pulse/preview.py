"""What people receive in a round of a survey, before it is scheduled: the invitation and
every question, built by the chat handler's own question builder and rendered by the one
renderer (:class:`bot.render.Renderer`), then as each platform shows it — Telegram's HTML
(:func:`bot.markup.to_telegram_html`), Slack's mrkdwn (:func:`bot.markup.to_slack_mrkdwn`)
and the console's own output (:class:`bot.channels.console.ConsoleChannel`).

``fidelio survey preview`` prints the console's; the web console shows all three. Only the
content files are read: no database, nothing stored.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from bot.channels.console import ConsoleChannel
from bot.channels.port import Address, Message
from bot.clock import SystemClock
from bot.config import Settings
from bot.errors import InputError
from bot.markup import to_slack_mrkdwn, to_telegram_html
from bot.pulse.content import Survey, load_survey
from bot.pulse.schedule import Schedule, invitation
from bot.pulse.tables import SurveyRound
from bot.render import Renderer
from bot.replies import Reply
from bot.settings_section import SUPPORTED_LOCALES

#: The platforms a preview shows, in the order shown.
PLATFORMS = ("telegram", "slack", "console")


@dataclass(frozen=True)
class RoundPreview:
    """Round ``round_.number`` of ``survey`` if it were scheduled now, in ``locale``."""

    survey: Survey
    round_: SurveyRound
    schedule: Schedule
    locale: str

    def replies(self, channel: str) -> list[Reply]:
        """The invitation, then every question as the chat handler builds it on ``channel``
        (Slack adds a button to write the comment)."""
        from handlers.pulse import question

        # The handler's own question builder; the text item's conversation state is not kept.
        ctx: Any = SimpleNamespace(
            locale=self.locale,
            channel=channel,
            person=SimpleNamespace(id=0),
            clock=SystemClock(),
            session=SimpleNamespace(add=lambda _obj: None),
        )
        count = len(self.round_.items)
        return [
            invitation(self.round_, self.schedule),
            *(question(ctx, self.round_, self.schedule, i) for i in range(count)),
        ]

    def messages(self, renderer: Renderer, channel: str, timezone: str) -> list[Message]:
        """The neutral messages the one renderer makes of :meth:`replies` for ``channel``."""
        return [
            renderer.render(reply, self.locale, channel, timezone)
            for reply in self.replies(channel)
        ]


@dataclass(frozen=True)
class Shown:
    """One message as a platform shows it: its text in the platform's markup (Telegram's
    HTML, Slack's mrkdwn, the console's plain text) and the labels of its buttons."""

    text: str
    buttons: tuple[str, ...]


async def as_platform_shows(
    preview: RoundPreview, renderer: Renderer, timezone: str
) -> dict[str, list[Shown]]:
    """Every message of ``preview`` on each platform of :data:`PLATFORMS`: Telegram and
    Slack through the converters their adapters send with, the console through the console
    channel itself (its numbered choices included)."""
    shown: dict[str, list[Shown]] = {}
    for channel in PLATFORMS:
        messages = preview.messages(renderer, channel, timezone)
        if channel == "console":
            shown[channel] = [Shown(await console_text([m]), ()) for m in messages]
            continue
        convert = to_telegram_html if channel == "telegram" else to_slack_mrkdwn
        shown[channel] = [
            Shown(convert(m.text), tuple(b.label for b in m.buttons)) for m in messages
        ]
    return shown


async def console_text(messages: list[Message]) -> str:
    """What the console prints for ``messages`` to the person at the keyboard."""
    buffer = io.StringIO()
    console = ConsoleChannel(out=buffer)
    console.active = "preview"
    address = Address("console", "preview")
    for message in messages:
        await console.send(address, message)
    return buffer.getvalue().strip("\n")


def next_openings(cadence: Any, after: datetime, count: int) -> list[datetime]:
    """The first ``count`` openings after ``after`` (looking up to five years ahead)."""
    span = timedelta(days=60)
    while True:
        found = cadence.occurrences(after, after + span)
        if len(found) >= count or span >= timedelta(days=5 * 366):
            return list(found[:count])
        span *= 2


def preview_round(
    settings: Settings,
    survey_id: str,
    locale: str,
    round_number: int,
    now: datetime,
    *,
    fields: tuple[str, str, str] = ("", "--locale", "--round"),
) -> RoundPreview:
    """The invitation and questions of round ``round_number`` of ``survey_id`` in ``locale``.

    Bad input raises InputError naming its place: ``fields`` are the names of the survey,
    the locale and the round where they were given (the command line's by default; an
    unknown survey is named by its id there)."""
    survey_field, locale_field, round_field = fields
    if locale not in SUPPORTED_LOCALES:
        raise InputError(
            locale_field, f"{locale!r} is not supported ({', '.join(SUPPORTED_LOCALES)})"
        )
    if round_number < 1:
        raise InputError(round_field, "must be 1 or more")
    try:
        survey, items = load_survey(settings.content_dir / "surveys", survey_id)
    except InputError as exc:
        if survey_field and exc.where in ("SURVEY_ID", survey_id):
            raise InputError(survey_field, exc.reason, exc.key, **exc.params) from None
        raise
    window = timedelta(seconds=survey.open_for_s)
    cadence = survey.cadence.pinned(now - window)
    openings = next_openings(cadence, now - window, round_number)
    if len(openings) < round_number:
        raise InputError(
            round_field, f"the cadence has no round {round_number} in the next 5 years"
        )
    opens = openings[round_number - 1]
    round_ = SurveyRound(
        id=0,
        number=round_number,
        opens_at=opens,
        closes_at=opens + window,
        items=survey.items_for_round(round_number - 1),
    )
    schedule = Schedule(cast(Any, None), survey, items)  # no stored campaign
    return RoundPreview(survey, round_, schedule, locale)
