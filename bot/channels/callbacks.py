"""Signed button payloads: ``action|value|signature``.

The signature binds the payload to the chat it was sent to, so callback data that is edited,
replayed from another chat, or invented is recognised and refused. Telegram allows at most
64 bytes of callback data, which bounds action and value lengths.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

MAX_BYTES = 64
SIG_CHARS = 12
INVALID_ACTION = "__invalid__"


class CallbackCodec:
    def __init__(self, secret: str):
        self._key = hashlib.sha256(("fidelio-callback:" + secret).encode()).digest()

    def _sign(self, action: str, value: str, chat: str) -> str:
        mac = hmac.new(self._key, f"{action}|{value}|{chat}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode()[:SIG_CHARS]

    def encode(self, action: str, value: str, chat: str) -> str:
        if "|" in action or "|" in value:
            raise ValueError(f"button action/value may not contain '|': {action!r} {value!r}")
        data = f"{action}|{value}|{self._sign(action, value, chat)}"
        if len(data.encode()) > MAX_BYTES:
            raise ValueError(
                f"button payload too long ({len(data.encode())} > {MAX_BYTES} bytes): {data!r}"
            )
        return data

    def decode(self, data: str, chat: str) -> tuple[str, str] | None:
        """(action, value) if the payload is intact and meant for this chat, else None."""
        parts = data.split("|")
        if len(parts) != 3:
            return None
        action, value, signature = parts
        if not hmac.compare_digest(signature, self._sign(action, value, chat)):
            return None
        return action, value
