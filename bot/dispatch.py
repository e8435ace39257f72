"""Inbound events -> the pipeline (:mod:`bot.pipeline`) -> rendered replies, sent.

One transaction per event: the de-duplication row, the handler's changes and its audit
entries commit together, so a platform retry of an event that was fully handled is dropped.
When the handler fails, its work rolls back and the event alone is recorded as handled (a
retry would fail the same way). Presses of a batch button
that arrive together share one transaction instead (:meth:`Dispatcher.process_many`); they go
through the same steps, with the same outcome for each, as a press on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.batching import GroupQueue
from bot.channels.port import Address, Message, NotesElsewhere, Outgoing
from bot.clock import Clock
from bot.config import Settings
from bot.db.session import Database
from bot.errors import FieldErrors, UserFacingError
from bot.events import ButtonPressed, CommandInvoked, FormSubmitted, InboundEvent, ViewOpened
from bot.handling import Registry
from bot.pipeline import IdentityResolver, Inbound, Pipeline
from bot.render import Renderer
from bot.replies import Reply
from bot.sender import Sender
from bot.service import SendingService

log = logging.getLogger(__name__)


@dataclass
class DispatchResult:
    """What happened to one event (tests and metrics read it)."""

    duplicate: bool
    replies: list[Outgoing]
    #: A form refused field by field (:class:`~bot.errors.FieldErrors`): field id -> message
    #: in Fidelio's markup. The same messages are in ``replies``, for a form that cannot show
    #: them.
    field_errors: dict[str, str] = field(default_factory=dict)
    #: For a command typed outside the conversation with Fidelio: the note for that place.
    note: Message | None = None


class Dispatcher(SendingService):
    """Receives every inbound event, runs it through the pipeline and sends the replies."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        renderer: Renderer,
        registry: Registry,
        sender: Sender,
        clock: Clock,
    ):
        super().__init__(settings, db, sender, renderer, clock)
        self.registry = registry
        #: Per-channel lookups for people who write before being linked (Slack: by email).
        self.resolvers: dict[str, IdentityResolver] = {}
        self.pipeline = Pipeline(settings, registry, clock, self.resolvers, sqlite=db.is_sqlite)
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
        if isinstance(event, FormSubmitted) and event.answer is not None:
            # The form hears first (Slack waits for it): closed, or its fields marked.
            shown = await event.answer(result.field_errors)
            if shown and result.field_errors:
                return result
        if isinstance(event, ViewOpened):
            # Answered by publishing the view (bot/home), not in the chat: a stranger or
            # someone who has left opening it is not written to.
            return result
        for outgoing in result.replies:
            if outgoing.message.form is not None and await self._open_form(event, outgoing):
                continue
            await self.sender.reply(outgoing.to, outgoing.message, outgoing.edit)
        if result.note is not None and isinstance(event, CommandInvoked):
            await self._note_elsewhere(event, result.note)
        return result

    async def _note_elsewhere(self, event: CommandInvoked, note: Message) -> None:
        """Say where the command was typed that the answers are in the conversation."""
        port = self.sender.ports.get(event.user.channel)
        if event.elsewhere is None or not isinstance(port, NotesElsewhere):
            return
        try:
            await port.note_elsewhere(event.elsewhere, note)
        except Exception:
            # The answers themselves went out: the note is a courtesy.
            log.warning("the note where a %s command was typed failed", event.user.channel)

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
        item = self.pipeline.start(event)
        result = await self._run(item)
        if isinstance(event, CommandInvoked) and event.elsewhere and not result.duplicate:
            note = Reply("answered_in_dm", {"link": event.elsewhere.link})
            result.note = self.renderer.render(note, item.locale, event.user.channel)
        return result

    async def _run(self, item: Inbound) -> DispatchResult:
        event = item.event
        try:
            async with self.db.session(queue_writes=True) as session:
                await self.pipeline.run(session, [item])
                # Rendered in the transaction: a reply may show what a handler loaded.
                result = self._result(item)
        except FieldErrors as exc:
            # Nothing was saved, and the event is not remembered: the person corrects the
            # form and sends it again, which may well be the same event for the platform.
            rendered = {
                name: self._render(Reply(error.template_key, error.context), item)
                for name, error in exc.fields.items()
            }
            return DispatchResult(
                False,
                list(rendered.values()),
                {name: outgoing.message.text for name, outgoing in rendered.items()},
            )
        except UserFacingError as exc:
            # Raised by a handler (or an invite redemption): its transaction rolled back.
            await self._remember(event)
            return DispatchResult(False, [self._render(Reply(exc.template_key, exc.context), item)])
        except Exception:
            log.exception(
                "handling %s failed (channel=%s user=%s event=%s)",
                type(event).__name__,
                event.user.channel,
                event.user.external_id,
                event.event_id,
            )
            await self._remember(event)
            return DispatchResult(False, [self._render(Reply("errors/internal"), item)])
        return result

    def _group(self, action: str) -> GroupQueue[ButtonPressed, DispatchResult]:
        queue = self._groups.get(action)
        if queue is None:

            async def run(events: list[ButtonPressed]) -> list[DispatchResult]:
                return await self.process_many(action, events)

            queue = GroupQueue(run, lambda e: (e.user.channel, e.user.external_id))
            self._groups[action] = queue
        return queue

    async def process_many(
        self, action: str, events: Sequence[ButtonPressed]
    ) -> list[DispatchResult]:
        """Process presses of the batch button ``action`` (at most one per person) in one
        transaction, each through the same steps as :meth:`process` with the same outcome.

        If the group's transaction fails, each press is retried alone (:meth:`process`), so
        one bad press cannot cost the others their answers.
        """
        assert all(e.action == action for e in events), "a group holds presses of one button"
        items = [self.pipeline.start(event) for event in events]
        try:
            async with self.db.session(queue_writes=True) as session:
                await self.pipeline.run(session, items)
                results = [self._result(item) for item in items]
        except Exception:
            log.exception(
                "handling %d %r presses together failed; handling them one by one",
                len(events),
                action,
            )
            return [await self.process(event) for event in events]
        return results

    def _result(self, item: Inbound) -> DispatchResult:
        return DispatchResult(item.duplicate, [self._render(r, item) for r in item.replies])

    def _render(self, reply: Reply, item: Inbound) -> Outgoing:
        user = item.event.user
        message = self.renderer.render(reply, item.locale, user.channel, item.timezone)
        return Outgoing(Address(user.channel, user.address), message)

    async def _remember(self, event: InboundEvent) -> None:
        """After a failed handling, still record the event so a retry does not repeat it."""
        async with self.db.session(queue_writes=True) as session:
            await self.pipeline.claim(session, [event])
