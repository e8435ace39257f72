"""Inbound events -> de-duplication -> identity -> role check -> handler -> rendered reply.

One transaction per event: the de-duplication row, the handler's changes and its audit
entries commit together, so a platform retry of an event that was fully handled is dropped,
and an event whose handling failed can be retried by the platform.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.batching import GroupQueue
from bot.channels.callbacks import INVALID_ACTION
from bot.channels.port import Address, Outgoing
from bot.clock import Clock
from bot.config import Settings
from bot.db.models import AuditEntry, ConversationState, Person, ProcessedEvent
from bot.db.session import Database
from bot.errors import UserFacingError
from bot.events import (
    ButtonPressed,
    ChannelUser,
    CommandInvoked,
    FormSubmitted,
    InboundEvent,
    TextReceived,
    parse_command_text,
)
from bot.handling import HandlerContext, HandlerResult, Registry
from bot.identities import people_and_states_for, person_and_state_for
from bot.people.invites import redeem_invite
from bot.render import Renderer
from bot.replies import Reply
from bot.sender import Sender

log = logging.getLogger(__name__)

IdentityResolver = Callable[[AsyncSession, ChannelUser], Awaitable[Person | None]]

MAX_TEXT = 4000
_CLAIM = insert(cast(Table, ProcessedEvent.__table__))


class _Duplicate(Exception):
    pass


@dataclass
class DispatchResult:
    """What happened to one event (tests and metrics read it)."""

    duplicate: bool
    replies: list[Outgoing]


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        renderer: Renderer,
        registry: Registry,
        sender: Sender,
        clock: Clock,
    ):
        self.settings = settings
        self.db = db
        self.renderer = renderer
        self.registry = registry
        self.sender = sender
        self.clock = clock
        #: Per-channel lookups for people who write before being linked (Slack: by email).
        self.resolvers: dict[str, IdentityResolver] = {}
        self._groups: dict[str, GroupQueue[ButtonPressed, DispatchResult]] = {}

    async def handle(self, event: InboundEvent) -> DispatchResult:
        """Process one inbound event and send its replies.

        Presses of a batch button (survey answers) that arrive together share one
        transaction (:mod:`bot.batching`); everything else has a transaction of its own.
        """
        if isinstance(event, ButtonPressed) and event.action in self.registry.batch_buttons:
            result = await self._group(event.action).submit(event)
        else:
            result = await self.process(event)
        for outgoing in result.replies:
            if outgoing.message.form is not None and await self._open_form(event, outgoing):
                continue
            await self.sender.reply(outgoing.to, outgoing.message, outgoing.edit)
        return result

    async def _open_form(self, event: InboundEvent, outgoing: Outgoing) -> bool:
        """Open a form where the channel can (Slack modal); False means send the text."""
        trigger = getattr(event, "trigger", None)
        port = self.sender.ports.get(outgoing.to.channel)
        opener = getattr(port, "open_form", None)
        if not trigger or opener is None:
            return False
        try:
            await opener(trigger, outgoing.message.form)
            return True
        except Exception:
            log.warning(
                "opening a form on %s failed; sending the text instead", outgoing.to.channel
            )
            return False

    async def process(self, event: InboundEvent) -> DispatchResult:
        """Process one event and return the rendered replies without sending them."""
        to = Address(event.user.channel, event.user.address)
        locale = self._platform_locale(event)
        try:
            async with self.db.session(queue_writes=True) as session:
                await self._claim(session, event)
                person, state = await person_and_state_for(session, event.user)
                state_known = person is not None
                resolver = self.resolvers.get(event.user.channel)
                if person is None and resolver is not None:
                    person = await resolver(session, event.user)
                timezone = None
                if person is None:
                    replies, locale = await self._onboard(session, event)
                else:
                    locale = person.locale
                    replies = await self._route(
                        session, person, event, no_state=state_known and state is None
                    )
                    # The handler may have changed the language.
                    locale, timezone = person.locale, person.timezone
                rendered = [self._render(r, locale, event, to, timezone) for r in replies]
        except _Duplicate:
            log.info("duplicate %s event %s dropped", event.user.channel, event.event_id)
            return DispatchResult(True, [])
        except UserFacingError as exc:
            await self._remember(event, exc)
            reply = Reply(exc.template_key, exc.context)
            return DispatchResult(False, [self._render(reply, locale, event, to)])
        except Exception:
            log.exception(
                "handling %s failed (channel=%s user=%s event=%s)",
                type(event).__name__,
                event.user.channel,
                event.user.external_id,
                event.event_id,
            )
            await self._remember(event)
            return DispatchResult(
                False, [self._render(Reply("errors/internal"), locale, event, to)]
            )
        return DispatchResult(False, rendered)

    def _group(self, action: str) -> GroupQueue[ButtonPressed, DispatchResult]:
        queue = self._groups.get(action)
        if queue is None:

            async def run(events: list[ButtonPressed]) -> list[DispatchResult]:
                return await self.process_many(action, events)

            queue = GroupQueue(run, lambda e: (e.user.channel, e.user.external_id))
            self._groups[action] = queue
        return queue

    async def process_many(self, action: str, events: list[ButtonPressed]) -> list[DispatchResult]:
        """Process presses of one batch button (at most one per person) in one transaction.

        Presses from people who are not linked, not active or not allowed take the ordinary
        path (:meth:`process`), as do all of them if the group's transaction fails: then each
        is retried alone, so one bad press cannot cost the others their answers.
        """
        route = self.registry.batch_buttons[action]
        results: list[DispatchResult | None] = [None] * len(events)
        try:
            async with self.db.session(queue_writes=True) as session:
                found = await people_and_states_for(session, [e.user for e in events])
                today = self.clock.now().date()
                eligible = []
                for i, event in enumerate(events):
                    got = found.get((event.user.channel, event.user.external_id))
                    if got and got[0].role in route.roles and got[0].is_active(today):
                        eligible.append(i)
                claimed = await self._claim_many(session, [events[i] for i in eligible])
                contexts: list[tuple[int, HandlerContext]] = []
                for i in eligible:
                    event = events[i]
                    if event.event_id not in claimed:
                        log.info(
                            "duplicate %s event %s dropped", event.user.channel, event.event_id
                        )
                        results[i] = DispatchResult(True, [])
                        continue
                    person, state = found[(event.user.channel, event.user.external_id)]
                    ctx = self._context(session, person, event, event.value, no_state=state is None)
                    contexts.append((i, ctx))
                outcomes = await route.handler([ctx for _, ctx in contexts]) if contexts else []
                for (i, ctx), outcome in zip(contexts, outcomes, strict=True):
                    event = events[i]
                    to = Address(event.user.channel, event.user.address)
                    person = ctx.person
                    if isinstance(outcome, UserFacingError):
                        replies = [Reply(outcome.template_key, outcome.context)]
                    else:
                        replies = _as_list(outcome)
                    results[i] = DispatchResult(
                        False,
                        [
                            self._render(r, person.locale, event, to, person.timezone)
                            for r in replies
                        ],
                    )
        except Exception:
            log.exception(
                "handling %d %r presses together failed; handling them one by one",
                len(events),
                action,
            )
            results = [None] * len(events)
        return [
            r if r is not None else await self.process(e)
            for r, e in zip(results, events, strict=True)
        ]

    async def _claim_many(self, session: AsyncSession, events: list[ButtonPressed]) -> set[str]:
        """Record events as handled; returns the ids that were new (the rest are duplicates)."""
        if not events:
            return set()
        table = cast(Table, ProcessedEvent.__table__)
        dialect_insert = sqlite_insert if self.db.is_sqlite else pg_insert
        now = self.clock.now()
        statement = (
            dialect_insert(table)
            .values(
                [
                    {"channel": e.user.channel, "event_id": e.event_id, "processed_at": now}
                    for e in events
                ]
            )
            .on_conflict_do_nothing(index_elements=["channel", "event_id"])
            .returning(table.c.channel, table.c.event_id)
        )
        rows = await session.execute(statement)
        return {event_id for _channel, event_id in rows.all()}

    def _platform_locale(self, event: InboundEvent) -> str:
        code = (event.user.language_code or "")[:2].lower()
        return code if code in ("en", "it") else self.settings.organisation.default_locale

    def _render(
        self,
        reply: Reply,
        locale: str,
        event: InboundEvent,
        to: Address,
        timezone: str | None = None,
    ) -> Outgoing:
        return Outgoing(to, self.renderer.render(reply, locale, event.user.channel, timezone))

    async def _claim(self, session: AsyncSession, event: InboundEvent) -> None:
        # A plain table INSERT with parameters: neither the ORM's unit of work (RETURNING the
        # id) nor building a statement per event, on the path of every inbound event.
        try:
            await session.execute(
                _CLAIM,
                {
                    "channel": event.user.channel,
                    "event_id": event.event_id,
                    "processed_at": self.clock.now(),
                },
            )
        except IntegrityError:
            raise _Duplicate() from None

    async def _remember(self, event: InboundEvent, error: Exception | None = None) -> None:
        """After a failed handling, still record the event so a retry does not repeat it
        (and, for a refused command, the refusal in the audit log)."""
        try:
            async with self.db.session(queue_writes=True) as session:
                await self._claim(session, event)
                if isinstance(error, _Refused):
                    session.add(error.audit_entry)
        except (_Duplicate, IntegrityError):
            pass

    async def _onboard(self, session: AsyncSession, event: InboundEvent) -> tuple[list[Reply], str]:
        """Unknown people get onboarding and nothing else; a valid invite links them."""
        locale = self._platform_locale(event)
        if isinstance(event, CommandInvoked) and event.command == "start" and event.args:
            person = await redeem_invite(session, event.args, event.user, self.clock)
            ctx = self._context(session, person, event, "")
            return [
                Reply(
                    "onboarding/linked",
                    {
                        "name": person.name,
                        "organisation": self.settings.organisation.name,
                        "sections": self.registry.help_sections(person.role),
                    },
                )
            ], ctx.locale
        return [
            Reply("onboarding/unknown", {"organisation": self.settings.organisation.name})
        ], locale

    def _context(
        self,
        session: AsyncSession,
        person: Person,
        event: InboundEvent,
        args: str,
        *,
        no_state: bool = False,
    ) -> HandlerContext:
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

    async def _route(
        self, session: AsyncSession, person: Person, event: InboundEvent, *, no_state: bool = False
    ) -> list[Reply]:
        """Run the handler for ``event``. ``no_state``: the person was loaded together with
        their conversation state and has none."""
        if not person.is_active(self.clock.now().date()):
            return [Reply("onboarding/unknown", {"organisation": self.settings.organisation.name})]
        if isinstance(event, CommandInvoked):
            return await self._command(
                session, person, event, event.command, event.args, no_state=no_state
            )
        if isinstance(event, TextReceived):
            if len(event.text) > MAX_TEXT:
                raise UserFacingError("errors/too_long", length=len(event.text), limit=MAX_TEXT)
            # A state loaded with the person is in the identity map: no second query.
            state = None if no_state else await session.get(ConversationState, person.id)
            parsed = parse_command_text(event.text)
            if parsed and parsed[0] in self.registry.commands:
                return await self._command(session, person, event, *parsed, no_state=no_state)
            if state is not None and state.flow in self.registry.flows:
                route = self.registry.flows[state.flow]
                ctx = self._context(session, person, event, event.text, no_state=no_state)
                return _as_list(await route(ctx))
            # A mistyped command ("hlep", "briefing") gets the commands it may have meant.
            similar = self.registry.similar_commands(parsed[0], person.role) if parsed else []
            if parsed and event.text.lstrip().startswith("/"):
                raise UserFacingError("errors/unknown_command", command=parsed[0], similar=similar)
            raise UserFacingError("errors/not_understood", similar=similar)
        if isinstance(event, ButtonPressed):
            return await self._button(session, person, event, no_state=no_state)
        if isinstance(event, FormSubmitted):
            form = self.registry.forms.get(event.form)
            if form is None:
                raise UserFacingError("errors/stale_button")
            return _as_list(
                await form(self._context(session, person, event, "", no_state=no_state))
            )
        raise TypeError(f"unsupported event {event!r}")

    async def _command(
        self,
        session: AsyncSession,
        person: Person,
        event: InboundEvent,
        name: str,
        args: str,
        *,
        no_state: bool = False,
    ) -> list[Reply]:
        command = self.registry.commands.get(name.lower())
        if command is None:
            similar = self.registry.similar_commands(name, person.role)
            raise UserFacingError("errors/unknown_command", command=name, similar=similar)
        if person.role not in command.roles:
            raise _Refused(
                command.name,
                AuditEntry(
                    at=self.clock.now(),
                    actor_person_id=person.id,
                    actor_label=person.email,
                    action="denied",
                    detail={"command": command.name, "role": person.role.value},
                ),
            )
        ctx = self._context(session, person, event, args, no_state=no_state)
        if command.audited:
            ctx.audit(f"command.{command.name}", args=args, channel=event.user.channel)
        return _as_list(await command.handler(ctx))

    async def _button(
        self, session: AsyncSession, person: Person, event: ButtonPressed, *, no_state: bool = False
    ) -> list[Reply]:
        route = self.registry.buttons.get(event.action)
        if event.action == INVALID_ACTION or route is None:
            log.warning(
                "refused button %r from %s:%s",
                event.action,
                event.user.channel,
                event.user.external_id,
            )
            raise UserFacingError("errors/stale_button")
        if person.role not in route.roles:
            raise UserFacingError("errors/not_allowed", command=event.action)
        ctx = self._context(session, person, event, event.value, no_state=no_state)
        return _as_list(await route.handler(ctx))


class _Refused(UserFacingError):
    """A role check failed; the refusal is audited although the transaction rolls back."""

    def __init__(self, command: str, audit_entry: AuditEntry):
        super().__init__("errors/not_allowed", command=command)
        self.audit_entry = audit_entry


def _as_list(result: HandlerResult) -> list[Reply]:
    if result is None:
        return []
    return result if isinstance(result, list) else [result]
