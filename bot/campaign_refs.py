"""The references people see for briefing campaigns (``B-3``) and survey schedules (``P-1``).

Both are rows of the ``campaigns`` table and share its ids, so HR's first survey schedule
could be "3" while ``campaign cancel 3`` knew no such briefing campaign. Each kind is numbered
on its own instead: ``B-n`` is the n-th briefing campaign ever scheduled, ``P-n`` the n-th
survey schedule, counted in id order. Campaign rows are never deleted (cancelling only changes
their status), so a reference never changes. The table's id stays internal: buttons, outbox
keys and audit entries keep using it.

Commands accept ``B-3``, ``b3``, ``#3`` or a plain ``3``; a plain number means the kind the
command is about (``campaign cancel 3`` is ``B-3``), and the wrong letter is refused with a
pointer to the right command.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Campaign, CampaignKind
from bot.errors import InputError

PREFIX = {CampaignKind.briefing: "B", CampaignKind.pulse: "P"}
KIND_OF = {letter: kind for kind, letter in PREFIX.items()}
WHAT = {CampaignKind.briefing: "briefing campaign", CampaignKind.pulse: "survey schedule"}
LISTED_BY = {CampaignKind.briefing: "campaign list", CampaignKind.pulse: "survey list"}

_REF = re.compile(r"^\s*(?:([A-Za-z])\s*-?\s*|#)?(\d{1,9})\s*$")


def format_ref(kind: CampaignKind, number: int) -> str:
    return f"{PREFIX[kind]}-{number}"


def parse_ref(text: str) -> tuple[CampaignKind | None, int] | None:
    """(kind or None for a plain number, number), or None when ``text`` is no reference."""
    match = _REF.match(text or "")
    if not match:
        return None
    letter, digits = match.group(1), int(match.group(2))
    if letter is None:
        return None, digits
    kind = KIND_OF.get(letter.upper())
    return (kind, digits) if kind is not None else None


def shown_ref(text: str, kind: CampaignKind) -> str:
    """What a person typed, written as a reference: a plain ``9`` for ``kind`` is ``P-9``."""
    parsed = parse_ref(text)
    if parsed is None:
        return (text or "").strip()
    given_kind, number = parsed
    return format_ref(given_kind or kind, number)


async def ref_of(session: AsyncSession, campaign: Campaign) -> str:
    """``B-n`` or ``P-n`` for a stored campaign."""
    number = await session.scalar(
        select(func.count())
        .select_from(Campaign)
        .where(Campaign.kind == campaign.kind, Campaign.id <= campaign.id)
    )
    return format_ref(campaign.kind, int(number or 0))


async def refs_of(session: AsyncSession, kind: CampaignKind) -> dict[int, str]:
    """Every campaign id of ``kind`` with its reference."""
    ids = await session.scalars(
        select(Campaign.id).where(Campaign.kind == kind).order_by(Campaign.id)
    )
    return {campaign_id: format_ref(kind, n) for n, campaign_id in enumerate(ids, start=1)}


async def find_campaign(session: AsyncSession, text: str, kind: CampaignKind) -> Campaign:
    """The campaign of ``kind`` that ``text`` refers to, or InputError naming ``text``."""
    shown = (text or "").strip()
    parsed = parse_ref(shown)
    if parsed is None:
        example = format_ref(kind, 1)
        raise InputError(
            shown or "ID",
            f"not a {WHAT[kind]} reference: write it like {example} (see {LISTED_BY[kind]})",
        )
    given_kind, number = parsed
    if given_kind is not None and given_kind != kind:
        raise InputError(
            shown,
            f"{format_ref(given_kind, number)} is a {WHAT[given_kind]}, not a {WHAT[kind]} "
            f"(see {LISTED_BY[given_kind]})",
        )
    found = None
    if number >= 1:
        found = await session.scalar(
            select(Campaign)
            .where(Campaign.kind == kind)
            .order_by(Campaign.id)
            .offset(number - 1)
            .limit(1)
        )
    if found is None:
        raise InputError(
            format_ref(kind, number), f"no {WHAT[kind]} with this reference (see {LISTED_BY[kind]})"
        )
    return found
