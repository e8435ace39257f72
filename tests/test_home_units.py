"""The Home tab's parts on their own: the Block Kit layout stays within Slack's limits however
much a view holds, the refresher publishes at most once per person per ``home.refresh_s``
without losing the last change, and the fake Slack refuses the home views Slack refuses."""

from __future__ import annotations

import asyncio

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.changes import Changed, Changes, note_change, note_opened
from bot.channels.callbacks import CallbackCodec
from bot.channels.port import Button, HomeItem, HomeSection, HomeView, RateLimited
from bot.channels.slack_home import ACTION_PREFIX, home_view
from bot.home.refresh import HomeRefresher
from bot.home.settings import HomeSettings
from bot.sender import WindowLimiter

from .fakes.slack import FakeSlackServer, SlackUser
from .fakes.slack.home import home_view_errors
from .fakes.slack.records import iter_buttons, iter_elements

CODEC = CallbackCodec("test-secret-key")


def encode(button: Button) -> str:
    return CODEC.encode(button.action, button.value, "D0TEST")


def crowded_view(sections: int, items: int) -> HomeView:
    """A view far over every limit: long titles, texts, labels, many buttons per entry."""
    buttons = tuple(Button("label " * 30, "pulse_start", str(n)) for n in range(8))
    return HomeView(
        title="Fidelio " * 40,
        intro="intro " * 1000,
        sections=tuple(
            HomeSection(
                title=f"Section {s} " * 30,
                items=tuple(
                    HomeItem(f"**entry {i}** " + "x" * 5000, buttons[: i % 3]) for i in range(items)
                ),
                note="…and 12 more: type `briefings`.",
                buttons=buttons,
            )
            for s in range(sections)
        ),
        cut="…and more: type `help`.",
    )


def test_a_crowded_view_is_cut_to_slack_limits_keeping_every_section() -> None:
    view = home_view(crowded_view(sections=9, items=40), encode)
    blocks = view["blocks"]
    assert home_view_errors(view) == []
    assert len(blocks) == 100
    assert blocks[-1]["type"] == "context" and "type `help`" in blocks[-1]["elements"][0]["text"]
    # Every section keeps its title; entries never lose their buttons to the cut.
    assert sum(1 for b in blocks if b["type"] == "header") == 10
    for before, block in zip(blocks, blocks[1:], strict=False):
        if block["type"] == "actions":  # an entry's buttons, or its section's after the note
            assert before["type"] in ("section", "context")
    ids = [el["action_id"] for b in blocks for el in iter_elements(b) if "action_id" in el]
    assert len(ids) == len(set(ids)) and all(i.startswith(ACTION_PREFIX) for i in ids)
    assert ACTION_PREFIX.startswith("fidelio:")  # the adapter's one action listener
    values = [el["value"] for _, el in iter_buttons(blocks)]
    assert CODEC.decode(values[0], "D0TEST") is not None  # signed for the person's DM


def test_a_small_view_is_laid_out_whole() -> None:
    view = HomeView(
        "Fidelio",
        "Hi",
        (
            HomeSection(
                "Surveys",
                (HomeItem("**Pulse**", (Button("Answer", "pulse_start", "7"),)),),
            ),
            HomeSection("Ideas", (HomeItem("None yet."),)),
        ),
    )
    blocks = home_view(view, encode)["blocks"]
    assert [b["type"] for b in blocks] == [
        "header",
        "section",
        "divider",
        "header",
        "section",
        "divider",
        "header",
        "section",
    ]
    assert blocks[4]["text"]["text"] == "*Pulse*"
    assert blocks[4]["accessory"]["text"]["text"] == "Answer"
    assert CODEC.decode(blocks[4]["accessory"]["value"], "D0TEST") == ("pulse_start", "7")


class Recorder:
    """A publish function that records who was published when, and can be told to fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, float]] = []
        self.rate_limited_once: set[int] = set()

    async def __call__(self, person_id: int) -> None:
        if person_id in self.rate_limited_once:
            self.rate_limited_once.discard(person_id)
            raise RateLimited(0.1, "test")
        self.calls.append((person_id, asyncio.get_running_loop().time()))

    def of(self, person_id: int) -> list[float]:
        return [at for who, at in self.calls if who == person_id]


async def test_refresher_publishes_once_at_once_then_once_more_for_a_burst() -> None:
    recorder = Recorder()
    refresher = HomeRefresher(HomeSettings(refresh_s=0.3), recorder)
    refresher.changed(Changed(opened={1}))
    await asyncio.sleep(0.05)
    assert len(recorder.of(1)) == 1
    for _ in range(10):  # a burst of changes while the pace holds it back
        refresher.changed(Changed(people={1}))
        await asyncio.sleep(0.01)
    await refresher.settle()
    first, trailing = recorder.of(1)
    assert trailing - first >= 0.29  # once more, when the pace allows: the last change shown
    # Someone who never opened the tab is not published; everyone means those watching.
    refresher.changed(Changed(people={2}))
    refresher.changed(Changed(everyone=True))
    await refresher.settle()
    assert recorder.of(2) == [] and len(recorder.of(1)) == 3
    await refresher.close()


async def test_refresher_tries_again_after_a_429_and_stops_on_close() -> None:
    recorder = Recorder()
    recorder.rate_limited_once.add(5)
    refresher = HomeRefresher(HomeSettings(refresh_s=0.0), recorder)
    refresher.changed(Changed(opened={5}))
    await refresher.settle()
    assert len(recorder.of(5)) == 1
    await refresher.close()
    refresher.changed(Changed(opened={5}))
    await asyncio.sleep(0.05)
    assert len(recorder.of(5)) == 1


async def test_a_per_minute_budget_lets_a_burst_through_and_no_more_per_window() -> None:
    limiter = WindowLimiter.per_window(3, 0.5, burst_s=1.0)  # 3 per half second, as 3 a minute
    loop = asyncio.get_running_loop()
    started = loop.time()
    admitted = []
    for _ in range(4):
        async with limiter.slot():
            admitted.append(loop.time() - started)
    assert admitted[2] < 0.1  # the burst goes through at once
    assert admitted[3] >= 0.49  # the fourth waits for the window of the first to pass


class Session:
    """What note_change needs of a session: its ``info``."""

    def __init__(self) -> None:
        self.info: dict[str, object] = {}


def test_notes_are_announced_once_and_only_when_there_are_some() -> None:
    heard: list[Changed] = []
    changes = Changes()
    changes.listen(heard.append)
    session = Session()
    changes.announce_noted(session)
    note_change(session, 3)
    note_change(session)
    note_opened(session, 4)
    changes.announce_noted(session)
    changes.announce_noted(session)
    assert heard == [Changed(people={3}, everyone=True, opened={4})]


@pytest.mark.parametrize(
    ("view", "error"),
    [
        ({"type": "modal", "blocks": []}, "must be home"),
        ({"type": "home", "blocks": [{"type": "divider"}] * 101}, "no more than 100"),
        ({"type": "home", "blocks": [{"type": "table"}]}, "invalid block type"),
        (
            {
                "type": "home",
                "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}],
            },
            "1 to 150 characters",
        ),
        (
            {
                "type": "home",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
            },
            "less than 3001",
        ),
        (
            {
                "type": "home",
                "blocks": [
                    {
                        "type": "actions",
                        "elements": [
                            {
                                "type": "button",
                                "action_id": "a",
                                "text": {"type": "plain_text", "text": "A"},
                            },
                            {
                                "type": "button",
                                "action_id": "a",
                                "text": {"type": "plain_text", "text": "B"},
                            },
                        ],
                    }
                ],
            },
            "duplicate action_id",
        ),
    ],
)
async def test_the_fake_refuses_what_slack_refuses(
    slack: FakeSlackServer, view: dict[str, object], error: str
) -> None:
    slack.add_user(SlackUser("U0ANNA", "anna@example.com", "anna"))
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.base_url, retry_handlers=[])
    with pytest.raises(SlackApiError) as refused:
        await client.views_publish(user_id="U0ANNA", view=view)
    assert refused.value.response["error"] == "invalid_arguments"
    assert any(error in m for m in refused.value.response["response_metadata"]["messages"])
    assert slack.home_views == {}
