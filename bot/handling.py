"""The contract between the dispatcher and handlers/: context in, replies out.

Handlers never import a platform library. They receive a :class:`HandlerContext`, may use its
database session (one transaction per inbound event), and return :class:`Reply` data.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.db.models import AuditEntry, ConversationState, Person, Role
from bot.errors import UserFacingError
from bot.events import InboundEvent
from bot.replies import Reply

#: How ``help`` groups commands: by task, each heading a label (``help.<key>``). A command
#: not listed here is shown under ``help.other``.
HELP_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("briefings", ("briefings", "ask", "readiness", "campaign")),
    ("pulse", ("pulse", "summary", "survey")),
    ("suggestions", ("suggest", "ideas", "mysuggestions", "suggestions", "suggestion")),
    ("directory", ("status",)),
    ("web", ("web",)),
    ("basics", ("help", "language", "whoami", "start", "cancel")),
)
#: How alike a mistyped word and a command must be for "did you mean" (difflib's ratio).
SIMILAR = 0.7

EVERYONE = frozenset(Role)
MANAGERS = frozenset({Role.manager, Role.hr, Role.admin})
HR = frozenset({Role.hr, Role.admin})
ADMINS = frozenset({Role.admin})


@dataclass
class HandlerContext:
    person: Person
    session: AsyncSession
    settings: Settings
    clock: Clock
    event: InboundEvent
    channel: str
    args: str = ""
    registry: Registry | None = None
    #: True when the dispatcher loaded the person together with their conversation state and
    #: found none: then :meth:`conversation_state` needs no query until a handler adds one.
    no_state_at_start: bool = False

    @property
    def locale(self) -> str:
        return self.person.locale

    async def conversation_state(self) -> ConversationState | None:
        """The person's current conversation state (multi-step dialogue), if any.

        When the dispatcher found none, this answers without a query unless a handler has
        added one since (pending or flushed); a state loaded with the person is found in the
        session's identity map. Otherwise it is looked up.
        """
        if self.no_state_at_start:
            key = self.session.identity_key(ConversationState, self.person.id)
            added = key in self.session.identity_map or any(
                isinstance(obj, ConversationState) and obj.person_id == self.person.id
                for obj in self.session.new
            )
            if not added:
                return None
        return await self.session.get(ConversationState, self.person.id)

    def audit(self, action: str, **detail: Any) -> None:
        """Record who did what; committed with the handler's transaction."""
        self.session.add(AuditEntry.by(self.person, self.clock.now(), action, **detail))


HandlerResult = Reply | list[Reply] | None
Handler = Callable[[HandlerContext], Awaitable[HandlerResult]]
#: Many presses of one button action at once, sharing one session (see :mod:`bot.batching`):
#: one result per context, or the UserFacingError refusing it (having changed nothing for it).
BatchHandler = Callable[[list[HandlerContext]], Awaitable[list[HandlerResult | UserFacingError]]]


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    roles: frozenset[Role]
    #: Template with the one-line description shown by ``help``.
    summary: str
    aliases: tuple[str, ...] = ()
    audited: bool = False


@dataclass(frozen=True)
class ButtonRoute:
    action: str
    handler: Handler
    roles: frozenset[Role]


@dataclass(frozen=True)
class BatchRoute:
    action: str
    handler: BatchHandler
    roles: frozenset[Role]


@dataclass(frozen=True)
class DialogueSpec:
    """A multi-step dialogue (see :mod:`bot.dialogues`): typed text goes to ``handler`` while
    it is the person's current one."""

    flow: str
    handler: Handler
    #: Interrupted by another dialogue, it waits and comes back afterwards (a suggestion draft
    #: holds what the person wrote); otherwise it simply ends.
    pausable: bool = False
    #: The question it is waiting on, rebuilt from its data when it comes back. Must not write
    #: anything: it may run in a transaction that may not touch the person's row.
    prompt: Callable[[HandlerContext, dict[str, Any]], Reply] | None = None
    #: Extra template context naming it for the person (a suggestion reference, say).
    about: Callable[[dict[str, Any]], dict[str, Any]] | None = None


@dataclass
class Registry:
    """Commands and button actions, filled by each handlers/ module's ``register``."""

    commands: dict[str, Command] = field(default_factory=dict)
    buttons: dict[str, ButtonRoute] = field(default_factory=dict)
    #: Multi-step dialogues: free text goes to the flow named in the person's ConversationState.
    flows: dict[str, Handler] = field(default_factory=dict)
    #: How each flow behaves when another dialogue interrupts it (filled by :meth:`dialogue`).
    dialogues: dict[str, DialogueSpec] = field(default_factory=dict)
    #: Submitted forms (Slack modals), by form id.
    forms: dict[str, Handler] = field(default_factory=dict)
    #: Button actions many people press at once, handled in groups (also in ``buttons``).
    batch_buttons: dict[str, BatchRoute] = field(default_factory=dict)
    #: Views a platform shows outside the chat (``home``), by name: what opening one does.
    views: dict[str, Handler] = field(default_factory=dict)

    def command(
        self,
        name: str,
        *,
        summary: str,
        roles: Iterable[Role] = EVERYONE,
        aliases: tuple[str, ...] = (),
        audited: bool = False,
    ) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            command = Command(name, handler, frozenset(roles), summary, aliases, audited)
            for key in (name, *aliases):
                if key in self.commands:
                    raise ValueError(f"command {key!r} registered twice")
                self.commands[key] = command
            return handler

        return decorate

    def button(
        self, action: str, *, roles: Iterable[Role] = EVERYONE
    ) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            if action in self.buttons:
                raise ValueError(f"button action {action!r} registered twice")
            self.buttons[action] = ButtonRoute(action, handler, frozenset(roles))
            return handler

        return decorate

    def batch_button(
        self, action: str, *, roles: Iterable[Role] = EVERYONE
    ) -> Callable[[BatchHandler], BatchHandler]:
        """A button that many people press at once (survey answers). The dispatcher hands
        concurrent presses to the handler together, in one transaction; the same handler
        also serves a single press (a group of one), registered as an ordinary button."""

        def decorate(handler: BatchHandler) -> BatchHandler:
            async def single(ctx: HandlerContext) -> HandlerResult:
                (outcome,) = await handler([ctx])
                if isinstance(outcome, UserFacingError):
                    raise outcome
                return outcome

            self.button(action, roles=roles)(single)
            self.batch_buttons[action] = BatchRoute(action, handler, frozenset(roles))
            return handler

        return decorate

    def dialogue(
        self,
        flow: str,
        handler: Handler,
        *,
        pausable: bool = False,
        prompt: Callable[[HandlerContext, dict[str, Any]], Reply] | None = None,
        about: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        """Register a multi-step dialogue; typed text goes to ``handler`` while it is current."""
        if flow in self.flows:
            raise ValueError(f"dialogue {flow!r} registered twice")
        self.flows[flow] = handler
        self.dialogues[flow] = DialogueSpec(flow, handler, pausable, prompt, about)

    def help_sections(self, role: Role) -> list[dict[str, Any]]:
        """The commands a role may use, grouped by task (:data:`HELP_SECTIONS`), each as
        ``{"key": ..., "commands": [{"name": ..., "summary": ...}]}``; empty groups left out."""
        visible = {c.name: c for c in self.visible_commands(role)}
        grouped: list[tuple[str, list[Command]]] = []
        for key, names in HELP_SECTIONS:
            shown = [visible.pop(n) for n in names if n in visible]
            if shown:
                grouped.append((key, shown))
        if visible:
            grouped.append(("other", list(visible.values())))
        return [
            {"key": key, "commands": [{"name": c.name, "summary": c.summary} for c in commands]}
            for key, commands in grouped
        ]

    def similar_commands(self, word: str, role: Role) -> list[str]:
        """Commands (or their aliases) a role may use that look like ``word``, best first."""
        names = [
            key for key, command in self.commands.items() if role in command.roles and key != "?"
        ]
        return difflib.get_close_matches(word.lower(), names, n=2, cutoff=SIMILAR)

    def visible_commands(self, role: Role) -> list[Command]:
        """Commands a role may use, each once, in registration order."""
        seen: dict[str, Command] = {}
        for command in self.commands.values():
            if role in command.roles and command.name not in seen:
                seen[command.name] = command
        return list(seen.values())
