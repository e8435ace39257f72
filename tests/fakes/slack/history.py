"""``conversations.history`` of the fake Slack: what the app posted in a channel, newest
first, paged with a cursor, with message metadata when ``include_all_metadata`` is set.

The history holds the app's own posts (``chat.postMessage``, ``in_channel`` responses);
what people type in their DMs is delivered as events but not kept, as Fidelio never reads
it back. Rate limited as Slack's Tier 3 (see :mod:`.limits`).
"""

from __future__ import annotations

import base64
from typing import Any, Final

from .records import PostedMessage, truthy

#: Slack's default and largest page sizes for conversations.history.
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 999


def _cursor(ts: str) -> str:
    """An opaque cursor, shaped like Slack's (base64 of ``next_ts:<ts without the dot>``)."""
    return base64.b64encode(f"next_ts:{ts.replace('.', '')}".encode()).decode()


def _cursor_ts(cursor: str) -> str | None:
    try:
        raw = base64.b64decode(cursor.encode(), validate=True).decode()
    except ValueError:
        return None
    if not raw.startswith("next_ts:") or not raw[8:].isdigit() or len(raw) < 15:
        return None
    digits = raw[8:]
    return f"{digits[:-6]}.{digits[-6:]}"


class HistoryMixin:
    """The ``conversations.history`` method of :class:`FakeSlackServer`."""

    def _api_conversations_history(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        channel = self._resolve_channel(str(params.get("channel") or ""))
        if not channel or not self._channel_exists(channel):
            return {"ok": False, "error": "channel_not_found"}
        try:
            limit = int(params.get("limit") or DEFAULT_LIMIT)
            oldest = float(params.get("oldest") or 0)
            latest = float(params["latest"]) if params.get("latest") else float("inf")
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        limit = max(1, min(limit, MAX_LIMIT))
        inclusive = truthy(params.get("inclusive", False))
        cursor = params.get("cursor")
        if cursor:
            before = _cursor_ts(str(cursor))
            if before is None:
                return {"ok": False, "error": "invalid_cursor"}
            latest, inclusive_latest = float(before), True
        else:
            inclusive_latest = inclusive

        def within(msg: PostedMessage) -> bool:
            ts = float(msg.ts)
            after_oldest = ts >= oldest if inclusive else ts > oldest
            before_latest = ts <= latest if inclusive_latest else ts < latest
            return after_oldest and before_latest

        messages: list[PostedMessage] = self._messages.get(channel, [])
        newest_first = sorted(
            (m for m in messages if within(m)), key=lambda m: float(m.ts), reverse=True
        )
        page, rest = newest_first[:limit], newest_first[limit:]
        with_metadata = truthy(params.get("include_all_metadata", False))
        body: dict[str, Any] = {
            "ok": True,
            "messages": [self._message_obj(m, with_metadata=with_metadata) for m in page],
            "has_more": bool(rest),
            "pin_count": 0,
        }
        if rest:
            body["response_metadata"] = {"next_cursor": _cursor(rest[0].ts)}
        return body
