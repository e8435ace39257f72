"""The inbound pipeline: the steps every event goes through, in this order::

    de-duplication -> identity -> active -> route -> role -> audit -> handler

Each step receives the events still in flight and, for each, either lets it pass or finishes
it with its replies (a short-circuit: later steps never see it). A single event is a list of
one; presses of one batch button that arrive together (:mod:`bot.batching`) are a longer
list sharing one transaction. Steps that touch the database do so once for the whole list,
which is what makes a group cheaper than its events one by one, while every decision is
taken per event and is the same whichever way the event came.

The dispatcher (:mod:`bot.dispatch`) owns the transaction around :meth:`Pipeline.run` and
what happens when it fails; the steps here never commit.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.callbacks import INVALID_ACTION
from bot.clock import Clock
from bot.config import Settings
from bot.db.models import AuditEntry, ConversationState, Person, ProcessedEvent, Role
from bot.errors import UserFacingError
from bot.events import (
    ButtonPressed,
    ChannelUser,
    CommandInvoked,
    FormSubmitted,
    InboundEvent,
    TextReceived,
    ViewOpened,
    parse_command_text,
)
from bot.handling import BatchHandler, Handler, HandlerContext, HandlerResult, Registry
from bot.identities import people_and_states_for, person_and_state_for
from bot.people.invites import redeem_invite
from bot.replies import Reply

log = logging.getLogger(__name__)

IdentityResolver = Callable[[AsyncSession, ChannelUser], Awaitable[Person | None]]

MAX_TEXT = 4000


@dataclass(frozen=True)
class Target:
    """What an event asks for once routed: a command, a button, a dialogue or a form."""

    kind: str
    name: str
    args: str
    #: Who may use it; None for what needs no role (a dialogue or form the person is in).
    roles: frozenset[Role] | None
    handler: Handler | None = None
    #: Set for a batch button: presses routed to it are handed to it together.
    batch: BatchHandler | None = None
    audited: bool = False


@dataclass
class Inbound:
    """One event on its way through the pipeline: what the steps have learnt about it so far,
    and, once finished, its replies."""

    event: InboundEvent
    #: The language of the replies: the platform's until the person is known.
    locale: str
    timezone: str | None = None
    person: Person | None = None
    #: The person was loaded together with their conversation state and has none.
    no_state: bool = False
    target: Target | None = None
    ctx: HandlerContext | None = None
    duplicate: bool = False
    done: bool = False
    replies: list[Reply] = field(default_factory=list)

    def finish(self, replies: list[Reply]) -> None:
        """Answer with ``replies`` and skip the remaining steps."""
        self.replies = replies
        self.done = True

    def refuse(self, error: UserFacingError) -> None:
        """Answer with the error's template and skip the remaining steps."""
        self.finish([Reply(error.template_key, error.context)])

    @property
    def key(self) -> tuple[str, str]:
        """The account that sent the event, as (channel, external id)."""
        return self.event.user.channel, self.event.user.external_id


Step = Callable[[AsyncSession, list[Inbound]], Awaitable[None]]


class Pipeline:
    """The steps of :data:`steps`, run in order over events sharing one session."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        clock: Clock,
        resolvers: dict[str, IdentityResolver],
        *,
        sqlite: bool,
    ):
        self.settings = settings
        self.registry = registry
        self.clock = clock
        self.resolvers = resolvers
        table = cast(Table, ProcessedEvent.__table__)
        dialect_insert = sqlite_insert if sqlite else pg_insert
        # Built once, executed with one parameter set per event: a retried event is skipped by
        # the database instead of failing the transaction, so one statement serves a single
        # event and a group alike.
        self._claim = (
            dialect_insert(table)
            .on_conflict_do_nothing(index_elements=["channel", "event_id"])
            .returning(table.c.channel, table.c.event_id)
        )
        self.steps: tuple[Step, ...] = (
            self.deduplicate,
            self.identify,
            self.require_active,
            self.route,
            self.check_role,
            self.audit,
            self.run_handlers,
        )

    def start(self, event: InboundEvent) -> Inbound:
        """A fresh :class:`Inbound` for ``event``, answering in the platform's language."""
        return Inbound(event, self.platform_locale(event))

    def platform_locale(self, event: InboundEvent) -> str:
        """The language the platform reports for the sender, if Fidelio speaks it."""
        code = (event.user.language_code or "")[:2].lower()
        return code if code in ("en", "it") else self.settings.organisation.default_locale

    async def run(self, session: AsyncSession, items: Sequence[Inbound]) -> None:
        """Take ``items`` through every step; each ends finished (or raises, see below).

        A handler's UserFacingError or crash propagates: the caller must roll the
        transaction back, since the handler may have written part of its work.
        """
        for step in self.steps:
            live = [item for item in items if not item.done]
            if not live:
                return
            await step(session, live)

    async def claim(
        self, session: AsyncSession, events: Sequence[InboundEvent]
    ) -> set[tuple[str, str]]:
        """Record events as handled; returns the (channel, event id) of those that were new
        (the others had been handled already)."""
        now = self.clock.now()
        rows = await session.execute(
            self._claim,
            [
                {"channel": e.user.channel, "event_id": e.event_id, "processed_at": now}
                for e in events
            ],
        )
        return {(channel, event_id) for channel, event_id in rows.all()}

    # The steps

    async def deduplicate(self, session: AsyncSession, items: list[Inbound]) -> None:
        """A platform retry of an event already handled is dropped without a reply."""
        new = await self.claim(session, [item.event for item in items])
        for item in items:
            event = item.event
            if (event.user.channel, event.event_id) not in new:
                log.info("duplicate %s event %s dropped", event.user.channel, event.event_id)
                item.duplicate = True
                item.finish([])

    async def identify(self, session: AsyncSession, items: list[Inbound]) -> None:
        """Who sent each event. Unknown accounts are offered to the channel's resolver (Slack:
        by email); whoever stays unknown gets onboarding and nothing else."""
        if len(items) == 1:
            # The common case, one prepared query (see person_and_state_for).
            person, state = await person_and_state_for(session, items[0].event.user)
            found = {items[0].key: (person, state)} if person is not None else {}
        else:
            found = await people_and_states_for(session, [item.event.user for item in items])
        for item in items:
            got = found.get(item.key)
            if got is not None:
                person, item.no_state = got[0], got[1] is None
            else:
                resolver = self.resolvers.get(item.event.user.channel)
                resolved = await resolver(session, item.event.user) if resolver else None
                if resolved is None:
                    await self._onboard(session, item)
                    continue
                person = resolved
            item.person = person
            item.locale, item.timezone = person.locale, person.timezone

    async def require_active(self, session: AsyncSession, items: list[Inbound]) -> None:
        """People who have left are treated as strangers: onboarding only."""
        today = self.clock.now().date()
        for item in items:
            if not _person(item).is_active(today):
                item.finish([self._unknown()])

    async def route(self, session: AsyncSession, items: list[Inbound]) -> None:
        """What each event asks for; an unknown command, a stale button, an oversized or
        not understood text is answered here."""
        for item in items:
            try:
                target = await self._target(session, item)
            except UserFacingError as exc:
                item.refuse(exc)
                continue
            item.target = target
            item.ctx = self.context(
                session, _person(item), item.event, target.args, no_state=item.no_state
            )

    async def check_role(self, session: AsyncSession, items: list[Inbound]) -> None:
        """Refuse what the person's role may not use; every refusal is audited."""
        for item in items:
            person, target = _person(item), _target(item)
            if target.roles is None or person.role in target.roles:
                continue
            detail = {target.kind: target.name, "role": person.role.value}
            session.add(AuditEntry.by(person, self.clock.now(), "denied", **detail))
            item.refuse(UserFacingError("errors/not_allowed", command=target.name))

    async def audit(self, session: AsyncSession, items: list[Inbound]) -> None:
        """Record the use of an audited command; committed with the handler's work."""
        for item in items:
            target = _target(item)
            if target.audited:
                _ctx(item).audit(
                    f"command.{target.name}", args=target.args, channel=item.event.user.channel
                )

    async def run_handlers(self, session: AsyncSession, items: list[Inbound]) -> None:
        """Run each handler: presses of a batch button together, anything else alone."""
        batches: dict[BatchHandler, list[Inbound]] = {}
        for item in items:
            target = _target(item)
            if target.batch is not None:
                batches.setdefault(target.batch, []).append(item)
            else:
                assert target.handler is not None
                item.finish(_as_list(await target.handler(_ctx(item))))
        for batch, grouped in batches.items():
            outcomes = await batch([_ctx(item) for item in grouped])
            for item, outcome in zip(grouped, outcomes, strict=True):
                # A press the batch handler refuses has changed nothing (its contract).
                if isinstance(outcome, UserFacingError):
                    item.refuse(outcome)
                else:
                    item.finish(_as_list(outcome))
        for item in items:
            # The handler may have changed the language or time zone.
            item.locale, item.timezone = _person(item).locale, _person(item).timezone

    # Helpers

    def context(
        self,
        session: AsyncSession,
        person: Person,
        event: InboundEvent,
        args: str,
        *,
        no_state: bool = False,
    ) -> HandlerContext:
        """The context a handler receives for ``event``."""
        return HandlerContext(
            person=person,
            session=session,
            settings=self.settings,
            clock=self.clock,
            event=event,
            channel=event.user.channel,
            args=args,
            registry=self.registry,
            no_state_at_start=no_state,
        )

    def _unknown(self) -> Reply:
        return Reply("onboarding/unknown", {"organisation": self.settings.organisation.name})

    async def _onboard(self, session: AsyncSession, item: Inbound) -> None:
        """Unknown people get onboarding and nothing else; a valid invite links them."""
        event = item.event
        if not (isinstance(event, CommandInvoked) and event.command == "start" and event.args):
            item.finish([self._unknown()])
            return
        # An invalid code raises UserFacingError: the redemption may have written part of its
        # work, so the transaction must roll back (the dispatcher answers).
        person = await redeem_invite(session, event.args, event.user, self.clock)
        item.locale = person.locale
        item.finish(
            [
                Reply(
                    "onboarding/linked",
                    {
                        "name": person.name,
                        "organisation": self.settings.organisation.name,
                        "sections": self.registry.help_sections(person.role),
                    },
                )
            ]
        )

    async def _target(self, session: AsyncSession, item: Inbound) -> Target:
        event, person = item.event, _person(item)
        if isinstance(event, CommandInvoked):
            return self._command(person, event.command, event.args)
        if isinstance(event, TextReceived):
            if len(event.text) > MAX_TEXT:
                raise UserFacingError("errors/too_long", length=len(event.text), limit=MAX_TEXT)
            parsed = parse_command_text(event.text)
            if parsed and parsed[0] in self.registry.commands:
                return self._command(person, *parsed)
            # A state loaded with the person is in the identity map: no second query.
            state = None if item.no_state else await session.get(ConversationState, person.id)
            if state is not None and state.flow in self.registry.flows:
                flow = self.registry.flows[state.flow]
                return Target("flow", state.flow, event.text, None, handler=flow)
            # A mistyped command ("hlep", "briefing") gets the commands it may have meant.
            similar = self.registry.similar_commands(parsed[0], person.role) if parsed else []
            if parsed and event.text.lstrip().startswith("/"):
                raise UserFacingError("errors/unknown_command", command=parsed[0], similar=similar)
            raise UserFacingError("errors/not_understood", similar=similar)
        if isinstance(event, ButtonPressed):
            button = self.registry.buttons.get(event.action)
            if event.action == INVALID_ACTION or button is None:
                log.warning(
                    "refused button %r from %s:%s",
                    event.action,
                    event.user.channel,
                    event.user.external_id,
                )
                raise UserFacingError("errors/stale_button")
            batch = self.registry.batch_buttons.get(event.action)
            if batch is not None:
                return Target("button", event.action, event.value, batch.roles, batch=batch.handler)
            return Target("button", event.action, event.value, button.roles, button.handler)
        if isinstance(event, FormSubmitted):
            form = self.registry.forms.get(event.form)
            if form is None:
                raise UserFacingError("errors/stale_button")
            return Target("form", event.form, "", None, handler=form)
        if isinstance(event, ViewOpened):
            view = self.registry.views.get(event.view)
            if view is None:
                raise UserFacingError("errors/stale_button")
            return Target("view", event.view, "", None, handler=view)
        raise TypeError(f"unsupported event {event!r}")

    def _command(self, person: Person, name: str, args: str) -> Target:
        command = self.registry.commands.get(name.lower())
        if command is None:
            similar = self.registry.similar_commands(name, person.role)
            raise UserFacingError("errors/unknown_command", command=name, similar=similar)
        return Target(
            "command",
            command.name,
            args,
            command.roles,
            handler=command.handler,
            audited=command.audited,
        )


# The steps run in order, so what an earlier step filled in is there; these say so to mypy.


def _person(item: Inbound) -> Person:
    assert item.person is not None
    return item.person


def _target(item: Inbound) -> Target:
    assert item.target is not None
    return item.target


def _ctx(item: Inbound) -> HandlerContext:
    assert item.ctx is not None
    return item.ctx


def _as_list(result: HandlerResult) -> list[Reply]:
    if result is None:
        return []
    return result if isinstance(result, list) else [result]
