"""The thresholds of MEASUREMENT.md's anonymity rules, and the log of what viewers saw.

1. Minimum group k (``anonymity.min_group``, never below 3) for any displayed cell; free-text
   comments need ``anonymity.comment_min_group`` (at least k).
2-4. Remainder rule, complementary suppression and "nothing outside the plan": decided once
   per closed round for everyone by its release plan (bot.loyalty.plan, stored by
   bot.loyalty.release). Every route reads figures from the plan only, so no viewer, no
   pair of viewers and no person on two routes can combine more than planned groups.
5. Only closed rounds are reported (:func:`closed_only`); live rates are coarse
   (bot.pulse).
6. "Who answered" (``participation``) is stored apart from "what they said"; at close each
   answer keeps only its plan atom and the old rows are scrubbed (bot.loyalty.release).

``loyalty_views`` remains a log of what each person was shown (their personal data, in
``fidelio people export``); it no longer decides anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import AnonymitySettings
from bot.loyalty.tables import LoyaltyView
from bot.pulse.tables import RoundStatus, SurveyRound

TeamSet = frozenset[int]


class Rules:
    """Rules 1-2 with the configured thresholds (the plan applies them per round)."""

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


def teams_hash(teams: Iterable[int]) -> str:
    return hashlib.sha256(",".join(map(str, sorted(teams))).encode()).hexdigest()


async def record_shown(
    session: AsyncSession, viewer: str, round_id: int, teams: TeamSet, now: datetime
) -> None:
    """Log that ``viewer`` was shown round ``round_id``'s figures for ``teams`` (a record of
    the viewer's own, exported with their personal data; it decides nothing)."""
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
