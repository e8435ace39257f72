"""Slack adapter (slack-bolt AsyncApp + slack-sdk AsyncWebClient).

Socket Mode (``AsyncSocketModeHandler.connect_async``) or HTTP mode (``app.web_app()`` served by
an aiohttp AppRunner; bolt verifies the signing secret and refuses stale or forged requests
with 401). Never the sync App, never ``AsyncApp.start()``.

People are matched to Slack users by email (``users.lookupByEmail``); Fidelio writes to them in
their DM channel (``conversations.open``). One slash command, ``/fidelio <subcommand>``,
answered in the DM wherever it is typed. A modal's submission is acknowledged with its
outcome: closed, or refused fields marked (see :mod:`bot.channels.slack_answers`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.aiohttp_sites import bound_port
from bot.channels.callbacks import INVALID_ACTION, CallbackCodec
from bot.channels.port import (
    Address,
    Button,
    Elsewhere,
    HomeView,
    Message,
    MessageRef,
    PermanentFailure,
    RateLimited,
    SendError,
    TransientFailure,
    UnknownOutcome,
)
from bot.channels.slack_answers import (
    BLOCK_PREFIX,
    FORM_ANSWER_S,
    FormAnswer,
    command_elsewhere,
    post_ephemeral,
)
from bot.channels.slack_home import home_view
from bot.clock import Clock
from bot.config import SlackSettings
from bot.db.models import ChannelIdentity, ChannelName, Person
from bot.db.session import Database
from bot.events import (
    ButtonPressed,
    ChannelUser,
    CommandInvoked,
    FormSubmitted,
    InboundEvent,
    TextReceived,
    ViewOpened,
)
from bot.identities import link
from bot.markup import to_plain, to_slack_mrkdwn

log = logging.getLogger(__name__)

ACTION_PREFIX = "fidelio:"
SECTION_LIMIT = 3000
BUTTON_LABEL_LIMIT = 75
_UPLOAD_STATUS = re.compile(r"status: (\d{3})")
#: Message metadata event type that carries an outbox delivery's key.
DELIVERY_EVENT = "fidelio_delivery"
#: conversations.history page size, and how many pages a delivery search reads at most.
HISTORY_PAGE = 100
HISTORY_PAGES = 10
#: Slack's clock and Fidelio's may disagree a little: the history read starts this much
#: earlier than the delivery's first claim.
HISTORY_SKEW_S = 120.0
PERMANENT_ERRORS = {
    "channel_not_found",
    "account_inactive",
    "user_not_found",
    "users_not_found",
    "is_archived",
    "cannot_dm_bot",
    "not_in_channel",
    "user_disabled",
    "invalid_blocks",
    "msg_too_long",
    "no_text",
    "restricted_action",
    "not_authed",
    "invalid_auth",
    "token_revoked",
    # A scope the app was not granted (im:history for a delivery search): asking again will
    # not grant it.
    "missing_scope",
}


class SlackChannel:
    name = "slack"

    def __init__(self, settings: SlackSettings, codec: CallbackCodec):
        assert settings.bot_token is not None
        self.settings = settings
        self.codec = codec
        self.on_event: Callable[[InboundEvent], Awaitable[object]] | None = None
        # No automatic retries inside the SDK: the outbox decides, so nothing is sent twice
        # behind our back.
        self.client = AsyncWebClient(
            token=settings.bot_token.get_secret_value(),
            base_url=settings.base_url,
            timeout=settings.request_timeout_s,  # type: ignore[arg-type]
            retry_handlers=[],
        )
        self.app = AsyncApp(
            client=self.client,
            signing_secret=(
                settings.signing_secret.get_secret_value() if settings.signing_secret else ""
            ),
            request_verification_enabled=settings.mode == "http",
            logger=logging.getLogger("fidelio.slack_bolt"),
        )
        self.app.event("message")(self._on_message)
        self.app.event("app_home_opened")(self._on_home_opened)
        self.app.command(settings.command)(self._on_command)
        self.app.action(re.compile("^" + re.escape(ACTION_PREFIX)))(self._on_action)
        self.app.view(re.compile(".*"))(self._on_view)
        self._socket: AsyncSocketModeHandler | None = None
        self._runner: web.AppRunner | None = None
        self.http_port: int | None = None
        self._dm_cache: dict[str, str] = {}
        self.bot_user_id: str | None = None

    # Lifecycle

    async def start(self) -> None:
        # One HTTP session for every Web API call, so connections are kept alive: without it
        # slack-sdk opens (and closes) a session and a TCP connection per call. The SDK only
        # applies its own timeout to sessions it creates, so this one carries it.
        if self.client.session is None or self.client.session.closed:
            self.client.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.request_timeout_s),
                trust_env=False,  # like the SDK's sessions: no proxy from the environment
            )
        auth = await self.client.auth_test()  # fails early on a bad token
        self.bot_user_id = auth.get("user_id")
        if self.settings.mode == "socket":
            assert self.settings.app_token is not None
            self._socket = AsyncSocketModeHandler(
                self.app, self.settings.app_token.get_secret_value()
            )
            await self._socket.connect_async()
            log.info("slack: socket mode connected as %s", auth.get("user"))
        else:
            web_app = self.app.web_app(path=self.settings.http_path)
            self._runner = web.AppRunner(web_app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.settings.http_listen, self.settings.http_port)
            await site.start()
            self.http_port = bound_port(self._runner, self.settings.http_port)
            log.info(
                "slack: HTTP mode on %s:%s%s as %s",
                self.settings.http_listen,
                self.http_port,
                self.settings.http_path,
                auth.get("user"),
            )

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.client.session is not None:
            await self.client.session.close()
            self.client.session = None

    # Directory matching

    async def resolve(
        self, session: AsyncSession, user: ChannelUser, clock: Clock
    ) -> Person | None:
        """An unknown Slack user who writes to Fidelio is matched to the directory by email."""
        try:
            info = await self.client.users_info(user=user.external_id)
        except SlackApiError as exc:
            log.warning(
                "slack: users.info %s failed: %s", user.external_id, exc.response.get("error")
            )
            return None
        email = ((info.get("user") or {}).get("profile") or {}).get("email")
        if not email:
            return None
        person = await session.scalar(select(Person).where(Person.email == email.lower()))
        if person is None:
            return None
        address = user.address if user.address.startswith("D") else await self._dm(user.external_id)
        await link(session, person, ChannelName.slack, user.external_id, address, clock)
        return person

    async def sync_directory(self, db: Database, clock: Clock) -> tuple[int, int]:
        """Look up every active person without a Slack identity by email; link the ones found.

        Returns (linked, not found). Paced by the SDK's answers: a 429 waits ``Retry-After``.
        """
        async with db.session() as session:
            linked_ids = select(ChannelIdentity.person_id).where(
                ChannelIdentity.channel == ChannelName.slack
            )
            people = list(await session.scalars(select(Person).where(Person.id.not_in(linked_ids))))
        today = clock.now().date()
        found = missing = 0
        for person in people:
            if not person.is_active(today):
                continue
            user_id = await self._lookup(person.email)
            if user_id is None:
                missing += 1
                continue
            address = await self._dm(user_id)
            async with db.session() as session:
                fresh = await session.get(Person, person.id)
                if fresh is not None:
                    await link(session, fresh, ChannelName.slack, user_id, address, clock)
            found += 1
        log.info("slack: directory sync linked %d people, %d not found on Slack", found, missing)
        return found, missing

    async def _lookup(self, email: str) -> str | None:
        for _ in range(5):
            try:
                response = await self.client.users_lookupByEmail(email=email)
                return str(response["user"]["id"])
            except SlackApiError as exc:
                if exc.response.status_code == 429:
                    await asyncio.sleep(float(exc.response.headers.get("Retry-After", 1)))
                    continue
                if exc.response.get("error") == "users_not_found":
                    return None
                raise
        return None

    async def _dm(self, user_id: str) -> str:
        cached = self._dm_cache.get(user_id)
        if cached:
            return cached
        async with _translate_errors():
            response = await self.client.conversations_open(users=user_id)
        channel = str(response["channel"]["id"])
        self._dm_cache[user_id] = channel
        return channel

    # Inbound

    def _user(self, user_id: str, address: str) -> ChannelUser:
        return ChannelUser(self.name, user_id, address)

    async def _dispatch(self, event: InboundEvent) -> None:
        if self.on_event is not None:
            await self.on_event(event)

    async def _on_message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        # Only direct messages written by people: not our own echoes, edits or bots.
        if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype"):
            return
        user_id = event.get("user")
        if not user_id or user_id == self.bot_user_id:
            return
        event_id = str(body.get("event_id") or f"{event.get('channel')}:{event.get('ts')}")
        user = self._user(user_id, str(event["channel"]))
        await self._dispatch(TextReceived(user, event_id, str(event.get("text") or "")))

    async def _on_command(
        self, ack: Callable[..., Awaitable[Any]], command: dict[str, Any]
    ) -> None:
        await ack()
        user_id = str(command["user_id"])
        channel = str(command.get("channel_id") or "")
        # The answers always go to the person's direct message with Fidelio; typed anywhere
        # else (a channel, a conversation between people), a note there says so.
        address = await self._dm(user_id)
        head, _, rest = str(command.get("text") or "").strip().partition(" ")
        name = head.lstrip("/").lower() or "help"
        event_id = "command:" + str(command.get("trigger_id") or command.get("command_ts", ""))
        await self._dispatch(
            CommandInvoked(
                self._user(user_id, address),
                event_id,
                name,
                rest.strip(),
                trigger=command.get("trigger_id"),
                elsewhere=command_elsewhere(command) if channel != address else None,
            )
        )

    async def _on_action(
        self, ack: Callable[..., Awaitable[Any]], body: dict[str, Any], action: dict[str, Any]
    ) -> None:
        await ack()
        user_id = str(body["user"]["id"])
        container = body.get("container") or {}
        channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
        if not channel and container.get("type") == "view":
            channel = await self._dm(user_id)  # the Home tab: answered in the person's DM
        decoded = self.codec.decode(str(action.get("value") or ""), channel)
        name, value = decoded if decoded else (INVALID_ACTION, "")
        ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
        ref = MessageRef(self.name, channel, str(ts)) if ts else None
        trigger = body.get("trigger_id")
        event_id = f"action:{trigger}:{action.get('action_id')}"
        await self._dispatch(
            ButtonPressed(self._user(user_id, channel), event_id, name, value, ref, trigger)
        )

    async def _on_home_opened(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        """The person opened the app's Home tab (not its Messages tab): publish it."""
        user_id = str(event.get("user") or "")
        if event.get("tab") != "home" or not user_id:
            return
        channel = str(event.get("channel") or "")
        address = channel if channel.startswith("D") else await self._dm(user_id)
        event_id = str(body.get("event_id") or f"home:{user_id}:{event.get('event_ts')}")
        await self._dispatch(ViewOpened(self._user(user_id, address), event_id, "home"))

    async def _on_view(
        self, ack: Callable[..., Awaitable[Any]], body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        # The acknowledgement waits for the handler's outcome, to show refused fields in the
        # modal (see bot/channels/slack_answers.py), but never past FORM_ANSWER_S.
        answer = FormAnswer(ack, view)
        handling = asyncio.ensure_future(self._submitted(str(body["user"]["id"]), view, answer))
        await asyncio.wait({handling}, timeout=FORM_ANSWER_S)
        await answer({})  # closes the modal unless the handling has answered already
        await handling

    async def _submitted(self, user_id: str, view: dict[str, Any], answer: FormAnswer) -> None:
        values: dict[str, Any] = {}
        for block in ((view.get("state") or {}).get("values") or {}).values():
            for action_id, field in block.items():
                values[action_id] = (
                    field.get("value")
                    or (field.get("selected_option") or {}).get("value")
                    or [o.get("value") for o in field.get("selected_options") or []]
                )
        # The form's own context (e.g. which round and item) travels in private_metadata.
        values["_metadata"] = str(view.get("private_metadata") or "")
        event_id = f"view:{view.get('id')}:{view.get('hash')}"
        address = await self._dm(user_id)
        await self._dispatch(
            FormSubmitted(
                self._user(user_id, address),
                event_id,
                str(view.get("callback_id")),
                values,
                answer=answer,
            )
        )

    # ChatPort

    def blocks(self, message: Message, channel: str) -> list[dict[str, Any]]:
        """Block Kit for a neutral message: mrkdwn sections and one actions block."""
        text = to_slack_mrkdwn(message.text)
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": chunk}}
            for chunk in _chunks(text, SECTION_LIMIT)
        ]
        if message.buttons:
            blocks.append({"type": "actions", "elements": self._buttons(message.buttons, channel)})
        return blocks

    def _buttons(self, buttons: tuple[Button, ...], channel: str) -> list[dict[str, Any]]:
        return [
            {
                "type": "button",
                "action_id": f"{ACTION_PREFIX}{index}",
                "text": {"type": "plain_text", "text": b.label[:BUTTON_LABEL_LIMIT], "emoji": True},
                "value": self.codec.encode(b.action, b.value, channel),
            }
            for index, b in enumerate(buttons[:25])
        ]

    async def send(self, to: Address, message: Message) -> MessageRef:
        extra: dict[str, Any] = {}
        if message.delivery_key is not None:
            # Read back by find_delivery when this post's outcome is unknown.
            extra["metadata"] = {
                "event_type": DELIVERY_EVENT,
                "event_payload": {"key": message.delivery_key},
            }
        async with _translate_errors():
            response = await self.client.chat_postMessage(
                channel=to.chat_id,
                text=to_plain(message.text)[:3000],
                blocks=self.blocks(message, to.chat_id),
                unfurl_links=False,
                **extra,
            )
        return MessageRef(self.name, str(response["channel"]), str(response["ts"]))

    async def find_delivery(self, to: Address, key: str, since: datetime) -> MessageRef | None:
        """The bot's message in ``to`` posted since ``since`` whose metadata carries ``key``.

        Reads the DM's history newest first (``conversations.history`` with
        ``include_all_metadata``), a page at a time, at most :data:`HISTORY_PAGES` pages.
        """
        oldest = f"{max(since.timestamp() - HISTORY_SKEW_S, 0):.6f}"
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            async with _translate_errors():
                response = await self.client.conversations_history(
                    channel=to.chat_id,
                    oldest=oldest,
                    limit=HISTORY_PAGE,
                    include_all_metadata=True,
                    cursor=cursor,
                )
            for message in response.get("messages") or []:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == DELIVERY_EVENT and payload.get("key") == key:
                    return MessageRef(self.name, to.chat_id, str(message["ts"]))
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not response.get("has_more") or cursor is None:
                return None
        log.warning("slack: delivery %s not found in the last %d pages", key, HISTORY_PAGES)
        return None

    async def edit(self, ref: MessageRef, message: Message) -> None:
        async with _translate_errors():
            await self.client.chat_update(
                channel=ref.chat_id,
                ts=ref.message_id,
                text=to_plain(message.text)[:3000],
                blocks=self.blocks(message, ref.chat_id),
            )

    async def send_image(self, to: Address, png: bytes, caption: str) -> MessageRef:
        async with _translate_errors():
            response = await self.client.files_upload_v2(
                channel=to.chat_id,
                content=png,
                filename="fidelio-chart.png",
                title=to_plain(caption).split("\n", 1)[0][:200] or "chart",
                initial_comment=to_slack_mrkdwn(caption),
            )
        files = response.get("files") or [response.get("file") or {}]
        return MessageRef(self.name, to.chat_id, str(files[0].get("id", "")))

    async def open(self, external_id: str) -> Address:
        return Address(self.name, await self._dm(external_id))

    async def note_elsewhere(self, where: Elsewhere, message: Message) -> None:
        """An ephemeral message where a slash command was typed (its ``response_url``)."""
        timeout = self.settings.request_timeout_s
        await post_ephemeral(self.client.session, where.reply_to, message.text, timeout)

    async def publish_home(self, external_id: str, view: HomeView) -> None:
        """Publish a person's App Home tab (views.publish); its buttons are signed for their
        DM, where pressing one is answered."""
        dm = await self._dm(external_id)

        def encode(button: Button) -> str:
            return self.codec.encode(button.action, button.value, dm)

        async with _translate_errors():
            await self.client.views_publish(user_id=external_id, view=home_view(view, encode))

    async def open_form(self, trigger: str, form: Any) -> None:
        """Open a modal (views.open) for a bot.replies.FormSpec."""
        view = {
            "type": "modal",
            "callback_id": form.form,
            "private_metadata": form.metadata,
            "title": {"type": "plain_text", "text": form.title[:24]},
            "submit": {"type": "plain_text", "text": form.submit[:24]},
            "close": {"type": "plain_text", "text": "✕"},
            "blocks": [
                {
                    "type": "input",
                    "block_id": f"{BLOCK_PREFIX}{field.id}",
                    "label": {"type": "plain_text", "text": field.label[:2000]},
                    "optional": bool(getattr(field, "optional", False)),
                    "element": _form_element(field),
                }
                for field in form.fields
            ],
        }
        async with _translate_errors():
            await self.client.views_open(trigger_id=trigger, view=view)


def _form_element(field: Any) -> dict[str, Any]:
    """The Block Kit input element for a bot.replies.FormField (text, select, checkbox)."""
    kind = getattr(field, "kind", "text")
    if kind in ("select", "checkbox"):
        options = [
            {"text": {"type": "plain_text", "text": label[:75]}, "value": value}
            for value, label in field.options
        ]
        chosen = [o for o in options if o["value"] == field.initial]
        if kind == "select":
            element = {"type": "static_select", "action_id": field.id, "options": options}
            if chosen:
                element["initial_option"] = chosen[0]
            return element
        element = {"type": "checkboxes", "action_id": field.id, "options": options}
        if chosen:
            element["initial_options"] = chosen
        return element
    return {
        "type": "plain_text_input",
        "action_id": field.id,
        "multiline": field.multiline,
        "max_length": field.max_length,
        **({"initial_value": field.initial} if field.initial else {}),
    }


def _chunks(text: str, limit: int) -> list[str]:
    if not text:
        return [" "]
    out, current = [], ""
    for paragraph in text.split("\n"):
        while len(paragraph) > limit:
            out.append(paragraph[:limit])
            paragraph = paragraph[limit:]
        if len(current) + len(paragraph) + 1 > limit:
            out.append(current)
            current = paragraph
        else:
            current = f"{current}\n{paragraph}" if current else paragraph
    if current:
        out.append(current)
    return out


class _translate_errors:
    """Map slack-sdk and aiohttp exceptions onto the port's SendError family."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, _tb: Any) -> bool:
        if exc is None:
            return False
        if isinstance(exc, SlackApiError):
            status = exc.response.status_code
            error = str(exc.response.get("error") or "")
            if status == 429:
                raise RateLimited(
                    float(exc.response.headers.get("Retry-After", 1)), "slack"
                ) from exc
            if status >= 500:
                raise TransientFailure(f"slack: HTTP {status}") from exc
            if error in PERMANENT_ERRORS or status in (400, 403, 404):
                raise PermanentFailure(f"slack: {error or status}") from exc
            raise TransientFailure(f"slack: {error or status}") from exc
        if isinstance(exc, SlackRequestError):
            # files_upload_v2's raw upload (its step 2) answered non-200: nothing was shared
            # yet (sharing is step 3), so the whole upload may be tried again.
            status = _UPLOAD_STATUS.search(str(exc))
            if status is not None and status.group(1) == "429":
                raise RateLimited(1.0, "slack file upload") from exc
            raise TransientFailure(f"slack: {exc}") from exc
        if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
            raise TransientFailure(f"slack: cannot connect ({exc})") from exc
        if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
            raise UnknownOutcome("slack: timed out after sending") from exc
        if isinstance(exc, aiohttp.ClientError):
            # The connection dropped after the request left: Slack may have posted it.
            raise UnknownOutcome(f"slack: connection lost ({exc})") from exc
        if isinstance(exc, SendError):
            return False
        return False
