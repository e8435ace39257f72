"""One-time, expiring Telegram deep-link invites.

A Telegram bot cannot write to someone who never started it, so HR hands each person a link
``https://t.me/<bot>?start=<code>``. Only a SHA-256 of the code is stored: a copy of the
database does not let anyone redeem an invite.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.db.models import AuditEntry, ChannelName, Invite, Person
from bot.errors import UserFacingError
from bot.events import ChannelUser
from bot.identities import link

# Telegram allows 1-64 characters of [A-Za-z0-9_-] in a start parameter.
CODE_BYTES = 24


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedInvite:
    person_id: int
    email: str
    name: str
    team: str
    code: str
    expires_at_iso: str

    def link(self, bot_username: str) -> str:
        return f"https://t.me/{bot_username}?start={self.code}"


async def issue_invites(
    session: AsyncSession,
    people: list[Person],
    clock: Clock,
    ttl: timedelta,
    *,
    channel: ChannelName = ChannelName.telegram,
    actor: Person | str = "cli",
) -> list[IssuedInvite]:
    """Create a fresh invite per person; their earlier unused invites are revoked."""
    now = clock.now()
    issued: list[IssuedInvite] = []
    ids = [p.id for p in people]
    if ids:
        await session.execute(
            update(Invite)
            .where(
                Invite.person_id.in_(ids),
                Invite.channel == channel,
                Invite.used_at.is_(None),
                Invite.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
    for person in people:
        code = secrets.token_urlsafe(CODE_BYTES)
        invite = Invite(
            code_hash=_hash(code),
            person_id=person.id,
            channel=channel,
            created_at=now,
            expires_at=now + ttl,
        )
        session.add(invite)
        issued.append(
            IssuedInvite(
                person.id,
                person.email,
                person.name,
                person.team.name,
                code,
                (now + ttl).isoformat(timespec="minutes"),
            )
        )
    session.add(
        AuditEntry.by(actor, now, "invites.issue", count=len(issued), channel=channel.value)
    )
    await session.flush()
    return issued


async def redeem_invite(
    session: AsyncSession, code: str, user: ChannelUser, clock: Clock
) -> Person:
    """Link ``user`` to the invited person, or raise a UserFacingError saying why not.

    The row is updated with a guarded UPDATE (``used_at IS NULL``) so two simultaneous
    redemptions of one code cannot both succeed.
    """
    now = clock.now()
    invite = await session.scalar(select(Invite).where(Invite.code_hash == _hash(code.strip())))
    if invite is None or invite.channel.value != user.channel:
        raise UserFacingError("errors/invite_invalid")
    if invite.used_at is not None:
        raise UserFacingError("errors/invite_used")
    if invite.revoked_at is not None:
        raise UserFacingError("errors/invite_revoked")
    if invite.expires_at <= now:
        raise UserFacingError("errors/invite_expired")
    claimed = await session.execute(
        update(Invite).where(Invite.id == invite.id, Invite.used_at.is_(None)).values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise UserFacingError("errors/invite_used")
    person = await session.get(Person, invite.person_id)
    assert person is not None  # FK guarantees it
    if not person.is_active(now.date()):
        raise UserFacingError("errors/invite_invalid")
    await link(session, person, ChannelName(user.channel), user.external_id, user.address, clock)
    session.add(AuditEntry.by(person, now, "invites.redeem", channel=user.channel))
    return person
