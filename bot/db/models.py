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
    Date,
    DateTime,
    Enum,
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
    # Privacy: set by `fidelio people forget` (identity and personal fields erased)
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
    #: The command menu this chat was given of its own (a manager's, HR's), as a digest of the
    #: chat and the menu; None when it shows the general one (see bot/command_menus.py).
    menu_digest: Mapped[str | None] = mapped_column(String(64), default=None)

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

    @classmethod
    def by(cls, actor: Person | str, at: datetime, action: str, /, **detail: Any) -> AuditEntry:
        """The row saying that ``actor`` did ``action`` at ``at``: a person, or a label for
        who acted without one (``"cli"``, ``"scheduler"``, an operator's name)."""
        if isinstance(actor, str):
            return cls(at=at, actor_label=actor, action=action, detail=detail)
        return cls(
            at=at, actor_person_id=actor.id, actor_label=actor.email, action=action, detail=detail
        )


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
    #: When a dispatcher first claimed the row: anything it posted is newer (a Slack history
    #: read looking for a send whose outcome is unknown starts there).
    first_claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
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
