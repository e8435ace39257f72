"""Who the console speaks as: a directory person, linked to the console channel on first use,
and ``:as WHO`` to switch to another one and see what they received."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.port import Address
from bot.db.models import ChannelName, Delivery, DeliveryStatus, Person, Role
from bot.errors import InputError
from bot.identities import link
from bot.replies import Reply, ReplyButton


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


#: How many of a person's latest messages ``:as`` shows.
REPLAY_LATEST = 5


def enable_switching(runtime: object) -> None:
    """Let the console's ``:as WHO`` switch to another person of the directory."""
    console = runtime.channels["console"]  # type: ignore[attr-defined]

    async def on_switch(who: str) -> str | None:
        return await switch_person(runtime, who)

    console.on_switch = on_switch


async def find_person(session: AsyncSession, who: str) -> tuple[Person | None, list[Person]]:
    """The person ``who`` names: an email, or a unique part of an email or a name (letter
    case ignored). Returns (person, []) or (None, the candidates, empty when nobody matches)."""
    wanted = who.strip().lower()
    exact = await session.scalar(select(Person).where(Person.email == wanted))
    if exact is not None:
        return exact, []
    people = list(await session.scalars(select(Person).order_by(Person.email)))
    found = [p for p in people if wanted in p.email or wanted in p.name.lower()]
    if len(found) == 1:
        return found[0], []
    return None, found


async def switch_person(runtime: object, who: str) -> str | None:
    """``:as WHO`` in the console: chat as that person from now on, and show the latest
    messages Fidelio delivered to them (oldest first; the last one's buttons are live)."""
    console = runtime.channels["console"]  # type: ignore[attr-defined]
    db = runtime.db  # type: ignore[attr-defined]
    clock = runtime.clock  # type: ignore[attr-defined]
    renderer = runtime.renderer  # type: ignore[attr-defined]
    if not who.strip():
        console.note(
            "type :as and an email, or part of an email or a name, for example "
            ":as aisha.khan; the directory: fidelio people list"
        )
        return None
    async with db.session() as session:
        person, candidates = await find_person(session, who)
        if person is None:
            if not candidates:
                console.note(f"nobody in the directory matches {who.strip()!r}")
            else:
                names = ", ".join(p.email for p in candidates[:8])
                more = f" and {len(candidates) - 8} more" if len(candidates) > 8 else ""
                console.note(f"{len(candidates)} people match {who.strip()!r}: {names}{more}")
            return None
        await session.refresh(person, ["team"])
        await link(session, person, ChannelName.console, person.email, person.email, clock)
        rows = list(
            await session.scalars(
                select(Delivery)
                .where(Delivery.person_id == person.id, Delivery.status == DeliveryStatus.sent)
                .order_by(Delivery.sent_at.desc(), Delivery.id.desc())
                .limit(REPLAY_LATEST)
            )
        )
        total = int(
            await session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.person_id == person.id, Delivery.status == DeliveryStatus.sent)
            )
            or 0
        )
        header = (
            f"now chatting as {person.name} ({person.email}), {person.team.name}, "
            f"{person.role.value}, language {person.locale}"
        )
        locale, zone = person.locale, person.timezone
    console.active = person.email
    console._choices = []
    if not rows:
        console.note(header + "\nnothing delivered to them yet")
        return person.email
    shown = f"the {len(rows)} latest of {total}" if total > len(rows) else f"{total}"
    console.note(header + f"\nmessages Fidelio delivered to them ({shown}), oldest first:")
    address = Address("console", person.email)
    for row in reversed(rows):
        reply = Reply(row.template, dict(row.context), tuple(ReplyButton(*b) for b in row.buttons))
        await console.send(address, renderer.render(reply, locale, "console", zone))
    return person.email
