"""Looking people and teams of the directory up: by email or name, and team subtrees."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Person, Team

# SQLite's default limit on bound parameters is well above this; PostgreSQL's is higher.
_IN_CHUNK = 500


async def person_by_email(session: AsyncSession, email: str) -> Person | None:
    """The person with this email address (any letter case), or None."""
    query = select(Person).where(Person.email == email.strip().lower())
    return (await session.scalars(query)).one_or_none()


async def team_by_name(session: AsyncSession, name: str) -> Team | None:
    """The team with exactly this name (surrounding spaces ignored), or None."""
    return (await session.scalars(select(Team).where(Team.name == name.strip()))).one_or_none()


async def team_subtree_ids(session: AsyncSession, team_id: int) -> set[int]:
    """The ids of the team and of all its descendants; empty if the team does not exist."""
    return await _subtrees(session, select(Team.id).where(Team.id == team_id))


async def managed_team_ids(session: AsyncSession, person: Person) -> set[int]:
    """The ids of every team in the subtrees of the teams ``person`` manages."""
    return await _subtrees(session, select(Team.id).where(Team.manager_id == person.id))


async def people_by_email(session: AsyncSession, emails: Iterable[str]) -> list[Person]:
    """The people with these (lower-case) email addresses, in chunks of bound parameters."""
    wanted = sorted(emails)
    found: list[Person] = []
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
        found.extend((await session.scalars(select(Person).where(Person.email.in_(chunk)))).all())
    return found


async def _subtrees(session: AsyncSession, roots: Select[tuple[int]]) -> set[int]:
    """Ids of the ``roots`` teams and all their descendants, with one recursive query.

    UNION (not UNION ALL) drops rows already found, so even a damaged tree with a cycle
    ends instead of recursing forever; both SQLite and PostgreSQL support this form.
    """
    tree = roots.cte("subtree", recursive=True)
    tree = tree.union(select(Team.id).join(tree, Team.parent_id == tree.c.id))
    return set((await session.scalars(select(tree.c.id))).all())
