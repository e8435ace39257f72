"""A refused form on the web, in the words chat uses: the services' own errors
(:class:`~bot.errors.UserFacingError`, :class:`~bot.errors.InputError`) rendered by the chat
renderer in the reader's language, and placed under the field they are about.

A handler that refuses raises :class:`Refused`: the transaction of the request rolls back
(nothing half-applied), and :func:`refusable` shows the form's page again with each error
at its field (status 400)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path

from aiohttp import web

from bot.config import Settings
from bot.errors import InputError, UserFacingError
from bot.markup import to_plain
from bot.render import Renderer
from bot.replies import Reply

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Refused(Exception):
    """A form refused: field name -> message already in the reader's words, and the values
    given (shown again in the form)."""

    def __init__(self, errors: dict[str, str], values: dict[str, str]):
        super().__init__(", ".join(errors))
        self.errors = errors
        self.values = values


#: Where a refused form's errors wait for the page that shows them again.
REFUSED = web.RequestKey("refused", Refused)


@cache
def _renderer(templates: Path, default_locale: str, timezone: str) -> Renderer:
    return Renderer(templates, default_locale, timezone)


def chat_renderer(settings: Settings) -> Renderer:
    """The renderer chat replies with (one per settings' templates, kept)."""
    organisation = settings.organisation
    return _renderer(
        settings.content_dir / "templates",
        organisation.default_locale,
        organisation.default_timezone,
    )


def in_words(settings: Settings, error: UserFacingError | InputError, locale: str) -> str:
    """What chat would say for ``error``, as plain text in ``locale``."""
    refusal = error.for_chat() if isinstance(error, InputError) else error
    reply = Reply(refusal.template_key, refusal.context)
    return to_plain(chat_renderer(settings).text(reply.template, locale, reply.context, "web"))


def refusable(action: Handler, again: Handler) -> Handler:
    """``action`` (a form's POST), or when it raises :class:`Refused` its page shown again
    by ``again`` with the errors (``request[REFUSED]``), in a new transaction."""

    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await action(request)
        except Refused as refused:
            request[REFUSED] = refused
            response = await again(request)
            if response.status == 200:
                response.set_status(400)
            return response

    handler.__doc__ = action.__doc__
    return handler


def refused_of(request: web.Request) -> Refused | None:
    """The refusal a page is shown again for, if any."""
    return request.get(REFUSED)
