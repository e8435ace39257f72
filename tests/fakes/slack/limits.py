"""Slack's limits as the fake enforces them.

* Rate limits: ``chat.postMessage`` per channel, every Web API call per workspace, and
  ``conversations.history`` per its tier (Tier 3: 50 a minute), as sliding windows
  (:class:`SlidingWindow`); over the limit the answer is HTTP 429 with ``Retry-After``.
* Payload limits: message text length and a light Block Kit validation (block count, duplicate
  ids, section text, button labels and values), answered as Slack does (``invalid_blocks``,
  ``msg_too_long``).
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any, Final

from aiohttp import web

from .records import button_label, iter_elements, parse_json_field

_MAX_BLOCKS: Final = 50
_MAX_TEXT: Final = 40_000


class SlidingWindow:
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

    @classmethod
    def per_window(cls, capacity: int, window_s: float) -> SlidingWindow:
        """At most ``capacity`` calls in any ``window_s`` seconds (Slack's per-minute tiers)."""
        limiter = cls(capacity / window_s)
        limiter.capacity, limiter.window = capacity, window_s
        return limiter

    def wait_time(self, now: float) -> float:
        """Seconds until a call would be admitted (0 if it would be admitted now)."""
        while self._hits and now - self._hits[0] >= self.window:
            self._hits.popleft()
        if len(self._hits) < self.capacity:
            return 0.0
        return self._hits[0] + self.window - now

    def commit(self, now: float) -> None:
        self._hits.append(now)


def element_errors(block: dict[str, Any], where: str) -> list[str]:
    """Slack's checks of a block's interactive elements: unique, short action ids; buttons
    with a 1-75 character label and a value of at most 2000."""
    errors: list[str] = []
    action_ids: set[str] = set()
    for el in iter_elements(block):
        action_id = el.get("action_id")
        if action_id is not None:
            if action_id in action_ids:
                errors.append(f"duplicate action_id {action_id!r} [json-pointer:{where}]")
            action_ids.add(action_id)
            if len(str(action_id)) > 255:
                errors.append(f"action_id too long [json-pointer:{where}]")
        if el.get("type") == "button":
            label = button_label(el)
            if not label:
                errors.append(f"missing required field: text [json-pointer:{where}]")
            elif len(label) > 75:
                errors.append(f"must be less than 76 characters [json-pointer:{where}/text]")
            if len(str(el.get("value", ""))) > 2000:
                errors.append(f"must be less than 2001 characters [json-pointer:{where}/value]")
    return errors


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
        errors += element_errors(block, where)
    return errors


class LimitsMixin:
    """Rate limits and payload checks of :class:`FakeSlackServer`."""

    def _check_rate_limits(self, method: str, params: dict[str, Any]) -> web.Response | None:
        now = time.monotonic()
        waits = [self._workspace.wait_time(now)]
        # Methods of a per-minute tier (conversations.history: Tier 3) have their own window.
        method_window = self._method_windows.get(method)
        if method_window is not None:
            waits.append(method_window.wait_time(now))
        channel_window: SlidingWindow | None = None
        if method == "chat.postMessage" and isinstance(params.get("channel"), str):
            channel = self._resolve_channel(params["channel"])
            channel_window = self._channel_windows.get(channel)
            if channel_window is None:
                channel_window = SlidingWindow(self._per_channel_rate)
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
        if method_window is not None:
            method_window.commit(now)
        if channel_window is not None:
            channel_window.commit(now)
        return None

    def _content_of(
        self, params: dict[str, Any]
    ) -> tuple[str | None, list[dict] | None, dict[str, Any] | None]:
        """(text, blocks, error body) for chat.postMessage/update/postEphemeral params."""
        text = params.get("text")
        text = None if text is None else str(text)
        blocks = params.get("blocks")
        if blocks is not None:
            blocks = parse_json_field(blocks)
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
