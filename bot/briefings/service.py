"""Scheduling briefings and computing what is due at a moment.

``run_due`` is the one job: APScheduler (or a test moving the clock) calls it, and it works out
from the tables what should have happened by now — briefings to queue for the audience as it
stands (late joiners included), reminders for who has not acknowledged, readiness notes for
managers 24 h before launch. Every message goes through the outbox with a unique key, so
running it twice, or after a crash, sends nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.briefings.audience import audience_team_ids, resolve_audience
from bot.briefings.content import Briefing, timing_warnings
from bot.briefings.readiness import team_readiness
from bot.briefings.tables import BriefingReceipt
from bot.campaign_refs import ref_of
from bot.campaigns import campaign_by_id, campaign_for_content, scheduled_ids, store_campaign
from bot.changes import note_change
from bot.db.models import AuditEntry, Campaign, CampaignKind, CampaignStatus, Person, Team
from bot.errors import InputError
from bot.outbox import enqueue
from bot.people import team_subtree_ids
from bot.replies import Reply, ReplyButton
from bot.service import Service

log = logging.getLogger(__name__)

READINESS_LEAD = timedelta(hours=24)
NO_ACCOUNT = "no reachable chat account"


def readiness_at(briefing: Briefing) -> datetime:
    """When managers get the readiness note: 24 h before launch, or half-way between the
    briefing and the launch when the lead time is shorter (a note sent with the cards would
    only say 0 %)."""
    return briefing.launch_at - min(READINESS_LEAD, (briefing.launch_at - briefing.brief_at) / 2)


def brief_key(campaign_id: int, person_id: int) -> str:
    return f"briefing:{campaign_id}:brief:{person_id}"


def reminder_key(campaign_id: int, index: int, person_id: int) -> str:
    return f"briefing:{campaign_id}:reminder:{index}:{person_id}"


def readiness_key(campaign_id: int, manager_id: int) -> str:
    return f"briefing:{campaign_id}:readiness:{manager_id}"


def card_reply(
    campaign: Campaign, briefing: Briefing, *, late: bool, reminder: bool = False
) -> Reply:
    """The briefing card: title, summary, launch time, Read more / Got it."""
    buttons = [ReplyButton("read_more", "brief_more", str(campaign.id))]
    if briefing.ack_required:
        buttons.append(ReplyButton("got_it", "brief_ack", str(campaign.id)))
    return Reply(
        "briefings/reminder" if reminder else "briefings/card",
        {
            "campaign_id": campaign.id,
            "kind": briefing.kind,
            "title": briefing.title,
            "summary": briefing.summary,
            "launch_at": briefing.launch_at.isoformat(),
            "late": late,
            "quiz_questions": len(briefing.quiz),
        },
        tuple(buttons),
    )


@dataclass
class DueStats:
    queued: int = 0
    late: int = 0
    reminders: int = 0
    readiness_notes: int = 0
    closed: int = 0


class BriefingService(Service):
    async def schedule(self, briefing: Briefing, actor: str) -> tuple[Campaign, list[str]]:
        """Store a campaign for ``briefing`` (content snapshot included); returns warnings."""
        async with self.session() as session:
            return await self.schedule_in(session, briefing, actor)

    async def schedule_in(
        self, session: AsyncSession, briefing: Briefing, actor: str
    ) -> tuple[Campaign, list[str]]:
        """:meth:`schedule` inside the caller's transaction (chat commands)."""
        now = self.clock.now()
        if briefing.expires_at <= now:
            raise InputError(
                f"{briefing.source}: expires_at",
                "already expired: nothing would be delivered",
                "briefing_expired",
                id=briefing.id,
            )
        await audience_team_ids(session, briefing.audience)  # unknown teams fail here
        existing = await campaign_for_content(
            session, CampaignKind.briefing, briefing.id, [CampaignStatus.scheduled]
        )
        if existing is not None:
            reference = await ref_of(session, existing)
            raise InputError(
                briefing.id,
                f"already scheduled as campaign {reference}; cancel it first to reschedule",
                "briefing_already_scheduled",
                id=briefing.id,
                campaign=reference,
            )
        campaign = Campaign(
            kind=CampaignKind.briefing,
            content_id=briefing.id,
            title=briefing.text(briefing.title, self.settings.organisation.default_locale),
            status=CampaignStatus.scheduled,
            snapshot=briefing.to_json(),
            starts_at=briefing.brief_at,
            launch_at=briefing.launch_at,
            ends_at=briefing.expires_at,
            created_by=actor,
            created_at=now,
        )
        await store_campaign(
            session, campaign, "campaign.schedule", id_key="campaign", content_key="briefing"
        )
        note_change(session)
        return campaign, [w.reason for w in timing_warnings(briefing, now)]

    async def cancel(self, campaign_id: int, actor: str) -> Campaign:
        """Stop a campaign: nothing more is queued; queued messages not yet sent are dropped."""
        async with self.session() as session:
            return await self.cancel_in(session, campaign_id, actor)

    async def cancel_in(self, session: AsyncSession, campaign_id: int, actor: str) -> Campaign:
        """:meth:`cancel` inside the caller's transaction (chat commands)."""
        from sqlalchemy import update

        from bot.db.models import Delivery, DeliveryStatus

        now = self.clock.now()
        campaign = await campaign_by_id(session, campaign_id, CampaignKind.briefing)
        if campaign.status != CampaignStatus.scheduled:
            reference = await ref_of(session, campaign)  # B-n, as HR knows the campaign
            raise InputError(
                reference,
                f"campaign is already {campaign.status.value}",
                "campaign_status",
                id=reference,
                status=campaign.status.value,
            )
        campaign.status = CampaignStatus.cancelled
        campaign.cancelled_at = now
        await session.execute(
            update(Delivery)
            .where(
                Delivery.key.like(f"briefing:{campaign_id}:%"),
                Delivery.status == DeliveryStatus.pending,
            )
            .values(status=DeliveryStatus.failed, last_error="campaign cancelled")
        )
        session.add(AuditEntry.by(actor, now, "campaign.cancel", campaign=campaign_id))
        note_change(session)
        return campaign

    async def active_receipts(
        self, session: AsyncSession, person: Person
    ) -> list[tuple[Campaign, BriefingReceipt]]:
        """``person``'s copies of the briefings still running, by launch (``briefings`` and
        ``ask`` in chat, the Home tab). A receipt exists only for someone the briefing was
        queued for (its audience), from its briefing time; the start is checked as well, so
        nothing reaches anyone before the briefing time even if a receipt were written early."""
        now = self.clock.now()
        rows = await session.execute(
            select(Campaign, BriefingReceipt)
            .join(BriefingReceipt, BriefingReceipt.campaign_id == Campaign.id)
            .where(
                BriefingReceipt.person_id == person.id,
                Campaign.status == CampaignStatus.scheduled,
                Campaign.starts_at <= now,
                Campaign.ends_at > now,
            )
            .order_by(Campaign.launch_at, Campaign.id)
        )
        return [(c, r) for c, r in rows.tuples().all()]

    async def run_due(self) -> DueStats:
        """Queue everything that is due now, for every scheduled briefing campaign."""
        stats = DueStats()
        now = self.clock.now()
        async with self.session() as session:
            campaign_ids = await scheduled_ids(session, CampaignKind.briefing, started_by=now)
        for campaign_id in campaign_ids:
            try:
                await self._campaign_due(campaign_id, stats)
            except Exception:
                log.exception("briefing campaign %s: due work failed", campaign_id)
        return stats

    async def _campaign_due(self, campaign_id: int, stats: DueStats) -> None:
        now = self.clock.now()
        async with self.session() as session:
            campaign = await session.get(Campaign, campaign_id)
            if campaign is None or campaign.status != CampaignStatus.scheduled:
                return
            if now >= campaign.ends_at:
                campaign.status = CampaignStatus.done
                stats.closed += 1
                note_change(session)
                return
            briefing = Briefing.from_json(campaign.snapshot)
            await self._queue_briefings(session, campaign, briefing, stats)
            await self._queue_reminders(session, campaign, briefing, stats)
            if readiness_at(briefing) <= now < briefing.launch_at:
                await self._queue_readiness(session, campaign, briefing, stats)

    async def _queue_briefings(
        self, session: AsyncSession, campaign: Campaign, briefing: Briefing, stats: DueStats
    ) -> None:
        now = self.clock.now()
        people = await resolve_audience(session, briefing.audience, now.date())
        have = set(
            await session.scalars(
                select(BriefingReceipt.person_id).where(BriefingReceipt.campaign_id == campaign.id)
            )
        )
        await self._retry_unreachable(session, campaign, now)
        late = now >= briefing.launch_at
        for person in people:
            if person.id in have:
                continue
            session.add(
                BriefingReceipt(
                    campaign_id=campaign.id,
                    person_id=person.id,
                    team_id=person.team_id,
                    queued_at=now,
                    late=late,
                    quiz_answers={},
                )
            )
            await enqueue(
                session,
                key=brief_key(campaign.id, person.id),
                person_id=person.id,
                purpose="briefing",
                reply=card_reply(campaign, briefing, late=late),
                now=now,
            )
            stats.queued += 1
            stats.late += int(late)
            note_change(session)

    async def _retry_unreachable(
        self, session: AsyncSession, campaign: Campaign, now: datetime
    ) -> None:
        """A person who had no chat account when the briefing went out gets it once they link one."""
        from sqlalchemy import update

        from bot.db.models import ChannelIdentity, Delivery, DeliveryStatus

        linked = select(ChannelIdentity.person_id)
        await session.execute(
            update(Delivery)
            .where(
                Delivery.key.like(f"briefing:{campaign.id}:brief:%"),
                Delivery.status == DeliveryStatus.failed,
                Delivery.last_error == NO_ACCOUNT,
                Delivery.person_id.in_(linked),
            )
            .values(status=DeliveryStatus.pending, not_before=now, last_error=None)
            .execution_options(synchronize_session=False)
        )

    async def _queue_reminders(
        self, session: AsyncSession, campaign: Campaign, briefing: Briefing, stats: DueStats
    ) -> None:
        if not briefing.ack_required:
            return
        now = self.clock.now()
        for index, when in briefing.reminder_times():
            anchor = briefing.reminders[index].anchor
            # A "before launch" reminder makes no sense once the product is out.
            if when > now or (anchor == "launch" and now >= briefing.launch_at):
                continue
            pending = await session.scalars(
                select(BriefingReceipt).where(
                    BriefingReceipt.campaign_id == campaign.id,
                    BriefingReceipt.acknowledged_at.is_(None),
                    # Only people who had the briefing before the reminder was due.
                    BriefingReceipt.queued_at < when,
                )
            )
            for receipt in pending:
                added = await enqueue(
                    session,
                    key=reminder_key(campaign.id, index, receipt.person_id),
                    person_id=receipt.person_id,
                    purpose="briefing-reminder",
                    reply=card_reply(campaign, briefing, late=receipt.late, reminder=True),
                    now=now,
                )
                stats.reminders += int(added)

    async def _queue_readiness(
        self, session: AsyncSession, campaign: Campaign, briefing: Briefing, stats: DueStats
    ) -> None:
        """Each manager whose team subtree is in the audience gets a readiness note once."""
        now = self.clock.now()
        audience_teams = set(
            await session.scalars(
                select(BriefingReceipt.team_id)
                .where(BriefingReceipt.campaign_id == campaign.id)
                .distinct()
            )
        )
        # Every manager whose team subtree reaches the audience, at any level of the tree.
        manager_ids: set[int] = set()
        for team_id, manager_id in (
            await session.execute(
                select(Team.id, Team.manager_id).where(Team.manager_id.is_not(None))
            )
        ).tuples():
            if manager_id is not None and await team_subtree_ids(session, team_id) & audience_teams:
                manager_ids.add(manager_id)
        for manager_id in sorted(manager_ids):
            manager = await session.get(Person, manager_id)
            if manager is None or not manager.is_active(now.date()):
                continue
            report = await team_readiness(session, campaign, briefing, viewer=manager)
            added = await enqueue(
                session,
                key=readiness_key(campaign.id, manager.id),
                person_id=manager.id,
                purpose="briefing-readiness",
                reply=Reply("briefings/readiness_note", report.context(briefing, with_names=True)),
                now=now,
            )
            stats.readiness_notes += int(added)
