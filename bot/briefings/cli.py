"""``fidelio campaign``: schedule, follow and cancel briefing campaigns from the terminal."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from bot.cli.common import err, group, load, out, run_async
from bot.config import Settings

campaign_app = group("Briefing campaigns: schedule, follow, cancel.")


def _briefing_service(settings: Settings) -> Any:
    from bot.briefings.service import BriefingService
    from bot.clock import SystemClock
    from bot.db.session import Database

    return BriefingService(settings, Database(settings.database.url), SystemClock())


CampaignRef = Annotated[
    str, typer.Argument(help="Campaign reference: B-3, or 3 (see fidelio campaign list)")
]


@campaign_app.command("schedule")
def campaign_schedule(
    briefing_id: Annotated[str, typer.Argument(help="The id in the briefing file's front matter")],
) -> None:
    """Schedule a briefing: delivered at its briefing time to its audience as it stands then.
    A briefing kept in the database (written or imported in the web console) is scheduled as
    kept there; any other from its file in content/briefings."""
    settings = load()

    async def go() -> tuple[Any, list[str], Any, str]:
        from bot.briefings.stored import load_scheduled_briefing
        from bot.campaign_refs import ref_of

        service = _briefing_service(settings)
        try:
            async with service.db.session() as session:
                briefing = await load_scheduled_briefing(
                    session,
                    settings.content_dir / "briefings",
                    briefing_id,
                    settings.organisation.default_timezone,
                )
                campaign, warnings = await service.schedule_in(session, briefing, actor="cli")
                ref = await ref_of(session, campaign)
            return campaign, warnings, briefing, ref
        finally:
            await service.db.dispose()

    campaign, warnings, briefing, ref = run_async(go())
    out.print(
        f"[green]Scheduled campaign {ref}[/green]: {campaign.title}\n"
        f"  briefing {briefing.brief_at.isoformat(timespec='minutes')}, launch "
        f"{briefing.launch_at.isoformat(timespec='minutes')}, expires "
        f"{briefing.expires_at.isoformat(timespec='minutes')}",
        highlight=False,
    )
    for warning in warnings:
        err.print(f"[yellow]warning[/yellow]: {warning}", highlight=False)


@campaign_app.command("cancel")
def campaign_cancel(campaign_ref: CampaignRef) -> None:
    """Cancel a campaign; messages not yet sent are dropped."""
    from bot.campaign_refs import find_campaign, ref_of
    from bot.db.models import CampaignKind

    settings = load()

    async def go() -> tuple[Any, str]:
        service = _briefing_service(settings)
        try:
            async with service.db.session() as session:
                found = await find_campaign(session, campaign_ref, CampaignKind.briefing)
                ref = await ref_of(session, found)
                return await service.cancel_in(session, found.id, actor="cli"), ref
        finally:
            await service.db.dispose()

    campaign, ref = run_async(go())
    out.print(f"[green]Campaign {ref} cancelled[/green]: {campaign.title}", highlight=False)


@campaign_app.command("list")
def campaign_list() -> None:
    """Every briefing campaign with its status and times."""
    settings = load()
    rows = run_async(_campaign_rows(settings))
    zone = settings.organisation.default_timezone
    table = Table(
        "ref", "briefing", "title", "status", f"briefing at ({zone})", "launch", "expires"
    )
    for row in rows:
        table.add_row(*row)
    out.print(table)


async def _campaign_rows(settings: Settings) -> list[tuple[str, ...]]:
    from sqlalchemy import select

    from bot.campaign_refs import refs_of
    from bot.db.models import Campaign, CampaignKind
    from bot.db.session import Database

    db = Database(settings.database.url)
    try:
        async with db.session() as session:
            from zoneinfo import ZoneInfo

            zone = ZoneInfo(settings.organisation.default_timezone)

            def local(when: Any) -> str:
                return str(when.astimezone(zone).strftime("%Y-%m-%d %H:%M"))

            # Survey schedules are campaigns too; they have their own `fidelio survey list`.
            campaigns = await session.scalars(
                select(Campaign).where(Campaign.kind == CampaignKind.briefing).order_by(Campaign.id)
            )
            refs = await refs_of(session, CampaignKind.briefing)
            return [
                (
                    refs[c.id],
                    c.content_id,
                    c.title,
                    c.status.value,
                    local(c.starts_at),
                    local(c.launch_at or c.starts_at),
                    local(c.ends_at),
                )
                for c in campaigns
            ]
    finally:
        await db.dispose()


@campaign_app.command("show")
def campaign_show(
    campaign_ref: CampaignRef,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Readiness per team: reached, acknowledged before launch, quiz mean, most-missed question."""
    import json

    settings = load()
    report = run_async(_readiness(settings, campaign_ref))
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return
    title = report["title"].get(settings.organisation.default_locale) or next(
        iter(report["title"].values())
    )
    out.print(
        f"[bold]Campaign {report['ref']}[/bold]: {title} ({report['status']}), launch "
        f"{report['launch_at']}",
        highlight=False,
    )
    table = Table(
        "team",
        "audience",
        "reached",
        "read before launch",
        "read",
        "quiz done",
        "quiz mean",
        "most missed",
    )

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}%"

    for row in [*report["teams"], {**report["total"], "team": "ALL"}]:
        table.add_row(
            row["team"],
            str(row["audience"]),
            pct(row["reached_pct"]),
            pct(row["ack_before_launch_pct"]),
            pct(row["ack_pct"]),
            str(row["quiz_done"]),
            pct(row["mean_score_pct"]),
            "-" if row["most_missed"] is None else f"Q{row['most_missed']}",
        )
    out.print(table)


async def _readiness(settings: Settings, campaign_ref: str) -> dict[str, Any]:
    from bot.briefings.content import Briefing
    from bot.briefings.readiness import team_readiness
    from bot.campaign_refs import find_campaign, ref_of
    from bot.db.models import AuditEntry, CampaignKind
    from bot.db.session import Database

    db = Database(settings.database.url)
    try:
        async with db.session() as session:
            campaign = await find_campaign(session, campaign_ref, CampaignKind.briefing)
            ref = await ref_of(session, campaign)
            briefing = Briefing.from_json(campaign.snapshot)
            report = await team_readiness(session, campaign, briefing)
            from bot.clock import SystemClock

            now = SystemClock().now()
            session.add(AuditEntry.by("cli", now, "campaign.show", campaign=campaign.id, ref=ref))
            context = report.context(briefing, with_names=True)
            context["ref"] = ref
            context["status"] = campaign.status.value
            context["launch_at"] = briefing.launch_at.isoformat(timespec="minutes")
            return context
    finally:
        await db.dispose()
