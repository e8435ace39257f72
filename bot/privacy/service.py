"""``fidelio people export`` and ``fidelio people forget``: one person's data, out or erased."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.clock import Clock
from bot.db.models import AuditEntry, Person
from bot.db.session import Database
from bot.people import person_by_email
from bot.privacy.parts import Erasure, PrivacyRegistry

#: Written into every export, because people ask for their survey answers.
SURVEY_ANSWERS_NOTE = (
    "Pulse survey answers are stored without any person id, name or time; while a round is "
    "open they are keyed by a pseudonym whose secret is destroyed when the round closes. "
    "They cannot be linked to you, so they are not part of this export and are not erased."
)


class NotHeld(Exception):
    """Nobody with that email is in the directory (never imported, or already erased)."""


@dataclass(frozen=True)
class ForgetSummary:
    person_id: int
    #: Rows deleted or changed, per part.
    changed: dict[str, int]


async def export_person(
    db: Database,
    email: str,
    clock: Clock,
    *,
    actor: Person | str = "cli",
    registry: PrivacyRegistry,
) -> dict[str, Any]:
    """Everything held about the person with ``email``, as JSON-ready data (audited)."""
    async with db.session() as session:
        person = await person_by_email(session, email)
        if person is None:
            raise NotHeld(email)
        data: dict[str, Any] = {
            "format": "fidelio-personal-data/1",
            "exported_at": clock.now().isoformat(),
            "person_id": person.id,
        }
        for part in registry.parts:
            data[part.name] = await part.export(session, person)
        data["survey_answers"] = SURVEY_ANSWERS_NOTE
        session.add(AuditEntry.by(actor, clock.now(), "people.export", person_id=person.id))
    return data


async def forget_person(
    db: Database,
    email: str,
    clock: Clock,
    *,
    actor: Person | str = "cli",
    registry: PrivacyRegistry,
) -> ForgetSummary:
    """Erase the identities and personal fields of the person with ``email``, in one
    transaction; anonymous answers and aggregate counts stay. Raises :class:`NotHeld` when
    there is nobody to erase (so a second call changes nothing)."""
    now = clock.now()
    async with db.session() as session:
        person = await person_by_email(session, email)
        if person is None or person.erased_at is not None:
            raise NotHeld(email)
        erasure = Erasure(person, now, person.email, person.name)
        changed = {part.name: await part.erase(session, erasure) for part in registry.parts}
        # The entry says that an erasure happened, never whose data it was.
        session.add(
            AuditEntry.by(actor, now, "people.forget", person_id=person.id, changed=changed)
        )
        return ForgetSummary(person.id, changed)
