"""The registry of personal-data parts, and the parts of the features that exist today.

A part knows how to export what one feature holds about a person and how to erase it. Erasure
keeps what is anonymous or aggregate (survey answers carry no person id at all; participation
and briefing receipts stay, attached to a row that no longer identifies anyone, so response
rates and readiness counts do not change) and removes or scrubs everything that identifies
the person.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import (
    AuditEntry,
    BriefingReceipt,
    Campaign,
    ChannelIdentity,
    ConversationState,
    Delivery,
    Invite,
    Participation,
    Person,
    Role,
    SurveyRound,
    Team,
    TeamChange,
)

ERASED = "[erased]"
ERASED_NAME = "Erased person"


@dataclass(frozen=True)
class Erasure:
    """What an eraser needs: the person (fields still intact), and the moment."""

    person: Person
    now: datetime
    email: str
    name: str

    def scrub(self, value: Any) -> Any:
        """``value`` (any JSON) with the person's email and name replaced by ``[erased]``."""
        if isinstance(value, str):
            out = _replace_ci(value, self.email, ERASED)
            return out.replace(self.name, ERASED) if self.name else out
        if isinstance(value, list):
            return [self.scrub(item) for item in value]
        if isinstance(value, dict):
            return {key: self.scrub(item) for key, item in value.items()}
        return value

    def mentions(self, value: Any) -> bool:
        """Does ``value`` (any JSON) contain the person's email or name?"""
        return self.scrub(value) != value


Exporter = Callable[[AsyncSession, Person], Awaitable[Any]]
Eraser = Callable[[AsyncSession, Erasure], Awaitable[int]]


@dataclass(frozen=True)
class PersonalDataPart:
    """One feature's personal data: ``export`` returns JSON-ready data, ``erase`` returns how
    many rows it deleted or changed."""

    name: str
    export: Exporter
    erase: Eraser


@dataclass
class PrivacyRegistry:
    """Parts in order: erasers run in this order, the directory last (the others still need
    the person's email and name to find mentions of them)."""

    parts: list[PersonalDataPart] = field(default_factory=list)

    def register(self, part: PersonalDataPart) -> None:
        if any(p.name == part.name for p in self.parts):
            raise ValueError(f"personal-data part {part.name!r} registered twice")
        directory = [p for p in self.parts if p.name == "directory"]
        others = [p for p in self.parts if p.name != "directory"]
        self.parts = [*others, part, *directory] if part.name != "directory" else [*others, part]


def build_privacy_registry() -> PrivacyRegistry:
    """The parts of every feature. Features that store personal data add theirs here."""
    # The feature modules build on this one (Erasure, PersonalDataPart): imported here.
    from bot.privacy import loyalty, suggestions

    registry = PrivacyRegistry()
    for part in (
        PersonalDataPart("identities", _export_identities, _erase_identities),
        PersonalDataPart("invites", _export_invites, _erase_invites),
        PersonalDataPart("conversation_state", _export_state, _erase_state),
        PersonalDataPart("survey_participation", _export_participation, _keep),
        PersonalDataPart("briefing_receipts", _export_receipts, _keep),
        *suggestions.parts(),
        *loyalty.parts(),
        PersonalDataPart("deliveries", _export_deliveries, _erase_deliveries),
        PersonalDataPart("audit_entries", _export_audit, _erase_audit),
        PersonalDataPart("directory", _export_directory, _erase_directory),
    ):
        registry.register(part)
    return registry


# --- helpers ------------------------------------------------------------------------------------


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


def _replace_ci(text: str, needle: str, replacement: str) -> str:
    if not needle:
        return text
    lowered, target = text.lower(), needle.lower()
    out, start = [], 0
    while (found := lowered.find(target, start)) >= 0:
        out.append(text[start:found] + replacement)
        start = found + len(needle)
    out.append(text[start:])
    return "".join(out)


async def _keep(_session: AsyncSession, _erasure: Erasure) -> int:
    """Anonymous or aggregate once the directory row is erased: kept as it is."""
    return 0


# --- directory ----------------------------------------------------------------------------------


async def _export_directory(session: AsyncSession, person: Person) -> dict[str, Any]:
    team = await session.get(Team, person.team_id)
    managed = list(await session.scalars(select(Team.name).where(Team.manager_id == person.id)))
    moves = []
    for change in await session.scalars(
        select(TeamChange).where(TeamChange.person_id == person.id).order_by(TeamChange.id)
    ):
        source = await session.get(Team, change.from_team_id) if change.from_team_id else None
        target = await session.get(Team, change.to_team_id)
        moves.append(
            {
                "from_team": source.name if source else None,
                "to_team": target.name if target else None,
                "changed_at": _iso(change.changed_at),
            }
        )
    return {
        "email": person.email,
        "name": person.name,
        "team": team.name if team else None,
        "manages_teams": managed,
        "role": person.role.value,
        "locale": person.locale,
        "timezone": person.timezone,
        "location": person.location,
        "hire_date": _iso(person.hire_date),
        "leave_date": _iso(person.leave_date),
        "created_at": _iso(person.created_at),
        "updated_at": _iso(person.updated_at),
        "team_changes": moves,
    }


async def _erase_directory(session: AsyncSession, erasure: Erasure) -> int:
    """Replace every personal field; the row stays so anonymous counts keep their team."""
    person = erasure.person
    await session.execute(update(Team).where(Team.manager_id == person.id).values(manager_id=None))
    moves = await session.execute(delete(TeamChange).where(TeamChange.person_id == person.id))
    person.email = f"erased-{person.id}@erased.invalid"
    person.name = ERASED_NAME
    person.role = Role.employee
    person.location = None
    person.hire_date = None
    today = erasure.now.date()
    if person.leave_date is None or person.leave_date > today:
        person.leave_date = today  # never active again: no message, no audience
    person.updated_at = erasure.now
    person.erased_at = erasure.now
    return 1 + int(moves.rowcount or 0)  # type: ignore[attr-defined]


# --- identities, invites, conversation state ------------------------------------------------------


async def _export_identities(session: AsyncSession, person: Person) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(ChannelIdentity)
        .where(ChannelIdentity.person_id == person.id)
        .order_by(ChannelIdentity.id)
    )
    return [
        {
            "channel": row.channel.value,
            "external_id": row.external_id,
            "address": row.address,
            "linked_at": _iso(row.created_at),
        }
        for row in rows
    ]


async def _erase_identities(session: AsyncSession, erasure: Erasure) -> int:
    result = await session.execute(
        delete(ChannelIdentity).where(ChannelIdentity.person_id == erasure.person.id)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def _export_invites(session: AsyncSession, person: Person) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(Invite).where(Invite.person_id == person.id).order_by(Invite.id)
    )
    # The code itself is not held (only its hash), so it cannot be exported.
    return [
        {
            "channel": row.channel.value,
            "created_at": _iso(row.created_at),
            "expires_at": _iso(row.expires_at),
            "used_at": _iso(row.used_at),
            "revoked_at": _iso(row.revoked_at),
        }
        for row in rows
    ]


async def _erase_invites(session: AsyncSession, erasure: Erasure) -> int:
    result = await session.execute(delete(Invite).where(Invite.person_id == erasure.person.id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def _export_state(session: AsyncSession, person: Person) -> dict[str, Any] | None:
    state = await session.get(ConversationState, person.id)
    if state is None:
        return None
    return {"flow": state.flow, "data": state.data, "updated_at": _iso(state.updated_at)}


async def _erase_state(session: AsyncSession, erasure: Erasure) -> int:
    result = await session.execute(
        delete(ConversationState).where(ConversationState.person_id == erasure.person.id)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- surveys and briefings ----------------------------------------------------------------------


async def _export_participation(session: AsyncSession, person: Person) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(Participation, SurveyRound, Campaign)
        .join(SurveyRound, SurveyRound.id == Participation.round_id)
        .join(Campaign, Campaign.id == SurveyRound.campaign_id)
        .where(Participation.person_id == person.id)
        .order_by(SurveyRound.opens_at)
    )
    return [
        {
            "survey": campaign.content_id,
            "round_id": round_.id,
            "round_number": round_.number,
            "opens_at": _iso(round_.opens_at),
            "closes_at": _iso(round_.closes_at),
            "questions_answered": participation.answered,
            "finished": participation.finished,
        }
        for participation, round_, campaign in rows
    ]


async def _export_receipts(session: AsyncSession, person: Person) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(BriefingReceipt, Campaign)
        .join(Campaign, Campaign.id == BriefingReceipt.campaign_id)
        .where(BriefingReceipt.person_id == person.id)
        .order_by(BriefingReceipt.id)
    )
    return [
        {
            "campaign_id": campaign.id,
            "briefing": campaign.content_id,
            "title": campaign.title,
            "queued_at": _iso(receipt.queued_at),
            "late": receipt.late,
            "read_more_at": _iso(receipt.read_more_at),
            "acknowledged_at": _iso(receipt.acknowledged_at),
            "quiz_answers": receipt.quiz_answers,
            "quiz_score": receipt.quiz_score,
            "quiz_completed_at": _iso(receipt.quiz_completed_at),
        }
        for receipt, campaign in rows
    ]


# --- deliveries -----------------------------------------------------------------------------


async def _export_deliveries(session: AsyncSession, person: Person) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(Delivery).where(Delivery.person_id == person.id).order_by(Delivery.id)
    )
    return [
        {
            "purpose": row.purpose,
            "template": row.template,
            "context": row.context,
            "status": row.status.value,
            "channel": row.channel,
            "attempts": row.attempts,
            "created_at": _iso(row.created_at),
            "sent_at": _iso(row.sent_at),
        }
        for row in rows
    ]


async def _erase_deliveries(session: AsyncSession, erasure: Erasure) -> int:
    """Messages to the person go; messages to others that name them are scrubbed."""
    result = await session.execute(delete(Delivery).where(Delivery.person_id == erasure.person.id))
    changed = int(result.rowcount or 0)  # type: ignore[attr-defined]
    for row in await session.scalars(select(Delivery)):
        if erasure.mentions(row.context):
            row.context = erasure.scrub(row.context)
            changed += 1
    return changed


# --- audit log ------------------------------------------------------------------------------


async def _audit_entries(session: AsyncSession, person: Person) -> list[AuditEntry]:
    """Entries by the person, or whose detail names them (email, name or person id)."""
    probe = Erasure(person, person.updated_at, person.email, person.name)
    entries = []
    for entry in await session.scalars(select(AuditEntry).order_by(AuditEntry.id)):
        by = entry.actor_person_id == person.id or entry.actor_label.lower() == person.email
        about = probe.mentions(entry.detail) or entry.detail.get("person_id") == person.id
        if by or about:
            entries.append(entry)
    return entries


async def _export_audit(session: AsyncSession, person: Person) -> list[dict[str, Any]]:
    return [
        {
            "at": _iso(entry.at),
            "by_this_person": entry.actor_person_id == person.id
            or entry.actor_label.lower() == person.email,
            "actor": entry.actor_label,
            "action": entry.action,
            "detail": entry.detail,
        }
        for entry in await _audit_entries(session, person)
    ]


async def _erase_audit(session: AsyncSession, erasure: Erasure) -> int:
    """Entries stay (what happened, when) without the person's email or name."""
    changed = 0
    await session.execute(
        update(AuditEntry)
        .where(
            or_(
                AuditEntry.actor_person_id == erasure.person.id,
                AuditEntry.actor_label == erasure.email,
            )
        )
        .values(actor_label=ERASED)
    )
    for entry in await session.scalars(select(AuditEntry)):
        if erasure.mentions(entry.detail):
            entry.detail = erasure.scrub(entry.detail)
            changed += 1
        if entry.actor_person_id == erasure.person.id:
            changed += 1
    return changed
