"""Personal data of the suggestions feature: export, erasure and the retention of texts.

What is linked to a person: the suggestions they sent *with their name* (``author_id``), with
their history, replies, follow-up questions and the person's own answers; and what they did
while triaging (history rows with their ``actor_id``). Messages to them (outbox) and a
conversation in progress are covered by the generic parts.

What is not, by design: anonymous suggestions (no author column; only a sealed reply token
that the running bot opens in memory) and support votes (a keyed hash of the person, not a
person id). An export is read by whoever runs the command, so neither is listed: listing
them would tell that reader who wrote or supported what.

Erasure detaches the author of named suggestions (the text, status and votes stay, so counts
do not change) and removes the person's email and name wherever a suggestion text, a history
text or a pending sealed notice quotes them. A sealed token of an anonymous suggestion still
opens to the erased row's id; notices for that id are dropped unsent (bot/suggestions/notices.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Delivery, Person, Team
from bot.privacy.parts import Erasure, PersonalDataPart, iso
from bot.privacy.retention import RetentionRule
from bot.suggestions.content import reference
from bot.suggestions.tables import (
    SealedNotice,
    Suggestion,
    SuggestionEvent,
    SuggestionStatus,
    SuggestionVote,
)

#: Written into every export (the suggestions part), as for survey answers.
ANONYMOUS_NOTE = (
    "Anonymous suggestions are stored without an author: only Fidelio, while running, can "
    "reach their author to deliver a reply. They are not listed here, because whoever reads "
    "this export would learn who wrote them; the author sees them in chat with "
    "'mysuggestions'. They are not erased (their text stays, their author cannot be named)."
)
VOTES_NOTE = (
    "Support votes are stored as a keyed hash of the person, not with a person id, so that "
    "no list says who supported what. The suggestions you supported are therefore not listed; "
    "after an erasure your votes stay counted."
)

#: History kinds whose text is what someone wrote (the others hold references only).
TEXT_KINDS = frozenset({"status", "reply", "question", "answer"})
#: Keys of a message context that quote a suggestion or a response to it.
QUOTING_KEYS = frozenset({"excerpt", "reason", "reply", "question", "answer", "response", "text"})
CLOSED = (SuggestionStatus.done, SuggestionStatus.declined)


def parts() -> list[PersonalDataPart]:
    """The suggestions feature's parts, in erasure order."""
    return [
        PersonalDataPart("suggestions", export_suggestions, detach_author),
        PersonalDataPart("suggestion_triage", export_triage, scrub_mentions),
    ]


# Export


async def export_suggestions(session: AsyncSession, person: Person) -> dict[str, Any]:
    """The person's named suggestions with their history, and what cannot be listed."""
    mine = list(
        await session.scalars(
            select(Suggestion).where(Suggestion.author_id == person.id).order_by(Suggestion.id)
        )
    )
    teams = await _team_names(session, [s.team_id for s in mine])
    votes = await _votes(session, [s.id for s in mine])
    named = []
    for suggestion in mine:
        history = await session.scalars(
            select(SuggestionEvent)
            .where(SuggestionEvent.suggestion_id == suggestion.id)
            .order_by(SuggestionEvent.id)
        )
        named.append(
            {
                "reference": reference(suggestion.id),
                "text": suggestion.text,
                "category": suggestion.category,
                "status": suggestion.status.value,
                "team": teams.get(suggestion.team_id or 0),
                "created_at": iso(suggestion.created_at),
                "updated_at": iso(suggestion.updated_at),
                "published_at": iso(suggestion.published_at),
                "merged_into": reference(suggestion.merged_into_id)
                if suggestion.merged_into_id
                else None,
                "supporters": votes.get(suggestion.id, 0),
                # Answers carry no actor: on one's own named suggestion they are one's own.
                "history": [
                    {
                        "at": iso(event.at),
                        "kind": event.kind,
                        "status": event.status.value if event.status else None,
                        "text": event.text,
                        "yours": event.kind == "answer",
                    }
                    for event in history
                ],
            }
        )
    return {"named": named, "anonymous": ANONYMOUS_NOTE, "support_votes": VOTES_NOTE}


async def export_triage(session: AsyncSession, person: Person) -> list[dict[str, Any]]:
    """What the person did to suggestions as a manager or HR: status changes, replies,
    questions, publishing and merging."""
    rows = await session.scalars(
        select(SuggestionEvent)
        .where(SuggestionEvent.actor_id == person.id)
        .order_by(SuggestionEvent.id)
    )
    return [
        {
            "suggestion": reference(event.suggestion_id),
            "at": iso(event.at),
            "kind": event.kind,
            "status": event.status.value if event.status else None,
            "text": event.text,
        }
        for event in rows
    ]


# Erasure


async def detach_author(session: AsyncSession, erasure: Erasure) -> int:
    """Named suggestions lose their author; text, status, history and votes stay. Returns
    how many were detached (recorded in the ``people.forget`` audit entry)."""
    mine = list(
        await session.scalars(select(Suggestion).where(Suggestion.author_id == erasure.person.id))
    )
    for suggestion in mine:
        suggestion.author_id = None
    return len(mine)


async def scrub_mentions(session: AsyncSession, erasure: Erasure) -> int:
    """The person's email and name out of every suggestion text, history text and pending
    sealed notice (a colleague may have named them). Triage rows keep their ``actor_id``,
    which now points at the erased row."""
    changed = 0
    for suggestion in await session.scalars(select(Suggestion)):
        if erasure.mentions(suggestion.text):
            suggestion.text = erasure.scrub(suggestion.text)
            changed += 1
    for event in await session.scalars(
        select(SuggestionEvent).where(SuggestionEvent.text.is_not(None))
    ):
        if erasure.mentions(event.text):
            event.text = erasure.scrub(event.text)
            changed += 1
    for notice in await session.scalars(select(SealedNotice)):
        if erasure.mentions(notice.context):
            notice.context = erasure.scrub(notice.context)
            changed += 1
    return changed


# Retention


def removed_marker(days: int) -> str:
    return f"[removed after {days} days]"


async def purge_suggestion_texts(session: AsyncSession, cutoff: datetime, days: int) -> int:
    """Texts of suggestions closed (done or declined) before ``cutoff`` become a marker: the
    suggestion's own text, the texts of its history (reasons, replies, questions, answers),
    and their quotes in queued or sent messages. Counts, statuses, dates and categories stay,
    so the measurement does not change. A merged suggestion goes with the one it joined.
    Returns the rows changed."""
    marker = removed_marker(days)
    rows = await session.execute(
        select(SuggestionEvent.suggestion_id, func.max(SuggestionEvent.at))
        .where(SuggestionEvent.kind == "status")
        .group_by(SuggestionEvent.suggestion_id)
    )
    closing: dict[int, datetime] = {int(sid): at for sid, at in rows.tuples()}
    everything = {s.id: s for s in await session.scalars(select(Suggestion))}
    expired = {
        sid
        for sid, s in everything.items()
        if s.status in CLOSED and (closing.get(sid) or s.updated_at) < cutoff
    }
    for sid, suggestion in everything.items():
        if suggestion.status == SuggestionStatus.merged and _root(everything, sid) in expired:
            expired.add(sid)
    if not expired:
        return 0
    changed = 0
    for sid in sorted(expired):
        if everything[sid].text != marker:
            everything[sid].text = marker
            changed += 1
    for event in await session.scalars(
        select(SuggestionEvent).where(
            SuggestionEvent.suggestion_id.in_(expired),
            SuggestionEvent.kind.in_(TEXT_KINDS),
            SuggestionEvent.text.is_not(None),
        )
    ):
        if event.text != marker:
            event.text = marker
            changed += 1
    references = {reference(sid) for sid in expired}
    for delivery in await session.scalars(
        select(Delivery).where(Delivery.purpose.like("suggestion%"))
    ):
        context = _unquote(delivery.context, references, marker)
        if context != delivery.context:
            delivery.context = context
            changed += 1
    return changed


def _root(everything: dict[int, Suggestion], sid: int) -> int:
    seen = {sid}
    current = everything[sid]
    while current.status == SuggestionStatus.merged and current.merged_into_id in everything:
        if current.merged_into_id in seen:
            break
        seen.add(current.merged_into_id)
        current = everything[current.merged_into_id]
    return current.id


def _unquote(value: Any, references: set[str], marker: str) -> Any:
    """``value`` (message context) with the quoting keys of expired suggestions replaced."""
    if isinstance(value, list):
        return [_unquote(item, references, marker) for item in value]
    if not isinstance(value, dict):
        return value
    expired = value.get("reference") in references
    return {
        key: (
            marker
            if expired and key in QUOTING_KEYS and item is not None
            else _unquote(item, references, marker)
        )
        for key, item in value.items()
    }


# Helpers


async def _team_names(session: AsyncSession, ids: list[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.execute(select(Team.id, Team.name).where(Team.id.in_(wanted)))
    return {int(i): str(n) for i, n in rows.tuples()}


async def _votes(session: AsyncSession, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = await session.execute(
        select(SuggestionVote.suggestion_id, func.count())
        .where(SuggestionVote.suggestion_id.in_(ids))
        .group_by(SuggestionVote.suggestion_id)
    )
    return {int(sid): int(n) for sid, n in rows.tuples()}


def retention_rules() -> list[RetentionRule]:
    """Texts of suggestions closed longer than ``privacy.suggestion_retention_days`` ago."""
    return [
        RetentionRule(
            "suggestion_texts",
            lambda s: s.privacy.suggestion_retention_days,
            purge_suggestion_texts,
        )
    ]
