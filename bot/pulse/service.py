"""Pulse surveys: schedules, rounds on a cadence, invitations, reminders, answers, closing.

Anonymity by construction (MEASUREMENT.md, rules 5 and 6):

* A response row holds round, item, value, the respondent's team and a pseudonymous key
  ``HMAC(round secret, person id)`` — never a person id, never a time, no sequence number.
* Who was invited and how far they got lives in ``participation``, which holds no answer and
  no key: it drives reminders and response rates (counts only).
* While a round is open its secret lets a person change an answer. When the round closes the
  secret is destroyed and the round's responses are rewritten in key order (so not even the
  physical order of rows follows the order in which people answered). From then on nothing
  in the database links an answer to a person.

``run_due`` is idempotent and driven by the injected clock, like the briefings' job.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.briefings.audience import audience_team_ids, resolve_audience
from bot.campaign_refs import ref_of
from bot.campaigns import campaign_by_id, campaign_for_content, scheduled_ids, store_campaign
from bot.changes import note_change
from bot.db.models import AuditEntry, Campaign, CampaignKind, CampaignStatus, Person
from bot.errors import InputError, UserFacingError
from bot.outbox import enqueue
from bot.pulse.content import Item, Survey
from bot.pulse.schedule import Schedule, invitation, invite_key, reminder_key, respondent_key
from bot.pulse.tables import Participation, Response, RoundStatus, SurveyRound
from bot.service import Service

log = logging.getLogger(__name__)

#: A schedule lives until stopped; its campaign row needs an end.
FAR_FUTURE = timedelta(days=3650)
MAX_TEXT_ANSWER = 2000


@dataclass
class PulseDue:
    opened: int = 0
    invited: int = 0
    reminders: int = 0
    closed: int = 0


class SurveyService(Service):
    # Schedules

    async def schedule_in(
        self, session: AsyncSession, survey: Survey, items: dict[str, Item], actor: str
    ) -> Campaign:
        now = self.clock.now()
        await audience_team_ids(session, survey.audience)
        existing = await campaign_for_content(
            session,
            CampaignKind.pulse,
            survey.id,
            [CampaignStatus.scheduled, CampaignStatus.paused],
        )
        if existing is not None:
            reference = await ref_of(session, existing)
            raise InputError(
                survey.id,
                f"already scheduled as survey schedule {reference}",
                "survey_already_scheduled",
                survey=survey.id,
                schedule=reference,
            )
        # every_weeks counts weeks from an anchor; without `start` it is the week of the first
        # round, fixed now (otherwise each look at the cadence would pick a new anchor).
        survey = replace(
            survey,
            cadence=survey.cadence.pinned(now - timedelta(seconds=survey.open_for_s)),
        )
        used = {*survey.core, *survey.rotating, *(("comment",) if survey.comment else ())}
        campaign = Campaign(
            kind=CampaignKind.pulse,
            content_id=survey.id,
            title=survey.title.get(self.settings.organisation.default_locale) or survey.id,
            status=CampaignStatus.scheduled,
            snapshot={
                "survey": survey.to_json(),
                "items": {key: _item_json(items[key]) for key in sorted(used)},
            },
            starts_at=now,
            launch_at=None,
            ends_at=now + FAR_FUTURE,
            created_by=actor,
            created_at=now,
        )
        await store_campaign(
            session, campaign, "survey.schedule", id_key="schedule", content_key="survey"
        )
        note_change(session)
        return campaign

    async def set_status_in(
        self, session: AsyncSession, schedule_id: int, status: CampaignStatus, actor: str
    ) -> Campaign:
        """Pause, resume (``scheduled``) or stop (``cancelled``) a survey schedule."""
        campaign = await campaign_by_id(session, schedule_id, CampaignKind.pulse)
        allowed = {
            CampaignStatus.paused: {CampaignStatus.scheduled},
            CampaignStatus.scheduled: {CampaignStatus.paused},
            CampaignStatus.cancelled: {CampaignStatus.scheduled, CampaignStatus.paused},
        }[status]
        if campaign.status not in allowed:
            reference = await ref_of(session, campaign)  # P-n, as HR knows the schedule
            raise InputError(
                f"survey schedule {reference}",
                f"the schedule is {campaign.status.value}",
                "schedule_status",
                id=reference,
                status=campaign.status.value,
            )
        campaign.status = status
        verb = {
            CampaignStatus.paused: "pause",
            CampaignStatus.scheduled: "resume",
            CampaignStatus.cancelled: "stop",
        }[status]
        session.add(AuditEntry.by(actor, self.clock.now(), f"survey.{verb}", schedule=schedule_id))
        note_change(session)
        return campaign

    # Due work

    async def run_due(self) -> PulseDue:
        """Open due rounds, send due reminders, close rounds whose time is up."""
        stats = PulseDue()
        now = self.clock.now()
        async with self.session() as session:
            closing = list(
                await session.scalars(
                    select(SurveyRound.id).where(
                        SurveyRound.status == RoundStatus.open, SurveyRound.closes_at <= now
                    )
                )
            )
            campaigns = await scheduled_ids(session, CampaignKind.pulse)
            open_rounds = list(
                await session.scalars(
                    select(SurveyRound.id).where(SurveyRound.status == RoundStatus.open)
                )
            )
        for round_id in closing:
            await self.close_round(round_id)
            stats.closed += 1
        for campaign_id in campaigns:
            try:
                await self._open_due(campaign_id, stats)
            except Exception:
                log.exception("survey schedule %s: opening a round failed", campaign_id)
        for round_id in open_rounds:
            if round_id not in closing:
                await self._remind(round_id, stats)
        if not closing:
            await self.scrub_closed()  # a close whose scrub had to wait (e.g. closed in chat)
        return stats

    async def _open_due(self, campaign_id: int, stats: PulseDue) -> None:
        now = self.clock.now()
        async with self.session() as session:
            campaign = await session.get(Campaign, campaign_id)
            if campaign is None or campaign.status != CampaignStatus.scheduled:
                return
            schedule = Schedule.of(campaign)
            window = timedelta(seconds=schedule.survey.open_for_s)
            # Only an occurrence whose round would still be open: after downtime longer than
            # a round, that round is skipped rather than opened late.
            opens = schedule.survey.cadence.latest(now, window)
            if opens is None or opens < campaign.created_at - window:
                return
            exists = await session.scalar(
                select(SurveyRound.id).where(
                    SurveyRound.campaign_id == campaign_id, SurveyRound.opens_at == opens
                )
            )
            if exists is not None:
                return
            await self._open_round_in(session, schedule, opens, stats)

    async def open_round_now_in(self, session: AsyncSession, campaign_id: int) -> SurveyRound:
        """Open a round of schedule ``campaign_id`` now, off its cadence, for the survey's
        usual length (the demo tour: ``fidelio demo tour``). The round then lives like any
        other: reminders, closing at its time, its release plan."""
        campaign = await campaign_by_id(session, campaign_id, CampaignKind.pulse)
        return await self._open_round_in(session, Schedule.of(campaign), self.clock.now())

    async def _open_round_in(
        self,
        session: AsyncSession,
        schedule: Schedule,
        opens: datetime,
        stats: PulseDue | None = None,
    ) -> SurveyRound:
        """Create the round opening at ``opens`` and invite its audience as it stands now."""
        now = self.clock.now()
        campaign_id = schedule.campaign.id
        window = timedelta(seconds=schedule.survey.open_for_s)
        number = int(
            await session.scalar(
                select(func.count())
                .select_from(SurveyRound)
                .where(SurveyRound.campaign_id == campaign_id)
            )
            or 0
        )
        round_ = SurveyRound(
            campaign_id=campaign_id,
            number=number + 1,
            opens_at=opens,
            closes_at=opens + window,
            status=RoundStatus.open,
            secret=secrets.token_bytes(32),
            opened_at=now,
            items=schedule.survey.items_for_round(number),
        )
        session.add(round_)
        await session.flush()
        people = await resolve_audience(session, schedule.survey.audience, now.date())
        for person in people:
            session.add(
                Participation(round_id=round_.id, person_id=person.id, team_id=person.team_id)
            )
            await enqueue(
                session,
                key=invite_key(round_.id, person.id),
                person_id=person.id,
                purpose="pulse-invitation",
                reply=invitation(round_, schedule),
                now=now,
            )
        round_.invited = len(people)
        note_change(session)  # a survey to answer for the audience, live rates for HR
        if stats is not None:
            stats.opened += 1
            stats.invited += len(people)
        return round_

    async def _remind(self, round_id: int, stats: PulseDue) -> None:
        now = self.clock.now()
        async with self.session() as session:
            round_ = await session.get(SurveyRound, round_id)
            if round_ is None or round_.status != RoundStatus.open:
                return
            campaign = await session.get(Campaign, round_.campaign_id)
            assert campaign is not None
            schedule = Schedule.of(campaign)
            for index, when in schedule.survey.reminder_times(round_.opens_at, round_.closes_at):
                # A reminder that was already due when the round actually opened (late, after
                # downtime or a mid-window start) would only repeat the invitation.
                if when > now or (round_.opened_at is not None and when <= round_.opened_at):
                    continue
                pending = await session.scalars(
                    select(Participation.person_id).where(
                        Participation.round_id == round_id, Participation.finished.is_(False)
                    )
                )
                for person_id in pending:
                    added = await enqueue(
                        session,
                        key=reminder_key(round_id, index, person_id),
                        person_id=person_id,
                        purpose="pulse-reminder",
                        reply=invitation(round_, schedule, reminder=True),
                        now=now,
                    )
                    stats.reminders += int(added)

    async def close_round(self, round_id: int) -> None:
        """Close a round: decide its release plan, keep its answers by plan atom only, destroy
        its secret, drop unsent reminders, then scrub the old rows. Safe to call twice."""
        async with self.session() as session:
            await self.close_round_in(session, round_id)
        await self.scrub_closed()

    async def scrub_closed(self) -> int:
        """Remove for good the dead row versions of rounds closed since the last scrub (see
        bot.loyalty.release); retried by :meth:`run_due` when it could not run."""
        from bot.loyalty.release import scrub_closed_rounds

        assert self.db is not None
        return await scrub_closed_rounds(self.db, self.clock.now())

    async def close_round_in(
        self, session: AsyncSession, round_id: int, actor: str = "scheduler"
    ) -> SurveyRound:
        from bot.db.models import Delivery, DeliveryStatus

        round_ = await session.get(SurveyRound, round_id, with_for_update=True)
        if round_ is None:
            raise InputError(str(round_id), "no survey round with this id", "no_round", id=round_id)
        if round_.status == RoundStatus.closed:
            return round_
        old_secret = round_.secret
        round_.status = RoundStatus.closed
        round_.secret = None
        note_change(session)
        round_.closed_at = self.clock.now()
        early = round_.closed_at < round_.closes_at
        session.add(
            AuditEntry.by(actor, round_.closed_at, "survey.close", round=round_id, early=early)
        )
        # Rule 6: the plan is decided and the answers keep only their plan atom; who
        # answered is read from the secret one last time, then the secret is gone.
        from bot.loyalty.release import close_round_storage

        secret = old_secret
        await close_round_storage(
            session,
            self.settings,
            round_,
            round_.closed_at,
            key_of=None
            if secret is None
            else (lambda person_id: respondent_key(secret, person_id)),
        )
        await session.execute(
            update(Delivery)
            .where(
                Delivery.key.like(f"pulse:{round_id}:%"), Delivery.status == DeliveryStatus.pending
            )
            .values(status=DeliveryStatus.failed, last_error="round closed")
        )
        return round_

    # Answering

    async def open_round_for(
        self, session: AsyncSession, round_id: int, person: Person
    ) -> tuple[SurveyRound, Schedule, Participation]:
        """The open round a person was invited to, or a polite refusal.

        One query for the round, its schedule and the person's participation: every answer
        starts here.
        """
        row = (
            await session.execute(
                select(SurveyRound, Campaign, Participation)
                .join(Campaign, Campaign.id == SurveyRound.campaign_id)
                .outerjoin(
                    Participation,
                    and_(
                        Participation.round_id == SurveyRound.id,
                        Participation.person_id == person.id,
                    ),
                )
                .where(SurveyRound.id == round_id)
            )
        ).first()
        if row is None or row[2] is None:
            raise UserFacingError("errors/stale_button")
        round_, campaign, participation = row
        schedule = Schedule.of(campaign)
        if (
            round_.status != RoundStatus.open
            or round_.secret is None
            or self.clock.now() >= round_.closes_at
        ):
            raise UserFacingError("pulse/closed", title=schedule.survey.title)
        return round_, schedule, participation

    async def open_rounds_of(
        self, session: AsyncSession, person: Person
    ) -> list[tuple[SurveyRound, Schedule, Participation]]:
        """The open rounds ``person`` was invited to, with their progress, soonest to close
        first (``pulse`` in chat, the Home tab)."""
        rows = await session.execute(
            select(SurveyRound, Campaign, Participation)
            .join(Campaign, Campaign.id == SurveyRound.campaign_id)
            .join(Participation, Participation.round_id == SurveyRound.id)
            .where(
                Participation.person_id == person.id,
                SurveyRound.status == RoundStatus.open,
                SurveyRound.closes_at > self.clock.now(),
            )
            .order_by(SurveyRound.closes_at, SurveyRound.id)
        )
        return [(r, Schedule.of(c), p) for r, c, p in rows.tuples().all()]

    async def open_rounds_for_many(
        self, session: AsyncSession, wanted: list[tuple[int, Person]]
    ) -> list[tuple[SurveyRound, Schedule, Participation] | UserFacingError]:
        """:meth:`open_round_for` for many (round id, person) pairs in two queries; each
        result is the round, its schedule and the participation, or the refusal."""
        round_ids = sorted({round_id for round_id, _ in wanted})
        rounds = {
            round_.id: (round_, Schedule.of(campaign))
            for round_, campaign in (
                await session.execute(
                    select(SurveyRound, Campaign)
                    .join(Campaign, Campaign.id == SurveyRound.campaign_id)
                    .where(SurveyRound.id.in_(round_ids))
                )
            ).all()
        }
        person_ids = sorted({person.id for _, person in wanted})
        participations = {
            (p.round_id, p.person_id): p
            for p in await session.scalars(
                select(Participation).where(
                    Participation.round_id.in_(round_ids),
                    Participation.person_id.in_(person_ids),
                )
            )
        }
        now = self.clock.now()
        results: list[tuple[SurveyRound, Schedule, Participation] | UserFacingError] = []
        for round_id, person in wanted:
            participation = participations.get((round_id, person.id))
            if round_id not in rounds or participation is None:
                results.append(UserFacingError("errors/stale_button"))
                continue
            round_, schedule = rounds[round_id]
            if (
                round_.status != RoundStatus.open
                or round_.secret is None
                or now >= round_.closes_at
            ):
                results.append(UserFacingError("pulse/closed", title=schedule.survey.title))
                continue
            results.append((round_, schedule, participation))
        return results

    async def responses_of_many(
        self,
        session: AsyncSession,
        wanted: list[tuple[SurveyRound, Person]],
        items: Sequence[Collection[str]] | None = None,
    ) -> list[dict[str, Response]]:
        """:meth:`responses_of` for many (open round, person) pairs in one query.

        ``items``: for each pair, the only items whose rows are wanted (by default all). An
        answer needs two (the item answered and the next one), and loading every earlier row
        would grow with each item of the round.
        """
        keys = []
        for round_, person in wanted:
            assert round_.secret is not None
            keys.append((round_.id, respondent_key(round_.secret, person.id)))
        rows: dict[tuple[int, str], dict[str, Response]] = {key: {} for key in keys}
        allowed: dict[tuple[int, str], set[str]] = {}
        if items is not None:
            for key, only in zip(keys, items, strict=True):
                allowed.setdefault(key, set()).update(only)
        if keys and (items is None or any(allowed.values())):
            query = select(Response).where(
                Response.round_id.in_(sorted({round_id for round_id, _ in keys})),
                Response.respondent_key.in_(sorted({key for _, key in keys})),
            )
            if items is not None:
                query = query.where(Response.item_id.in_(sorted(set().union(*allowed.values()))))
            for row in await session.scalars(query):
                key = (row.round_id, row.respondent_key)
                if key in rows and (items is None or row.item_id in allowed[key]):
                    rows[key][row.item_id] = row
        return [rows[key] for key in keys]

    async def answers_of(
        self, session: AsyncSession, round_: SurveyRound, person: Person
    ) -> dict[str, Any]:
        """The person's answers so far in an open round: item id -> number or text."""
        assert round_.secret is not None
        key = respondent_key(round_.secret, person.id)
        rows = await session.execute(
            select(Response.item_id, Response.value_num, Response.value_text).where(
                Response.round_id == round_.id, Response.respondent_key == key
            )
        )
        return {item: (num if text is None else text) for item, num, text in rows.all()}

    async def responses_of(
        self, session: AsyncSession, round_: SurveyRound, person: Person
    ) -> dict[str, Response]:
        """The person's stored rows in an open round, by item id, in one query. Pass them to
        :meth:`record` (which keeps them current) and read them with :func:`answer_values`
        instead of looking each answer up again."""
        assert round_.secret is not None
        key = respondent_key(round_.secret, person.id)
        rows = await session.scalars(
            select(Response).where(Response.round_id == round_.id, Response.respondent_key == key)
        )
        return {row.item_id: row for row in rows}

    async def record(
        self,
        session: AsyncSession,
        round_: SurveyRound,
        participation: Participation,
        person: Person,
        item_id: str,
        *,
        value: int | None = None,
        text: str | None = None,
        skipped: bool = False,
        responses: dict[str, Response] | None = None,
    ) -> None:
        """Store (or change) one answer; a skip removes any earlier answer (missing, not 0).

        ``responses``: the person's rows from :meth:`responses_of`, which saves looking the
        earlier answer up; it is updated to match.
        """
        assert round_.secret is not None
        key = respondent_key(round_.secret, person.id)
        if responses is None:
            existing = await session.get(Response, (round_.id, key, item_id))
        else:
            existing = responses.get(item_id)
        if skipped:
            if existing is not None:
                if existing in session.new:  # added earlier in this transaction
                    session.expunge(existing)
                else:
                    await session.delete(existing)
                if responses is not None:
                    del responses[item_id]
        elif existing is None:
            added = Response(
                round_id=round_.id,
                respondent_key=key,
                item_id=item_id,
                team_id=participation.team_id,
                value_num=value,
                value_text=text[:MAX_TEXT_ANSWER] if text else None,
            )
            session.add(added)
            if responses is not None:
                responses[item_id] = added
        else:
            existing.value_num = value
            existing.value_text = text[:MAX_TEXT_ANSWER] if text else None
        # Progress counts items seen (answered or skipped): the position in the round.
        position = round_.items.index(item_id) + 1
        participation.answered = max(participation.answered, position)
        participation.finished = participation.answered >= len(round_.items)
        note_change(session, person.id)


def answer_values(responses: dict[str, Response]) -> dict[str, Any]:
    """Rows from :meth:`SurveyService.responses_of` as answers: item id -> number or text."""
    return {
        item: (row.value_num if row.value_text is None else row.value_text)
        for item, row in responses.items()
    }


def _item_json(item: Item) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(item)
