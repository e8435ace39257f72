"""The fake Slack server itself: its state and its lifecycle; the behaviour comes from
the mixins in the sibling modules.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import WSCloseCode, web

from .api import ApiMixin
from .delivery import DeliveryMixin
from .driver import DriverMixin
from .faults import FaultRule, FaultsMixin
from .history import HistoryMixin
from .home import HomeMixin
from .limits import LimitsMixin, SlidingWindow
from .records import PostedMessage, RecordedCall, ResponseUrl, SlackUser


class FakeSlackServer(
    HomeMixin, ApiMixin, DeliveryMixin, DriverMixin, FaultsMixin, HistoryMixin, LimitsMixin
):
    """Fake Slack Web API + Slack-side driver. Use as ``async with FakeSlackServer() as slack:``.

    Rate limits: ``chat.postMessage`` is limited to ``per_channel_per_s × rate_scale`` per channel,
    and every Web API call except ``auth.test``/``apps.connections.open`` counts against
    ``workspace_per_s × rate_scale``; ``conversations.history`` (Slack's Tier 3) also allows
    ``history_per_min`` calls in any ``60 / rate_scale`` seconds and ``views.publish`` (Tier 4)
    100; sliding windows, see
    :class:`SlidingWindow`.  ``Retry-After``
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
        history_per_min: int = 50,
        rate_scale: float = 1.0,
    ) -> None:
        self.signing_secret = signing_secret
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self._per_channel_rate = per_channel_per_s * rate_scale
        self._workspace = SlidingWindow(workspace_per_s * rate_scale)
        self._channel_windows: dict[str, SlidingWindow] = {}
        self._method_windows = {
            "conversations.history": SlidingWindow.per_window(history_per_min, 60.0 / rate_scale),
            # Tier 4: about 100 a minute per workspace.
            "views.publish": SlidingWindow.per_window(100, 60.0 / rate_scale),
        }

        # Observable state
        self.calls: list[RecordedCall] = []
        self.uploads: list[dict] = []
        self.views: list[dict] = []
        #: Each view_submission and how the app answered it: {"view_id", "callback_id",
        #: "values", "ack", "outcome"}, outcome "closed", "errors" (shown under the fields;
        #: the modal stays open) or "refused" (an answer Slack would not accept: the person
        #: sees Slack's own error and the modal stays open).
        self.view_submissions: list[dict] = []
        self.responses: list[dict] = []
        #: chat.postEphemeral calls and ephemeral response_url posts
        #: ({"channel", "user", "text", "blocks", ...})
        self.ephemerals: list[dict] = []
        #: messages removed by chat.delete / delete_original (no longer in ``messages_in``)
        self.deleted_messages: list[PostedMessage] = []
        #: The App Home (see :mod:`.home`): each user's current home view, and every publish.
        self.home_views: dict[str, dict] = {}
        self.home_publishes: list[tuple[str, dict]] = []
        self.rate_limited = 0
        #: event_id of the last event sent by :meth:`send_dm`
        self.last_event_id: str | None = None
        #: what the app answered to the last driver call: the JSON body / socket ack payload as
        #: a dict (a plain-text HTTP body becomes ``{"text": body}``, as bolt does over sockets),
        #: or None.
        self.last_ack: dict | None = None

        # Internal state
        self._users: dict[str, SlackUser] = {}
        self._dm_by_user: dict[str, str] = {}
        self._user_by_dm: dict[str, str] = {}
        self._messages: dict[str, list[PostedMessage]] = {}
        self._faults: list[FaultRule] = []
        self._last_ts_us = 0
        self._event_seq = 0
        self._file_seq = 0
        self._view_seq = 0
        self._pending_files: dict[str, dict[str, Any]] = {}
        self._view_objs: dict[str, dict[str, Any]] = {}
        self._triggers: dict[str, float] = {}  # trigger_id -> monotonic issue time
        self._used_triggers: set[str] = set()
        self._response_urls: dict[str, ResponseUrl] = {}
        self._tickets: set[str] = set()
        self._sockets: list[web.WebSocketResponse] = []
        self._pending_acks: dict[str, asyncio.Future[dict]] = {}
        self._request_url: str | None = None

        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._stopping = asyncio.Event()
        self._port = 0

    # Lifecycle

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
