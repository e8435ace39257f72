"""Slack answers where the person acted: refused form fields under the fields, in the modal's
acknowledgement, and a note in the channel where a slash command was typed. The real
slack-bolt app against the fake Slack, which delivers view submissions and slash commands as
Slack does and records the acknowledgement and the response_url posts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.db.models import ProcessedEvent
from bot.db.session import Database
from bot.suggestions.tables import Suggestion

from .fakes.slack import FakeSlackServer, SlackUser
from .harness import SlackDialog, load_demo, running_on_slack, until
from .test_suggestions_e2e import form_values

JAMES = "james.whitaker@demo.fidelio.example"
MARCO = "marco.bianchi@demo.fidelio.example"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlackServer]:
    async with FakeSlackServer(rate_scale=50.0) as server:
        server.add_user(SlackUser("U0JAMES", JAMES, "james"))
        server.add_user(SlackUser("U0MARCO", MARCO, "marco"))
        yield server


async def _count(db: Database, what: Any) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(what)) or 0)


async def _open_suggestion_form(slack: FakeSlackServer, user_id: str) -> None:
    opened = len(slack.views)
    assert await slack.slash_command(user_id, "suggest") == 200
    await until(lambda: len(slack.views) == opened + 1)


async def test_a_modal_with_invalid_values_stays_open_with_each_error_under_its_field(
    db: Database, clock: ManualClock, database_url: str, slack: FakeSlackServer
) -> None:
    await load_demo(db, clock)
    async with running_on_slack(slack, clock, database_url, background=False):
        await _open_suggestion_form(slack, "U0JAMES")
        events = await _count(db, ProcessedEvent)
        too_long = "x" * 2001
        assert await slack.submit_view("U0JAMES", "sugg_form", form_values(too_long, "x", False))
        refused = slack.view_submissions[-1]
        assert refused["outcome"] == "errors"
        assert refused["ack"] == {
            "response_action": "errors",
            "errors": {
                "block_text": "That is 2001 characters; up to 2000 fit here.",
                "block_category": "Choose one of the options.",
            },
        }
        # Nothing saved, nothing remembered, nothing sent.
        assert await _count(db, Suggestion) == 0
        assert await _count(db, ProcessedEvent) == events
        dm = SlackDialog(slack, "U0JAMES").dm
        assert slack.messages_in(dm) == []

        # Corrected in the same modal, sent again: the modal closes and the suggestion is in.
        blank = form_values("   ", "other", False)
        assert await slack.submit_view("U0JAMES", "sugg_form", blank) == 200
        assert slack.view_submissions[-1]["ack"]["errors"] == {
            "block_text": "This cannot be empty."
        }
        fixed = form_values("Longer opening hours", "other", False)
        assert await slack.submit_view("U0JAMES", "sugg_form", fixed) == 200
        assert slack.view_submissions[-1]["outcome"] == "closed"
        [sent] = await slack.wait_for_messages(dm, 1)
        assert "reference S-0001 (Other)" in (sent.text or "")
    assert await _count(db, Suggestion) == 1
    assert len({s["view_id"] for s in slack.view_submissions}) == 1  # one modal throughout


async def test_errors_for_a_form_without_those_fields_close_it_and_come_as_messages(
    db: Database, clock: ManualClock, database_url: str, slack: FakeSlackServer
) -> None:
    """A submission of a modal Fidelio did not open (no such fields to mark): Slack cannot show
    the errors there, so the modal closes and they arrive in the direct message."""
    await load_demo(db, clock)
    async with running_on_slack(slack, clock, database_url, background=False):
        james = SlackDialog(slack, "U0JAMES")
        await slack.submit_view("U0JAMES", "sugg_form", form_values(" ", "nonsense", False))
        assert slack.view_submissions[-1]["outcome"] == "closed"
        texts = [m.text for m in await slack.wait_for_messages(james.dm, 2)]
        assert texts == ["This cannot be empty.", "Choose one of the options."]
    assert await _count(db, Suggestion) == 0


async def test_a_slash_command_in_a_channel_is_answered_in_the_dm_with_a_note_there(
    db: Database, clock: ManualClock, database_url: str, slack: FakeSlackServer
) -> None:
    await load_demo(db, clock)
    async with running_on_slack(slack, clock, database_url, background=False):
        marco = SlackDialog(slack, "U0MARCO")
        assert await slack.slash_command("U0MARCO", "whoami", channel="C0GENERAL") == 200
        [whoami] = await slack.wait_for_messages(marco.dm, 1)
        assert "marco.bianchi@demo.fidelio.example" in (whoami.text or "")
        await until(lambda: bool(slack.ephemerals))
        # Only Marco sees it, in the channel, in his language, with a link to the DM.
        link = f"https://slack.com/app_redirect?app={slack.api_app_id}&amp;team={slack.team_id}"
        assert slack.ephemerals == [
            {
                "channel": "C0GENERAL",
                "user": None,
                "text": f"Ti ho risposto nei nostri <{link}|messaggi diretti>.",
                "blocks": None,
                "via": "response_url",
            }
        ]
        assert slack.messages_in("C0GENERAL") == []

        # In the direct message itself there is nothing to point at.
        assert await slack.slash_command("U0MARCO", "whoami") == 200
        await slack.wait_for_messages(marco.dm, 2)
        assert len(slack.ephemerals) == 1
