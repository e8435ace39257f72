"""The pieces behind the command menus and the forms that explain, one at a time: what a
Telegram menu may hold, how a modal's acknowledgement is given, how field errors read where no
form shows them, and the link to the direct message."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.channels import slack as slack_adapter
from bot.channels.callbacks import CallbackCodec
from bot.channels.port import MenuCommand
from bot.channels.slack import SlackChannel
from bot.channels.slack_answers import FormAnswer, dm_link
from bot.channels.telegram_commands import fitted
from bot.config import SlackSettings
from bot.errors import FieldErrors, UserFacingError
from bot.events import FormSubmitted
from bot.markup import escape, to_plain, to_slack_mrkdwn

VIEW = {
    "id": "V1",
    "hash": "1.abc",
    "callback_id": "sugg_form",
    "blocks": [
        {"type": "input", "block_id": "block_text"},
        {"type": "section", "block_id": "intro"},
    ],
    "state": {"values": {"block_text": {"text": {"type": "plain_text_input", "value": "x"}}}},
}


class Acks:
    """Stands in for bolt's ``ack``: records what it was given."""

    def __init__(self) -> None:
        self.given: list[dict[str, Any]] = []

    async def __call__(self, **kwargs: Any) -> None:
        self.given.append(kwargs)


def test_telegram_menu_entries_are_fitted_to_telegram_limits() -> None:
    commands = [
        MenuCommand("Help", "this  list\n"),
        MenuCommand("mis-typed", "left out"),
        MenuCommand("quiet", "   "),
        MenuCommand("long", "word " * 80),
    ]
    fit = fitted(commands)
    assert [(c.command, c.description) for c in fit[:2]] == [
        ("help", "this list"),
        ("quiet", "quiet"),
    ]
    assert len(fit[2].description) == 256 and fit[2].description.endswith("…")
    assert len(fitted([MenuCommand(f"c{i}", "x") for i in range(150)])) == 100


async def test_a_form_answer_is_given_once_and_only_for_fields_the_modal_has() -> None:
    acks = Acks()
    answer = FormAnswer(acks, VIEW)
    assert await answer({"text": "**Too** long"}) is True
    assert await answer({}) is False  # already given
    assert acks.given == [{"response_action": "errors", "errors": {"block_text": "Too long"}}]

    acks = Acks()
    answer = FormAnswer(acks, VIEW)
    assert await answer({"text": "empty", "intro": "not an input"}) is False
    assert acks.given == [{}]  # closed; the caller sends the errors as messages
    acks = Acks()
    assert await FormAnswer(acks, VIEW)({}) is True and acks.given == [{}]


async def test_a_slow_submission_closes_the_modal_in_time_and_its_errors_come_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(slack_adapter, "FORM_ANSWER_S", 0.05)
    settings = SlackSettings(enabled=True, bot_token="xoxb-test", base_url="http://127.0.0.1:9/")
    channel = SlackChannel(settings, CallbackCodec("k" * 32))
    channel._dm_cache["U1"] = "D1"  # no conversations.open
    seen: list[FormSubmitted] = []
    shown: list[bool] = []

    async def slow(event: Any) -> None:
        seen.append(event)
        await asyncio.sleep(0.2)
        shown.append(await event.answer({"text": "This cannot be empty."}))

    channel.on_event = slow
    acks = Acks()
    await channel._on_view(acks, {"user": {"id": "U1"}}, VIEW)
    assert acks.given == [{}] and shown == [False]
    [event] = seen
    assert (event.form, event.values["text"], event.user.address) == ("sugg_form", "x", "D1")


def test_field_errors_read_as_their_first_field_where_no_form_shows_them() -> None:
    error = FieldErrors(
        {
            "text": UserFacingError("forms/too_long", length=5, limit=4),
            "category": UserFacingError("forms/unknown_choice"),
        }
    )
    assert (error.template_key, error.context) == ("forms/too_long", {"length": 5, "limit": 4})
    assert list(error.fields) == ["text", "category"]
    with pytest.raises(ValueError):
        FieldErrors({})


def test_the_link_to_the_direct_message_survives_the_markup() -> None:
    link = dm_link("T1", "A1")
    assert link == "https://slack.com/app_redirect?app=A1&team=T1"
    # A URL filled into a template is escaped like any value (app\_redirect), and read back.
    text = f"[messages]({escape(link)})"
    assert to_slack_mrkdwn(text) == "<https://slack.com/app_redirect?app=A1&amp;team=T1|messages>"
    assert to_plain(text) == f"messages ({link})"
