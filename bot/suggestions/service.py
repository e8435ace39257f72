"""Suggestions: sending, triage, follow-up questions, publishing, support votes and merging.

Every method works inside the caller's transaction (a chat event's, or the CLI's), so a
change, its history row, its audit entry and the notices it causes commit together.

Notices to the author go through the outbox when the suggestion is named. An anonymous
suggestion has no author column: its sealed reply token is opened in memory and the notice is
stored as a :class:`~bot.db.models.SealedNotice` (addressed by a fresh sealed token), which
bot/suggestions/notices.py delivers and then deletes. Nothing in the database ties an
anonymous suggestion, its history or its notices to a person. How they are written so that
the engine's own bookkeeping does not tie them either (the author's draft is deleted apart,
dead row versions are scrubbed): bot/suggestions/scrubbing.py. The handlers call
:func:`~bot.suggestions.scrubbing.forget_draft` after :meth:`SuggestionService.create` and
:meth:`SuggestionService.answer` for anonymous ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.changes import note_change
from bot.clock import Clock
from bot.config import Settings
from bot.db.models import AuditEntry, Person, Role, Team
from bot.errors import UserFacingError
from bot.people import managed_team_ids, team_subtree_ids
from bot.replies import Reply, ReplyButton
from bot.suggestions.content import TRIAGE_STATUSES, excerpt, reference
from bot.suggestions.notices import enqueue_event_reply, notify_authors, to_the_hour
from bot.suggestions.seal import NOTICE_PURPOSE, Sealer, author_purpose
from bot.suggestions.tables import (
    SealedNotice,
    Suggestion,
    SuggestionEvent,
    SuggestionStatus,
    SuggestionVote,
)

log = logging.getLogger(__name__)

TRIAGE_ROLES = frozenset({Role.manager, Role.hr, Role.admin})
HR_ROLES = frozenset({Role.hr, Role.admin})


@dataclass(frozen=True)
class Filters:
    status: SuggestionStatus | None = None
    category: str | None = None
    team_id: int | None = None
    anonymous: bool | None = None
    published: bool | None = None
    since: datetime | None = None
    limit: int = 20


class SuggestionService:
    def __init__(self, settings: Settings, clock: Clock):
        self.settings = settings
        self.clock = clock
        self.sealer = Sealer(settings.security.secret_key.get_secret_value())

    # Sending

    async def create(
        self, session: AsyncSession, author: Person, text: str, category: str, anonymous: bool
    ) -> Suggestion:
        """Store a suggestion. Anonymous: no author, a sealed reply token, a team of at
        least k people."""
        cleaned = text.strip()
        limit = self.settings.suggestions.max_length
        if not cleaned:
            raise UserFacingError("suggestions/empty")
        if len(cleaned) > limit:
            raise UserFacingError("suggestions/too_long", length=len(cleaned), limit=limit)
        if self.settings.suggestions.category(category) is None:
            raise UserFacingError(
                "suggestions/unknown_category",
                given=category,
                choices=", ".join(c.id for c in self.settings.suggestions.categories),
            )
        now = self.clock.now()
        team_id = (
            await self.anonymous_team(session, author.team_id) if anonymous else author.team_id
        )
        suggestion = Suggestion(
            text=cleaned,
            category=category,
            anonymous=anonymous,
            author_id=None if anonymous else author.id,
            team_id=team_id,
            status=SuggestionStatus.new,
            # An anonymous suggestion's times are kept to the hour: an exact time could be
            # matched against who was chatting with the bot at that moment.
            created_at=to_the_hour(now) if anonymous else now,
            updated_at=to_the_hour(now) if anonymous else now,
        )
        session.add(suggestion)
        await session.flush()
        note_change(session)  # one more to triage
        if anonymous:
            suggestion.reply_token = self.sealer.seal(author.id, author_purpose(suggestion.id))
        return suggestion

    async def anonymous_team(self, session: AsyncSession, team_id: int) -> int:
        """The team itself when it has at least k active members (its subtree), otherwise
        the nearest ancestor that has; the root when none has."""
        k = self.settings.suggestions.min_team
        today = self.clock.now().date()
        current: int | None = team_id
        last = team_id
        while current is not None:
            last = current
            subtree = await team_subtree_ids(session, current)
            size = await session.scalar(
                select(func.count())
                .select_from(Person)
                .where(
                    Person.team_id.in_(subtree),
                    (Person.leave_date.is_(None)) | (Person.leave_date > today),
                )
            )
            if int(size or 0) >= k:
                return current
            current = await session.scalar(select(Team.parent_id).where(Team.id == current))
        return last

    # Who sees what

    async def scope(self, session: AsyncSession, viewer: Person) -> set[int] | None:
        """Team ids whose suggestions ``viewer`` may triage; None means all (HR, admin)."""
        if viewer.role in HR_ROLES:
            return None
        if viewer.role == Role.manager:
            return await managed_team_ids(session, viewer)
        return set()

    async def for_triage(
        self, session: AsyncSession, viewer: Person, suggestion_id: int
    ) -> Suggestion:
        """A suggestion ``viewer`` may see; the same refusal whether it is missing or outside
        their subtree (so ids cannot be probed)."""
        suggestion = await session.get(Suggestion, suggestion_id)
        scope = await self.scope(session, viewer)
        if (
            suggestion is None
            or viewer.role not in TRIAGE_ROLES
            or (scope is not None and suggestion.team_id not in scope)
        ):
            raise UserFacingError("suggestions/not_found", reference=reference(suggestion_id))
        return suggestion

    async def listing(
        self, session: AsyncSession, viewer: Person, filters: Filters
    ) -> list[Suggestion]:
        scope = await self.scope(session, viewer)
        query = select(Suggestion)
        if scope is not None:
            query = query.where(Suggestion.team_id.in_(scope or {-1}))
        if filters.status is not None:
            query = query.where(Suggestion.status == filters.status)
        else:
            query = query.where(Suggestion.status != SuggestionStatus.merged)
        if filters.category:
            query = query.where(Suggestion.category == filters.category)
        if filters.team_id is not None:
            query = query.where(
                Suggestion.team_id.in_(await team_subtree_ids(session, filters.team_id))
            )
        if filters.anonymous is not None:
            query = query.where(Suggestion.anonymous.is_(filters.anonymous))
        if filters.published is not None:
            query = query.where(
                Suggestion.published_at.is_not(None)
                if filters.published
                else Suggestion.published_at.is_(None)
            )
        if filters.since is not None:
            query = query.where(Suggestion.created_at >= filters.since)
        query = query.order_by(Suggestion.id.desc()).limit(filters.limit)
        return list(await session.scalars(query))

    async def history(self, session: AsyncSession, suggestion_id: int) -> list[SuggestionEvent]:
        return list(
            await session.scalars(
                select(SuggestionEvent)
                .where(SuggestionEvent.suggestion_id == suggestion_id)
                .order_by(SuggestionEvent.id)
            )
        )

    async def exchanges(
        self, session: AsyncSession, ids: Iterable[int]
    ) -> dict[int, list[SuggestionEvent]]:
        """HR's questions and replies and the author's answers, per suggestion, oldest first
        (what the author sees in ``mysuggestions``)."""
        wanted = list(ids)
        if not wanted:
            return {}
        found: dict[int, list[SuggestionEvent]] = {}
        for event in await session.scalars(
            select(SuggestionEvent)
            .where(
                SuggestionEvent.suggestion_id.in_(wanted),
                SuggestionEvent.kind.in_(("question", "reply", "answer")),
            )
            .order_by(SuggestionEvent.id)
        ):
            found.setdefault(event.suggestion_id, []).append(event)
        return found

    async def published(self, session: AsyncSession, limit: int) -> tuple[list[Suggestion], int]:
        """The ideas board: the newest ``limit`` published suggestions colleagues may
        support (merged ones live on in their target), and how many there are in all."""
        board = (
            Suggestion.published_at.is_not(None),
            Suggestion.status != SuggestionStatus.merged,
        )
        rows = list(
            await session.scalars(
                select(Suggestion)
                .where(*board)
                .order_by(Suggestion.published_at.desc(), Suggestion.id.desc())
                .limit(limit)
            )
        )
        total = await session.scalar(select(func.count()).select_from(Suggestion).where(*board))
        return rows, int(total or 0)

    async def votes(self, session: AsyncSession, ids: Iterable[int]) -> dict[int, int]:
        wanted = list(ids)
        if not wanted:
            return {}
        rows = await session.execute(
            select(SuggestionVote.suggestion_id, func.count())
            .where(SuggestionVote.suggestion_id.in_(wanted))
            .group_by(SuggestionVote.suggestion_id)
        )
        counts = {int(sid): int(n) for sid, n in rows.tuples()}
        return {sid: counts.get(sid, 0) for sid in wanted}

    async def team_names(self, session: AsyncSession, ids: Iterable[int | None]) -> dict[int, str]:
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return {}
        rows = await session.execute(select(Team.id, Team.name).where(Team.id.in_(wanted)))
        return {int(i): str(n) for i, n in rows.tuples()}

    def is_author(self, suggestion: Suggestion, person: Person) -> bool:
        if suggestion.anonymous:
            opened = self.sealer.open(suggestion.reply_token, author_purpose(suggestion.id))
            return opened == person.id
        return suggestion.author_id == person.id

    async def authored_by(self, session: AsyncSession, person: Person) -> list[Suggestion]:
        """``person``'s own suggestions, newest first: the named ones by their author column,
        the anonymous ones by opening each sealed token in memory (nothing stored links them).
        """
        named = list(
            await session.scalars(select(Suggestion).where(Suggestion.author_id == person.id))
        )
        rows = await session.execute(
            select(Suggestion.id, Suggestion.reply_token).where(Suggestion.anonymous.is_(True))
        )
        mine = [
            sid
            for sid, token in rows.tuples()
            if self.sealer.open(token, author_purpose(sid)) == person.id
        ]
        anonymous = (
            list(await session.scalars(select(Suggestion).where(Suggestion.id.in_(mine))))
            if mine
            else []
        )
        return sorted(named + anonymous, key=lambda s: s.id, reverse=True)

    # Triage

    async def set_status(
        self,
        session: AsyncSession,
        actor: Person,
        suggestion: Suggestion,
        status: SuggestionStatus,
        reason: str | None = None,
    ) -> SuggestionEvent:
        if status not in TRIAGE_STATUSES:
            raise UserFacingError("suggestions/bad_status", given=status.value)
        if suggestion.status == SuggestionStatus.merged:
            raise UserFacingError(
                "suggestions/is_merged",
                reference=reference(suggestion.id),
                target=reference(suggestion.merged_into_id or 0),
            )
        reason = (reason or "").strip() or None
        if status == SuggestionStatus.declined and not reason:
            raise UserFacingError("suggestions/reason_needed", reference=reference(suggestion.id))
        if status == suggestion.status:  # not a change: no history, no notice, no digest
            raise UserFacingError(
                "suggestions/same_status", reference=reference(suggestion.id), status=status.value
            )
        suggestion.status = status
        event = await self._event(session, actor, suggestion, "status", status=status, text=reason)
        await self._notify(
            session,
            suggestion,
            event,
            "suggestions/status_changed",
            {"status": status.value, "reason": reason},
        )
        return event

    async def reply(
        self, session: AsyncSession, actor: Person, suggestion: Suggestion, text: str
    ) -> SuggestionEvent:
        cleaned = _required(text, "suggestions/reply_usage")
        event = await self._event(session, actor, suggestion, "reply", text=cleaned)
        await self._notify(session, suggestion, event, "suggestions/replied", {"reply": cleaned})
        return event

    async def ask(
        self, session: AsyncSession, actor: Person, suggestion: Suggestion, question: str
    ) -> SuggestionEvent:
        """A follow-up question to the author (HR); they answer with a button, still
        anonymous if they were."""
        if actor.role not in HR_ROLES:
            raise UserFacingError("errors/not_allowed", command="ask")
        cleaned = _required(question, "suggestions/ask_usage")
        event = await self._event(session, actor, suggestion, "question", text=cleaned)
        await self._notify(
            session,
            suggestion,
            event,
            "suggestions/question",
            {"question": cleaned},
            buttons=(ReplyButton("sugg_answer", "sugg_answer", str(suggestion.id)),),
            origin_only=True,
        )
        return event

    async def answer(
        self, session: AsyncSession, author: Person, suggestion: Suggestion, text: str
    ) -> SuggestionEvent:
        """The author's answer to the latest question; the asker is told (not who answered
        when the suggestion is anonymous)."""
        if not self.is_author(suggestion, author):
            raise UserFacingError("errors/stale_button")
        cleaned = _required(text, "suggestions/answer_empty")
        question = await session.scalar(
            select(SuggestionEvent)
            .where(
                SuggestionEvent.suggestion_id == suggestion.id, SuggestionEvent.kind == "question"
            )
            .order_by(SuggestionEvent.id.desc())
            .limit(1)
        )
        if question is None:
            raise UserFacingError("errors/stale_button")
        now = self.clock.now()
        event = SuggestionEvent(
            suggestion_id=suggestion.id,
            at=to_the_hour(now) if suggestion.anonymous else now,
            kind="answer",
            text=cleaned,
            # The author's own words: no actor, so an anonymous author stays anonymous.
            actor_id=None,
        )
        session.add(event)
        await session.flush()
        note_change(session, author.id)
        if question.actor_id is None:
            return event
        reply = Reply(
            "suggestions/answered",
            {
                **self._card(suggestion),
                "question": question.text or "",
                "answer": cleaned,
                "author": None if suggestion.anonymous else author.name,
            },
        )
        if suggestion.anonymous:
            # The asker is told by a sealed notice, not an outbox row: the transaction that
            # writes an anonymous answer writes no person id at all (see scrubbing.py).
            session.add(
                SealedNotice(
                    token=self.sealer.seal(question.actor_id, NOTICE_PURPOSE),
                    template=reply.template,
                    context=reply.context,
                    buttons=[],
                    attempts=0,
                    not_before=to_the_hour(now),
                    created_at=to_the_hour(now),
                )
            )
            await session.flush()
            return event
        await enqueue_event_reply(
            session, event, suggestion.id, question.actor_id, "suggestion-answer", reply, now
        )
        return event

    async def publish(
        self, session: AsyncSession, actor: Person, suggestion: Suggestion
    ) -> SuggestionEvent:
        """Show the text (never the author) to colleagues, who may support it."""
        if actor.role not in HR_ROLES:
            raise UserFacingError("errors/not_allowed", command="publish")
        if suggestion.status == SuggestionStatus.merged:
            raise UserFacingError(
                "suggestions/is_merged",
                reference=reference(suggestion.id),
                target=reference(suggestion.merged_into_id or 0),
            )
        if suggestion.published_at is not None:
            raise UserFacingError(
                "suggestions/already_published", reference=reference(suggestion.id)
            )
        suggestion.published_at = self.clock.now()
        event = await self._event(session, actor, suggestion, "publish", respond=False)
        await self._notify(session, suggestion, event, "suggestions/published")
        return event

    async def merge(
        self, session: AsyncSession, actor: Person, source: Suggestion, target: Suggestion
    ) -> int:
        """Fold ``source`` into ``target``: its supporters are added to the target's (one vote
        per person), its merged suggestions follow, and every author of both is told.
        Returns the target's votes."""
        if actor.role not in HR_ROLES:
            raise UserFacingError("errors/not_allowed", command="merge")
        if source.id == target.id or target.status == SuggestionStatus.merged:
            raise UserFacingError(
                "suggestions/merge_usage",
            )
        if source.status == SuggestionStatus.merged:
            raise UserFacingError(
                "suggestions/is_merged",
                reference=reference(source.id),
                target=reference(source.merged_into_id or 0),
            )
        have = set(
            await session.scalars(
                select(SuggestionVote.voter_key).where(SuggestionVote.suggestion_id == target.id)
            )
        )
        moving = list(
            await session.scalars(
                select(SuggestionVote).where(SuggestionVote.suggestion_id == source.id)
            )
        )
        for vote in moving:
            if vote.voter_key not in have:
                session.add(SuggestionVote(suggestion_id=target.id, voter_key=vote.voter_key))
                have.add(vote.voter_key)
            await session.delete(vote)
        await session.execute(
            update(Suggestion)
            .where(Suggestion.merged_into_id == source.id)
            .values(merged_into_id=target.id)
            .execution_options(synchronize_session="fetch")
        )
        source.status = SuggestionStatus.merged
        source.merged_into_id = target.id
        if target.published_at is None and source.published_at is not None:
            target.published_at = self.clock.now()
        await session.flush()
        event = await self._event(
            session, actor, target, "merge", text=reference(source.id), respond=False
        )
        source.updated_at = target.updated_at
        session.add(
            SuggestionEvent(
                suggestion_id=source.id,
                at=event.at,
                kind="merge",
                status=SuggestionStatus.merged,
                text=reference(target.id),
                actor_id=actor.id,
            )
        )
        await self._notify(
            session,
            target,
            event,
            "suggestions/merged",
            {"source": reference(source.id), "votes": len(have)},
        )
        return len(have)

    async def vote(
        self, session: AsyncSession, person: Person, suggestion: Suggestion
    ) -> tuple[bool, int, Suggestion]:
        """Support a published suggestion, once per person. Returns (counted now, votes,
        the suggestion that holds the vote — the merge target for a merged one)."""
        while suggestion.status == SuggestionStatus.merged and suggestion.merged_into_id:
            found = await session.get(Suggestion, suggestion.merged_into_id)
            if found is None:
                break
            suggestion = found
        if suggestion.published_at is None:
            raise UserFacingError("errors/stale_button")
        key = self.sealer.voter_key(person.id)
        existing = await session.get(SuggestionVote, (suggestion.id, key))
        added = existing is None
        if added:
            session.add(SuggestionVote(suggestion_id=suggestion.id, voter_key=key))
            await session.flush()
            note_change(session, person.id)
        count = (await self.votes(session, [suggestion.id]))[suggestion.id]
        return added, count, suggestion

    # Helpers

    def _card(self, suggestion: Suggestion) -> dict[str, Any]:
        return {
            "reference": reference(suggestion.id),
            "excerpt": excerpt(suggestion.text),
            "category": suggestion.category,
            "anonymous": suggestion.anonymous,
        }

    async def _notify(
        self,
        session: AsyncSession,
        suggestion: Suggestion,
        event: SuggestionEvent,
        template: str,
        context: dict[str, Any] | None = None,
        *,
        buttons: tuple[ReplyButton, ...] = (),
        origin_only: bool = False,
    ) -> None:
        """Tell the authors of ``suggestion`` about ``event`` now (see :func:`notify_authors`):
        ``template`` with the suggestion's card and ``context``."""
        reply = Reply(template, {**self._card(suggestion), **(context or {})}, buttons)
        await notify_authors(
            session,
            self.sealer,
            self.clock.now(),
            suggestion,
            event,
            reply,
            origin_only=origin_only,
        )

    async def _event(
        self,
        session: AsyncSession,
        actor: Person,
        suggestion: Suggestion,
        kind: str,
        *,
        status: SuggestionStatus | None = None,
        text: str | None = None,
        respond: bool = True,
    ) -> SuggestionEvent:
        now = self.clock.now()
        event = SuggestionEvent(
            suggestion_id=suggestion.id,
            at=now,
            kind=kind,
            status=status,
            text=text,
            actor_id=actor.id,
        )
        session.add(event)
        suggestion.updated_at = now
        if respond and suggestion.first_response_at is None:
            suggestion.first_response_at = now
        changed = {"status": status.value} if status else {}
        session.add(
            AuditEntry.by(actor, now, f"suggestion.{kind}", suggestion=suggestion.id, **changed)
        )
        await session.flush()
        # A status, a reply, a question, a publication, a merge: the author's list, the
        # ideas board and the triage lists may all change.
        note_change(session)
        return event


def _required(text: str, template: str) -> str:
    cleaned = (text or "").strip()
    if not cleaned:
        raise UserFacingError(template)
    return cleaned
