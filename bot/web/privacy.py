"""What the web console holds about a person, and how long.

Their sign-in links and sessions: when each was made, used, last seen and ended (never a
token: only hashes are stored, and those are not exported). ``people forget`` deletes them,
which also ends any session still open. Links and sessions that ended more than
``web.retention_days`` ago are deleted by the daily retention job; the audit log keeps who
signed in when, for as long as it keeps anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Person
from bot.privacy.parts import Erasure, PersonalDataPart, iso
from bot.privacy.retention import RetentionRule
from bot.web.tables import SignInLink, WebSession


def parts() -> list[PersonalDataPart]:
    """The web console's part: sign-in links and sessions."""
    return [PersonalDataPart("web_sign_ins", export_sign_ins, erase_sign_ins)]


def retention_rules() -> list[RetentionRule]:
    """Ended links and sessions go after ``web.retention_days``."""
    return [RetentionRule("web_sign_ins", lambda s: s.web.retention_days, purge_ended)]


async def export_sign_ins(session: AsyncSession, person: Person) -> dict[str, Any]:
    links = await session.scalars(
        select(SignInLink).where(SignInLink.person_id == person.id).order_by(SignInLink.id)
    )
    sessions = await session.scalars(
        select(WebSession).where(WebSession.person_id == person.id).order_by(WebSession.id)
    )
    return {
        "links": [
            {
                "created_at": iso(r.created_at),
                "expires_at": iso(r.expires_at),
                "used_at": iso(r.used_at),
            }
            for r in links
        ],
        "sessions": [
            {
                "role": r.role.value,
                "created_at": iso(r.created_at),
                "last_seen_at": iso(r.last_seen_at),
                "expires_at": iso(r.expires_at),
                "revoked_at": iso(r.revoked_at),
            }
            for r in sessions
        ],
    }


async def erase_sign_ins(session: AsyncSession, erasure: Erasure) -> int:
    person_id = erasure.person.id
    links = await session.execute(delete(SignInLink).where(SignInLink.person_id == person_id))
    sessions = await session.execute(delete(WebSession).where(WebSession.person_id == person_id))
    return int(links.rowcount or 0) + int(sessions.rowcount or 0)  # type: ignore[attr-defined]


async def purge_ended(session: AsyncSession, cutoff: datetime, _days: int) -> int:
    """Links that expired, and sessions that expired or were revoked, before ``cutoff``."""
    links = await session.execute(delete(SignInLink).where(SignInLink.expires_at < cutoff))
    sessions = await session.execute(
        delete(WebSession).where(
            or_(WebSession.expires_at < cutoff, WebSession.revoked_at < cutoff)
        )
    )
    return int(links.rowcount or 0) + int(sessions.rowcount or 0)  # type: ignore[attr-defined]
