"""The idea box: suggestions, their history, votes, sealed notices, digests and scrubs."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.models import Base, UtcDateTime


class SuggestionStatus(enum.StrEnum):
    new = "new"
    under_review = "under_review"
    planned = "planned"
    done = "done"
    declined = "declined"
    #: Folded into another suggestion (``merged_into_id``): its votes and authors moved there.
    merged = "merged"


class Suggestion(Base):
    """One idea from one person. An anonymous suggestion has no author column at all: its
    ``reply_token`` is the author's person id sealed with an authenticated cipher keyed from
    the bot's secret (bot/suggestions/seal.py), so only the running bot can reach them."""

    __tablename__ = "suggestions"
    __table_args__ = (Index("ix_suggestions_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(32))
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    reply_token: Mapped[bytes | None] = mapped_column(LargeBinary(128))
    #: The author's team, or for an anonymous suggestion the nearest ancestor with at least
    #: k members.
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    status: Mapped[SuggestionStatus] = mapped_column(
        Enum(SuggestionStatus, native_enum=False, length=16), default=SuggestionStatus.new
    )
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("suggestions.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: First status change, reply or question from triage (time to first response).
    first_response_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class SuggestionEvent(Base):
    """The history of a suggestion: status changes, replies, questions and answers."""

    __tablename__ = "suggestion_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    suggestion_id: Mapped[int] = mapped_column(
        ForeignKey("suggestions.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    #: status | reply | question | answer | publish | merge
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[SuggestionStatus | None] = mapped_column(
        Enum(SuggestionStatus, native_enum=False, length=16)
    )
    text: Mapped[str | None] = mapped_column(Text)
    #: Who acted (triage); None for the author's own answers, which stay anonymous.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))


class SuggestionVote(Base):
    """One supporter of a published suggestion. ``voter_key`` is an HMAC of the person id
    (one vote per person, without a list of who supported what)."""

    __tablename__ = "suggestion_votes"

    suggestion_id: Mapped[int] = mapped_column(
        ForeignKey("suggestions.id", ondelete="CASCADE"), primary_key=True
    )
    voter_key: Mapped[str] = mapped_column(String(64), primary_key=True)


class SealedNotice(Base):
    """A message for an anonymous author, addressed by a sealed token instead of a person id.

    Sent by bot/suggestions/notices.py and deleted once delivered (or given up).
    """

    __tablename__ = "sealed_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[bytes] = mapped_column(LargeBinary(128))
    template: Mapped[str] = mapped_column(String(120))
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    buttons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)


class SuggestionScrub(Base):
    """A scrub owed: an anonymous suggestion or answer was filed, so the dead row versions of
    its author's draft (and the suggestions' first versions) must still be removed for good
    (bot/suggestions/scrubbing.py). Only an id: the row says nothing about who or when."""

    __tablename__ = "suggestion_scrubs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)


class SuggestionDigest(Base):
    """One "You said, we did" digest: the status changes in (since, due_at]."""

    __tablename__ = "suggestion_digests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime(), unique=True)
    since: Mapped[datetime] = mapped_column(UtcDateTime())
    items: Mapped[int] = mapped_column(Integer, default=0)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
