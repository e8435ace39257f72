"""``fidelio survey``: pulse survey schedules and rounds from the terminal, and the summary of
survey files that ``fidelio content check`` prints."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from bot.cli.common import group, load, local_time, out, run_async
from bot.config import Settings
from bot.errors import InputError
from bot.pulse.preview import next_openings

survey_app = group(
    "Pulse surveys: schedule, pause, resume, stop, close rounds, response rates, preview."
)

ScheduleRef = Annotated[
    str, typer.Argument(help="Survey schedule reference: P-1, or 1 (see fidelio survey list)")
]


async def _survey_session(settings: Settings, work: Any, clock: Any = None) -> Any:
    """Run ``work(session, service)`` in one transaction (committed on success); ``clock``
    defaults to the system clock (tests pass a manual one)."""
    from bot.clock import SystemClock
    from bot.db.session import Database
    from bot.pulse.service import SurveyService

    db = Database(settings.database.url)
    try:
        async with db.session() as session:
            return await work(session, SurveyService(settings, db, clock or SystemClock()))
    finally:
        await db.dispose()


@survey_app.command("list")
def survey_list() -> None:
    """Survey schedules with their status and latest rounds (times in the organisation's zone)."""
    settings = load()
    lines = run_async(_survey_lines(settings))
    if not lines:
        out.print("No survey is scheduled. Use fidelio survey schedule SURVEY_ID.")
        return
    for line in lines:
        out.print(line, highlight=False, soft_wrap=True)
    out.print(f"Times in {settings.organisation.default_timezone}.", highlight=False)


async def _survey_lines(settings: Settings) -> list[str]:
    from sqlalchemy import select

    from bot.campaign_refs import refs_of
    from bot.db.models import Campaign, CampaignKind
    from bot.pulse.tables import SurveyRound

    async def work(session: Any, _service: Any) -> list[str]:
        lines: list[str] = []
        campaigns = await session.scalars(
            select(Campaign).where(Campaign.kind == CampaignKind.pulse).order_by(Campaign.id)
        )
        refs = await refs_of(session, CampaignKind.pulse)
        for campaign in list(campaigns):
            lines.append(
                f"[bold]schedule {refs[campaign.id]}[/bold]: {campaign.content_id}, "
                f"{campaign.title} ({campaign.status.value})"
            )
            rounds = list(
                await session.scalars(
                    select(SurveyRound)
                    .where(SurveyRound.campaign_id == campaign.id)
                    .order_by(SurveyRound.opens_at.desc())
                    .limit(3)
                )
            )
            if not rounds:
                lines.append("  no round yet")
            for round_ in rounds:
                lines.append(
                    f"  round {round_.id} (no. {round_.number}): {round_.status.value}, "
                    f"{local_time(settings, round_.opens_at)} to {local_time(settings, round_.closes_at)}, "
                    f"{round_.invited} invited"
                )
        return lines

    return list(await _survey_session(settings, work))


@survey_app.command("schedule")
def survey_schedule(
    survey_id: Annotated[str, typer.Argument(help="The id in the survey file (content/surveys)")],
) -> None:
    """Schedule a survey: rounds open on its cadence until it is stopped. Audited."""
    from bot.pulse.content import load_survey

    settings = load()

    async def work(session: Any, service: Any) -> tuple[Any, Any, str]:
        from bot.campaign_refs import ref_of

        survey, items = load_survey(settings.content_dir / "surveys", survey_id)
        campaign = await service.schedule_in(session, survey, items, "cli")
        await session.flush()
        return campaign, survey, await ref_of(session, campaign)

    campaign, survey, ref = run_async(_survey_session(settings, work))
    from bot.pulse.schedule import Schedule

    stored = Schedule.of(campaign).survey
    from bot.clock import SystemClock

    now = SystemClock().now()
    window = timedelta(seconds=stored.open_for_s)
    openings = [
        local_time(settings, when) for when in next_openings(stored.cadence, now - window, 3)
    ]
    out.print(
        f"[green]Scheduled survey schedule {ref}[/green]: {campaign.title} ({survey.id})\n"
        f"  rounds open {short_duration(stored.open_for_s)}; next openings "
        f"({settings.organisation.default_timezone}): {', '.join(openings) or 'none soon'}",
        highlight=False,
        soft_wrap=True,
    )


def _set_schedule_status(schedule_ref: str, status_name: str) -> None:
    from bot.campaign_refs import find_campaign, ref_of
    from bot.db.models import CampaignKind, CampaignStatus

    settings = load()
    status = {
        "pause": CampaignStatus.paused,
        "resume": CampaignStatus.scheduled,
        "stop": CampaignStatus.cancelled,
    }[status_name]

    async def work(session: Any, service: Any) -> tuple[Any, str]:
        found = await find_campaign(session, schedule_ref, CampaignKind.pulse)
        ref = await ref_of(session, found)
        return await service.set_status_in(session, found.id, status, "cli"), ref

    campaign, ref = run_async(_survey_session(settings, work))
    note = {
        "pause": "no new round opens until it is resumed; an open round runs to its end",
        "resume": "rounds open again on its cadence",
        "stop": "no new round will open; an open round runs to its end",
    }[status_name]
    out.print(
        f"[green]Survey schedule {ref}[/green] ({campaign.title}) is now "
        f"{campaign.status.value}: {note}.",
        highlight=False,
        soft_wrap=True,
    )


RoundId = Annotated[int, typer.Argument(help="Round id (see fidelio survey list)")]


@survey_app.command("pause")
def survey_pause(schedule_ref: ScheduleRef) -> None:
    """Pause a schedule: no round opens while paused. Audited."""
    _set_schedule_status(schedule_ref, "pause")


@survey_app.command("resume")
def survey_resume(schedule_ref: ScheduleRef) -> None:
    """Resume a paused schedule. Audited."""
    _set_schedule_status(schedule_ref, "resume")


@survey_app.command("stop")
def survey_stop(schedule_ref: ScheduleRef) -> None:
    """Stop a schedule for good (status cancelled). Audited."""
    _set_schedule_status(schedule_ref, "stop")


@survey_app.command("close")
def survey_close(round_id: RoundId) -> None:
    """Close a round now: its secret is destroyed, later answers are refused. Audited."""
    from bot.pulse.tables import RoundStatus, SurveyRound

    settings = load()

    async def work(session: Any, service: Any) -> tuple[Any, bool]:
        found = await session.get(SurveyRound, round_id)
        if found is None:
            raise InputError(f"round {round_id}", "no survey round with this id")
        was_open = found.status == RoundStatus.open
        return await service.close_round_in(session, round_id, "cli"), was_open

    round_, was_open = run_async(_survey_session(settings, work))
    if not was_open:
        out.print(f"Round {round_.id} was already closed.")
        return
    out.print(
        f"[green]Round {round_.id} closed[/green]: its secret is destroyed, so no answer can be "
        "linked to a person any more; later answers are refused.",
        highlight=False,
        soft_wrap=True,
    )


@survey_app.command("rates")
def survey_rates(round_id: RoundId) -> None:
    """Response counts of a round: per team only for teams of at least anonymity.min_group
    invited people, the others pooled. Counts only, never answers. Audited."""
    settings = load()
    report = run_async(survey_rates_report(settings, round_id))
    k = settings.anonymity.min_group
    out.print(
        f"[bold]Round {report['id']}[/bold] (no. {report['number']}) of {report['title']}: "
        f"{report['status']}, {report['opens_at']} to {report['closes_at']} "
        f"({settings.organisation.default_timezone})",
        highlight=False,
        soft_wrap=True,
    )
    table = Table("team", "invited", "started", "finished", "finished %")

    def row(name: str, entry: dict[str, int]) -> None:
        share = f"{100 * entry['finished'] / entry['invited']:.0f}%" if entry["invited"] else "-"
        table.add_row(
            name, str(entry["invited"]), str(entry["started"]), str(entry["finished"]), share
        )

    for team in report["teams"]:
        row(team["team"], team)
    if report["pooled"]:
        row("other teams (pooled)", report["pooled"])
    row("ALL", report["total"])
    out.print(table)
    out.print(
        f"Counts only. Teams with fewer than {k} invited people are not shown on their own: "
        f"they are pooled (with the next-smallest teams when the pool would be under {k}), "
        f"and the pool is shown only when it has at least {k} people.",
        highlight=False,
        soft_wrap=True,
    )
    if report["live"]:
        from datetime import datetime

        taken = local_time(settings, datetime.fromisoformat(report["taken_at"]))
        minutes = settings.anonymity.live_rates_refresh_s // 60
        out.print(
            f"The round is open: these figures were taken at {taken} and are refreshed at most "
            f"every {minutes} minutes; started and finished are rounded down to a multiple of "
            f"{report['step']}, so nobody's answer can be timed.",
            highlight=False,
            soft_wrap=True,
        )


async def survey_rates_report(
    settings: Settings, round_id: int, clock: Any = None
) -> dict[str, Any]:
    from bot.db.models import AuditEntry, Campaign
    from bot.pulse.rates import response_rates
    from bot.pulse.tables import SurveyRound

    async def work(session: Any, service: Any) -> dict[str, Any]:
        round_ = await session.get(SurveyRound, round_id)
        if round_ is None:
            raise InputError(f"round {round_id}", "no survey round with this id")
        campaign = await session.get(Campaign, round_.campaign_id)
        # The same (coarse, while open) figures as in chat: one snapshot for everyone.
        rates = await response_rates(session, round_, settings.anonymity, service.clock)
        session.add(AuditEntry.by("cli", service.clock.now(), "survey.rates", round=round_id))
        return {
            **rates,
            "id": round_.id,
            "number": round_.number,
            "title": campaign.title if campaign else "?",
            "status": round_.status.value,
            "opens_at": local_time(settings, round_.opens_at),
            "closes_at": local_time(settings, round_.closes_at),
        }

    return dict(await _survey_session(settings, work, clock))


@survey_app.command("preview")
def survey_preview(
    survey_id: Annotated[str, typer.Argument(help="The id in the survey file (content/surveys)")],
    locale: Annotated[str, typer.Option("--locale", help="Language: it or en")] = "",
    round_number: Annotated[
        int, typer.Option("--round", help="Round number, counting from 1 if scheduled now")
    ] = 1,
) -> None:
    """Print what people receive in round N: the invitation, then every question with its
    answer choices, as the console shows them. Reads only the content files."""
    from bot.clock import SystemClock
    from bot.pulse.preview import console_text, preview_round
    from bot.render import Renderer

    settings = load()
    chosen = locale or settings.organisation.default_locale
    zone = settings.organisation.default_timezone

    async def go() -> tuple[str, Any]:
        preview = preview_round(settings, survey_id, chosen, round_number, SystemClock().now())
        renderer = Renderer(
            settings.content_dir / "templates", settings.organisation.default_locale, zone
        )
        return await console_text(preview.messages(renderer, "console", zone)), preview

    text, preview = run_async(go())
    round_ = preview.round_
    out.print(
        f"[bold]{preview.survey.id}[/bold], round {round_number} if scheduled now: opens "
        f"{local_time(settings, round_.opens_at)}, closes {local_time(settings, round_.closes_at)} "
        f"({zone}); {len(round_.items)} questions; locale {chosen}",
        highlight=False,
        soft_wrap=True,
    )
    print(text)


def survey_summaries(folder: Path, now: Any) -> tuple[list[str], list[InputError]]:
    """One summary line per valid survey, and every problem of the item bank and the survey
    files. A missing folder means no surveys (nothing to check)."""
    from zoneinfo import ZoneInfo

    from bot.pulse.content import load_survey_content

    if not folder.is_dir():
        return [], []
    content = load_survey_content(folder)
    lines = []
    for survey in content.surveys:
        cadence = survey.cadence.pinned(now - timedelta(seconds=survey.open_for_s))
        zone = ZoneInfo(cadence.timezone)
        opening = [
            f"{when.astimezone(zone):%Y-%m-%d %H:%M}" for when in next_openings(cadence, now, 3)
        ]
        every = f" every {cadence.every_weeks} weeks" if cadence.every_weeks > 1 else ""
        start = f" from {survey.cadence.start}" if survey.cadence.start else ""
        lines.append(
            f'{survey.id}: cadence "{cadence.cron}"{every} in {cadence.timezone}{start}, '
            f"open {short_duration(survey.open_for_s)}, next rounds: "
            f"{', '.join(opening) or 'none in the next 5 years'}, "
            f"{len(survey.core)} core + {len(survey.rotating)} rotating "
            f"({survey.per_round} per round), comment {'on' if survey.comment else 'off'}, "
            f"reminders {reminder_summary(survey)}"
        )
    return lines, content.problems


def short_duration(seconds: int) -> str:
    """4 days -> ``4d``; 24 hours -> ``24h``; 90 minutes -> ``1h30m``."""
    if seconds >= 2 * 86400 and seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    parts = []
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0m"


def reminder_summary(survey: Any) -> str:
    if not survey.reminders:
        return "none"
    names = []
    for rule in survey.reminders:
        if rule.kind == "halfway":
            names.append("halfway")
        elif rule.kind == "before_close":
            names.append(f"{short_duration(rule.offset_s)} before close")
        else:
            names.append(f"{short_duration(rule.offset_s)} after open")
    weekends = " (moved off weekends)" if survey.skip_weekends else ""
    return ", ".join(names) + weekends
