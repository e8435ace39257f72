"""The one place Fidelio calls a private part of python-telegram-bot: ``Bot._post``.

Fidelio sends every reply (``sendMessage``, ``editMessageText``, ``answerCallbackQuery``) as
plain Bot API JSON and reads back at most a message id. ``Bot._post`` is the request path all
of PTB's methods share: it inserts the defaults, drops ``None`` values and goes through
``_do_post`` (``ExtBot``'s rate limiter, PTB's timeouts, its error classes and ``retry_after``
handling), returning the raw JSON result. The public alternatives fall short:

* the typed wrappers (``Bot.send_message`` ...) turn every answer into PTB objects, which was a
  large share of the cost of a reply;
* ``Bot.do_api_request`` calls ``_post`` itself but emits a warning on every call for methods
  PTB has a typed wrapper for, which is all of the above;
* ``Bot.request.post`` needs ``RequestData`` built from ``RequestParameter``, which lives in a
  private module as well, and skips the defaults and the rate limiter.

python-telegram-bot is pinned in pyproject.toml; ``tests/test_library_internals`` fails with a
clear message when the pinned version no longer has ``Bot._post`` with the parameters used here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from telegram import Bot


async def post_json(bot: Bot, method: str, params: Mapping[str, Any]) -> Any:
    """Call Bot API ``method`` with ``params`` (``None`` values left out); the JSON result."""
    return await bot._post(method, api_kwargs={k: v for k, v in params.items() if v is not None})
