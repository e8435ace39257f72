"""Response rates of a pulse round: counts only, per team only from k people, coarse while open.

MEASUREMENT.md, rule 5: nobody's participation may be timed. Exact live counts would let HR
watch a team's "finished" figure while a known colleague taps through the survey, so while a
round is open every route (chat, command line) shows the same stored snapshot
(``response_rate_snapshots``):

* it is refreshed at most once every ``anonymity.live_rates_refresh_s`` seconds (an hour by
  default), on the first request after it has aged, and never in between;
* its ``started`` and ``finished`` counts are rounded down to a multiple of
  :data:`RATE_STEP` (5), so one more answer usually changes nothing at all. ``invited`` stays
  exact: it is fixed when the round opens and says nothing about who answered when.

Once a round is closed its participation is no longer live, and the exact final counts are
shown. Closing rounds is not this module's business; a snapshot left from the open round is
simply no longer read (and goes with its round).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, case, cast, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import AnonymitySettings
from bot.db.models import Team
from bot.pulse.tables import Participation, ResponseRateSnapshot, RoundStatus, SurveyRound

#: Live started/finished counts are rounded down to a multiple of this.
RATE_STEP = 5
#: The counts that move while a round is open (``invited`` does not).
LIVE_COUNTS = ("started", "finished")


async def count_responses(session: AsyncSession, round_id: int, min_group: int) -> dict[str, Any]:
    """Exact response counts of a round: overall, and per team only for teams of at least
    ``min_group`` invited people (smaller teams are pooled as "other teams").

    Exact figures of an open round must not be shown as they are: :func:`response_rates` is
    what people see. Once a round is closed, participation keeps only "answered anything"
    (bot.loyalty.release), so started and finished then both count the respondents.
    """
    rows = (
        await session.execute(
            select(
                Team.name,
                func.count(),
                func.sum(cast(Participation.finished, Integer)),
                func.sum(
                    case((or_(Participation.answered > 0, Participation.finished), 1), else_=0)
                ),
            )
            .join(Team, Team.id == Participation.team_id)
            .where(Participation.round_id == round_id)
            .group_by(Team.name)
            .order_by(Team.name)
        )
    ).all()
    teams: list[dict[str, Any]] = []
    pooled = {"invited": 0, "finished": 0, "started": 0}
    total = {"invited": 0, "finished": 0, "started": 0}
    for name, invited, finished, started in rows:
        entry = {
            "team": name,
            "invited": int(invited),
            "finished": int(finished or 0),
            "started": int(started or 0),
        }
        for key in total:
            total[key] += entry[key]
        if entry["invited"] >= min_group:
            teams.append(entry)
        else:
            for key in pooled:
                pooled[key] += entry[key]
    # The total minus the teams shown is the pool: a pool under k would be revealed by
    # subtraction (remainder rule), so the smallest shown teams join it until it reaches k.
    while 0 < pooled["invited"] < min_group and teams:
        smallest = min(teams, key=lambda t: (t["invited"], t["team"]))
        teams.remove(smallest)
        for key in pooled:
            pooled[key] += smallest[key]
    # Small teams are pooled; the pool itself is shown only when it is large enough too.
    return {
        "teams": teams,
        "pooled": pooled if pooled["invited"] >= min_group else None,
        "total": total,
    }


def stepped(rates: dict[str, Any], step: int = RATE_STEP) -> dict[str, Any]:
    """``rates`` (as from :func:`count_responses`) with started and finished rounded down to
    a multiple of ``step``; ``invited`` and the pooling are kept."""

    def coarse(entry: dict[str, Any]) -> dict[str, Any]:
        return {**entry, **{key: entry[key] - entry[key] % step for key in LIVE_COUNTS}}

    return {
        "teams": [coarse(team) for team in rates["teams"]],
        "pooled": coarse(rates["pooled"]) if rates["pooled"] else None,
        "total": coarse(rates["total"]),
    }


async def response_rates(
    session: AsyncSession, round_: SurveyRound, anonymity: AnonymitySettings, clock: Clock
) -> dict[str, Any]:
    """The response rates of ``round_`` as everyone is shown them (counts only).

    ``teams``, ``pooled`` and ``total`` as in :func:`count_responses`, plus ``live`` (the
    round is open), ``taken_at`` (ISO time of the snapshot shown, None when closed) and
    ``step`` (what started/finished are rounded down to: :data:`RATE_STEP` while open, 1 once
    closed). For an open round this may refresh the stored snapshot, in ``session``'s
    transaction.
    """
    if round_.status != RoundStatus.open:
        exact = await count_responses(session, round_.id, anonymity.min_group)
        return {**exact, "live": False, "taken_at": None, "step": 1}
    taken_at, counts = await _snapshot(session, round_.id, anonymity, clock.now())
    shown = {key: counts[key] for key in ("teams", "pooled", "total")}
    return {**shown, "live": True, "taken_at": taken_at.isoformat(), "step": RATE_STEP}


async def _snapshot(
    session: AsyncSession, round_id: int, anonymity: AnonymitySettings, now: datetime
) -> tuple[datetime, dict[str, Any]]:
    """The round's current snapshot (taken_at, counts), refreshed first if it has aged."""
    table = ResponseRateSnapshot
    current = select(table.taken_at, table.counts).where(table.round_id == round_id)
    found = (await session.execute(current)).one_or_none()
    if found is not None:
        age = now - found.taken_at
        # A change of k must apply at once: figures pooled for a smaller k may single out.
        if (
            age < timedelta(seconds=anonymity.live_rates_refresh_s)
            and found.counts.get("min_group") == anonymity.min_group
        ):
            return found.taken_at, found.counts
    counts = {
        "min_group": anonymity.min_group,
        **stepped(await count_responses(session, round_id, anonymity.min_group)),
    }
    if found is None:
        dialect = session.bind.dialect.name if session.bind else "sqlite"
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stored = (
            await session.execute(
                insert(table)
                .values(round_id=round_id, taken_at=now, counts=counts)
                .on_conflict_do_nothing(index_elements=["round_id"])
                .returning(table.round_id)
            )
        ).scalar() is not None
    else:
        # Only the snapshot we judged stale is replaced, never a newer one written meanwhile.
        result = await session.execute(
            update(table)
            .where(table.round_id == round_id, table.taken_at == found.taken_at)
            .values(taken_at=now, counts=counts)
            .execution_options(synchronize_session=False)
        )
        stored = getattr(result, "rowcount", 0) == 1
    if stored:
        return now, counts
    # Another request refreshed it first: show that one, so everyone sees the same figures.
    again = (await session.execute(current)).one()
    return again.taken_at, again.counts
