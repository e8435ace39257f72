"""Pulse survey rounds, participation, open rounds' answers and response-rate snapshots."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Enum,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.models import Base, UtcDateTime


class RoundStatus(enum.StrEnum):
    open = "open"
    closed = "closed"


class SurveyRound(Base):
    """One occurrence of a recurring pulse.

    ``secret`` keys the respondents' pseudonyms while the round is open (so a person can
    change an answer) and is destroyed when the round closes: from then on nothing in the
    database links an answer to a person.
    """

    __tablename__ = "survey_rounds"
    __table_args__ = (UniqueConstraint("campaign_id", "opens_at", name="uq_round_campaign_opens"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    opens_at: Mapped[datetime] = mapped_column(UtcDateTime())
    closes_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    status: Mapped[RoundStatus] = mapped_column(
        Enum(RoundStatus, native_enum=False, length=16), default=RoundStatus.open
    )
    secret: Mapped[bytes | None] = mapped_column(LargeBinary(64))
    items: Mapped[list[str]] = mapped_column(JSON)
    invited: Mapped[int] = mapped_column(Integer, default=0)
    #: When the round was actually opened (later than opens_at after downtime).
    opened_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: When the release plan was decided and the answers rewritten to plan atoms (None: an
    #: open round, or a round closed before plans existed that ``db upgrade`` still rewrites).
    planned_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    #: When the dead row versions of its open-round rows were removed for good (bot.db.scrub).
    scrubbed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class Participation(Base):
    """Who was invited and how far they got: for reminders and response rates only.

    It holds no answer and no pseudonym, and no timestamps that could be matched against
    the order in which answers arrived. When the round closes it keeps only what the
    indicators need: ``answered`` is cleared (how far someone got would tell their response
    set apart from the others of their atom) and ``finished`` then means "answered at least
    one question".
    """

    __tablename__ = "participation"

    round_id: Mapped[int] = mapped_column(
        ForeignKey("survey_rounds.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    answered: Mapped[int] = mapped_column(Integer, default=0)
    finished: Mapped[bool] = mapped_column(Boolean, default=False)


class Response(Base):
    """One anonymous answer to one item of an OPEN round. No person id, no time, no sequence
    number: the primary key is (round, pseudonymous respondent key, item). When the round
    closes its answers move to :class:`ClosedResponse` and these rows are deleted and
    scrubbed, so this table only ever holds open rounds."""

    __tablename__ = "responses"

    round_id: Mapped[int] = mapped_column(
        ForeignKey("survey_rounds.id", ondelete="CASCADE"), primary_key=True
    )
    respondent_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), index=True)
    value_num: Mapped[int | None] = mapped_column(Integer)
    value_text: Mapped[str | None] = mapped_column(Text)


class ResponseRateSnapshot(Base):
    """The coarse response counts of an open round that everyone is shown until the next
    refresh (MEASUREMENT.md, rule 5; see bot/pulse/rates.py). One row per round."""

    __tablename__ = "response_rate_snapshots"

    round_id: Mapped[int] = mapped_column(
        ForeignKey("survey_rounds.id", ondelete="CASCADE"), primary_key=True
    )
    taken_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: The figures as shown (already pooled and stepped), with the k they were pooled for.
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
