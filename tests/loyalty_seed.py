"""Closed pulse rounds with chosen answers, written straight to the database (loyalty tests)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select

from bot.clock import ManualClock
from bot.config import Settings
from bot.db.models import Person
from bot.db.session import Database
from bot.loyalty.release import close_round_storage
from bot.pulse.content import load_survey
from bot.pulse.service import SurveyService
from bot.pulse.tables import Participation, Response, RoundStatus, SurveyRound

from .harness import REPO, make_settings

ROME = ZoneInfo("Europe/Rome")
FIRST = datetime(2027, 1, 4, 10, 0, tzinfo=ROME)
#: person -> item -> value (None or missing = skipped; a string is a free-text answer);
#: returning None = did not answer.
Answers = Callable[[Person, int], dict[str, int | str | None] | None]


async def schedule_survey(settings: Settings, db: Database, clock: ManualClock) -> int:
    survey, items = load_survey(REPO / "content" / "surveys", "pulse-fortnightly")
    service = SurveyService(settings, db, clock)
    async with db.session() as session:
        campaign = await service.schedule_in(session, survey, items, "test")
        return campaign.id


def closed_round_row(
    campaign_id: int, number: int, opens: datetime, items: list[str], *, invited: int
) -> SurveyRound:
    """The row of round ``number``, open for four days from ``opens`` and closed since."""
    return SurveyRound(
        campaign_id=campaign_id,
        number=number,
        opens_at=opens,
        closes_at=opens + timedelta(days=4),
        status=RoundStatus.closed,
        secret=None,
        items=items,
        invited=invited,
        opened_at=opens,
        closed_at=opens + timedelta(days=4),
    )


async def closed_round(
    db: Database,
    campaign_id: int,
    number: int,
    items: list[str],
    answers: Answers,
    *,
    opens_at: datetime | None = None,
    settings: Settings | None = None,
) -> int:
    """A closed round whose respondents answered ``answers(person, number)``, closed the way
    Fidelio closes rounds: release plan decided, answers kept by plan atom (with ``settings``'
    thresholds; the defaults when not given)."""
    opens = opens_at or FIRST + timedelta(weeks=2 * (number - 1))
    async with db.session() as session:
        people = list(
            await session.scalars(
                select(Person).where(Person.leave_date.is_(None)).order_by(Person.id)
            )
        )
        round_ = closed_round_row(campaign_id, number, opens, items, invited=len(people))
        session.add(round_)
        await session.flush()
        rows: list[dict[str, Any]] = []
        for person in people:
            given = answers(person, number)
            session.add(
                Participation(
                    round_id=round_.id,
                    person_id=person.id,
                    team_id=person.team_id,
                    answered=len(items) if given is not None else 0,
                    finished=given is not None,
                )
            )
            if given is None:
                continue
            key = hashlib.sha256(f"{round_.id}:{person.id}".encode()).hexdigest()
            for item, value in given.items():
                if value is None:
                    continue
                rows.append(
                    {
                        "round_id": round_.id,
                        "respondent_key": key,
                        "item_id": item,
                        "team_id": person.team_id,
                        "value_num": None if isinstance(value, str) else value,
                        "value_text": value if isinstance(value, str) else None,
                    }
                )
        if rows:
            await session.execute(insert(Response), rows)
        await close_round_storage(
            session,
            settings or make_settings(db.url),
            round_,
            round_.closed_at or opens,
            key_of=lambda person_id: hashlib.sha256(
                f"{round_.id}:{person_id}".encode()
            ).hexdigest(),
        )
        return round_.id
