"""Who is asking, on the command line: every loyalty report acts for a named person.

Chat knows its person from the channel identity; the command line is told with ``--as
EMAIL``. The person's role is then checked exactly as in chat (bot.loyalty.service
``resolve_scope``: managers their subtrees, HR and admins anything, employees the
organisation), and the view is audited and logged as theirs. There is no anonymous
command-line viewer: what a report releases is what that person could see in chat.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import AuditEntry, Person, Role
from bot.errors import InputError

#: The option that names the person a report acts for.
AS_OPTION = "--as"
AS_HELP = "The person this report is for (their email): their role decides what they may see"


async def acting_person(session: AsyncSession, email: str | None, today: date) -> Person:
    """The active person ``--as`` names, or an InputError naming the option."""
    if not email or not email.strip():
        raise InputError(
            AS_OPTION, "say whose report this is, e.g. --as hr@example.com (their role applies)"
        )
    person = await session.scalar(
        select(Person).where(func.lower(Person.email) == email.strip().lower())
    )
    if person is None:
        raise InputError(AS_OPTION, f"no person with the email {email.strip()!r}")
    if not person.is_active(today) or person.erased_at is not None:
        raise InputError(AS_OPTION, f"{person.email} is no longer active")
    return person


def require_hr(person: Person, what: str) -> None:
    """Refuse a report that chat offers to HR only."""
    if person.role not in (Role.hr, Role.admin):
        raise InputError(AS_OPTION, f"{person.email} is {person.role.value}; {what} are for HR")


def audit_entry(person: Person, at: datetime, action: str, **detail: object) -> AuditEntry:
    """An audit row written as the acting person."""
    return AuditEntry.by(person, at, action, **detail, route="cli")
