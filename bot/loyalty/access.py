"""Who may see which loyalty figures: managers their subtrees, HR and admins anything,
employees the organisation only. The anonymity rules then decide what each scope shows."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Person, Role, Team
from bot.loyalty.service import Scope, TeamTree


class ScopeRefused(Exception):
    """The viewer may not see this scope; ``reason`` is a template key."""

    def __init__(self, reason: str, team: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.team = team


ORG_WORDS = {"org", "organisation", "organization", "company", "azienda", "organizzazione"}


async def allowed_teams(session: AsyncSession, person: Person, tree: TeamTree) -> set[int] | None:
    """None = every team (HR, admin); managers their subtrees; employees none."""
    if person.role in (Role.hr, Role.admin):
        return None
    if person.role == Role.manager:
        managed = await session.scalars(select(Team.id).where(Team.manager_id == person.id))
        out: set[int] = set()
        for team in managed:
            out |= tree.subtree(team)
        return out
    return set()


async def resolve_scope(
    session: AsyncSession, person: Person, team_text: str, tree: TeamTree
) -> tuple[Scope, Callable[[Scope], bool]]:
    """The scope a person asked for (empty: their default) and what else they may see.

    Managers: their own subtree (default: the top team they manage); HR: any team or the
    organisation (default); employees: the organisation only.
    """
    allowed = await allowed_teams(session, person, tree)

    def may_see(scope: Scope) -> bool:
        return scope.is_org or allowed is None or scope.team_ids <= allowed

    wanted = team_text.strip()
    if not wanted:
        if allowed:
            tops = [t for t in allowed if tree.parent.get(t) not in allowed]
            return tree.scope(sorted(tops)[0]), may_see
        return tree.scope(None), may_see
    if wanted.lower() in ORG_WORDS:
        return tree.scope(None), may_see
    match = [t for t, name in tree.names.items() if name.lower() == wanted.lower()]
    if not match:
        raise ScopeRefused("summaries/unknown_team", wanted)
    scope = tree.scope(match[0])
    if not may_see(scope):
        raise ScopeRefused("summaries/not_your_team", scope.name)
    return scope, may_see
