"""Channel identity -> person, and linking a person to a channel account."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.db.models import ChannelIdentity, ChannelName, ConversationState, Person
from bot.events import ChannelUser


async def person_for(session: AsyncSession, user: ChannelUser) -> Person | None:
    """The person behind a platform account, or None if the account is not linked."""
    row = await session.execute(
        select(Person)
        .join(ChannelIdentity, ChannelIdentity.person_id == Person.id)
        .where(
            ChannelIdentity.channel == ChannelName(user.channel),
            ChannelIdentity.external_id == user.external_id,
        )
    )
    return row.scalar_one_or_none()


#: Built once: this runs for every inbound event.
_PERSON_AND_STATE = (
    select(Person, ConversationState)
    .join(ChannelIdentity, ChannelIdentity.person_id == Person.id)
    .outerjoin(ConversationState, ConversationState.person_id == Person.id)
    .where(
        ChannelIdentity.channel == bindparam("channel"),
        ChannelIdentity.external_id == bindparam("external_id"),
    )
)


async def people_and_states_for(
    session: AsyncSession, users: list[ChannelUser]
) -> dict[tuple[str, str], tuple[Person, ConversationState | None]]:
    """:func:`person_and_state_for` for many accounts at once, by (channel, external id);
    accounts that are not linked are missing from the answer."""
    found: dict[tuple[str, str], tuple[Person, ConversationState | None]] = {}
    by_channel: dict[str, set[str]] = {}
    for user in users:
        by_channel.setdefault(user.channel, set()).add(user.external_id)
    for channel, external_ids in by_channel.items():
        rows = await session.execute(
            select(ChannelIdentity.external_id, Person, ConversationState)
            .join(Person, ChannelIdentity.person_id == Person.id)
            .outerjoin(ConversationState, ConversationState.person_id == Person.id)
            .where(
                ChannelIdentity.channel == ChannelName(channel),
                ChannelIdentity.external_id.in_(sorted(external_ids)),
            )
        )
        for external_id, person, state in rows.all():
            found[(channel, external_id)] = (person, state)
    return found


async def person_and_state_for(
    session: AsyncSession, user: ChannelUser
) -> tuple[Person | None, ConversationState | None]:
    """:func:`person_for` and that person's conversation state (None if they have none),
    in one query: every inbound event needs the person, many also the state."""
    row = (
        await session.execute(
            _PERSON_AND_STATE,
            {"channel": ChannelName(user.channel), "external_id": user.external_id},
        )
    ).first()
    if row is None:
        return None, None
    return row[0], row[1]


async def link(
    session: AsyncSession,
    person: Person,
    channel: ChannelName,
    external_id: str,
    address: str | None,
    clock: Clock,
) -> ChannelIdentity:
    """Attach (or move) ``person``'s account on ``channel``.

    A person has at most one account per channel and an account belongs to one person:
    relinking replaces the previous account, and an account taken by someone else is freed
    (the newest invite wins; the audit log keeps the history).
    """
    taken = await session.scalar(
        select(ChannelIdentity).where(
            ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
        )
    )
    if taken is not None and taken.person_id != person.id:
        await session.delete(taken)
        await session.flush()
    identity = await session.scalar(
        select(ChannelIdentity).where(
            ChannelIdentity.person_id == person.id, ChannelIdentity.channel == channel
        )
    )
    if identity is None:
        identity = ChannelIdentity(
            person_id=person.id,
            channel=channel,
            external_id=external_id,
            address=address,
            created_at=clock.now(),
        )
        session.add(identity)
    else:
        identity.external_id = external_id
        identity.address = address
    await session.flush()
    return identity


async def identities_of(session: AsyncSession, person_id: int) -> list[ChannelIdentity]:
    rows = await session.scalars(
        select(ChannelIdentity).where(ChannelIdentity.person_id == person_id)
    )
    return list(rows)
