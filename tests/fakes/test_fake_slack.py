"""Self-tests of the fake Slack platform, driven by the real slack-bolt ``AsyncApp`` and the real
slack-sdk ``AsyncWebClient`` / Socket Mode client, so the fake is held to Slack's wire formats."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncServerErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import UPLOAD_METHOD, FakeSlackServer, PostedMessage, SlackUser

ALICE = SlackUser(id="U0ALICE", email="alice@example.com", name="alice", locale="it-IT")
BOB = SlackUser(id="U0BOB", email="bob@example.com", name="bob", deleted=True)

APPROVAL_BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "Approve the briefing?"}},
    {
        "type": "actions",
        "block_id": "decide",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Approve"},
                "action_id": "approve",
                "value": "briefing-42",
                "style": "primary",
            },
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Reject"},
                "action_id": "reject",
                "value": "briefing-42",
            },
        ],
    },
]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """slack_sdk routes through $HTTPS_PROXY & co. when set; an empty value disables that."""
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(var, "")


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlackServer]:
    # rate_scale=10 keeps per-channel limits out of the way of tests that post a few messages.
    async with FakeSlackServer(rate_scale=10.0) as fake:
        fake.add_user(ALICE)
        fake.add_user(BOB)
        yield fake


def web_client(slack: FakeSlackServer, **kwargs: Any) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.base_url, **kwargs)


def bolt_app(slack: FakeSlackServer) -> AsyncApp:
    return AsyncApp(client=web_client(slack), signing_secret=slack.signing_secret)


@asynccontextmanager
async def serve_http(app: AsyncApp, slack: FakeSlackServer) -> AsyncIterator[str]:
    """Run the bolt app's aiohttp app on loopback and point the fake's Request URL at it."""
    runner = web.AppRunner(app.web_app(path="/slack/events"))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    slack.set_request_url(url)
    try:
        yield url
    finally:
        await runner.cleanup()


@asynccontextmanager
async def socket_mode(
    app: AsyncApp, slack: FakeSlackServer
) -> AsyncIterator[AsyncSocketModeHandler]:
    """Connect the bolt app over Socket Mode; the handler's own web client only carries base_url
    (apps.connections.open is called with the app-level token)."""
    handler = AsyncSocketModeHandler(
        app, slack.app_token, web_client=AsyncWebClient(base_url=slack.base_url)
    )
    await handler.connect_async()
    try:
        await slack.wait_socket_connected(timeout=2.0)
        yield handler
    finally:
        await handler.close_async()


async def wait_until(predicate: Any, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


# HTTP mode


async def test_http_dm_event_reaches_app_and_reply_is_posted(slack: FakeSlackServer) -> None:
    app = bolt_app(slack)
    seen: list[dict[str, Any]] = []

    @app.event("message")
    async def on_message(event: dict[str, Any], say: Any) -> None:
        seen.append(event)
        await say(f"echo: {event['text']}")

    async with serve_http(app, slack):
        status = await slack.send_dm(ALICE.id, "hello")
        assert status == 200
        dm = slack.dm_channel_of(ALICE.id)
        [reply] = await slack.wait_for_messages(dm, 1, timeout=2.0)

    assert reply.text == "echo: hello"
    assert reply.channel == dm and dm.startswith("D")
    assert seen[0]["channel_type"] == "im" and seen[0]["user"] == ALICE.id
    assert slack.last_event_id and slack.last_event_id.startswith("Ev")
    assert slack.calls_to("auth.test"), "bolt authorizes via auth.test against the fake"
    post = slack.calls_to("chat.postMessage")[0]
    assert post.params["channel"] == dm and post.status == 200
    assert slack.last_message(ALICE.id) is reply  # a user id stands for their DM


async def test_http_forged_and_stale_signatures_are_rejected(slack: FakeSlackServer) -> None:
    app = bolt_app(slack)
    seen: list[str] = []

    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        seen.append(event["text"])

    async with serve_http(app, slack):
        assert await slack.send_dm(ALICE.id, "forged", signing_secret="not-the-secret") == 401
        stale = int(time.time()) - 6 * 60
        assert await slack.send_dm(ALICE.id, "stale", timestamp=stale) == 401
        assert await slack.send_dm(ALICE.id, "fine") == 200
        await wait_until(lambda: seen == ["fine"])


async def test_http_retry_headers_reach_the_app(slack: FakeSlackServer) -> None:
    app = bolt_app(slack)
    retries: list[tuple[str, list[str]]] = []

    @app.event("message")
    async def on_message(body: dict[str, Any], request: Any) -> None:
        retries.append((body["event_id"], request.headers.get("x-slack-retry-num", [])))

    async with serve_http(app, slack):
        assert await slack.send_dm(ALICE.id, "once") == 200
        first_id = slack.last_event_id
        assert await slack.send_dm(ALICE.id, "once", event_id=first_id, retry_num=1) == 200
        await wait_until(lambda: len(retries) == 2)

    assert retries == [(first_id, []), (first_id, ["1"])]


async def test_http_slash_command_is_acked(slack: FakeSlackServer) -> None:
    app = bolt_app(slack)

    @app.command("/fidelio")
    async def on_command(ack: Any, command: dict[str, Any]) -> None:
        await ack(f"got {command['text']} from {command['user_id']} in {command['channel_id']}")

    async with serve_http(app, slack):
        assert await slack.slash_command(ALICE.id, "status") == 200

    dm = slack.dm_channel_of(ALICE.id)
    assert slack.last_ack == {"text": f"got status from {ALICE.id} in {dm}"}


async def test_http_button_press_reaches_action_listener(slack: FakeSlackServer) -> None:
    app = bolt_app(slack)
    clicked: list[dict[str, Any]] = []

    @app.action("approve")
    async def on_approve(
        ack: Any, body: dict[str, Any], action: dict[str, Any], client: Any, respond: Any
    ) -> None:
        await ack()
        clicked.append(action)
        await client.chat_update(
            channel=body["channel"]["id"], ts=body["message"]["ts"], text="Approved", blocks=[]
        )
        await respond(text="thanks!", replace_original=False)

    client = web_client(slack)
    posted = await client.chat_postMessage(
        channel=ALICE.id, text="Approve?", blocks=APPROVAL_BLOCKS
    )
    msg = slack.last_message(ALICE.id)
    assert msg.ts == posted["ts"]
    assert msg.buttons() == [
        ("Approve", "approve", "briefing-42"),
        ("Reject", "reject", "briefing-42"),
    ]
    assert all(b.get("block_id") for b in msg.blocks or []), "Slack fills in block_ids"

    async with serve_http(app, slack):
        assert await slack.press(ALICE.id, "Approve") == 200
        await wait_until(lambda: bool(msg.updates) and bool(slack.responses))

    assert clicked[0]["action_id"] == "approve" and clicked[0]["value"] == "briefing-42"
    assert clicked[0]["block_id"] == "decide"
    assert msg.text == "Approved" and msg.blocks == []
    assert msg.updates[0]["ts"] == msg.ts
    assert slack.responses == [{"text": "thanks!", "replace_original": False}]
    assert slack.ephemerals[-1]["text"] == "thanks!"

    with pytest.raises(LookupError, match="Approve"):
        await slack.press(ALICE.id, "Approve")  # the update removed the buttons


async def test_http_press_raw_and_view_submission(slack: FakeSlackServer) -> None:
    app = bolt_app(slack)
    raw: list[dict[str, Any]] = []
    submitted: list[dict[str, Any]] = []

    @app.command("/fidelio")
    async def on_command(ack: Any, body: dict[str, Any], client: Any) -> None:
        await ack()
        await client.views_open(
            trigger_id=body["trigger_id"],
            view={
                "type": "modal",
                "callback_id": "suggestion",
                "private_metadata": "topic-7",
                "title": {"type": "plain_text", "text": "Suggest"},
                "submit": {"type": "plain_text", "text": "Send"},
                "blocks": [
                    {
                        "type": "input",
                        "block_id": "idea",
                        "label": {"type": "plain_text", "text": "Idea"},
                        "element": {"type": "plain_text_input", "action_id": "text"},
                    }
                ],
            },
        )

    @app.action("stale_vote")
    async def on_stale(ack: Any, action: dict[str, Any]) -> None:
        await ack()
        raw.append(action)

    @app.view("suggestion")
    async def on_submit(ack: Any, view: dict[str, Any]) -> None:
        submitted.append(view)
        await ack(response_action="errors", errors={"idea": "too short"})

    async with serve_http(app, slack):
        assert await slack.slash_command(ALICE.id, "suggest") == 200
        await wait_until(lambda: bool(slack.views))
        assert slack.views[0]["method"] == "views.open"
        assert slack.views[0]["view"]["callback_id"] == "suggestion"
        used_trigger = slack.views[0]["trigger_id"]

        assert await slack.press_raw(ALICE.id, "stale_vote", "v-1") == 200
        assert (
            await slack.submit_view(ALICE.id, "suggestion", {"idea": {"text": "more coffee"}})
            == 200
        )

    assert raw[0]["value"] == "v-1"
    assert submitted[0]["state"]["values"] == {
        "idea": {"text": {"type": "plain_text_input", "value": "more coffee"}}
    }
    assert submitted[0]["private_metadata"] == "topic-7"  # echoed from the opened view
    assert slack.last_ack == {"response_action": "errors", "errors": {"idea": "too short"}}

    with pytest.raises(SlackApiError) as err:
        await web_client(slack).views_open(trigger_id="made-up", view={"type": "modal"})
    assert err.value.response["error"] == "invalid_trigger_id"
    with pytest.raises(SlackApiError) as err:  # a trigger_id is single use
        await web_client(slack).views_open(trigger_id=used_trigger, view={"type": "modal"})
    assert err.value.response["error"] == "exchanged_trigger_id"


# Web API


async def test_lookup_by_email_users_info_and_conversations_open(slack: FakeSlackServer) -> None:
    client = web_client(slack)
    found = await client.users_lookupByEmail(email="Alice@Example.com")
    assert found["user"]["id"] == ALICE.id and found["user"]["tz"] == "Europe/Rome"
    assert "locale" not in found["user"]  # Slack only returns it with users.info include_locale

    info = await client.users_info(user=ALICE.id, include_locale=True)
    assert info["user"]["locale"] == "it-IT"
    assert (await client.users_info(user=BOB.id))["user"]["deleted"] is True

    with pytest.raises(SlackApiError) as err:
        await client.users_lookupByEmail(email="nobody@example.com")
    assert err.value.response["error"] == "users_not_found"

    opened = await client.conversations_open(users=ALICE.id)
    assert opened["channel"]["id"] == slack.dm_channel_of(ALICE.id)
    again = await client.conversations_open(users=[ALICE.id])
    assert again["channel"]["id"] == opened["channel"]["id"] and again["already_open"] is True
    with pytest.raises(SlackApiError) as err:
        await client.conversations_open(users="U0NOBODY")
    assert err.value.response["error"] == "user_not_found"

    # The SDK sends bearer auth; the fake records merged params.
    assert slack.calls_to("users.lookupByEmail")[0].params["email"] == "Alice@Example.com"


async def test_auth_errors_and_unknown_method(slack: FakeSlackServer) -> None:
    bad = AsyncWebClient(token="xoxb-wrong", base_url=slack.base_url)
    with pytest.raises(SlackApiError) as err:
        await bad.chat_postMessage(channel=ALICE.id, text="hi")
    assert err.value.response.status_code == 200
    assert err.value.response["error"] == "invalid_auth"

    with pytest.raises(SlackApiError) as err:
        await AsyncWebClient(base_url=slack.base_url).auth_test()
    assert err.value.response["error"] == "invalid_auth"

    with pytest.raises(SlackApiError) as err:
        await web_client(slack).api_call("chat.teleport", json={"channel": "C1"})
    assert err.value.response["error"] == "unknown_method"

    auth = await web_client(slack).auth_test()
    assert auth["user_id"] == slack.bot_user_id and auth["team_id"] == slack.team_id


async def test_chat_update_delete_ephemeral_and_invalid_blocks(slack: FakeSlackServer) -> None:
    client = web_client(slack)
    dm = slack.dm_channel_of(ALICE.id)
    first = await client.chat_postMessage(channel=dm, text="one")
    second = await client.chat_postMessage(channel=dm, text="two", thread_ts=first["ts"])
    assert float(second["ts"]) > float(first["ts"])
    assert slack.last_message(dm).thread_ts == first["ts"]

    await client.chat_update(channel=dm, ts=first["ts"], text="one (edited)")
    assert slack.messages_in(dm)[0].text == "one (edited)"
    await client.chat_delete(channel=dm, ts=second["ts"])
    assert [m.text for m in slack.messages_in(dm)] == ["one (edited)"]

    await client.chat_postEphemeral(channel=dm, user=ALICE.id, text="psst")
    assert slack.ephemerals[0]["text"] == "psst" and len(slack.messages_in(dm)) == 1

    duplicate = [{"type": "section", "block_id": "x", "text": {"type": "mrkdwn", "text": "a"}}] * 2
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel=dm, text="dup", blocks=duplicate)
    assert err.value.response["error"] == "invalid_blocks"
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel=dm, ts="1.000001", text="?")
    assert err.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="DNOPE", text="?")
    assert err.value.response["error"] == "channel_not_found"


async def test_wait_for_messages_and_last_message_errors(slack: FakeSlackServer) -> None:
    with pytest.raises(LookupError):
        slack.last_message(ALICE.id)
    with pytest.raises(TimeoutError, match=r"expected 1 message\(s\)"):
        await slack.wait_for_messages(slack.dm_channel_of(ALICE.id), timeout=0.05)
    with pytest.raises(ValueError):
        slack.set_request_url("http://192.0.2.1/slack/events")
    with pytest.raises(ValueError):
        slack.inject("teapot")


async def test_files_upload_v2_stores_bytes(slack: FakeSlackServer) -> None:
    client = web_client(slack)
    dm = slack.dm_channel_of(ALICE.id)
    payload = bytes(range(256)) * 4
    result = await client.files_upload_v2(
        channel=dm,
        content=payload,
        filename="pulse.png",
        title="Pulse results",
        initial_comment="This week's pulse",
    )
    assert result["file"]["title"] == "Pulse results"
    [upload] = slack.uploads
    assert upload["content"] == payload
    assert upload["channel_id"] == dm
    assert upload["filename"] == "pulse.png" and upload["title"] == "Pulse results"
    assert upload["initial_comment"] == "This week's pulse"
    assert [c.method for c in slack.calls[-3:]] == [
        "files.getUploadURLExternal",
        UPLOAD_METHOD,
        "files.completeUploadExternal",
    ]


# Limits & faults


async def test_injected_429_raises_with_retry_after(slack: FakeSlackServer) -> None:
    slack.inject("429", method="chat.postMessage", retry_after=7)
    client = web_client(slack)
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel=ALICE.id, text="hi")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"
    assert err.value.response["error"] == "ratelimited"
    assert slack.rate_limited == 1
    assert slack.messages_in(ALICE.id) == []
    await client.chat_postMessage(channel=ALICE.id, text="hi")  # consumed after one call
    assert len(slack.messages_in(ALICE.id)) == 1


async def test_per_channel_rate_limit_uses_sliding_window() -> None:
    async with FakeSlackServer(per_channel_per_s=1.0, rate_scale=5.0) as slack:
        slack.add_user(ALICE)
        client = web_client(slack)
        for i in range(5):
            await client.chat_postMessage(channel=ALICE.id, text=f"m{i}")
        with pytest.raises(SlackApiError) as err:
            await client.chat_postMessage(channel=ALICE.id, text="too fast")
        assert err.value.response.status_code == 429
        assert int(err.value.response.headers["Retry-After"]) >= 1
        await client.chat_postMessage(channel="C0GENERAL", text="other channel is fine")
        await asyncio.sleep(1.0)
        await client.chat_postMessage(channel=ALICE.id, text="after the window")
        assert slack.rate_limited == 1
        assert [c.status for c in slack.calls_to("chat.postMessage")] == [200] * 5 + [429, 200, 200]


async def test_workspace_rate_limit_spans_methods() -> None:
    async with FakeSlackServer(workspace_per_s=2.0, rate_scale=2.0) as slack:
        slack.add_user(ALICE)
        client = web_client(slack)
        await client.auth_test()  # exempt
        for _ in range(4):
            await client.users_info(user=ALICE.id)
        with pytest.raises(SlackApiError) as err:
            await client.conversations_open(users=ALICE.id)
        assert err.value.response.status_code == 429
        assert slack.rate_limited == 1


async def test_injected_500_and_503(slack: FakeSlackServer) -> None:
    client = web_client(slack)
    slack.inject("500")
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel=ALICE.id, text="hi")
    assert err.value.response.status_code == 500
    assert slack.messages_in(ALICE.id) == []

    slack.inject("503", method="chat.postMessage")
    retrying = web_client(slack, retry_handlers=[AsyncServerErrorRetryHandler(max_retry_count=1)])
    await retrying.chat_postMessage(channel=ALICE.id, text="hi")
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [500, 503, 200]


async def test_injected_slack_errors_match_channel_and_method(slack: FakeSlackServer) -> None:
    client = web_client(slack)
    slack.inject("channel_not_found", channel=ALICE.id, times=2)
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel=slack.dm_channel_of(ALICE.id), text="x")
    assert err.value.response["error"] == "channel_not_found"
    assert err.value.response.status_code == 200
    await client.chat_postMessage(channel="C0GENERAL", text="other channel unaffected")
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel=ALICE.id, text="user id resolves to the DM")

    slack.inject("account_inactive", method="users.info")
    await client.chat_postMessage(channel=ALICE.id, text="other method unaffected")
    with pytest.raises(SlackApiError) as err:
        await client.users_info(user=ALICE.id)
    assert err.value.response["error"] == "account_inactive"


async def test_injected_timeout_posts_but_answers_late(slack: FakeSlackServer) -> None:
    slack.inject("timeout", method="chat.postMessage", delay=30.0)
    impatient = web_client(slack, timeout=1)
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await impatient.chat_postMessage(channel=ALICE.id, text="did it land?")
    assert time.monotonic() - started < 2.0
    assert [m.text for m in slack.messages_in(ALICE.id)] == ["did it land?"]
    # The fixture's stop() must not wait out the 30 s delay (the test budget would catch it).


async def test_injected_reset_drops_the_connection(slack: FakeSlackServer) -> None:
    slack.inject("reset", method="chat.postMessage")
    no_retry = web_client(slack, retry_handlers=[])
    with pytest.raises(aiohttp.ClientError):
        await no_retry.chat_postMessage(channel=ALICE.id, text="lost")
    assert slack.messages_in(ALICE.id) == []

    # slack_sdk's default handlers retry a dropped connection once.
    slack.inject("reset", method="chat.postMessage")
    await web_client(slack).chat_postMessage(channel=ALICE.id, text="retried")
    assert [m.text for m in slack.messages_in(ALICE.id)] == ["retried"]
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [0, 0, 200]


async def test_injected_lost_answer_posts_then_cuts_the_connection(slack: FakeSlackServer) -> None:
    slack.inject("lost_answer", method="chat.postMessage")
    no_retry = web_client(slack, retry_handlers=[])
    with pytest.raises(aiohttp.ClientError):
        await no_retry.chat_postMessage(channel=ALICE.id, text="landed, unanswered")
    assert [m.text for m in slack.messages_in(ALICE.id)] == ["landed, unanswered"]


async def test_history_pages_newest_first_with_metadata_on_request(
    slack: FakeSlackServer,
) -> None:
    client = web_client(slack)
    dm = slack.dm_channel_of(ALICE.id)
    first = await client.chat_postMessage(channel=dm, text="before")
    for i in range(3):
        await client.chat_postMessage(
            channel=dm,
            text=f"m{i}",
            metadata={"event_type": "fidelio_delivery", "event_payload": {"key": f"k{i}"}},
        )
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel=dm, text="x", metadata={"event_type": 1})
    assert err.value.response["error"] == "invalid_metadata_format"

    page = await client.conversations_history(
        channel=dm, oldest=first["ts"], limit=2, include_all_metadata=True
    )
    assert [m["text"] for m in page["messages"]] == ["m2", "m1"]
    assert page["messages"][0]["metadata"]["event_payload"] == {"key": "k2"}
    assert page["has_more"] is True
    cursor = page["response_metadata"]["next_cursor"]
    rest = await client.conversations_history(
        channel=dm, oldest=first["ts"], limit=2, include_all_metadata=True, cursor=cursor
    )
    assert [m["text"] for m in rest["messages"]] == ["m0"]
    assert rest["has_more"] is False
    # Without include_all_metadata, messages come without their metadata.
    plain = await client.conversations_history(channel=dm)
    assert [m["text"] for m in plain["messages"]] == ["m2", "m1", "m0", "before"]
    assert all("metadata" not in m for m in plain["messages"])
    with pytest.raises(SlackApiError) as err:
        await client.conversations_history(channel="D0NOWHERE")
    assert err.value.response["error"] == "channel_not_found"


async def test_history_has_its_own_tier_limit() -> None:
    async with FakeSlackServer(history_per_min=3, rate_scale=60.0) as slack:
        slack.add_user(ALICE)
        client = web_client(slack)
        dm = slack.dm_channel_of(ALICE.id)
        for _ in range(3):
            await client.conversations_history(channel=dm)
        with pytest.raises(SlackApiError) as err:
            await client.conversations_history(channel=dm)
        assert err.value.response.status_code == 429
        await client.chat_postMessage(channel=dm, text="other methods are not held back")
        await asyncio.sleep(1.0)  # the tier's minute, scaled down 60 times
        await client.conversations_history(channel=dm)
        assert slack.rate_limited == 1


# Socket Mode


async def test_socket_mode_dm_roundtrip(slack: FakeSlackServer) -> None:
    app = bolt_app(slack)

    @app.event("message")
    async def on_message(event: dict[str, Any], say: Any) -> None:
        await say(f"socket echo: {event['text']}")

    @app.command("/fidelio")
    async def on_command(ack: Any) -> None:
        await ack("pong")

    @app.action("approve")
    async def on_approve(ack: Any, respond: Any) -> None:
        await ack()
        await respond(text="Approved", replace_original=True)

    assert not slack.socket_connected
    async with socket_mode(app, slack):
        assert slack.socket_connected
        opened = slack.calls_to("apps.connections.open")
        assert opened and opened[0].status == 200

        assert await slack.send_dm(ALICE.id, "over the socket") == 200
        [reply] = await slack.wait_for_messages(ALICE.id, 1, timeout=2.0)
        assert reply.text == "socket echo: over the socket"

        assert await slack.slash_command(ALICE.id, "ping") == 200
        assert slack.last_ack == {"text": "pong"}

        await web_client(slack).chat_postMessage(
            channel=ALICE.id, text="Approve?", blocks=APPROVAL_BLOCKS
        )
        msg: PostedMessage = slack.last_message(ALICE.id)
        assert await slack.press(ALICE.id, "Approve") == 200
        await wait_until(lambda: msg.text == "Approved")
        assert msg.blocks is None  # replace_original without blocks drops them

    await wait_until(lambda: not slack.socket_connected)


async def test_socket_mode_reconnects_on_disconnect(slack: FakeSlackServer) -> None:
    app = bolt_app(slack)

    @app.event("message")
    async def on_message(say: Any) -> None:
        await say("still here")

    async with socket_mode(app, slack):
        await slack.send_socket_disconnect()
        await wait_until(lambda: len(slack.calls_to("apps.connections.open")) == 2)
        await slack.wait_socket_connected(timeout=2.0)
        assert await slack.send_dm(ALICE.id, "after reconnect") == 200
        await slack.wait_for_messages(ALICE.id, 1, timeout=2.0)


async def test_socket_mode_unhandled_event_is_not_acked(slack: FakeSlackServer) -> None:
    app = bolt_app(slack)  # no listeners: bolt answers 404 and the handler sends no ack
    slack.ack_timeout = 0.3
    async with socket_mode(app, slack):
        assert await slack.send_dm(ALICE.id, "nobody listens") == 0
