"""Campaign rows as briefings and survey schedules share them: looked up by id or content,
stored with their audit entry, listed when the scheduler looks for due work."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.campaign_refs import WHAT
from bot.db.models import AuditEntry, Campaign, CampaignKind, CampaignStatus
from bot.errors import InputError

#: The chat template (errors/input/) of an id that names no campaign of the kind.
UNKNOWN_KEY = {CampaignKind.briefing: "no_campaign", CampaignKind.pulse: "no_schedule"}


async def campaign_by_id(session: AsyncSession, campaign_id: int, kind: CampaignKind) -> Campaign:
    """The campaign row with the internal id ``campaign_id`` (buttons, jobs), when it is of
    ``kind``; else an InputError ``no <briefing campaign> with this id`` that chat can show."""
    campaign = await session.get(Campaign, campaign_id)
    if campaign is None or campaign.kind != kind:
        raise InputError(
            str(campaign_id), f"no {WHAT[kind]} with this id", UNKNOWN_KEY[kind], id=campaign_id
        )
    return campaign


async def campaign_for_content(
    session: AsyncSession, kind: CampaignKind, content_id: str, statuses: Iterable[CampaignStatus]
) -> Campaign | None:
    """The campaign of ``kind`` made from the content ``content_id`` whose status is one of
    ``statuses`` (a briefing or survey already scheduled), if any."""
    return await session.scalar(
        select(Campaign).where(
            Campaign.kind == kind,
            Campaign.content_id == content_id,
            Campaign.status.in_(list(statuses)),
        )
    )


async def store_campaign(
    session: AsyncSession, campaign: Campaign, action: str, *, id_key: str, content_key: str
) -> None:
    """Add a new campaign row (flushed, so it has its id) and the audit entry of ``action`` by
    its creator at its creation; the entry names the row under ``id_key`` and its content
    under ``content_key``."""
    session.add(campaign)
    await session.flush()
    detail = {id_key: campaign.id, content_key: campaign.content_id}
    session.add(AuditEntry.by(campaign.created_by, campaign.created_at, action, **detail))


async def scheduled_ids(
    session: AsyncSession, kind: CampaignKind, *, started_by: datetime | None = None
) -> list[int]:
    """Ids of the scheduled campaigns of ``kind`` (paused, cancelled and done ones are left
    out), those that have started by ``started_by`` when given."""
    query = select(Campaign.id).where(
        Campaign.kind == kind, Campaign.status == CampaignStatus.scheduled
    )
    if started_by is not None:
        query = query.where(Campaign.starts_at <= started_by)
    return list(await session.scalars(query))
