"""A :class:`~bot.channels.port.HomeView` as Slack's Home tab (Block Kit, ``views.publish``),
within Slack's limits whatever the view holds.

Layout: a header and the introduction; per section a divider, a header, one section block
per entry (a single button sits beside its text, several go in an actions block below it),
the section's note as a context block and its own buttons. Limits kept: at most
:data:`MAX_BLOCKS` blocks (the entries that do not fit give way to a last line saying so),
header texts of :data:`HEADER_LIMIT` characters, section texts of :data:`TEXT_LIMIT`, button
labels of :data:`LABEL_LIMIT`, at most :data:`MAX_BUTTONS` buttons per entry, and every
action_id unique in the view. Buttons carry the same signed values as in the direct message
(the DM's channel id signs them, see bot.channels.callbacks), since pressing one is answered
there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.channels.port import Button, HomeItem, HomeSection, HomeView
from bot.markup import to_slack_mrkdwn

#: Action ids of the Home tab's buttons: ``fidelio:home:<n>``. They begin with the adapter's
#: prefix (``fidelio:``), so its one action listener receives them.
ACTION_PREFIX = "fidelio:home:"
MAX_BLOCKS = 100
HEADER_LIMIT = 150
TEXT_LIMIT = 3000
CONTEXT_LIMIT = 2000
LABEL_LIMIT = 75
MAX_BUTTONS = 5
#: Turns a button into its signed value (the adapter's codec, for the person's DM).
Encode = Callable[[Button], str]


def home_view(view: HomeView, encode: Encode) -> dict[str, Any]:
    """The ``view`` argument of ``views.publish`` for ``view``."""
    ids = iter(range(10_000))

    def button(b: Button) -> dict[str, Any]:
        return {
            "type": "button",
            "action_id": f"{ACTION_PREFIX}{next(ids)}",
            "text": {"type": "plain_text", "text": _cut(b.label, LABEL_LIMIT), "emoji": True},
            "value": encode(b),
        }

    head = [_header(view.title), _text(view.intro)]
    sections = [_section_blocks(section, button) for section in view.sections]
    return {"type": "home", "blocks": _within_limit(head, sections, view.cut)}


def _section_blocks(
    section: HomeSection, button: Callable[[Button], dict[str, Any]]
) -> list[list[dict[str, Any]]]:
    """The blocks of one section, grouped: the title first, then one group per entry (so
    an entry is never split from its buttons), then the note and the section's buttons."""
    groups: list[list[dict[str, Any]]] = [[{"type": "divider"}, _header(section.title)]]
    for item in section.items:
        groups.append(_item_blocks(item, button))
    tail: list[dict[str, Any]] = []
    if section.note:
        tail.append(_context(section.note))
    if section.buttons:
        tail.append(
            {"type": "actions", "elements": [button(b) for b in section.buttons[:MAX_BUTTONS]]}
        )
    if tail:
        groups.append(tail)
    return groups


def _item_blocks(
    item: HomeItem, button: Callable[[Button], dict[str, Any]]
) -> list[dict[str, Any]]:
    block = _text(item.text)
    if len(item.buttons) == 1:
        block["accessory"] = button(item.buttons[0])
        return [block]
    if not item.buttons:
        return [block]
    return [block, {"type": "actions", "elements": [button(b) for b in item.buttons[:MAX_BUTTONS]]}]


def _within_limit(
    head: list[dict[str, Any]], sections: list[list[list[dict[str, Any]]]], cut: str
) -> list[dict[str, Any]]:
    """Every block if they fit in :data:`MAX_BLOCKS`; otherwise each section keeps its title
    and as many whole entries as fit, in order, and a last line (``cut``) says there is
    more."""
    total = len(head) + sum(len(group) for groups in sections for group in groups)
    if total <= MAX_BLOCKS:
        return head + [block for groups in sections for group in groups for block in group]
    room = MAX_BLOCKS - len(head) - 1  # the last line
    room -= sum(len(groups[0]) for groups in sections)  # every section keeps its title
    blocks = list(head)
    for groups in sections:
        blocks.extend(groups[0])
        for group in groups[1:]:
            if len(group) <= room:
                blocks.extend(group)
                room -= len(group)
    blocks.append(_context(cut or "…"))
    return blocks[:MAX_BLOCKS]


def _header(text: str) -> dict[str, Any]:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": _cut(text or " ", HEADER_LIMIT), "emoji": True},
    }


def _text(text: str) -> dict[str, Any]:
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": _cut(to_slack_mrkdwn(text) or " ", TEXT_LIMIT)},
    }


def _context(text: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": _cut(to_slack_mrkdwn(text) or " ", CONTEXT_LIMIT)}],
    }


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
