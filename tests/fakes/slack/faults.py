"""Injected failures of the fake Slack Web API: 429s, 5xx answers, answers that time
out although the call was carried out, dropped connections and Slack error answers
(``channel_not_found``, ``account_inactive``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from .records import EXEMPT_METHODS, UPLOAD_METHOD

#: Faults accepted by :meth:`FakeSlackServer.inject`.
FAULTS: Final = frozenset(
    {
        "429",
        "500",
        "503",
        "timeout",
        "reset",
        "lost_answer",
        "channel_not_found",
        "account_inactive",
    }
)


@dataclass
class FaultRule:
    kind: str
    method: str | None
    channel: str | None
    remaining: int
    retry_after: int
    delay: float


class FaultsMixin:
    """Fault injection of :class:`FakeSlackServer`."""

    # Faults

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
        * ``"lost_answer"``: the call is processed normally (a message IS posted), then the
          connection is cut before the answer: the client cannot tell whether it happened.
        * ``"channel_not_found"``/``"account_inactive"``: HTTP 200 ``{"ok":false,"error":fault}``.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {sorted(FAULTS)}")
        if times < 1:
            raise ValueError("times must be >= 1")
        self._faults.append(
            FaultRule(fault, method, channel, times, max(1, int(retry_after)), float(delay))
        )

    def _take_fault(self, method: str, params: dict[str, Any]) -> FaultRule | None:
        call_channel = params.get("channel") or params.get("channel_id")
        for fault in self._faults:
            if fault.method is None:
                if method in EXEMPT_METHODS or method == UPLOAD_METHOD:
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

    def _fault_response(self, fault: FaultRule) -> web.Response:
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
