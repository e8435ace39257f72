"""What tests do as the people of the fake Slack workspace: register members, write DMs,
run slash commands, press buttons, submit modals, drop the socket, and read what the app
posted.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import secrets
import time
import uuid
from typing import Any, Unpack
from urllib.parse import urlencode, urlsplit

from .delivery import Forgery
from .records import (
    LOOPBACK_HOSTS,
    PostedMessage,
    RecordedCall,
    ResponseUrl,
    SlackUser,
    button_label,
    iter_buttons,
)


class DriverMixin:
    """The test-facing side of :class:`FakeSlackServer`."""

    # Directory & state queries

    def add_user(self, user: SlackUser) -> None:
        """Register (or replace) a workspace member."""
        self._users[user.id] = user

    def dm_channel_of(self, user_id: str) -> str:
        """The stable IM channel id between the bot and ``user_id`` (conversations.open's)."""
        dm = self._dm_by_user.get(user_id)
        if dm is None:
            # Deterministic across runs, Slack-shaped: "D" + 10 uppercase hex chars.
            dm = "D" + hashlib.sha1(user_id.encode()).hexdigest()[:10].upper()
            self._dm_by_user[user_id] = dm
            self._user_by_dm[dm] = user_id
        return dm

    def calls_to(self, method: str) -> list[RecordedCall]:
        """Recorded calls to one Web API method, in arrival order."""
        return [c for c in self.calls if c.method == method]

    def messages_in(self, channel: str) -> list[PostedMessage]:
        """Messages currently in ``channel`` (a user id means that user's DM), oldest first."""
        return list(self._messages.get(self._resolve_channel(channel), []))

    def last_message(self, channel: str) -> PostedMessage:
        """The newest message in ``channel``; ``LookupError`` if there is none."""
        messages = self.messages_in(channel)
        if not messages:
            raise LookupError(f"no messages in {channel!r}; {self._describe_messages()}")
        return messages[-1]

    async def wait_for_messages(
        self, channel: str, count: int = 1, timeout: float = 5.0
    ) -> list[PostedMessage]:
        """Wait until ``channel`` holds at least ``count`` messages and return them all.

        Raises ``TimeoutError`` describing what *was* posted and the recent Web API calls.
        """
        deadline = time.monotonic() + timeout
        while True:
            messages = self.messages_in(channel)
            if len(messages) >= count:
                return messages
            if time.monotonic() >= deadline:
                recent = ", ".join(f"{c.method}→{c.status}" for c in self.calls[-10:]) or "none"
                raise TimeoutError(
                    f"expected {count} message(s) in {channel!r} within {timeout}s, "
                    f"got {len(messages)}: {[m.text for m in messages]!r}. "
                    f"{self._describe_messages()}. Last Web API calls: {recent}"
                )
            await asyncio.sleep(0.01)

    def _describe_messages(self) -> str:
        counts = {ch: len(msgs) for ch, msgs in self._messages.items() if msgs}
        return f"messages per channel: {counts or 'none'}"

    # Driver: Slack → app

    @property
    def socket_connected(self) -> bool:
        """True while at least one Socket Mode client is connected."""
        return any(not ws.closed for ws in self._sockets)

    async def wait_socket_connected(self, timeout: float = 5.0) -> None:
        """Wait until a Socket Mode client is connected; ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + timeout
        while not self.socket_connected:
            if time.monotonic() >= deadline:
                opens = [c.status for c in self.calls_to("apps.connections.open")]
                raise TimeoutError(
                    f"no Socket Mode connection within {timeout}s "
                    f"(apps.connections.open statuses: {opens})"
                )
            await asyncio.sleep(0.01)

    async def send_socket_disconnect(self, reason: str = "refresh_requested") -> None:
        """Send Slack's ``{"type": "disconnect"}`` to connected clients (they should reconnect)."""
        for ws in list(self._sockets):
            if not ws.closed:
                await ws.send_json(
                    {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-slack"}}
                )

    def set_request_url(self, url: str) -> None:
        """HTTP mode: where signed events/commands/interactions are POSTed (loopback only)."""
        host = urlsplit(url).hostname
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"request URL must be a loopback address, got {url!r}")
        self._request_url = url

    def _issue_trigger(self) -> str:
        trigger = f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"
        self._triggers[trigger] = time.monotonic()
        return trigger

    def _issue_response_url(self, channel: str, message_ts: str | None) -> str:
        token = secrets.token_urlsafe(16)
        self._response_urls[token] = ResponseUrl(channel=channel, message_ts=message_ts)
        return f"{self._origin}/response/{token}"

    def _user_ref(self, user_id: str) -> dict[str, Any]:
        name = self._user_name(user_id)
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    async def send_dm(
        self,
        user_id: str,
        text: str,
        *,
        event_id: str | None = None,
        **forge: Unpack[Forgery],
    ) -> int:
        """Deliver a ``message.im`` event from ``user_id`` to the app.

        Returns the HTTP status (HTTP mode) or 200 once the socket envelope is acked (0 when the
        app does not answer within ``ack_timeout``).  ``event_id`` lets a test redeliver the same
        event (Slack retries keep the id; pair with ``retry_num``).  ``signing_secret`` and
        ``timestamp`` forge bad/stale signatures (HTTP mode only).  The id used is in
        ``last_event_id``.
        """
        self._event_seq += 1
        event_id = event_id or f"Ev{self._event_seq:04d}{secrets.token_hex(4).upper()}"
        self.last_event_id = event_id
        ts = self._next_ts()
        dm = self.dm_channel_of(user_id)
        event = {
            "type": "message",
            "channel": dm,
            "user": user_id,
            "text": text,
            "ts": ts,
            "event_ts": ts,
            "channel_type": "im",
            "team": self.team_id,
            "client_msg_id": str(uuid.uuid4()),
            "blocks": [
                {
                    "type": "rich_text",
                    "block_id": hashlib.sha1(ts.encode()).hexdigest()[:5],
                    "elements": [
                        {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
                    ],
                }
            ],
        }
        return await self._deliver_event(event, event_id, ts, **forge)

    async def _deliver_event(
        self, event: dict[str, Any], event_id: str, ts: str, **forge: Unpack[Forgery]
    ) -> int:
        """Deliver ``event`` in an Events API envelope, as Slack does (socket or HTTP)."""
        envelope = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(float(ts)),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        return await self._deliver(
            socket_type="events_api",
            payload=envelope,
            http_body=json.dumps(envelope).encode(),
            http_content_type="application/json",
            accepts_response_payload=False,
            **forge,
        )

    async def slash_command(
        self,
        user_id: str,
        text: str,
        *,
        command: str = "/fidelio",
        channel: str | None = None,
        **forge: Unpack[Forgery],
    ) -> int:
        """Invoke a slash command as ``user_id`` (default channel: the user's DM with the bot).

        Whatever the app acks with (e.g. ``ack("text")``) lands in ``last_ack``.  The payload's
        ``trigger_id`` is valid for views.open and its ``response_url`` records to ``responses``.
        """
        channel = channel or self.dm_channel_of(user_id)
        fields = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel,
            "channel_name": "directmessage" if channel.startswith("D") else channel,
            "user_id": user_id,
            "user_name": self._user_name(user_id),
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": self._issue_response_url(channel, None),
            "trigger_id": self._issue_trigger(),
        }
        return await self._deliver(
            socket_type="slash_commands",
            payload=fields,
            http_body=urlencode(fields).encode(),
            http_content_type="application/x-www-form-urlencoded",
            accepts_response_payload=True,
            **forge,
        )

    def _find_button_message(
        self, channel: str, ts: str | None, predicate: Any
    ) -> tuple[PostedMessage, str, dict] | None:
        """(message, block_id, element) of the first button matching ``predicate``.

        Looks at message ``ts`` if given, else at messages newest first.
        """
        messages = self._messages.get(channel, [])
        candidates = [m for m in messages if m.ts == ts] if ts else list(reversed(messages))
        for msg in candidates:
            for block_id, element in iter_buttons(msg.blocks or []):
                if predicate(element):
                    return msg, block_id, element
        return None

    async def press(
        self,
        user_id: str,
        label: str,
        *,
        channel: str | None = None,
        ts: str | None = None,
        **forge: Unpack[Forgery],
    ) -> int:
        """Click the button labelled ``label`` as ``user_id`` (a ``block_actions`` interaction).

        Default target: the newest message in the user's DM with such a button; ``channel``/``ts``
        pin it down.  ``LookupError`` (listing the labels available) when there is no such button.
        """
        target = self._resolve_channel(channel) if channel else self.dm_channel_of(user_id)
        found = self._find_button_message(target, ts, lambda el: button_label(el) == label)
        if found is None:
            available = [
                (m.ts, [b[0] for b in m.buttons()]) for m in self._messages.get(target, [])
            ]
            raise LookupError(
                f"no button labelled {label!r} in {target!r}"
                + (f" message {ts}" if ts else "")
                + f"; buttons present (ts, labels): {available}"
            )
        msg, block_id, element = found
        action: dict[str, Any] = {
            "action_id": element.get("action_id", ""),
            "block_id": block_id,
            "type": "button",
            "text": {"type": "plain_text", "text": label, "emoji": True},
            "action_ts": f"{time.time():.6f}",
        }
        if "value" in element:  # Slack omits value when the button has none
            action["value"] = element["value"]
        if "style" in element:
            action["style"] = element["style"]
        return await self._send_block_action(user_id, target, msg, action, forge)

    async def press_raw(
        self,
        user_id: str,
        action_id: str,
        value: str,
        *,
        channel: str | None = None,
        ts: str | None = None,
        **forge: Unpack[Forgery],
    ) -> int:
        """Send a ``block_actions`` interaction with an arbitrary ``action_id``/``value``.

        For stale or tampered clicks: the message need not contain such a button.  The payload
        refers to message ``ts`` (default: the newest message in the channel, or a made-up ts if
        the channel is empty).
        """
        target = self._resolve_channel(channel) if channel else self.dm_channel_of(user_id)
        messages = self._messages.get(target, [])
        msg: PostedMessage | None
        if ts:
            msg = self._find_message(target, ts) or PostedMessage(ts, target, "", [])
        else:
            msg = messages[-1] if messages else PostedMessage(self._next_ts(), target, "", [])
        found = self._find_button_message(
            target, msg.ts, lambda el: el.get("action_id") == action_id
        )
        block_id = found[1] if found else "fake_block"
        label = button_label(found[2]) if found else action_id
        action = {
            "action_id": action_id,
            "block_id": block_id,
            "value": value,
            "type": "button",
            "text": {"type": "plain_text", "text": label, "emoji": True},
            "action_ts": f"{time.time():.6f}",
        }
        return await self._send_block_action(user_id, target, msg, action, forge)

    async def _send_block_action(
        self,
        user_id: str,
        channel: str,
        msg: PostedMessage,
        action: dict[str, Any],
        forge: Forgery,
    ) -> int:
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": msg.ts,
            "channel_id": channel,
            "is_ephemeral": False,
        }
        if msg.thread_ts:
            container["thread_ts"] = msg.thread_ts
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user_ref(user_id),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "container": container,
            "trigger_id": self._issue_trigger(),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {
                "id": channel,
                "name": "directmessage" if channel.startswith("D") else channel,
            },
            "message": self._message_obj(msg) | {"blocks": copy.deepcopy(msg.blocks or [])},
            "state": {"values": {}},
            "response_url": self._issue_response_url(channel, msg.ts),
            "actions": [action],
        }
        return await self._deliver_interaction(
            payload,
            accepts_response_payload=False,
            **forge,
        )

    async def submit_view(
        self,
        user_id: str,
        view_callback_id: str,
        values: dict,
        *,
        private_metadata: str = "",
        **forge: Unpack[Forgery],
    ) -> int:
        """Submit a modal (``view_submission``) with ``callback_id`` as ``user_id``.

        ``values`` is Slack's ``state.values`` shape ``{block_id: {action_id: {"type": ...,
        "value": ...}}}``; a bare string in place of the inner dict is shorthand for a
        ``plain_text_input``.  If the app opened a view with that callback_id, its id, blocks,
        title and (unless ``private_metadata`` is given) private_metadata are echoed, as Slack
        does.  Response actions the app acks with (e.g. errors) land in ``last_ack``.
        """
        opened = next(
            (
                v
                for v in reversed(self._view_objs.values())
                if v.get("callback_id") == view_callback_id
            ),
            None,
        )
        state_values: dict[str, dict[str, Any]] = {}
        for block_id, actions in values.items():
            state_values[block_id] = {
                action_id: (
                    copy.deepcopy(v)
                    if isinstance(v, dict)
                    else {"type": "plain_text_input", "value": v}
                )
                for action_id, v in actions.items()
            }
        view_id = opened["id"] if opened else self._new_view_id()
        view = {
            "id": view_id,
            "team_id": self.team_id,
            "type": "modal",
            "callback_id": view_callback_id,
            "private_metadata": private_metadata
            or (opened.get("private_metadata", "") if opened else ""),
            "blocks": copy.deepcopy(opened.get("blocks", [])) if opened else [],
            "title": copy.deepcopy(opened.get("title"))
            if opened and opened.get("title")
            else {"type": "plain_text", "text": "Fidelio"},
            "state": {"values": state_values},
            "hash": opened["hash"] if opened else f"{int(time.time())}.{secrets.token_hex(4)}",
            "clear_on_close": False,
            "notify_on_close": False,
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": self.api_app_id,
            "external_id": opened.get("external_id", "") if opened else "",
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        payload: dict[str, Any] = {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": self.team_domain},
            "user": self._user_ref(user_id),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "trigger_id": self._issue_trigger(),
            "view": view,
            "response_urls": [],
            "enterprise": None,
            "is_enterprise_install": False,
        }
        status = await self._deliver_interaction(
            payload,
            accepts_response_payload=True,
            **forge,
        )
        self.view_submissions.append(
            {
                "view_id": view_id,
                "callback_id": view_callback_id,
                "values": copy.deepcopy(state_values),
                "ack": copy.deepcopy(self.last_ack),
                "outcome": _view_outcome(view, self.last_ack) if status == 200 else "refused",
            }
        )
        return status


def _view_outcome(view: dict[str, Any], ack: dict | None) -> str:
    """What Slack does with the acknowledgement of a view_submission: an empty one closes the
    modal (so does ``clear``); ``update`` and ``push`` change it; ``errors`` needs a message
    for input blocks of the view, shown under each (the modal stays open); anything else is
    refused (Slack shows its own error)."""
    if not ack:
        return "closed"
    action = ack.get("response_action")
    if action == "clear":
        return "closed"
    if action in ("update", "push"):
        return str(action)
    if action != "errors":
        return "refused"
    errors = ack.get("errors")
    inputs = {b.get("block_id") for b in view.get("blocks", []) if b.get("type") == "input"}
    if (
        not isinstance(errors, dict)
        or not errors
        or not set(errors) <= inputs
        or not all(isinstance(m, str) and m.strip() for m in errors.values())
    ):
        return "refused"
    return "errors"
