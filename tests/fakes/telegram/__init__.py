"""A fake Telegram Bot API server for tests.

:class:`FakeTelegramServer` speaks the real Bot API wire format on a loopback port, so the
unmodified ``python-telegram-bot`` client (or any other HTTP client) can talk to it::

    async with FakeTelegramServer(rate_scale=20) as tg:
        tg.add_user(1001, "Alice", username="alice")
        bot = telegram.Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url)
        ...
        await tg.send_text(1001, "/start abc")          # a person writes to the bot
        [reply] = await tg.wait_for_messages(1001)      # what the bot answered
        await tg.press(1001, "Yes")                      # a person presses an inline button

Besides the happy path it simulates what makes real bots fragile: flood limits (429 with
``retry_after``), transient server errors, blocked users (403), requests that time out although
they were carried out ("unknown outcome"), dropped connections, duplicate update delivery and
webhook delivery with retries.

Wire-format notes (mirroring Telegram):

* Requests go to ``/bot{token}/{method}`` via GET (query string) or POST (form-encoded,
  multipart or JSON).  Method names are matched case-insensitively, like Telegram does.
  Nested fields (``reply_markup``, ``allowed_updates``, ``commands``, ...) arrive as JSON strings
  in form bodies and are decoded.
* Success: ``{"ok": true, "result": ...}``; failure:
  ``{"ok": false, "error_code": N, "description": "...", "parameters": {...}}``.

Rate limits are token buckets per chat and across all chats; see :class:`FakeTelegramServer`.

Only loopback addresses are ever used: the server binds ``127.0.0.1`` and refuses webhook URLs
that do not point to a loopback host.  Nothing is ever fetched from the internet (``sendPhoto``
with an HTTP URL is accepted but the URL is not downloaded).

Layout of this package:

* :mod:`.server`: :class:`FakeTelegramServer`, its state and lifecycle;
* :mod:`.api`: the Bot API methods and the HTTP routing;
* :mod:`.driver`: what tests call to act as people and to read what the bot sent;
* :mod:`.limits`: flood control and payload limits;
* :mod:`.faults`: injected failures;
* :mod:`.webhook`: webhook delivery;
* :mod:`.records`: records and wire-format helpers shared by the above.
"""

from .driver import CONFIGURED_SECRET
from .faults import FAULTS
from .records import RecordedCall, SentMessage
from .server import FakeTelegramServer

__all__ = ["CONFIGURED_SECRET", "FAULTS", "FakeTelegramServer", "RecordedCall", "SentMessage"]
