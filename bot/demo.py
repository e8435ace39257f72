"""The demo tour: a briefing sent now and a pulse round opened now, on the demo organisation.

The shipped briefings launch in 2027 and the shipped pulse opens in 2027, so on a fresh
install nothing would reach anyone for months. ``fidelio demo tour`` takes one shipped
briefing and one shipped survey and runs them now:

* the briefing is scheduled with its dates moved so that its briefing time is now (launch and
  expiry keep their distance from it), and its cards are queued at once;
* the survey is scheduled as usual and one round is opened now, off its cadence, for the
  survey's usual length;
* every demo person gets a console identity, and the outbox delivers everything through the
  console channel, so each demo person has received what they would have on Telegram or Slack
  (``:as EMAIL`` in the console shows it).

It is kept out of production by what the database holds, not by a flag: it refuses unless every
person in the directory is one of the demo organisation's people (``content/demo/people.csv``).
An empty directory gets the demo organisation first. A flag could be pasted into a script run
against the real directory; a check of the directory cannot send a fictional promotion to real
staff.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.briefings.content import Briefing, load_briefing
from bot.campaign_refs import ref_of
from bot.db.models import Campaign, CampaignKind, CampaignStatus, ChannelName, Person
from bot.errors import InputError
from bot.identities import link
from bot.people import import_people
from bot.pulse.content import load_survey
from bot.pulse.tables import RoundStatus, SurveyRound

DEFAULT_BRIEFING = "spring-trade-in"
DEFAULT_SURVEY = "pulse-fortnightly"


@dataclass
class TourResult:
    loaded: bool  # the demo organisation was loaded by the tour (empty directory)
    people: int  # active people in the directory, all reachable on the console now
    campaign_id: int
    campaign_ref: str  # B-n, as HR sees it
    campaign_reused: bool
    briefing: Briefing
    briefing_audience: int
    round_id: int
    round_number: int
    round_reused: bool
    survey_title: str
    schedule_id: int
    schedule_ref: str  # P-n
    round_closes_at: datetime
    invited: int
    sent: int
    failed: int


def demo_file(content_dir: Path) -> Path:
    return content_dir / "demo" / "people.csv"


def demo_emails(content_dir: Path) -> set[str]:
    """The emails of the demo organisation, as the demo file lists them."""
    text = demo_file(content_dir).read_text(encoding="utf-8-sig")
    return {row["email"].strip().lower() for row in csv.DictReader(io.StringIO(text))}


async def check_demo_directory(session: Any, content_dir: Path) -> int:
    """The number of people in the directory, after refusing (InputError) a directory that
    holds anyone who is not in the demo organisation."""
    demo = demo_emails(content_dir)
    emails = list(await session.scalars(select(Person.email)))
    strangers = sorted(e for e in emails if e not in demo)
    if strangers:
        shown = ", ".join(strangers[:3]) + (", ..." if len(strangers) > 3 else "")
        raise InputError(
            "demo tour",
            f"the directory holds {len(strangers)} people who are not in the demo organisation "
            f"({shown}). The tour sends a briefing and opens a pulse round now, so it runs only "
            "on a database with the demo organisation alone: use a new database, for example "
            "FIDELIO_DATABASE_URL=sqlite+aiosqlite:///var/demo.db, then fidelio db upgrade",
        )
    return len(emails)


async def run_tour(
    runtime: Any, briefing_id: str = DEFAULT_BRIEFING, survey_id: str = DEFAULT_SURVEY
) -> TourResult:
    """Send ``briefing_id`` now and open a round of ``survey_id`` now, to the demo people.

    Running it again sends nothing twice: a campaign of the briefing that is still scheduled
    and an open round of the survey are reused. ``runtime`` needs a console channel; the
    outbox is drained through it (whatever it prints goes to the console's output).
    """
    settings = runtime.settings
    clock = runtime.clock
    db = runtime.db
    content = settings.content_dir
    zone = settings.organisation.default_timezone
    # Read the content first: a bad id fails before anything is written.
    source = load_briefing(content / "briefings", briefing_id, zone)
    survey, items = load_survey(content / "surveys", survey_id)

    loaded = False
    async with db.session() as session:
        if await check_demo_directory(session, content) == 0:
            loaded = True
    if loaded:
        await import_people(
            db,
            demo_file(content),
            clock,
            actor="demo tour",
            default_locale=settings.organisation.default_locale,
            default_timezone=zone,
        )

    now = clock.now()
    async with db.session() as session:
        people = [
            p
            for p in await session.scalars(select(Person).order_by(Person.id))
            if p.is_active(now.date())
        ]
        for person in people:
            await link(session, person, ChannelName.console, person.email, person.email, clock)

        # The briefing's campaign is stored first (campaign 1 on a fresh database), but its
        # cards are queued after the pulse invitations (by run_due below): the card is then
        # the latest message each person of its audience received, its Got it button live
        # in the console after `:as`.
        campaign = await session.scalar(
            select(Campaign).where(
                Campaign.kind == CampaignKind.briefing,
                Campaign.content_id == source.id,
                Campaign.status == CampaignStatus.scheduled,
            )
        )
        if campaign is not None and campaign.starts_at > now:
            # Scheduled for its own (later) briefing time: replaced by one that goes out now.
            await runtime.service("briefings").cancel_in(session, campaign.id, "demo tour")
            campaign = None
        campaign_reused = campaign is not None
        if campaign is None:
            briefing = moved_to_now(source, now)
            campaign, _warnings = await runtime.service("briefings").schedule_in(
                session, briefing, "demo tour"
            )
        else:
            briefing = Briefing.from_json(campaign.snapshot)
        schedule = await session.scalar(
            select(Campaign).where(
                Campaign.kind == CampaignKind.pulse,
                Campaign.content_id == survey.id,
                Campaign.status.in_([CampaignStatus.scheduled, CampaignStatus.paused]),
            )
        )
        if schedule is None:
            schedule = await runtime.service("surveys").schedule_in(
                session, survey, items, "demo tour"
            )
        round_ = await session.scalar(
            select(SurveyRound)
            .where(SurveyRound.campaign_id == schedule.id, SurveyRound.status == RoundStatus.open)
            .order_by(SurveyRound.id.desc())
        )
        round_reused = round_ is not None
        if round_ is None:
            round_ = await runtime.service("surveys").open_round_now_in(session, schedule.id)

        ids = (schedule.id, round_.id, round_.number, round_.closes_at, round_.invited)
        campaign_id = campaign.id
        refs = (await ref_of(session, campaign), await ref_of(session, schedule))
        survey_title = survey.title.get(settings.organisation.default_locale) or survey.id

    await runtime.service("briefings").run_due()  # the cards of a briefing whose time is now
    stats = await runtime.outbox.drain()

    from bot.briefings.tables import BriefingReceipt

    async with db.session() as session:
        audience = len(
            list(
                await session.scalars(
                    select(BriefingReceipt.person_id).where(
                        BriefingReceipt.campaign_id == campaign_id
                    )
                )
            )
        )
    schedule_id, round_id, round_number, closes_at, invited = ids
    return TourResult(
        loaded=loaded,
        people=len(people),
        campaign_id=campaign_id,
        campaign_ref=refs[0],
        campaign_reused=campaign_reused,
        briefing=briefing,
        briefing_audience=audience,
        round_id=round_id,
        round_number=round_number,
        round_reused=round_reused,
        survey_title=survey_title,
        schedule_id=schedule_id,
        schedule_ref=refs[1],
        round_closes_at=closes_at,
        invited=invited,
        sent=stats.sent,
        failed=stats.failed,
    )


def moved_to_now(briefing: Briefing, now: datetime) -> Briefing:
    """The briefing with its briefing time now (to the minute); launch and expiry keep their
    distance from it, so reminders and the readiness note fall as they would have."""
    brief_at = now.replace(second=0, microsecond=0)
    launch_at = brief_at + (briefing.launch_at - briefing.brief_at)
    expires_at = launch_at + (briefing.expires_at - briefing.launch_at)
    zone = briefing.launch_at.tzinfo
    return replace(
        briefing,
        brief_at=brief_at.astimezone(zone),
        launch_at=launch_at.astimezone(zone),
        expires_at=expires_at.astimezone(zone),
    )
