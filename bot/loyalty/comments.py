"""Free-text answers of closed pulse rounds, for HR, under the comment threshold.

A comment is an individual answer, so it is shown only in the one view that no other view can
be subtracted from: the whole organisation, one closed round at a time (rule 5), and only when
the round's release plan lets the organisation show comments: at least
``anonymity.comment_min_group`` people wrote one (rule 1's higher k for free text). Comments
are stored at close in an atom of their own, with no team, time, order of arrival or link to
the writer's other answers, and listed in alphabetical order.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.loyalty.plan import ORG
from bot.loyalty.release import COMMENTS, comment_texts, load_groups
from bot.loyalty.service import ClosedRound
from bot.loyalty.tables import PlanAtom


@dataclass(frozen=True)
class RoundComments:
    """One closed round's comments; ``texts`` is None when they are withheld."""

    round_id: int
    label: str
    title: str
    writers: int
    texts: tuple[str, ...] | None


async def organisation_comments(
    session: AsyncSession, settings: Settings, rounds: list[ClosedRound]
) -> list[RoundComments]:
    """The comments of each round, or None where the round's plan withholds them."""
    planned = await load_groups(session, [r.id for r in rounds], [ORG])
    writers = dict(
        (
            await session.execute(
                select(PlanAtom.round_id, PlanAtom.respondents).where(
                    PlanAtom.round_id.in_([r.id for r in rounds]), PlanAtom.kind == COMMENTS
                )
            )
        )
        .tuples()
        .all()
    )
    out = []
    for round_ in rounds:
        org = planned[round_.id].get(ORG)
        shown: tuple[str, ...] | None = None
        if org is not None and org.shows(COMMENTS):
            texts = await comment_texts(session, round_.id)
            shown = tuple(sorted(texts, key=str.casefold))
        out.append(
            RoundComments(
                round_.id, round_.label, round_.title, int(writers.get(round_.id, 0)), shown
            )
        )
    return out
