"""Suggestion counts per team and period: participation in initiatives (MEASUREMENT.md).

Definitions (a cohort: the suggestions *sent* in the period):

* **sent** — suggestions created in ``[since, until)`` whose team is the given team (an
  anonymous suggestion counts for the team it was filed under: the author's, or the nearest
  ancestor with at least k members). Merged suggestions still count as sent.
* **answered** — of those, the ones with a first response (status change, reply or follow-up
  question) before ``until``.
* **implemented** — of those, the ones marked done before ``until`` (the status history, so a
  later change of mind does not rewrite the past).
* **median_hours_to_first_response** — median of (first response − sent) over the answered
  ones, in hours; None when none was answered. Anonymous suggestions keep their sending time
  to the hour, so their delays are accurate to an hour.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.suggestions.tables import Suggestion, SuggestionEvent, SuggestionStatus


@dataclass(frozen=True)
class SuggestionCounts:
    sent: int = 0
    answered: int = 0
    implemented: int = 0
    median_hours_to_first_response: float | None = None


#: Key of the counts over all the teams asked, with ``total=True``.
TOTAL = -1


async def suggestion_counts(
    session: AsyncSession,
    team_ids: Iterable[int],
    since: datetime,
    until: datetime,
    *,
    total: bool = False,
) -> dict[int, SuggestionCounts]:
    """Counts for each of ``team_ids`` (exactly those teams, not their subtrees; every id
    is in the result, with zeros when nothing was sent); with ``total``, also the counts of
    all of them together under :data:`TOTAL` (its median over every suggestion)."""
    wanted = sorted(set(team_ids))
    if not wanted:
        return {}
    rows = (
        await session.execute(
            select(
                Suggestion.id,
                Suggestion.team_id,
                Suggestion.created_at,
                Suggestion.first_response_at,
            ).where(
                Suggestion.team_id.in_(wanted),
                Suggestion.created_at >= since,
                Suggestion.created_at < until,
            )
        )
    ).all()
    done = set(
        await session.scalars(
            select(SuggestionEvent.suggestion_id).where(
                SuggestionEvent.suggestion_id.in_([r.id for r in rows] or [-1]),
                SuggestionEvent.kind == "status",
                SuggestionEvent.status == SuggestionStatus.done,
                SuggestionEvent.at < until,
            )
        )
    )
    per_team: dict[int, list[tuple[int, datetime, datetime | None]]] = {t: [] for t in wanted}
    for row in rows:
        per_team[row.team_id].append((row.id, row.created_at, row.first_response_at))
    out = {team_id: _counts(items, done, until) for team_id, items in per_team.items()}
    if total:
        everything = [item for items in per_team.values() for item in items]
        out[TOTAL] = _counts(everything, done, until)
    return out


def _counts(
    items: list[tuple[int, datetime, datetime | None]], done: set[int], until: datetime
) -> SuggestionCounts:
    delays = [
        max(0.0, (first - created).total_seconds() / 3600)
        for _, created, first in items
        if first is not None and first < until
    ]
    return SuggestionCounts(
        sent=len(items),
        answered=len(delays),
        implemented=sum(1 for sid, _, _ in items if sid in done),
        median_hours_to_first_response=statistics.median(delays) if delays else None,
    )
