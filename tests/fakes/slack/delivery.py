"""How the fake Slack carries events and interactions to the app: envelopes over a
Socket Mode websocket (waiting for the ack) or, without one, signed HTTP requests to the app's
Request URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from typing import Any, TypedDict, Unpack
from urllib.parse import urlencode

import aiohttp
from aiohttp import WSMsgType, web

_log = logging.getLogger(__name__)


class Forgery(TypedDict, total=False):
    """How one delivery to the app may differ from a first, genuine one: ``retry_num`` marks a
    retry (Slack keeps the event id), ``signing_secret`` and ``timestamp`` forge a bad or stale
    signature (HTTP mode only)."""

    retry_num: int | None
    signing_secret: str | None
    timestamp: int | None


class DeliveryMixin:
    """Socket Mode and HTTP delivery of :class:`FakeSlackServer`."""

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

    async def _deliver_interaction(
        self,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool,
        **forge: Unpack[Forgery],
    ) -> int:
        return await self._deliver(
            socket_type="interactive",
            payload=payload,
            http_body=urlencode({"payload": json.dumps(payload)}).encode(),
            http_content_type="application/x-www-form-urlencoded",
            accepts_response_payload=accepts_response_payload,
            **forge,
        )

    async def _deliver(
        self,
        *,
        socket_type: str,
        payload: dict[str, Any],
        http_body: bytes,
        http_content_type: str,
        accepts_response_payload: bool,
        **forge: Unpack[Forgery],
    ) -> int:
        """Send to the app: over the socket when one is connected, else signed HTTP."""
        self.last_ack = None
        retry_num = forge.get("retry_num")
        live = [ws for ws in self._sockets if not ws.closed]
        if live:
            return await self._deliver_socket(
                live[-1], socket_type, payload, accepts_response_payload, retry_num
            )
        return await self._deliver_http(
            http_body,
            http_content_type,
            retry_num,
            forge.get("signing_secret"),
            forge.get("timestamp"),
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
