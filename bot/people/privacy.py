"""What the directory holds about a person: identities, invites, conversation state and the directory row itself (erased last)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import (
    ChannelIdentity,
    ConversationState,
    Invite,
    Person,
    Role,
    Team,
    TeamChange,
)
from bot.privacy.parts import ERASED_NAME, Erasure, PersonalDataPart, iso


def parts() -> list[PersonalDataPart]:
    """What the directory holds about a person: identities, invites, conversation state and the directory row itself (erased last)."""
    return [
        PersonalDataPart("identities", _export_identities, _erase_identities),
        PersonalDataPart("invites", _export_invites, _erase_invites),
        PersonalDataPart("conversation_state", _export_state, _erase_state),
        PersonalDataPart("directory", _export_directory, _erase_directory),
    ]


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
            "linked_at": iso(row.created_at),
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
            "created_at": iso(row.created_at),
            "expires_at": iso(row.expires_at),
            "used_at": iso(row.used_at),
            "revoked_at": iso(row.revoked_at),
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
    return {"flow": state.flow, "data": state.data, "updated_at": iso(state.updated_at)}


async def _erase_state(session: AsyncSession, erasure: Erasure) -> int:
    result = await session.execute(
        delete(ConversationState).where(ConversationState.person_id == erasure.person.id)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


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
                "changed_at": iso(change.changed_at),
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
        "hire_date": iso(person.hire_date),
        "leave_date": iso(person.leave_date),
        "created_at": iso(person.created_at),
        "updated_at": iso(person.updated_at),
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
