"""Free-text answers of closed pulse rounds, for HR, under the comment threshold.

A comment is an individual answer, so it is shown only in the one view that no other view can
be subtracted from: the whole organisation, one closed round at a time (rule 5), and only when
at least ``anonymity.comment_min_group`` people wrote one in that round (rule 1's higher k for
free text). No team, no time and no order of arrival go with a comment: they are listed in
alphabetical order. Views by team are deliberately not offered (a team's comments next to the
organisation's would tell the other teams' apart).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.db.models import Response
from bot.loyalty.anonymity import Rules
from bot.loyalty.service import ClosedRound


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
    """The comments of each round, or None for a round with fewer writers than the threshold."""
    rules = Rules(settings.anonymity)
    out = []
    for round_ in rounds:
        text_items = [key for key, item in round_.items.items.items() if item.kind == "text"]
        rows: list[tuple[str, str | None]] = []
        if text_items:
            found = (
                await session.execute(
                    select(Response.respondent_key, Response.value_text).where(
                        Response.round_id == round_.id,
                        Response.item_id.in_(text_items),
                        Response.value_text.is_not(None),
                    )
                )
            ).all()
            rows = [(key, text) for key, text in found]
        texts = [text.strip() for _key, text in rows if text and text.strip()]
        # The threshold counts people who wrote, not texts (a round may ask for two).
        writers = len({key for key, text in rows if text and text.strip()})
        shown = tuple(sorted(texts, key=str.casefold)) if rules.comments_ok(writers) else None
        out.append(RoundComments(round_.id, round_.label, round_.title, writers, shown))
    return out
