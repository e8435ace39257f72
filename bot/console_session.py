"""Who the console speaks as: a directory person, linked to the console channel on first use."""

from __future__ import annotations

from sqlalchemy import select

from bot.db.models import ChannelName, Person, Role
from bot.errors import InputError
from bot.identities import link


async def console_person(runtime: object, email: str | None) -> str:
    """Return the email of the person to chat as, linking their console identity.

    With no email, the first HR person (else admin) is chosen, which suits the demo.
    Raises InputError naming the option when the person does not exist.
    """
    db = runtime.db  # type: ignore[attr-defined]
    clock = runtime.clock  # type: ignore[attr-defined]
    async with db.session() as session:
        if email:
            person = await session.scalar(
                select(Person).where(Person.email == email.strip().lower())
            )
            if person is None:
                raise InputError(
                    "--as",
                    f"nobody with email {email!r} in the directory "
                    "(import people first: fidelio people import FILE.csv)",
                )
        else:
            person = await session.scalar(
                select(Person)
                .where(Person.role.in_([Role.hr, Role.admin]))
                .order_by(Person.role, Person.id)
            )
            if person is None:
                raise InputError(
                    "console.as_email",
                    "the directory is empty; load it with "
                    "`fidelio people import FILE.csv` or `fidelio demo load`",
                )
        await link(session, person, ChannelName.console, person.email, person.email, clock)
        return person.email
