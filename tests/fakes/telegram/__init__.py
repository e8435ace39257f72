"""A fake Telegram Bot API server for tests (see :mod:`tests.fakes.telegram.api`)."""

from .api import CONFIGURED_SECRET, FAULTS, FakeTelegramServer, RecordedCall, SentMessage

__all__ = ["CONFIGURED_SECRET", "FAULTS", "FakeTelegramServer", "RecordedCall", "SentMessage"]
