"""Answering Slack where the person acted, rather than in the direct message.

Two places, both part of the Slack adapter (:mod:`bot.channels.slack`):

* **A modal's submission** (``view_submission``). Slack waits up to 3 seconds for the
  acknowledgement, which closes the modal or, with ``response_action: errors``, shows a
  message under each refused field and keeps the modal open with what the person wrote.
  :class:`FormAnswer` is that acknowledgement, given once: by the dispatcher as soon as the
  handler's outcome is known (:attr:`bot.events.FormSubmitted.answer`), or, should handling
  take longer than :data:`FORM_ANSWER_S`, by the adapter, which then closes the modal and the
  outcome arrives as a direct message.
* **A slash command typed in a channel.** The answers go to the direct message; in the
  channel, a note only the person sees (an ephemeral message, through the command's
  ``response_url``, which works in any conversation the command was typed in, with no scope
  and without the bot being a member) says so, with a link to the direct message
  (:func:`dm_link`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bot.channels.port import Elsewhere
from bot.markup import to_plain, to_slack_mrkdwn

log = logging.getLogger(__name__)

#: A form field's block id in a modal is this prefix and the field's id.
BLOCK_PREFIX = "block_"
#: How long a modal's submission may be handled before the modal is closed anyway (Slack
#: gives up after 3 s and shows the person an error).
FORM_ANSWER_S = 2.0
#: Slack shows errors under fields as plain text; longer ones are cut.
ERROR_LIMIT = 300


class FormAnswer:
    """The acknowledgement of one ``view_submission`` (see the module's docstring)."""

    def __init__(self, ack: Callable[..., Awaitable[Any]], view: Mapping[str, Any]):
        self._ack = ack
        #: The modal's input blocks: errors can only be shown under one of them.
        self._blocks = {
            str(block.get("block_id"))
            for block in view.get("blocks") or []
            if block.get("type") == "input"
        }
        self.given = False

    async def __call__(self, errors: Mapping[str, str]) -> bool:
        """Close the modal (no ``errors``), or show ``errors`` (field id -> message in
        Fidelio's markup) under their fields. False when the errors were not shown: already
        answered, or a field the modal does not have (the modal is then closed)."""
        if self.given:
            return False
        self.given = True
        by_block = {
            BLOCK_PREFIX + field: _cut(to_plain(text), ERROR_LIMIT)
            for field, text in errors.items()
        }
        if by_block and by_block.keys() <= self._blocks:
            await self._ack(response_action="errors", errors=by_block)
            return True
        await self._ack()
        if by_block:
            log.warning("slack: form errors for fields the modal lacks: %s", sorted(by_block))
        return not by_block


def command_elsewhere(command: Mapping[str, Any]) -> Elsewhere | None:
    """Where the note goes for a slash command typed outside the direct message: its
    ``response_url``, and a link to the direct message; None without them."""
    response_url = str(command.get("response_url") or "")
    app_id = str(command.get("api_app_id") or "")
    if not response_url or not app_id:
        return None
    return Elsewhere(response_url, dm_link(str(command.get("team_id") or ""), app_id))


def dm_link(team_id: str, app_id: str) -> str:
    """A link that opens the person's direct messages with the app, in the Slack app or the
    browser: Slack's documented ``app_redirect`` with the app's id (and the workspace's, so
    that someone signed in to several lands in the right one)."""
    query = {"app": app_id, **({"team": team_id} if team_id else {})}
    return "https://slack.com/app_redirect?" + urlencode(query)


async def post_ephemeral(
    session: aiohttp.ClientSession | None, response_url: str, text: str, timeout_s: float
) -> None:
    """Post ``text`` (Fidelio's markup) to a slash command's ``response_url`` as a message only
    its sender sees, through ``session`` (or one of its own when it is closed). Raises
    ``aiohttp.ClientError`` (or a timeout) when Slack does not take it."""
    if session is None or session.closed:
        async with aiohttp.ClientSession(trust_env=False) as own:
            return await post_ephemeral(own, response_url, text, timeout_s)
    payload = {
        "response_type": "ephemeral",
        "replace_original": False,
        "text": to_slack_mrkdwn(text),
    }
    async with session.post(
        response_url, json=payload, timeout=aiohttp.ClientTimeout(total=timeout_s)
    ) as response:
        response.raise_for_status()


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
