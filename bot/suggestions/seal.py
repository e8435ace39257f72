"""Sealed reply tokens: the author of an anonymous suggestion, readable only by the bot.

A token is ``version || nonce || AES-256-GCM(person id)`` with a key derived (HKDF-SHA256)
from ``security.secret_key``. The associated data binds a token to its purpose and row (for
example ``suggestion:42``), so a token copied onto another suggestion does not open. A fresh
random nonce per token means two tokens for the same person look unrelated. Whoever reads the
database without the secret key cannot tell who wrote an anonymous suggestion; the bot opens
the token only in memory, to deliver a message or to check a button press.

Rotating ``security.secret_key`` makes existing tokens unopenable: those authors can no
longer be reached (nothing else breaks).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = b"\x01"
NONCE_BYTES = 12


class Sealer:
    """Seal and open small integers (person or suggestion ids) for one purpose each."""

    def __init__(self, secret: str):
        material = secret.encode()
        self._aead = AESGCM(
            HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=b"fidelio-suggestion-seal"
            ).derive(material)
        )
        self._vote_key = hashlib.sha256(b"fidelio-suggestion-vote:" + material).digest()

    def seal(self, value: int, purpose: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return VERSION + nonce + self._aead.encrypt(nonce, str(value).encode(), purpose.encode())

    def open(self, token: bytes | None, purpose: str) -> int | None:
        """The sealed value, or None when the token is missing, altered or not for ``purpose``."""
        if not token or token[:1] != VERSION or len(token) < 1 + NONCE_BYTES + 16:
            return None
        nonce, body = token[1 : 1 + NONCE_BYTES], token[1 + NONCE_BYTES :]
        try:
            plain = self._aead.decrypt(nonce, body, purpose.encode())
        except InvalidTag:
            return None
        return int(plain.decode()) if plain.isdigit() else None

    def seal_text(self, value: int, purpose: str) -> str:
        """:meth:`seal` as URL-safe text (for JSON columns such as a conversation state)."""
        return base64.urlsafe_b64encode(self.seal(value, purpose)).decode()

    def open_text(self, token: str | None, purpose: str) -> int | None:
        if not token:
            return None
        try:
            raw = base64.urlsafe_b64decode(token.encode())
        except (ValueError, TypeError):
            return None
        return self.open(raw, purpose)

    def voter_key(self, person_id: int) -> str:
        """One key per person for support votes: unique per person, not a person id."""
        return hmac.new(self._vote_key, str(person_id).encode(), hashlib.sha256).hexdigest()


def author_purpose(suggestion_id: int) -> str:
    return f"suggestion-author:{suggestion_id}"


NOTICE_PURPOSE = "suggestion-notice"
