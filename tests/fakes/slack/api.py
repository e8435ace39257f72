"""A fake Slack platform for tests.

Two halves, both served by one aiohttp server bound to ``127.0.0.1`` on an ephemeral port:

* **Web API** (``FakeSlackServer.base_url``): the subset of ``https://slack.com/api/`` Fidelio uses,
  speaking the same wire format as the real thing so the *real* ``slack_sdk.AsyncWebClient`` can be
  pointed at it.  Tokens go in ``Authorization: Bearer``; params may arrive as query string,
  form, multipart or JSON (slack_sdk mixes all of them).  Errors are HTTP 200
  ``{"ok": false, "error": ...}`` as Slack does, except rate limiting (HTTP 429 + ``Retry-After``)
  and injected 5xx faults.
* **Driver** (``send_dm``, ``slash_command``, ``press``, ``submit_view`` ...): plays Slack
  *towards* the app, either as signed HTTP requests to the app's Request URL or, when a Socket
  Mode client is connected (``apps.connections.open`` → ``ws://127.0.0.1:PORT/socket``), as
  envelopes over the websocket, waiting for the ``{"envelope_id": ...}`` ack.

Everything runs on the test's event loop; no locks are needed because handlers never await in the
middle of mutating state.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import hashlib
import hmac
import json
import logging
import math
import secrets
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

__all__ = [
    "FAULTS",
    "UPLOAD_METHOD",
    "FakeSlackServer",
    "PostedMessage",
    "RecordedCall",
    "SlackUser",
]

_log = logging.getLogger(__name__)

#: Faults accepted by :meth:`FakeSlackServer.inject`.
FAULTS: Final = frozenset(
    {"429", "500", "503", "timeout", "reset", "channel_not_found", "account_inactive"}
)
#: Methods that are neither rate limited nor hit by ``inject(method=None)``: Slack treats them
#: specially and a test that breaks them breaks the SDK's bootstrap rather than the code under test.
_EXEMPT_METHODS: Final = frozenset({"auth.test", "apps.connections.open"})
#: Pseudo method name under which the raw upload POST (step 2 of ``files_upload_v2``) is recorded
#: in ``calls``; ``inject(..., method=UPLOAD_METHOD)`` targets it.
UPLOAD_METHOD: Final = "upload_url"
_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
_MAX_BLOCKS: Final = 50
_MAX_TEXT: Final = 40_000


# --------------------------------------------------------------------------------------------
# public records
# --------------------------------------------------------------------------------------------


@dataclass
class RecordedCall:
    """One HTTP request received by the fake Web API (including rejected ones).

    ``params`` merges query string, form fields and JSON body (JSON values keep their types, so
    ``blocks`` is a list when the SDK sent JSON and a string when it sent a form).  ``status`` is
    the HTTP status eventually returned (0 for a dropped connection).  ``at`` is
    ``time.monotonic()`` at arrival.
    """

    method: str
    params: dict[str, Any]
    status: int
    at: float
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass
class PostedMessage:
    """A message the app posted (``chat.postMessage`` or an ``in_channel`` response_url post)."""

    ts: str
    channel: str
    text: str | None
    blocks: list[dict] | None
    thread_ts: str | None = None
    updates: list[dict] = field(default_factory=list)  # chat.update / replace_original params

    def buttons(self) -> list[tuple[str, str, str]]:
        """``(label, action_id, value)`` of every button element in ``blocks``, in document order.

        A button without ``value`` reports ``""`` (Slack then omits ``value`` from the action).
        """
        return [
            (_button_label(el), str(el.get("action_id", "")), str(el.get("value", "")))
            for _block_id, el in _iter_buttons(self.blocks or [])
        ]


@dataclass
class SlackUser:
    """A workspace member known to ``users.*`` / ``conversations.open``."""

    id: str
    email: str
    name: str
    tz: str = "Europe/Rome"
    locale: str = "en-US"
    is_bot: bool = False
    deleted: bool = False


# --------------------------------------------------------------------------------------------
# internals
# --------------------------------------------------------------------------------------------


@dataclass
class _Fault:
    kind: str
    method: str | None
    channel: str | None
    remaining: int
    retry_after: int
    delay: float


@dataclass
class _ResponseUrl:
    """Context of a ``response_url`` we handed out, so posts to it can act on the right message."""

    channel: str
    message_ts: str | None


class _SlidingWindow:
    """Sliding-window limiter admitting ``rate`` calls per second.

    For integer rates this is exactly "at most ``rate`` calls in any one-second window".  For
    fractional rates (e.g. 0.5/s) the window stretches so the long-run rate is preserved:
    ``capacity = max(1, floor(rate))`` calls per ``capacity / rate`` seconds.
    """

    def __init__(self, rate_per_s: float) -> None:
        if rate_per_s <= 0:
            raise ValueError(f"rate must be positive, got {rate_per_s}")
        self.capacity = max(1, math.floor(rate_per_s))
        self.window = self.capacity / rate_per_s
        self._hits: deque[float] = deque()

    def wait_time(self, now: float) -> float:
        """Seconds until a call would be admitted (0 if it would be admitted now)."""
        while self._hits and now - self._hits[0] >= self.window:
            self._hits.popleft()
        if len(self._hits) < self.capacity:
            return 0.0
        return self._hits[0] + self.window - now

    def commit(self, now: float) -> None:
        self._hits.append(now)


def _button_label(element: dict) -> str:
    text = element.get("text")
    if isinstance(text, dict):
        return str(text.get("text", ""))
    return str(text or "")


def _iter_elements(block: dict) -> Iterator[dict]:
    """Interactive elements of one block (section accessory, actions/context/input elements)."""
    accessory = block.get("accessory")
    if isinstance(accessory, dict):
        yield accessory
    element = block.get("element")
    if isinstance(element, dict):
        yield element
    for el in block.get("elements") or []:
        if isinstance(el, dict):
            yield el


def _iter_buttons(blocks: list[dict]) -> Iterator[tuple[str, dict]]:
    """``(block_id, button_element)`` pairs in document order."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        for el in _iter_elements(block):
            if el.get("type") == "button":
                yield str(block.get("block_id", "")), el


def _parse_json_field(value: Any) -> Any:
    """Form-encoded requests carry ``blocks``/``view``/``files`` as JSON strings."""
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _truthy(value: Any) -> bool:
    """Slack booleans: ``true``/``1``; slack_sdk turns Python bools into ``"1"``/``"0"``."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


def _validate_blocks(blocks: Any) -> list[str]:
    """A light version of Slack's Block Kit validation: the mistakes that bite in production.

    Returns Slack-style error strings (empty list = valid).
    """
    if not isinstance(blocks, list):
        return ["must provide an array [json-pointer:/blocks]"]
    errors: list[str] = []
    if len(blocks) > _MAX_BLOCKS:
        errors.append(f"no more than {_MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"missing required field: type [json-pointer:{where}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in block_ids:
                errors.append(f"duplicate block_id [json-pointer:{where}/block_id]")
            block_ids.add(block_id)
        text = block.get("text")
        if block["type"] == "section" and isinstance(text, dict):
            if len(str(text.get("text", ""))) > 3000:
                errors.append(f"must be less than 3001 characters [json-pointer:{where}/text/text]")
        action_ids: set[str] = set()
        for el in _iter_elements(block):
            action_id = el.get("action_id")
            if action_id is not None:
                if action_id in action_ids:
                    errors.append(f"duplicate action_id {action_id!r} [json-pointer:{where}]")
                action_ids.add(action_id)
                if len(str(action_id)) > 255:
                    errors.append(f"action_id too long [json-pointer:{where}]")
            if el.get("type") == "button":
                label = _button_label(el)
                if not label:
                    errors.append(f"missing required field: text [json-pointer:{where}]")
                elif len(label) > 75:
                    errors.append(f"must be less than 76 characters [json-pointer:{where}/text]")
                if len(str(el.get("value", ""))) > 2000:
                    errors.append(f"must be less than 2001 characters [json-pointer:{where}/value]")
    return errors


def _tz_offset(tz: str) -> int:
    try:
        from zoneinfo import ZoneInfo

        offset = datetime.now(UTC).astimezone(ZoneInfo(tz)).utcoffset()
        return int(offset.total_seconds()) if offset is not None else 0
    except Exception:  # noqa: BLE001 - missing tzdata must not break the fake
        return 0


# --------------------------------------------------------------------------------------------
# the fake
# --------------------------------------------------------------------------------------------


class FakeSlackServer:
    """Fake Slack Web API + Slack-side driver. Use as ``async with FakeSlackServer() as slack:``.

    Rate limits: ``chat.postMessage`` is limited to ``per_channel_per_s × rate_scale`` per channel,
    and every Web API call except ``auth.test``/``apps.connections.open`` counts against
    ``workspace_per_s × rate_scale``; sliding windows, see :class:`_SlidingWindow`.  ``Retry-After``
    is whole seconds, at least 1 (as on Slack), even when ``rate_scale`` makes the window shorter.
    """

    #: How long the driver waits for the app to answer (Slack gives up after 3 s).
    ack_timeout: float = 3.0
    #: trigger_ids are single use and expire after 3 s on Slack.
    trigger_ttl: float = 3.0
    api_app_id: str = "A0FIDELIO"
    bot_id: str = "B0FIDELIO"
    team_domain: str = "fidelio-test"
    team_name: str = "Fidelio Test"
    #: The deprecated verification token Slack still puts in payloads (bolt ignores it).
    verification_token: str = "fake-verification-token"

    def __init__(
        self,
        *,
        signing_secret: str = "test-signing-secret",
        bot_token: str = "xoxb-test-token",
        app_token: str = "xapp-test-token",
        team_id: str = "T000FIDELIO",
        bot_user_id: str = "U0BOT",
        per_channel_per_s: float = 1.0,
        workspace_per_s: float = 50.0,
        rate_scale: float = 1.0,
    ) -> None:
        self.signing_secret = signing_secret
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self._per_channel_rate = per_channel_per_s * rate_scale
        self._workspace = _SlidingWindow(workspace_per_s * rate_scale)
        self._channel_windows: dict[str, _SlidingWindow] = {}

        # --- observable state ---
        self.calls: list[RecordedCall] = []
        self.uploads: list[dict] = []
        self.views: list[dict] = []
        self.responses: list[dict] = []
        #: chat.postEphemeral calls and ephemeral response_url posts
        #: ({"channel", "user", "text", "blocks", ...})
        self.ephemerals: list[dict] = []
        #: messages removed by chat.delete / delete_original (no longer in ``messages_in``)
        self.deleted_messages: list[PostedMessage] = []
        self.rate_limited = 0
        #: event_id of the last event sent by :meth:`send_dm`
        self.last_event_id: str | None = None
        #: what the app answered to the last driver call: the JSON body / socket ack payload as
        #: a dict (a plain-text HTTP body becomes ``{"text": body}``, as bolt does over sockets),
        #: or None.
        self.last_ack: dict | None = None

        # --- internal state ---
        self._users: dict[str, SlackUser] = {}
        self._dm_by_user: dict[str, str] = {}
        self._user_by_dm: dict[str, str] = {}
        self._messages: dict[str, list[PostedMessage]] = {}
        self._faults: list[_Fault] = []
        self._last_ts_us = 0
        self._event_seq = 0
        self._file_seq = 0
        self._view_seq = 0
        self._pending_files: dict[str, dict[str, Any]] = {}
        self._view_objs: dict[str, dict[str, Any]] = {}
        self._triggers: dict[str, float] = {}  # trigger_id -> monotonic issue time
        self._used_triggers: set[str] = set()
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._tickets: set[str] = set()
        self._sockets: list[web.WebSocketResponse] = []
        self._pending_acks: dict[str, asyncio.Future[dict]] = {}
        self._request_url: str | None = None

        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._stopping = asyncio.Event()
        self._port = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind ``127.0.0.1:<ephemeral>`` and start serving."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_post("/response/{token}", self._handle_response_url)
        app.router.add_get("/socket", self._handle_socket)
        # Short shutdown_timeout: in-flight "timeout" faults are woken by _stopping anyway.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        # trust_env=False: a proxy from the environment must never see loopback traffic.
        self._http = aiohttp.ClientSession(trust_env=False)

    async def stop(self) -> None:
        """Close sockets, wake sleeping faults, and shut the server down."""
        self._stopping.set()
        # Release drivers waiting for an ack (they return 0) without cancelling their tasks.
        for fut in self._pending_acks.values():
            if not fut.done():
                fut.set_result({})
        self._pending_acks.clear()
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping")
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlackServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """Web API base URL, with the trailing slash slack_sdk expects."""
        return f"{self._origin}/api/"

    @property
    def _origin(self) -> str:
        if not self._port:
            raise RuntimeError("FakeSlackServer is not started")
        return f"http://127.0.0.1:{self._port}"

    # ------------------------------------------------------------------ directory & state queries

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

    # ------------------------------------------------------------------ faults

    def inject(
        self,
        fault: str,
        *,
        method: str | None = None,
        channel: str | None = None,
        times: int = 1,
        retry_after: int = 1,
        delay: float = 30.0,
    ) -> None:
        """Make the next ``times`` matching Web API calls fail with ``fault``.

        ``method=None`` matches any Web API method except auth.test / apps.connections.open (and not
        the upload POST, which is only hit by ``method=UPLOAD_METHOD``).  ``channel`` matches the
        call's ``channel``/``channel_id`` (user ids are resolved to their DM).  Faults are consumed
        in injection order.  Semantics:

        * ``"429"``: HTTP 429, ``Retry-After: retry_after``, ``{"ok":false,"error":"ratelimited"}``.
        * ``"500"``/``"503"``: that HTTP status with a JSON error body.
        * ``"timeout"``: the call is processed normally (a message IS posted) but the answer is
          held back ``delay`` seconds: an unknown outcome for a client with a shorter timeout.
        * ``"reset"``: the connection is dropped before processing (nothing happens).  Note that
          slack_sdk's default retry handler retries a dropped connection once.
        * ``"channel_not_found"``/``"account_inactive"``: HTTP 200 ``{"ok":false,"error":fault}``.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {sorted(FAULTS)}")
        if times < 1:
            raise ValueError("times must be >= 1")
        self._faults.append(
            _Fault(fault, method, channel, times, max(1, int(retry_after)), float(delay))
        )

    def _take_fault(self, method: str, params: dict[str, Any]) -> _Fault | None:
        call_channel = params.get("channel") or params.get("channel_id")
        for fault in self._faults:
            if fault.method is None:
                if method in _EXEMPT_METHODS or method == UPLOAD_METHOD:
                    continue
            elif fault.method != method:
                continue
            if fault.channel is not None:
                if not isinstance(call_channel, str):
                    continue
                if self._resolve_channel(call_channel) != self._resolve_channel(fault.channel):
                    continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            return fault
        return None

    def _fault_response(self, fault: _Fault) -> web.Response:
        if fault.kind == "429":
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(fault.retry_after)},
            )
        if fault.kind == "500":
            return web.json_response({"ok": False, "error": "internal_error"}, status=500)
        if fault.kind == "503":
            return web.json_response({"ok": False, "error": "service_unavailable"}, status=503)
        return web.json_response({"ok": False, "error": fault.kind})

    async def _sleep_unless_stopping(self, delay: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        except TimeoutError:
            pass

    @staticmethod
    def _drop_connection(request: web.Request) -> web.Response:
        # Abort the transport so the client sees a reset/disconnect instead of a response.
        transport = request.transport
        if transport is not None:
            transport.abort()
        return web.Response(status=500)  # never reaches the client

    # ------------------------------------------------------------------ Web API plumbing

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, bytes] = {}
        if request.method != "POST" or not request.body_exists:
            return params, files
        ctype = request.content_type
        if ctype == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        elif ctype in {"application/x-www-form-urlencoded", "multipart/form-data"}:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                else:
                    params[key] = value
        return params, files

    @staticmethod
    def _token_of(request: web.Request, params: dict[str, Any]) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer ") :].strip()
        token = params.get("token")
        return str(token) if token else None

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params, files = await self._read_params(request)
        call = RecordedCall(
            method=method, params=params, status=0, at=time.monotonic(), files=files
        )
        self.calls.append(call)

        fault = self._take_fault(method, params)
        if fault is not None and fault.kind == "reset":
            return self._drop_connection(request)
        if fault is not None and fault.kind != "timeout":
            response = self._fault_response(fault)
        else:
            response = self._process_api(method, params, files, self._token_of(request, params))
        call.status = response.status
        if response.status == 429:
            self.rate_limited += 1
        if fault is not None and fault.kind == "timeout":
            # Side effects already happened above; only the answer is late.
            await self._sleep_unless_stopping(fault.delay)
        return response

    def _process_api(
        self, method: str, params: dict[str, Any], files: dict[str, bytes], token: str | None
    ) -> web.Response:
        handler = self._handlers().get(method)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method", "req_method": method})

        if method not in _EXEMPT_METHODS:
            limited = self._check_rate_limits(method, params)
            if limited is not None:
                return limited

        # Slack answers auth failures with HTTP 200. An app-level token on a bot method (or the
        # reverse) is "not_allowed_token_type" on Slack, which catches wiring the wrong token.
        expected, other = (
            (self.app_token, self.bot_token)
            if method == "apps.connections.open"
            else (self.bot_token, self.app_token)
        )
        if token != expected:
            error = "not_allowed_token_type" if token == other else "invalid_auth"
            return web.json_response({"ok": False, "error": error})

        body = handler(params, files)
        return web.json_response(body)

    def _check_rate_limits(self, method: str, params: dict[str, Any]) -> web.Response | None:
        now = time.monotonic()
        waits = [self._workspace.wait_time(now)]
        channel_window: _SlidingWindow | None = None
        if method == "chat.postMessage" and isinstance(params.get("channel"), str):
            channel = self._resolve_channel(params["channel"])
            channel_window = self._channel_windows.get(channel)
            if channel_window is None:
                channel_window = _SlidingWindow(self._per_channel_rate)
                self._channel_windows[channel] = channel_window
            waits.append(channel_window.wait_time(now))
        wait = max(waits)
        if wait > 0:
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        # Only admitted calls occupy the windows, so a client hammering through 429s can recover.
        self._workspace.commit(now)
        if channel_window is not None:
            channel_window.commit(now)
        return None

    def _handlers(self) -> dict[str, Any]:
        return {
            "auth.test": self._api_auth_test,
            "apps.connections.open": self._api_connections_open,
            "users.lookupByEmail": self._api_users_lookup_by_email,
            "users.info": self._api_users_info,
            "conversations.open": self._api_conversations_open,
            "chat.postMessage": self._api_chat_post_message,
            "chat.update": self._api_chat_update,
            "chat.postEphemeral": self._api_chat_post_ephemeral,
            "chat.delete": self._api_chat_delete,
            "views.open": functools.partial(self._api_views, "views.open"),
            "views.push": functools.partial(self._api_views, "views.push"),
            "views.update": functools.partial(self._api_views, "views.update"),
            "views.publish": functools.partial(self._api_views, "views.publish"),
            "files.getUploadURLExternal": self._api_get_upload_url,
            "files.completeUploadExternal": self._api_complete_upload,
        }

    # ------------------------------------------------------------------ helpers shared by methods

    def _next_ts(self) -> str:
        """Unique, strictly increasing, wall-clock-ish Slack ts ("1700000000.000100")."""
        now_us = time.time_ns() // 1000
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _user_seen(self, user_id: str) -> bool:
        return user_id in self._users or user_id in self._dm_by_user

    def _resolve_channel(self, channel: str) -> str:
        """User ids stand for their DM (as chat.postMessage allows); everything else is as-is."""
        if channel[:1] in {"U", "W"} and self._user_seen(channel):
            return self.dm_channel_of(channel)
        return channel

    def _channel_exists(self, channel: str) -> bool:
        """Channels are not modelled (any C/G id exists); a DM must have been opened."""
        if channel.startswith("D"):
            return channel in self._user_by_dm
        return channel[:1] in {"C", "G"}

    def _user_name(self, user_id: str) -> str:
        user = self._users.get(user_id)
        return user.name if user is not None else user_id.lower()

    def _user_obj(self, user: SlackUser, *, include_locale: bool) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": user.id,
            "team_id": self.team_id,
            "name": user.name,
            "deleted": user.deleted,
            "real_name": user.name,
            "tz": user.tz,
            "tz_label": user.tz,
            "tz_offset": _tz_offset(user.tz),
            "is_bot": user.is_bot,
            "is_app_user": False,
            "profile": {
                "email": user.email,
                "real_name": user.name,
                "display_name": user.name,
                "team": self.team_id,
            },
        }
        # Like Slack, locale is only returned on request (users.info include_locale=true).
        if include_locale:
            obj["locale"] = user.locale
        return obj

    def _message_obj(self, msg: PostedMessage) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.api_app_id,
            "team": self.team_id,
            "ts": msg.ts,
            "text": msg.text or "",
        }
        if msg.blocks is not None:
            obj["blocks"] = copy.deepcopy(msg.blocks)
        if msg.thread_ts:
            obj["thread_ts"] = msg.thread_ts
        return obj

    @staticmethod
    def _with_block_ids(blocks: list[dict], salt: str) -> list[dict]:
        """Copy blocks, filling in missing block_ids the way Slack does on post."""
        result = copy.deepcopy(blocks)
        for i, block in enumerate(result):
            if isinstance(block, dict) and not block.get("block_id"):
                block["block_id"] = hashlib.sha1(f"{salt}:{i}".encode()).hexdigest()[:5]
        return result

    def _content_of(
        self, params: dict[str, Any]
    ) -> tuple[str | None, list[dict] | None, dict[str, Any] | None]:
        """(text, blocks, error body) for chat.postMessage/update/postEphemeral params."""
        text = params.get("text")
        text = None if text is None else str(text)
        blocks = params.get("blocks")
        if blocks is not None:
            blocks = _parse_json_field(blocks)
            errors = _validate_blocks(blocks)
            if errors:
                return (
                    None,
                    None,
                    {
                        "ok": False,
                        "error": "invalid_blocks",
                        "errors": errors,
                        "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]},
                    },
                )
        if text is not None and len(text) > _MAX_TEXT:
            return None, None, {"ok": False, "error": "msg_too_long"}
        return text, blocks, None

    def _find_message(self, channel: str, ts: str) -> PostedMessage | None:
        for msg in self._messages.get(channel, []):
            if msg.ts == ts:
                return msg
        return None

    def _post(
        self, channel: str, text: str | None, blocks: list[dict] | None, thread_ts: str | None
    ) -> PostedMessage:
        ts = self._next_ts()
        msg = PostedMessage(
            ts=ts,
            channel=channel,
            text=text,
            blocks=self._with_block_ids(blocks, ts) if blocks is not None else None,
            thread_ts=thread_ts or None,
        )
        self._messages.setdefault(channel, []).append(msg)
        return msg

    # ------------------------------------------------------------------ Web API methods

    def _api_auth_test(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": "fidelio",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _api_connections_open(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        ticket = secrets.token_hex(8)
        self._tickets.add(ticket)
        port = self._port
        return {
            "ok": True,
            "url": f"ws://127.0.0.1:{port}/socket?ticket={ticket}&app_id={self.api_app_id}",
        }

    def _api_users_lookup_by_email(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        email = str(params.get("email", "")).strip().lower()
        for user in self._users.values():
            if user.email.lower() == email:
                return {"ok": True, "user": self._user_obj(user, include_locale=False)}
        return {"ok": False, "error": "users_not_found"}

    def _api_users_info(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        user = self._users.get(str(params.get("user", "")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        include_locale = _truthy(params.get("include_locale", False))
        return {"ok": True, "user": self._user_obj(user, include_locale=include_locale)}

    def _api_conversations_open(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        channel = params.get("channel")
        if channel:
            if not self._channel_exists(str(channel)):
                return {"ok": False, "error": "channel_not_found"}
            return {"ok": True, "no_op": True, "already_open": True, "channel": {"id": channel}}
        users = [u.strip() for u in str(params.get("users") or "").split(",") if u.strip()]
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        if len(users) > 1:
            # Multi-party DMs are out of Fidelio's scope; fail loudly rather than fake them.
            return {"ok": False, "error": "not_supported_by_fake"}
        user_id = users[0]
        if not self._user_seen(user_id):
            return {"ok": False, "error": "user_not_found"}
        user = self._users.get(user_id)
        if user is not None and user.deleted:
            return {"ok": False, "error": "user_disabled"}
        already_open = user_id in self._dm_by_user
        dm = self.dm_channel_of(user_id)
        channel_obj: dict[str, Any] = {"id": dm}
        if _truthy(params.get("return_im", False)):
            channel_obj.update({"is_im": True, "user": user_id, "is_open": True})
        return {
            "ok": True,
            "no_op": already_open,
            "already_open": already_open,
            "channel": channel_obj,
        }

    def _api_chat_post_message(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        raw_channel = params.get("channel")
        if not raw_channel:
            return {"ok": False, "error": "channel_not_found"}
        channel = self._resolve_channel(str(raw_channel))
        if not self._channel_exists(channel):
            return {"ok": False, "error": "channel_not_found"}
        # Posting to a deactivated user's DM succeeds on Slack (python-slack-sdk#1156): callers
        # must check users.info `deleted` themselves, so the fake does not help them here.
        text, blocks, error = self._content_of(params)
        if error is not None:
            return error
        if not text and not blocks and not params.get("attachments"):
            return {"ok": False, "error": "no_text"}
        msg = self._post(channel, text, blocks, params.get("thread_ts"))
        return {"ok": True, "channel": channel, "ts": msg.ts, "message": self._message_obj(msg)}

    def _api_chat_update(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        channel = self._resolve_channel(str(params.get("channel", "")))
        msg = self._find_message(channel, str(params.get("ts", "")))
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        text, blocks, error = self._content_of(params)
        if error is not None:
            return error
        # Slack keeps the previous blocks when `blocks` is omitted (send [] to clear them).
        if text is not None:
            msg.text = text
        if blocks is not None:
            msg.blocks = self._with_block_ids(blocks, f"{msg.ts}:{len(msg.updates)}")
        update = dict(params)
        if blocks is not None:
            update["blocks"] = blocks
        msg.updates.append(update)
        return {
            "ok": True,
            "channel": channel,
            "ts": msg.ts,
            "text": msg.text or "",
            "message": self._message_obj(msg),
        }

    def _api_chat_post_ephemeral(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        channel = self._resolve_channel(str(params.get("channel", "")))
        if not self._channel_exists(channel):
            return {"ok": False, "error": "channel_not_found"}
        user = str(params.get("user", ""))
        if not self._user_seen(user):
            return {"ok": False, "error": "user_not_in_channel"}
        text, blocks, error = self._content_of(params)
        if error is not None:
            return error
        if not text and not blocks and not params.get("attachments"):
            return {"ok": False, "error": "no_text"}
        ts = self._next_ts()
        self.ephemerals.append(
            {
                "channel": channel,
                "user": user,
                "text": text,
                "blocks": blocks,
                "message_ts": ts,
                "thread_ts": params.get("thread_ts"),
            }
        )
        return {"ok": True, "message_ts": ts}

    def _api_chat_delete(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        channel = self._resolve_channel(str(params.get("channel", "")))
        msg = self._find_message(channel, str(params.get("ts", "")))
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        self._messages[channel].remove(msg)
        self.deleted_messages.append(msg)
        return {"ok": True, "channel": channel, "ts": msg.ts}

    def _api_views(
        self, method: str, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        """views.open / push / update / publish share one shape; ``method`` tells them apart."""
        view = _parse_json_field(params.get("view"))
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        if method in {"views.open", "views.push"}:
            trigger_id = params.get("trigger_id")
            if not trigger_id:
                return {"ok": False, "error": "invalid_arguments"}
            if trigger_id in self._used_triggers:
                return {"ok": False, "error": "exchanged_trigger_id"}
            issued = self._triggers.pop(str(trigger_id), None)
            if issued is None:
                return {"ok": False, "error": "invalid_trigger_id"}
            self._used_triggers.add(str(trigger_id))
            if time.monotonic() - issued > self.trigger_ttl:
                return {"ok": False, "error": "expired_trigger_id"}
        view_id: str
        if method == "views.update":
            view_id = str(params.get("view_id") or "")
            external_id = params.get("external_id")
            if not view_id and external_id:
                view_id = next(
                    (
                        vid
                        for vid, v in self._view_objs.items()
                        if v.get("external_id") == external_id
                    ),
                    "",
                )
            if view_id not in self._view_objs:
                return {"ok": False, "error": "not_found"}
            if params.get("hash") and params["hash"] != self._view_objs[view_id]["hash"]:
                return {"ok": False, "error": "hash_conflict"}
        elif method == "views.publish":
            if not params.get("user_id"):
                return {"ok": False, "error": "invalid_arguments"}
            view_id = (
                next(
                    (
                        vid
                        for vid, v in self._view_objs.items()
                        if v.get("type") == "home" and v.get("_user_id") == params["user_id"]
                    ),
                    "",
                )
                or self._new_view_id()
            )
        else:
            view_id = self._new_view_id()
        stored = {
            **copy.deepcopy(view),
            "id": view_id,
            "team_id": self.team_id,
            "app_id": self.api_app_id,
            "bot_id": self.bot_id,
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "state": {"values": {}},
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
        }
        if method == "views.publish":
            stored["_user_id"] = params["user_id"]
        self._view_objs[view_id] = stored
        self.views.append({**params, "view": view, "method": method})
        return {"ok": True, "view": {k: v for k, v in stored.items() if not k.startswith("_")}}

    def _new_view_id(self) -> str:
        self._view_seq += 1
        return f"V{self._view_seq:08d}"

    def _api_get_upload_url(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        filename = params.get("filename")
        length = params.get("length")
        if not filename or length is None:
            return {"ok": False, "error": "invalid_arguments"}
        self._file_seq += 1
        file_id = f"F{self._file_seq:08d}"
        self._pending_files[file_id] = {
            "filename": str(filename),
            "length": int(length),
            "alt_txt": params.get("alt_txt"),
            "content": None,
        }
        return {"ok": True, "upload_url": f"{self._origin}/upload/v1/{file_id}", "file_id": file_id}

    def _api_complete_upload(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        entries = _parse_json_field(params.get("files"))
        if not isinstance(entries, list) or not entries:
            return {"ok": False, "error": "invalid_arguments"}
        channel_id = params.get("channel_id") or None
        if channel_id is None and params.get("channels"):
            channel_id = str(params["channels"]).split(",")[0]
        if channel_id is not None and not self._channel_exists(self._resolve_channel(channel_id)):
            return {"ok": False, "error": "channel_not_found"}
        pending = [(e, self._pending_files.get(str(e.get("id")))) for e in entries]
        if any(p is None or p["content"] is None for _e, p in pending):
            return {"ok": False, "error": "file_not_found"}
        completed = []
        for entry, info in pending:
            assert info is not None  # checked above; narrows the type
            file_id = str(entry["id"])
            title = entry.get("title") or info["filename"]
            self._pending_files.pop(file_id)
            self.uploads.append(
                {
                    "channel_id": channel_id,
                    "title": title,
                    "filename": info["filename"],
                    "content": info["content"],
                    "initial_comment": params.get("initial_comment"),
                    "thread_ts": params.get("thread_ts"),
                    "file_id": file_id,
                }
            )
            completed.append(
                {
                    "id": file_id,
                    "name": info["filename"],
                    "title": title,
                    "size": len(info["content"]),
                    "channels": [channel_id] if channel_id else [],
                }
            )
        return {"ok": True, "files": completed}

    # ------------------------------------------------------------------ non-API endpoints

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        """Step 2 of files_upload_v2: raw bytes (or a multipart ``file``) POSTed to upload_url."""
        file_id = request.match_info["file_id"]
        if request.content_type == "multipart/form-data":
            form = await request.post()
            data = next((v.file.read() for v in form.values() if isinstance(v, web.FileField)), b"")
        else:
            data = await request.read()
        call = RecordedCall(
            method=UPLOAD_METHOD,
            params={"file_id": file_id},
            status=0,
            at=time.monotonic(),
            files={file_id: data},
        )
        self.calls.append(call)
        fault = self._take_fault(UPLOAD_METHOD, {})
        if fault is not None and fault.kind == "reset":
            return self._drop_connection(request)
        if fault is not None and fault.kind != "timeout":
            response = self._fault_response(fault)
        else:
            info = self._pending_files.get(file_id)
            if info is None:
                response = web.Response(status=404, text="Not Found", content_type="text/plain")
            else:
                info["content"] = data
                # What files.slack.com answers; slack_sdk only checks the status.
                response = web.Response(text=f"OK - {len(data)}", content_type="text/plain")
        call.status = response.status
        if fault is not None and fault.kind == "timeout":
            await self._sleep_unless_stopping(fault.delay)
        return response

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        """A post to a response_url we issued (bolt's ``respond()``), applied like Slack does."""
        ctx = self._response_urls.get(request.match_info["token"])
        if ctx is None:
            return web.Response(status=404, text="invalid_token")
        try:
            data = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(data, dict):
            return web.Response(status=400, text="invalid_payload")
        self.responses.append(data)
        channel = ctx.channel
        msg = self._find_message(channel, ctx.message_ts) if ctx.message_ts else None
        blocks = _parse_json_field(data.get("blocks")) if data.get("blocks") is not None else None
        if _truthy(data.get("delete_original", False)) and msg is not None:
            self._messages[channel].remove(msg)
            self.deleted_messages.append(msg)
        elif _truthy(data.get("replace_original", False)) and msg is not None:
            # replace_original replaces the whole message: omitted blocks are gone.
            msg.text = data.get("text")
            msg.blocks = (
                self._with_block_ids(blocks, f"{msg.ts}:{len(msg.updates)}")
                if blocks is not None
                else None
            )
            msg.updates.append(dict(data))
        elif data.get("response_type") == "in_channel":
            self._post(channel, data.get("text"), blocks, data.get("thread_ts"))
        else:
            self.ephemerals.append(
                {
                    "channel": channel,
                    "user": None,
                    "text": data.get("text"),
                    "blocks": blocks,
                    "via": "response_url",
                }
            )
        return web.json_response({"ok": True})

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        """The Socket Mode websocket: hello, then envelopes out / acks in."""
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)  # Slack's URLs are single use
        ws = web.WebSocketResponse(autoping=True, timeout=1.0)
        await ws.prepare(request)
        self._sockets.append(ws)
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": len(self._sockets),
                    "debug_info": {
                        "host": "fake-slack",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.api_app_id},
                }
            )
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    _log.warning("fake slack: non-JSON socket message %r", msg.data)
                    continue
                fut = self._pending_acks.pop(str(data.get("envelope_id")), None)
                if fut is not None and not fut.done():
                    fut.set_result(data)
        finally:
            if ws in self._sockets:
                self._sockets.remove(ws)
        return ws

    # ------------------------------------------------------------------ driver: Slack → app

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
        if host not in _LOOPBACK_HOSTS:
            raise ValueError(f"request URL must be a loopback address, got {url!r}")
        self._request_url = url

    def _issue_trigger(self) -> str:
        trigger = f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"
        self._triggers[trigger] = time.monotonic()
        return trigger

    def _issue_response_url(self, channel: str, message_ts: str | None) -> str:
        token = secrets.token_urlsafe(16)
        self._response_urls[token] = _ResponseUrl(channel=channel, message_ts=message_ts)
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
        retry_num: int | None = None,
        signing_secret: str | None = None,
        timestamp: int | None = None,
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
            retry_num=retry_num,
            signing_secret=signing_secret,
            timestamp=timestamp,
        )

    async def slash_command(
        self,
        user_id: str,
        text: str,
        *,
        command: str = "/fidelio",
        channel: str | None = None,
        retry_num: int | None = None,
        signing_secret: str | None = None,
        timestamp: int | None = None,
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
            retry_num=retry_num,
            signing_secret=signing_secret,
            timestamp=timestamp,
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
            for block_id, element in _iter_buttons(msg.blocks or []):
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
        retry_num: int | None = None,
        signing_secret: str | None = None,
        timestamp: int | None = None,
    ) -> int:
        """Click the button labelled ``label`` as ``user_id`` (a ``block_actions`` interaction).

        Default target: the newest message in the user's DM with such a button; ``channel``/``ts``
        pin it down.  ``LookupError`` (listing the labels available) when there is no such button.
        """
        target = self._resolve_channel(channel) if channel else self.dm_channel_of(user_id)
        found = self._find_button_message(target, ts, lambda el: _button_label(el) == label)
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
        return await self._send_block_action(
            user_id, target, msg, action, retry_num, signing_secret, timestamp
        )

    async def press_raw(
        self,
        user_id: str,
        action_id: str,
        value: str,
        *,
        channel: str | None = None,
        ts: str | None = None,
        retry_num: int | None = None,
        signing_secret: str | None = None,
        timestamp: int | None = None,
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
        label = _button_label(found[2]) if found else action_id
        action = {
            "action_id": action_id,
            "block_id": block_id,
            "value": value,
            "type": "button",
            "text": {"type": "plain_text", "text": label, "emoji": True},
            "action_ts": f"{time.time():.6f}",
        }
        return await self._send_block_action(
            user_id, target, msg, action, retry_num, signing_secret, timestamp
        )

    async def _send_block_action(
        self,
        user_id: str,
        channel: str,
        msg: PostedMessage,
        action: dict[str, Any],
        retry_num: int | None,
        signing_secret: str | None,
        timestamp: int | None,
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
            retry_num=retry_num,
            signing_secret=signing_secret,
            timestamp=timestamp,
        )

    async def submit_view(
        self,
        user_id: str,
        view_callback_id: str,
        values: dict,
        *,
        private_metadata: str = "",
        retry_num: int | None = None,
        signing_secret: str | None = None,
        timestamp: int | None = None,
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
        return await self._deliver_interaction(
            payload,
            accepts_response_payload=True,
            retry_num=retry_num,
            signing_secret=signing_secret,
            timestamp=timestamp,
        )

    async def _deliver_interaction(
        self,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool,
        retry_num: int | None,
        signing_secret: str | None,
        timestamp: int | None,
    ) -> int:
        return await self._deliver(
            socket_type="interactive",
            payload=payload,
            http_body=urlencode({"payload": json.dumps(payload)}).encode(),
            http_content_type="application/x-www-form-urlencoded",
            accepts_response_payload=accepts_response_payload,
            retry_num=retry_num,
            signing_secret=signing_secret,
            timestamp=timestamp,
        )

    async def _deliver(
        self,
        *,
        socket_type: str,
        payload: dict[str, Any],
        http_body: bytes,
        http_content_type: str,
        accepts_response_payload: bool,
        retry_num: int | None,
        signing_secret: str | None,
        timestamp: int | None,
    ) -> int:
        """Send to the app: over the socket when one is connected, else signed HTTP."""
        self.last_ack = None
        live = [ws for ws in self._sockets if not ws.closed]
        if live:
            return await self._deliver_socket(
                live[-1], socket_type, payload, accepts_response_payload, retry_num
            )
        return await self._deliver_http(
            http_body, http_content_type, retry_num, signing_secret, timestamp
        )

    async def _deliver_socket(
        self,
        ws: web.WebSocketResponse,
        socket_type: str,
        payload: dict[str, Any],
        accepts_response_payload: bool,
        retry_num: int | None,
    ) -> int:
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": socket_type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if socket_type == "events_api":
            envelope["retry_attempt"] = retry_num or 0
            envelope["retry_reason"] = "timeout" if retry_num else ""
        fut: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self._pending_acks[envelope_id] = fut
        try:
            await ws.send_str(json.dumps(envelope))
        except ConnectionError as exc:  # the client went away between the check and the send
            self._pending_acks.pop(envelope_id, None)
            _log.warning("fake slack: socket send failed: %r", exc)
            return 0
        try:
            ack = await asyncio.wait_for(fut, timeout=self.ack_timeout)
        except TimeoutError:
            self._pending_acks.pop(envelope_id, None)
            _log.warning("fake slack: no ack for %s envelope %s", socket_type, envelope_id)
            return 0
        if "envelope_id" not in ack:  # released by stop()
            return 0
        ack_payload = ack.get("payload")
        self.last_ack = ack_payload if isinstance(ack_payload, dict) else None
        return 200

    async def _deliver_http(
        self,
        body: bytes,
        content_type: str,
        retry_num: int | None,
        signing_secret: str | None,
        timestamp: int | None,
    ) -> int:
        if self._request_url is None:
            raise RuntimeError(
                "no Socket Mode client connected and no request URL set (call set_request_url)"
            )
        if self._http is None:
            raise RuntimeError("FakeSlackServer is not started")
        ts = str(int(time.time()) if timestamp is None else timestamp)
        secret = self.signing_secret if signing_secret is None else signing_secret
        basestring = f"v0:{ts}:".encode() + body
        signature = "v0=" + hmac.new(secret.encode(), basestring, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        try:
            async with self._http.post(
                self._request_url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.ack_timeout),
            ) as resp:
                raw = await resp.read()
                if raw:
                    if resp.content_type == "application/json":
                        parsed = json.loads(raw)
                        self.last_ack = parsed if isinstance(parsed, dict) else None
                    else:
                        self.last_ack = {"text": raw.decode("utf-8", "replace")}
                return resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            # Slack counts both as a failed delivery; tests see 0.
            _log.warning("fake slack: delivery to %s failed: %r", self._request_url, exc)
            return 0
