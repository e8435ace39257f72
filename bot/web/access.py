"""Signing in to the web console: one-time links, sessions and the CSRF tokens of their forms.

A link is issued in chat (``web``) or by ``fidelio web link``; opening it shows a button, and
only pressing it (a POST) uses the link up, so a link preview or a mail scanner that fetches
the page does not burn it. Links and sessions are stored as SHA-256 hashes of random tokens:
the database alone signs nobody in.

A session is refused, and every session of its person revoked, as soon as the person has
left, has been forgotten, or no longer has the role the session began with. That is checked
on every request (:func:`current_session`), and the sweep :func:`revoke_lapsed` records it
for people who never come back, so the web module needs no hook in the people import.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.db.models import AuditEntry, Person, Role
from bot.db.session import Database
from bot.web.settings import WebSettings
from bot.web.tables import SignInLink, WebSession

TOKEN_BYTES = 32
#: A session's ``last_seen_at`` is written at most this often (not on every page).
TOUCH_EVERY = timedelta(minutes=1)


def token_hash(token: str) -> str:
    """What is stored of a link or session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def may_sign_in(person: Person, now: datetime) -> bool:
    """Somebody in the directory who has not left and was not forgotten."""
    return person.erased_at is None and person.is_active(now.date())


def sign_in_url(settings: WebSettings, token: str) -> str:
    """The link a person opens to sign in."""
    return f"{settings.base_url}/signin/{token}"


async def issue_link(
    session: AsyncSession, person: Person, now: datetime, settings: WebSettings, *, by: str
) -> str:
    """A fresh one-time link token for ``person`` (audited as ``web.link``; ``by`` says where
    it was asked for: the chat channel the person wrote on, or ``cli`` for an operator)."""
    token = new_token()
    session.add(
        SignInLink(
            token_hash=token_hash(token),
            person_id=person.id,
            created_at=now,
            expires_at=now + timedelta(minutes=settings.link_ttl_minutes),
        )
    )
    actor: Person | str = "cli" if by == "cli" else person
    session.add(AuditEntry.by(actor, now, "web.link", person_id=person.id, by=by))
    await session.flush()
    return token


class LinkRefused(Exception):
    """The link cannot sign anybody in; ``reason`` is ``unknown``, ``used`` or ``expired``;
    ``locale`` is the language of the person it was for, when there is one."""

    def __init__(self, reason: str, locale: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.locale = locale


async def check_link(session: AsyncSession, token: str, now: datetime) -> SignInLink:
    """The link ``token`` opens, still usable; LinkRefused otherwise. Changes nothing."""
    link = await session.scalar(
        select(SignInLink).where(SignInLink.token_hash == token_hash(token))
    )
    person = None if link is None else await session.get(Person, link.person_id)
    if link is None or person is None:
        raise LinkRefused("unknown")
    if link.used_at is not None:
        raise LinkRefused("used", person.locale)
    if link.expires_at <= now:
        raise LinkRefused("expired", person.locale)
    if not may_sign_in(person, now):
        raise LinkRefused("unknown")
    return link


@dataclass(frozen=True)
class NewSession:
    token: str
    person: Person
    expires_at: datetime


async def use_link(
    session: AsyncSession, token: str, now: datetime, settings: WebSettings
) -> NewSession:
    """Use the link up and open a session for its person (audited as ``web.sign_in``).

    The guarded UPDATE (``used_at IS NULL``) lets only one of two simultaneous presses win.
    """
    link = await check_link(session, token, now)
    claimed = await session.execute(
        update(SignInLink)
        .where(SignInLink.id == link.id, SignInLink.used_at.is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise LinkRefused("used")
    person = await session.get(Person, link.person_id)
    assert person is not None  # check_link found them
    session_token = new_token()
    expires = now + timedelta(hours=settings.session_hours)
    session.add(
        WebSession(
            token_hash=token_hash(session_token),
            person_id=person.id,
            role=person.role,
            created_at=now,
            last_seen_at=now,
            expires_at=expires,
        )
    )
    session.add(AuditEntry.by(person, now, "web.sign_in", role=person.role.value))
    return NewSession(session_token, person, expires)


@dataclass(frozen=True)
class Viewer:
    """Who a request comes from: a person with a live session."""

    session_id: int
    person_id: int
    role: Role
    locale: str
    timezone: str
    name: str
    email: str
    csrf: str


def csrf_token(secret: str, purpose: str, value: str) -> str:
    """The token forms carry: an HMAC of ``value`` (a session or sign-in page's hash) under the
    secret key, for ``purpose``; unguessable without both."""
    key = hashlib.sha256(f"fidelio-web-csrf:{secret}".encode()).digest()
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def same_token(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


async def current_session(
    session: AsyncSession,
    token: str,
    now: datetime,
    settings: WebSettings,
    secret: str,
    *,
    touch: bool = True,
) -> Viewer | None:
    """The live session ``token`` opens, or None. Idle or expired sessions simply end; a
    session whose person left, was forgotten or changed role is revoked with every other
    session of theirs (audited). ``touch=False``: the request is not the person's doing (a
    page reloading part of itself), so it does not keep the session from going idle."""
    found = await session.scalar(
        select(WebSession).where(WebSession.token_hash == token_hash(token))
    )
    if found is None or found.revoked_at is not None or found.expires_at <= now:
        return None
    if found.last_seen_at + timedelta(minutes=settings.idle_minutes) <= now:
        return None
    person = await session.get(Person, found.person_id)
    if person is None or not may_sign_in(person, now) or person.role != found.role:
        await revoke_person(session, found.person_id, now, "lapsed")
        return None
    if touch and now - found.last_seen_at >= TOUCH_EVERY:
        found.last_seen_at = now
    return Viewer(
        found.id,
        person.id,
        person.role,
        person.locale,
        person.timezone,
        person.name,
        person.email,
        csrf_token(secret, "session", found.token_hash),
    )


async def end_session(session: AsyncSession, session_id: int, now: datetime) -> None:
    """Sign out: the session is revoked (audited)."""
    found = await session.get(WebSession, session_id)
    if found is None or found.revoked_at is not None:
        return
    found.revoked_at = now
    person = await session.get(Person, found.person_id)
    if person is not None:
        session.add(AuditEntry.by(person, now, "web.sign_out"))


async def revoke_person(session: AsyncSession, person_id: int, now: datetime, reason: str) -> int:
    """Revoke every live session of a person (and their unused links); how many sessions."""
    revoked = await session.execute(
        update(WebSession)
        .where(WebSession.person_id == person_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.execute(
        update(SignInLink)
        .where(SignInLink.person_id == person_id, SignInLink.used_at.is_(None))
        .values(used_at=now)
    )
    count = int(revoked.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        session.add(
            AuditEntry.by(
                "web", now, "web.revoked", person_id=person_id, reason=reason, count=count
            )
        )
    return count


async def revoke_lapsed(session: AsyncSession, now: datetime) -> int:
    """Revoke the live sessions of everybody who has left, was forgotten or changed role
    since signing in; how many people. The sweep's work (see :func:`current_session`)."""
    today = now.date()
    people = await session.scalars(
        select(WebSession.person_id)
        .join(Person, Person.id == WebSession.person_id)
        .where(
            WebSession.revoked_at.is_(None),
            WebSession.expires_at > now,
            or_(
                Person.erased_at.is_not(None),
                Person.leave_date <= today,
                Person.role != WebSession.role,
            ),
        )
        .distinct()
    )
    lapsed = list(people)
    for person_id in lapsed:
        await revoke_person(session, person_id, now, "lapsed")
    return len(lapsed)


class LapsedSessions:
    """The sweep that revokes sessions of people who left, were forgotten or changed role."""

    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    async def run_due(self) -> int:
        """Revoke what has lapsed since the last sweep; how many people."""
        async with self.db.session() as session:
            return await revoke_lapsed(session, self.clock.now())
