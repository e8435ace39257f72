"""Loyalty measurement: objective indicator figures, release plans, closed rounds' anonymous answers, views and digests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.models import Base, UtcDateTime

#: The figures an :class:`IndicatorFigure` row holds (besides its team and month), in order.
FIGURES = (
    "absence_days",
    "absence_spells",
    "available_days",
    "disciplinary_cases",
    "initiative_participants",
    "eligible",
)


class IndicatorFigure(Base):
    """HR figures of one team for one calendar month, imported from CSV (see bot/loyalty/objective.py).

    ``period`` is the month as ``YYYY-MM``; re-importing a month replaces all its rows.
    """

    __tablename__ = "indicator_figures"
    __table_args__ = (UniqueConstraint("team_id", "period", name="uq_indicator_team_period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    period: Mapped[str] = mapped_column(String(7), index=True)
    absence_days: Mapped[float] = mapped_column(Float)
    absence_spells: Mapped[int] = mapped_column(Integer)
    available_days: Mapped[float] = mapped_column(Float)
    disciplinary_cases: Mapped[int] = mapped_column(Integer)
    initiative_participants: Mapped[int] = mapped_column(Integer)
    eligible: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LoyaltyView(Base):
    """What one viewer has been shown: for the query-history rule (MEASUREMENT.md, rule 4).

    A closed round's responses never change and each carries the respondent's team, so the
    respondent set of a shown figure is exactly "the round's respondents in these teams": the
    sorted team ids are a complete, compact form of that set (no pseudonym is copied).
    """

    __tablename__ = "loyalty_views"
    __table_args__ = (
        UniqueConstraint("viewer", "round_id", "teams_hash", name="uq_loyalty_view"),
        Index("ix_loyalty_views_viewer_round", "viewer", "round_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: ``person:<id>`` for chat and digests, ``cli`` for reports on the command line.
    viewer: Mapped[str] = mapped_column(String(64))
    round_id: Mapped[int] = mapped_column(ForeignKey("survey_rounds.id", ondelete="CASCADE"))
    teams_hash: Mapped[str] = mapped_column(String(64))
    team_ids: Mapped[list[int]] = mapped_column(JSON)
    shown_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LoyaltyDigest(Base):
    """A closed round whose digest (summaries sent unasked) has been queued."""

    __tablename__ = "loyalty_digests"

    round_id: Mapped[int] = mapped_column(
        ForeignKey("survey_rounds.id", ondelete="CASCADE"), primary_key=True
    )
    queued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deliveries: Mapped[int] = mapped_column(Integer, default=0)


class PlanAtom(Base):
    """One atom of a closed round's release plan: respondents who sit in exactly the same
    planned groups (at least k of them), named by the smallest planned group that holds them.
    ``sums`` are every aggregate a figure needs (bot.loyalty.metrics.Atom), fixed at close, so
    summaries read these rows instead of scanning answers. ``kind`` "comments" is the separate
    atom of free-text answers (its own, higher k)."""

    __tablename__ = "plan_atoms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(
        ForeignKey("survey_rounds.id", ondelete="CASCADE"), index=True
    )
    owner: Mapped[int] = mapped_column(Integer)  # group key: 0 = organisation, else a team id
    kind: Mapped[str] = mapped_column(String(16), default="answers")
    respondents: Mapped[int] = mapped_column(Integer)
    sums: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ReleaseGroup(Base):
    """A group of a closed round's release plan (MEASUREMENT.md rule 4): the organisation
    (``group_key`` 0) or a team subtree as it was at close. Nothing else of the round is ever
    reported. ``measures`` lists the figures this group may show (respondents, index, alpha,
    segments, item:<id>, comments); ``atoms`` the plan atoms whose union it is."""

    __tablename__ = "release_groups"

    round_id: Mapped[int] = mapped_column(
        ForeignKey("survey_rounds.id", ondelete="CASCADE"), primary_key=True
    )
    group_key: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    teams: Mapped[list[int]] = mapped_column(JSON)
    atoms: Mapped[list[int]] = mapped_column(JSON)
    measures: Mapped[list[str]] = mapped_column(JSON)
    invited: Mapped[int] = mapped_column(Integer, default=0)
    #: The sum of its atoms' sums, kept at close: a summary reads one row per round.
    sums: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ClosedResponse(Base):
    """One answer of a closed round, kept with its plan atom only: no team, no person, no
    pseudonym. ``set_no`` groups one respondent's answers (a response set, for re-computing
    figures); set numbers are drawn at random per atom at close, and free-text answers sit in
    their own atom with numbers of their own, so a comment is never tied to a numeric set."""

    __tablename__ = "closed_responses"

    round_id: Mapped[int] = mapped_column(
        ForeignKey("survey_rounds.id", ondelete="CASCADE"), primary_key=True
    )
    atom_id: Mapped[int] = mapped_column(
        ForeignKey("plan_atoms.id", ondelete="CASCADE"), primary_key=True
    )
    set_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    value_num: Mapped[int | None] = mapped_column(Integer)
    value_text: Mapped[str | None] = mapped_column(Text)
