"""Records of what the fake Slack saw and the app posted, and the helpers its modules
share: Block Kit traversal (buttons and their labels), form-field decoding, Slack booleans,
time zone offsets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

#: specially and a test that breaks them breaks the SDK's bootstrap rather than the code under test.
EXEMPT_METHODS: Final = frozenset({"auth.test", "apps.connections.open"})
#: Pseudo method name under which the raw upload POST (step 2 of ``files_upload_v2``) is recorded
#: in ``calls``; ``inject(..., method=UPLOAD_METHOD)`` targets it.
UPLOAD_METHOD: Final = "upload_url"
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})


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
    #: Message metadata posted with it (``{"event_type", "event_payload"}``), if any.
    metadata: dict | None = None

    def buttons(self) -> list[tuple[str, str, str]]:
        """``(label, action_id, value)`` of every button element in ``blocks``, in document order.

        A button without ``value`` reports ``""`` (Slack then omits ``value`` from the action).
        """
        return [
            (button_label(el), str(el.get("action_id", "")), str(el.get("value", "")))
            for _block_id, el in iter_buttons(self.blocks or [])
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


@dataclass
class ResponseUrl:
    """Context of a ``response_url`` we handed out, so posts to it can act on the right message."""

    channel: str
    message_ts: str | None


def button_label(element: dict) -> str:
    text = element.get("text")
    if isinstance(text, dict):
        return str(text.get("text", ""))
    return str(text or "")


def iter_elements(block: dict) -> Iterator[dict]:
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


def iter_buttons(blocks: list[dict]) -> Iterator[tuple[str, dict]]:
    """``(block_id, button_element)`` pairs in document order."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        for el in iter_elements(block):
            if el.get("type") == "button":
                yield str(block.get("block_id", "")), el


def parse_json_field(value: Any) -> Any:
    """Form-encoded requests carry ``blocks``/``view``/``files`` as JSON strings."""
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def truthy(value: Any) -> bool:
    """Slack booleans: ``true``/``1``; slack_sdk turns Python bools into ``"1"``/``"0"``."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


def zone_offset(tz: str) -> int:
    try:
        from zoneinfo import ZoneInfo

        offset = datetime.now(UTC).astimezone(ZoneInfo(tz)).utcoffset()
        return int(offset.total_seconds()) if offset is not None else 0
    except Exception:  # noqa: BLE001 - missing tzdata must not break the fake
        return 0
