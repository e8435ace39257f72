"""Webhook delivery of the fake Telegram server: pending updates are POSTed one at a time,
in order, to the URL given to setWebhook, with linear backoff on failure.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from aiohttp import ClientError

from .records import update_type

_LOG = logging.getLogger(__name__)

# Webhook redelivery policy: linear backoff, then give up (Telegram also drops eventually).
_WEBHOOK_BACKOFF_STEP: Final = 0.05
_WEBHOOK_MAX_ATTEMPTS: Final = 20


class WebhookMixin:
    """Webhook delivery of :class:`FakeTelegramServer`."""

    async def _webhook_worker(self) -> None:
        """Deliver pending updates one at a time, in order, while a webhook is set."""
        while not self._stopping.is_set():
            if not self._webhook_url or not self._pending:
                await self._updates_signal.wait(None)
                continue
            entry = self._pending[0]
            if self._webhook_allowed and update_type(entry.update) not in self._webhook_allowed:
                self._remove_pending(entry)  # not subscribed to: never delivered, as on Telegram
                continue
            update_id = int(entry.update["update_id"])
            status = await self._deliver(entry.update)
            self.webhook_deliveries.append((update_id, status))
            if 200 <= status < 300:
                self._remove_pending(entry)
                continue
            entry.attempts += 1
            reason = f"Wrong response from the webhook: {status}" if status else "Connection error"
            self._webhook_last_error = (int(time.time()), reason)
            if entry.attempts >= _WEBHOOK_MAX_ATTEMPTS:
                _LOG.warning(
                    "fake telegram: dropping update %s after %s attempts", update_id, entry.attempts
                )
                self._remove_pending(entry)
                continue
            await self._sleep(_WEBHOOK_BACKOFF_STEP * entry.attempts)

    async def _deliver(self, update: dict[str, Any]) -> int:
        assert self._session is not None
        headers = {}
        if self._webhook_secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self._webhook_secret
        try:
            async with self._session.post(self._webhook_url, json=update, headers=headers) as r:
                await r.read()
                return r.status
        except (ClientError, TimeoutError, OSError) as exc:
            _LOG.debug("fake telegram: webhook delivery failed: %r", exc)
            return 0
