"""What operations hold about a person: deliveries and audit log entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import AuditEntry, Delivery, Person
from bot.privacy.parts import ERASED, Erasure, PersonalDataPart, iso
from bot.privacy.retention import RetentionRule


def parts() -> list[PersonalDataPart]:
    """What operations hold about a person: deliveries and audit log entries."""
    return [
        PersonalDataPart("deliveries", _export_deliveries, _erase_deliveries),
        PersonalDataPart("audit_entries", _export_audit, _erase_audit),
    ]


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
            "created_at": iso(row.created_at),
            "sent_at": iso(row.sent_at),
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
            "at": iso(entry.at),
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


async def purge_audit(session: AsyncSession, cutoff: datetime, _days: int) -> int:
    """Delete audit log entries older than ``cutoff`` (``privacy.audit_retention_days``)."""
    result = await session.execute(delete(AuditEntry).where(AuditEntry.at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def retention_rules() -> list[RetentionRule]:
    """The audit log is kept ``privacy.audit_retention_days`` (None: for ever)."""
    return [RetentionRule("audit_log", lambda s: s.privacy.audit_retention_days, purge_audit)]
