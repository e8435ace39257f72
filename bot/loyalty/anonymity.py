"""The anonymity rules of MEASUREMENT.md in one place. Every loyalty figure Fidelio shows —
chat summaries, digests, CLI reports and exports, charts — is released through this module.

1. Minimum group k (``anonymity.min_group``, never below 3) for any displayed cell; free-text
   comments need ``anonymity.comment_min_group`` (at least k).
2. Remainder rule: a group is hidden when 0 < parent - group < k.
3. Complementary suppression: in a breakdown, if exactly one sibling is hidden, the
   next-smallest is hidden too (and more while the hidden remainder is under k).
4. Query history: what a viewer has been shown is recorded per round (``loyalty_views``).
   A new figure is released only if, together with everything already shown to that viewer
   for that round, every *cell* — the respondents who fall in exactly the same shown sets —
   holds at least k people. Any difference, overlap or combination of shown figures is a
   linear combination of cells, so no sequence of questions can single out fewer than k
   people; in particular a set differing by fewer than k people from one already shown
   (parent/child, overlapping filters) is refused.
5. Only closed rounds are reported (:func:`closed_only`).
6. "Who answered" (``participation``) is stored apart from "what they said" (``responses``,
   keyed by a per-round pseudonym whose secret is destroyed at close): see bot/surveys.

Why team ids describe respondent sets exactly: the responses of a closed round never change
and each carries its respondent's team, so "the round's respondents in teams T" is a fixed
set. Cells are therefore unions of (round, team) groups and are counted from the atoms that
bot.loyalty.metrics returns, without any person-level data.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import AnonymitySettings
from bot.db.models import LoyaltyView, RoundStatus, SurveyRound

K = TypeVar("K", bound=Hashable)
TeamSet = frozenset[int]


class Rules:
    """Rules 1-4 with the configured thresholds."""

    def __init__(self, settings: AnonymitySettings):
        # The config refuses k < 3; checked again here because this is the last line.
        if settings.min_group < 3:
            raise ValueError("anonymity.min_group must be at least 3")
        self.k = settings.min_group
        self.comment_k = max(settings.comment_min_group, settings.min_group)

    # rule 1
    def group_ok(self, n: int) -> bool:
        """A cell of ``n`` people may be displayed."""
        return n >= self.k

    def comments_ok(self, n: int) -> bool:
        """Free-text comments of a group of ``n`` respondents may be displayed."""
        return n >= self.comment_k

    # rule 2
    def remainder_ok(self, parent_n: int, group_n: int) -> bool:
        """False when the rest of the parent (parent - group) is a non-empty group under k."""
        rest = parent_n - group_n
        return not (0 < rest < self.k)

    # rules 1-3 for a breakdown
    def suppress_breakdown(self, parent_n: int, groups: Mapping[K, int]) -> set[K]:
        """Which sibling groups to hide when shown side by side under a parent of
        ``parent_n`` people: small groups (rule 1), then complementary suppression (rule 3),
        until what is hidden is either nothing or at least k people (rule 2)."""
        hidden = {key for key, n in groups.items() if 0 < n < self.k}
        shown = sorted(
            (key for key, n in groups.items() if key not in hidden and n > 0),
            key=lambda key: (groups[key], str(key)),
        )
        if len(hidden) == 1 and shown:
            hidden.add(shown.pop(0))
        while shown:
            rest = parent_n - sum(groups[key] for key in shown)
            if not 0 < rest < self.k:
                break
            hidden.add(shown.pop(0))
        return hidden

    # rule 4
    def history_ok(self, shown: Sequence[TeamSet], new: TeamSet, counts: Mapping[int, int]) -> bool:
        """May ``new`` be shown to a viewer who was already shown ``shown`` (same round)?

        ``counts`` gives the people each team contributes to the figure (respondents, or
        answers to one item). True when every non-empty cell of the sets is at least k.
        """
        return all(size >= self.k for size in cells([*shown, new], counts))

    def may_release(
        self,
        shown: Sequence[TeamSet],
        group: TeamSet,
        parent: TeamSet | None,
        counts: Mapping[int, int],
    ) -> bool:
        """Rules 1, 2 and 4 for one group of one round: ``counts`` are people per team,
        ``parent`` the teams of the group's parent (None at the top)."""
        n = sum(counts.get(team, 0) for team in group)
        if not self.group_ok(n):
            return False
        if parent is not None:
            parent_n = sum(counts.get(team, 0) for team in parent)
            if not self.remainder_ok(parent_n, n):
                return False
        return self.history_ok(shown, group, counts)


def cells(sets: Sequence[TeamSet], counts: Mapping[int, int]) -> list[int]:
    """Sizes of the non-empty cells that ``sets`` cut their union into: people are in the
    same cell when they belong to exactly the same sets."""
    signature: dict[int, list[int]] = defaultdict(list)
    for index, teams in enumerate(sets):
        for team in teams:
            signature[team].append(index)
    sizes: dict[tuple[int, ...], int] = defaultdict(int)
    for team, member_of in signature.items():
        n = counts.get(team, 0)
        if n:
            sizes[tuple(member_of)] += n
    return [size for size in sizes.values() if size]


def teams_hash(teams: Iterable[int]) -> str:
    return hashlib.sha256(",".join(map(str, sorted(teams))).encode()).hexdigest()


async def shown_sets(
    session: AsyncSession, viewer: str, round_ids: Iterable[int]
) -> dict[int, list[TeamSet]]:
    """What ``viewer`` has been shown, per round."""
    ids = sorted(set(round_ids))
    out: dict[int, list[TeamSet]] = {rid: [] for rid in ids}
    if not ids:
        return out
    rows = await session.execute(
        select(LoyaltyView.round_id, LoyaltyView.team_ids).where(
            LoyaltyView.viewer == viewer, LoyaltyView.round_id.in_(ids)
        )
    )
    for round_id, team_ids in rows:
        out[round_id].append(frozenset(int(t) for t in team_ids))
    return out


async def record_shown(
    session: AsyncSession, viewer: str, round_id: int, teams: TeamSet, now: datetime
) -> None:
    """Remember that ``viewer`` was shown round ``round_id``'s figures for ``teams``."""
    values = {
        "viewer": viewer,
        "round_id": round_id,
        "teams_hash": teams_hash(teams),
        "team_ids": sorted(teams),
        "shown_at": now,
    }
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(
        insert(LoyaltyView)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["viewer", "round_id", "teams_hash"])
    )


def closed_only(rounds: Iterable[SurveyRound]) -> list[SurveyRound]:
    """Rule 5: rounds still open are never reported (no live view of who said what)."""
    return [r for r in rounds if r.status == RoundStatus.closed and r.secret is None]
