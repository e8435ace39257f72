"""The App Home tab of the fake Slack: ``views.publish`` (validated the way Slack refuses a
home view), the ``app_home_opened`` event, and buttons pressed on the tab (``block_actions``
whose container is the view: no channel, no message), as Slack sends them.

``home_views`` holds each user's current home view as Slack stored it; ``home_publishes``
every accepted ``views.publish`` in order, as ``(user_id, view)``.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import time
from typing import Any, Final, Unpack

from .delivery import Forgery
from .limits import element_errors
from .records import button_label, iter_buttons, parse_json_field

MAX_HOME_BLOCKS: Final = 100
#: Block types Slack accepts in a Home tab.
HOME_BLOCK_TYPES: Final = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "rich_text",
        "section",
        "video",
    }
)
HEADER_LIMIT: Final = 150
TEXT_LIMIT: Final = 3000
CONTEXT_ELEMENTS: Final = 10
ACTIONS_ELEMENTS: Final = 25


def home_view_errors(view: Any) -> list[str]:
    """Why Slack would refuse ``view`` as a Home tab (empty: it would not), Slack-style."""
    if not isinstance(view, dict):
        return ["must provide an object [json-pointer:/view]"]
    errors: list[str] = []
    if view.get("type") != "home":
        errors.append("must be home [json-pointer:/view/type]")
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        return [*errors, "must provide an array [json-pointer:/view/blocks]"]
    if len(blocks) > MAX_HOME_BLOCKS:
        errors.append(f"no more than {MAX_HOME_BLOCKS} items allowed [json-pointer:/view/blocks]")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"/view/blocks/{i}"
        if not isinstance(block, dict) or block.get("type") not in HOME_BLOCK_TYPES:
            kind = block.get("type") if isinstance(block, dict) else None
            errors.append(f"invalid block type {kind!r} [json-pointer:{where}/type]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in block_ids:
                errors.append(f"duplicate block_id [json-pointer:{where}/block_id]")
            block_ids.add(block_id)
        errors.extend(_block_errors(block, where))
    return errors


def _block_errors(block: dict[str, Any], where: str) -> list[str]:
    errors: list[str] = []
    kind = block["type"]
    text = block.get("text")
    if kind == "header":
        if not isinstance(text, dict) or text.get("type") != "plain_text":
            errors.append(f"must be plain_text [json-pointer:{where}/text]")
        elif not text.get("text") or len(str(text["text"])) > HEADER_LIMIT:
            errors.append(f"must be 1 to {HEADER_LIMIT} characters [json-pointer:{where}/text]")
    if kind == "section":
        if not isinstance(text, dict) or not str(text.get("text", "")):
            errors.append(f"missing required field: text [json-pointer:{where}/text]")
        elif len(str(text["text"])) > TEXT_LIMIT:
            errors.append(f"must be less than 3001 characters [json-pointer:{where}/text/text]")
    elements = block.get("elements") or []
    if kind == "context" and not 1 <= len(elements) <= CONTEXT_ELEMENTS:
        errors.append(f"must have 1 to {CONTEXT_ELEMENTS} elements [json-pointer:{where}]")
    if kind == "context":
        for element in elements:
            if len(str(element.get("text", ""))) > TEXT_LIMIT:
                errors.append(f"must be less than 3001 characters [json-pointer:{where}]")
    if kind == "actions" and not 1 <= len(elements) <= ACTIONS_ELEMENTS:
        errors.append(f"must have 1 to {ACTIONS_ELEMENTS} elements [json-pointer:{where}]")
    errors += element_errors(block, where)
    return errors


def home_text(view: dict[str, Any]) -> str:
    """Every text of a home view, block by block, one per line (what a test reads)."""
    lines: list[str] = []
    for block in view.get("blocks") or []:
        text = block.get("text")
        if isinstance(text, dict):
            lines.append(str(text.get("text", "")))
        for element in block.get("elements") or []:
            if element.get("type") in ("mrkdwn", "plain_text"):
                lines.append(str(element.get("text", "")))
    return "\n".join(lines)


class HomeMixin:
    """The App Home of :class:`FakeSlackServer`."""

    def _handlers(self) -> dict[str, Any]:
        handlers = super()._handlers()  # type: ignore[misc]
        handlers["views.publish"] = self._api_views_publish
        return handlers  # type: ignore[no-any-return]

    def _api_views_publish(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        view = parse_json_field(params.get("view"))
        errors = home_view_errors(view)
        if errors:
            return {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]},
            }
        user_id = str(params.get("user_id") or "")
        if not self._user_seen(user_id):
            return {"ok": False, "error": "user_not_found"}
        answer = self._api_views("views.publish", params, files)
        stored = self._view_objs[answer["view"]["id"]]
        blocks = self._with_block_ids(view["blocks"], stored["id"] + stored["hash"])
        stored["blocks"] = blocks
        self.home_views[user_id] = {k: v for k, v in stored.items() if not k.startswith("_")}
        self.home_publishes.append((user_id, copy.deepcopy(self.home_views[user_id])))
        return answer

    # Driver

    def home_of(self, user_id: str) -> dict[str, Any]:
        """``user_id``'s current Home tab; ``LookupError`` when none was published."""
        if user_id not in self.home_views:
            raise LookupError(f"no home view published for {user_id!r}")
        return self.home_views[user_id]

    def home_publishes_for(self, user_id: str) -> list[dict[str, Any]]:
        """Every home view published for ``user_id``, oldest first."""
        return [view for user, view in self.home_publishes if user == user_id]

    async def wait_for_home(
        self, user_id: str, count: int = 1, timeout: float = 5.0
    ) -> dict[str, Any]:
        """Wait until ``count`` home views were published for ``user_id``; the latest."""
        deadline = time.monotonic() + timeout
        while len(self.home_publishes_for(user_id)) < count:
            if time.monotonic() >= deadline:
                recent = ", ".join(f"{c.method}→{c.status}" for c in self.calls[-10:]) or "none"
                raise TimeoutError(
                    f"expected {count} home view(s) for {user_id!r} within {timeout}s, got "
                    f"{len(self.home_publishes_for(user_id))}. Last Web API calls: {recent}"
                )
            await asyncio.sleep(0.01)
        return self.home_of(user_id)

    async def open_home(self, user_id: str, *, tab: str = "home", **forge: Unpack[Forgery]) -> int:
        """The user opens the app's Home tab (``tab="messages"``: its Messages tab): an
        ``app_home_opened`` event, carrying the current home view when there is one."""
        self._event_seq += 1
        event_id = f"Ev{self._event_seq:04d}{secrets.token_hex(4).upper()}"
        self.last_event_id = event_id
        ts = self._next_ts()
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user_id,
            "channel": self.dm_channel_of(user_id),
            "tab": tab,
            "event_ts": ts,
        }
        if tab == "home" and user_id in self.home_views:
            event["view"] = copy.deepcopy(self.home_views[user_id])
        return await self._deliver_event(event, event_id, ts, **forge)

    async def press_home(self, user_id: str, label: str, **forge: Unpack[Forgery]) -> int:
        """Press the first button labelled ``label`` on ``user_id``'s Home tab: a
        ``block_actions`` payload whose container is the view (no channel, no message)."""
        view = self.home_of(user_id)
        found = [
            (block_id, el)
            for block_id, el in iter_buttons(view.get("blocks") or [])
            if button_label(el) == label
        ]
        if not found:
            labels = [button_label(el) for _, el in iter_buttons(view.get("blocks") or [])]
            raise LookupError(f"no button labelled {label!r} on the home tab; there are {labels}")
        block_id, element = found[0]
        action: dict[str, Any] = {
            "action_id": element.get("action_id", ""),
            "block_id": block_id,
            "type": "button",
            "text": {"type": "plain_text", "text": label, "emoji": True},
            "action_ts": f"{time.time():.6f}",
        }
        if "value" in element:
            action["value"] = element["value"]
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user_ref(user_id),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "container": {"type": "view", "view_id": view["id"]},
            "trigger_id": self._issue_trigger(),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "view": copy.deepcopy(view),
            "actions": [action],
        }
        return await self._deliver_interaction(payload, accepts_response_payload=False, **forge)
