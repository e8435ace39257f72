"""SQLAlchemy 2 models: the database owns all of Fidelio's state.

Times are stored as naive UTC (``UtcDateTime``) so SQLite and PostgreSQL behave alike;
conversion to a person's zone happens at the edges.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Fidelio stores aware UTC times only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Role(enum.StrEnum):
    """What a person may do. Managers' reach is their team subtree; HR and admins see all."""

    employee = "employee"
    manager = "manager"
    hr = "hr"
    admin = "admin"


class ChannelName(enum.StrEnum):
    telegram = "telegram"
    slack = "slack"
    console = "console"


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", use_alter=True, ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    parent: Mapped[Team | None] = relationship(remote_side=[id], foreign_keys=[parent_id])


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), index=True)
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    locale: Mapped[str] = mapped_column(String(8))
    timezone: Mapped[str] = mapped_column(String(64))
    location: Mapped[str | None] = mapped_column(String(120))
    hire_date: Mapped[date | None] = mapped_column(Date)
    leave_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # --- privacy: set by `fidelio people forget` (identity and personal fields erased) ---
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)

    team: Mapped[Team] = relationship(foreign_keys=[team_id])

    def is_active(self, today: date) -> bool:
        """A person who has left no longer receives messages nor gets answers."""
        return self.leave_date is None or self.leave_date > today


class TeamChange(Base):
    """History of moves between teams (internal mobility) and of joining."""

    __tablename__ = "team_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    from_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    to_team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ChannelIdentity(Base):
    """A person's account on one channel, and where to reach them there."""

    __tablename__ = "channel_identities"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_identity_channel_external"),
        UniqueConstraint("person_id", "channel", name="uq_identity_person_channel"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    channel: Mapped[ChannelName] = mapped_column(Enum(ChannelName, native_enum=False, length=16))
    #: Telegram user id, Slack user id, or the console's email.
    external_id: Mapped[str] = mapped_column(String(64))
    #: Where messages go: Telegram chat id, Slack DM channel id, console email.
    address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    person: Mapped[Person] = relationship()


class Invite(Base):
    """A one-time, expiring Telegram deep-link code; only its hash is stored."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    channel: Mapped[ChannelName] = mapped_column(Enum(ChannelName, native_enum=False, length=16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ProcessedEvent(Base):
    """Inbound platform events already handled: a retried or duplicated update is dropped."""

    __tablename__ = "processed_events"
    __table_args__ = (UniqueConstraint("channel", "event_id", name="uq_processed_channel_event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(128))
    processed_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class AuditEntry(Base):
    """Who did what, when: role-gated commands, report views, imports."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    actor_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL")
    )
    actor_label: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class DeliveryStatus(enum.StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    #: The platform may or may not have delivered it (timeout): see outbox.py for the policy.
    unknown = "unknown"


class Delivery(Base):
    """One message to one person, in the outbox. ``key`` makes enqueuing idempotent."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "not_before"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    template: Mapped[str] = mapped_column(String(120))
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    buttons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(DeliveryStatus, native_enum=False, length=16), default=DeliveryStatus.pending
    )
    channel: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    unknown_retries: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(UtcDateTime())
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    platform_message_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ConversationState(Base):
    """A multi-step dialogue in progress (quiz, survey, guided suggestion) for one person."""

    __tablename__ = "conversation_states"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    flow: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CampaignKind(enum.StrEnum):
    briefing = "briefing"
    pulse = "pulse"


class CampaignStatus(enum.StrEnum):
    scheduled = "scheduled"
    #: A survey schedule on hold: no new rounds open (an open round runs to its end).
    paused = "paused"
    cancelled = "cancelled"
    done = "done"


class Campaign(Base):
    """A scheduled briefing (or pulse). ``snapshot`` is the content as scheduled."""

    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_status_starts", "status", "starts_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[CampaignKind] = mapped_column(Enum(CampaignKind, native_enum=False, length=16))
    content_id: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[CampaignStatus] = mapped_column(
        Enum(CampaignStatus, native_enum=False, length=16), default=CampaignStatus.scheduled
    )
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime())
    launch_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class BriefingReceipt(Base):
    """One person's copy of a briefing: when it was queued, acknowledged, and the quiz.

    Briefings are not anonymous: readiness notes may name who has not acknowledged.
    """

    __tablename__ = "briefing_receipts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "person_id", name="uq_receipt_campaign_person"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    #: The person's team when the briefing was queued (readiness is reported per team).
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    queued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: Queued after launch: no longer a pre-launch briefing.
    late: Mapped[bool] = mapped_column(default=False)
    read_more_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    quiz_answers: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    quiz_score: Mapped[int | None] = mapped_column(Integer)
    quiz_completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


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
    refresh (MEASUREMENT.md, rule 5; see bot/surveys/rates.py). One row per round."""

    __tablename__ = "response_rate_snapshots"

    round_id: Mapped[int] = mapped_column(
        ForeignKey("survey_rounds.id", ondelete="CASCADE"), primary_key=True
    )
    taken_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: The figures as shown (already pooled and stepped), with the k they were pooled for.
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)


# --- objective indicators and outbox images (loyalty measurement) ---------------------------


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


class DeliveryImage(Base):
    """The PNG a delivery carries (a chart), stored beside its outbox row so a queued image
    survives restarts like the text does; deleted with the row."""

    __tablename__ = "outbox_images"

    delivery_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("outbox.id", ondelete="CASCADE"),
        primary_key=True,
    )
    name: Mapped[str] = mapped_column(String(120))
    png: Mapped[bytes] = mapped_column(LargeBinary)


# --- suggestions (idea box) -------------------------------------------------------------------


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


# --- loyalty measurement ------------------------------------------------------------------------


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


# --- end loyalty measurement --------------------------------------------------------------------
