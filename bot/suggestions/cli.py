"""``fidelio suggestions``: triage from the terminal, as a named HR person or manager.

Every command acts as ``--as EMAIL`` with that person's reach (HR and admins: everything;
managers: their team subtree), writes the same history, audit entries and notices as the chat
commands, and changes nothing when it refuses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from bot.cli.common import err, load, out, run_async
from bot.config import Settings
from bot.durations import parse_day, start_of_day
from bot.errors import InputError, UserFacingError

T = TypeVar("T")

suggestions_app = typer.Typer(
    help="Suggestions: list, show, set status, reply, ask, publish, merge; digest preview; counts.",
    no_args_is_help=True,
)

AsOption = Annotated[
    str, typer.Option("--as", help="Act as this HR person or manager (email)", show_default=False)
]
Ref = Annotated[str, typer.Argument(help="Reference: S-0042, #42 or 42")]


def _message(settings: Settings, exc: UserFacingError) -> str:
    from bot.markup import to_plain
    from bot.render import Renderer

    renderer = Renderer(
        settings.content_dir / "templates",
        settings.organisation.default_locale,
        settings.organisation.default_timezone,
    )
    return to_plain(renderer.text(exc.template_key, "en", exc.context))


def _act(
    ctx: typer.Context, email: str, work: Callable[[Any, Any, Any, Settings], Awaitable[T]]
) -> T:
    """Run ``work(session, service, actor, settings)`` in one transaction as ``email``."""
    settings = load()

    async def go() -> T:
        from bot.clock import SystemClock
        from bot.db.session import Database
        from bot.people import person_by_email
        from bot.suggestions.service import TRIAGE_ROLES, SuggestionService

        db = Database(settings.database.url)
        try:
            async with db.session() as session:
                actor = await person_by_email(session, email)
                if actor is None:
                    raise InputError("--as", f"nobody with the email {email!r}")
                if actor.role not in TRIAGE_ROLES:
                    raise InputError("--as", f"{email} is {actor.role.value}: HR or a manager only")
                return await work(
                    session, SuggestionService(settings, SystemClock()), actor, settings
                )
        finally:
            await db.dispose()

    try:
        return run_async(go())
    except UserFacingError as exc:
        err.print(f"[red]refused[/red]: {_message(settings, exc)}", highlight=False)
        raise typer.Exit(2) from None


def _print_plain(lines: list[str]) -> None:
    """Print ``lines`` as they are: no markup, no highlighting, long lines wrapped."""
    for line in lines:
        out.print(line, highlight=False, markup=False, soft_wrap=True)


def _ref(text: str, where: str = "REFERENCE") -> int:
    from bot.suggestions.content import parse_reference

    found = parse_reference(text)
    if found is None:
        raise InputError(where, f"{text!r} is not a suggestion reference (S-0042, #42 or 42)")
    return found


@suggestions_app.command("list")
def list_(
    ctx: typer.Context,
    as_email: AsOption,
    status: Annotated[
        str | None, typer.Option(help="new, under_review, planned, done, declined, merged")
    ] = None,
    category: Annotated[str | None, typer.Option(help="A category id from config.yaml")] = None,
    team: Annotated[str | None, typer.Option(help="This team and its sub-teams")] = None,
    anonymous: Annotated[
        bool | None, typer.Option("--anonymous/--named", help="Only anonymous / named")
    ] = None,
    published: Annotated[bool, typer.Option("--published", help="Only published ones")] = False,
    since: Annotated[
        str | None, typer.Option(help="Sent on or after this date (YYYY-MM-DD)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Suggestions you may triage, newest first."""

    async def work(
        session: Any, service: Any, actor: Any, settings: Settings
    ) -> list[tuple[str, ...]]:
        from sqlalchemy import select

        from bot.db.models import Team
        from bot.suggestions.content import excerpt, reference
        from bot.suggestions.service import Filters
        from bot.suggestions.tables import SuggestionStatus

        chosen = None
        if status:
            try:
                chosen = SuggestionStatus(status)
            except ValueError:
                raise InputError("--status", f"unknown status {status!r}") from None
        if category and settings.suggestions.category(category) is None:
            raise InputError("--category", f"unknown category {category!r}")
        team_id = None
        if team:
            team_id = await session.scalar(select(Team.id).where(Team.name == team.strip()))
            if team_id is None:
                raise InputError("--team", f"no team named {team!r}")
        day = parse_day(since, "--since")
        start = start_of_day(day) if day else None
        filters = Filters(
            status=chosen,
            category=category,
            team_id=team_id,
            anonymous=anonymous,
            published=True if published else None,
            since=start,
            limit=limit,
        )
        rows = await service.listing(session, actor, filters)
        votes = await service.votes(session, [s.id for s in rows])
        teams = await service.team_names(session, [s.team_id for s in rows])
        _audit(session, service, actor, "suggestions.list", shown=len(rows))
        return [
            (
                reference(s.id),
                s.status.value,
                s.category,
                teams.get(s.team_id or 0, "-"),
                "anonymous" if s.anonymous else "named",
                str(votes[s.id]) if s.published_at else "-",
                s.created_at.strftime("%Y-%m-%d"),
                excerpt(s.text, 60),
            )
            for s in rows
        ]

    rows = _act(ctx, as_email, work)
    table = Table("ref", "status", "category", "team", "author", "votes", "sent", "text")
    for row in rows:
        table.add_row(*row)
    out.print(table)
    out.print(f"{len(rows)} suggestion(s)")


@suggestions_app.command("show")
def show(ctx: typer.Context, reference_: Ref, as_email: AsOption) -> None:
    """One suggestion with its history."""

    async def work(session: Any, service: Any, actor: Any, settings: Settings) -> list[str]:
        from bot.db.models import Person
        from bot.suggestions.content import reference

        found = await service.for_triage(session, actor, _ref(reference_))
        votes = (await service.votes(session, [found.id]))[found.id]
        teams = await service.team_names(session, [found.team_id])
        author = "anonymous"
        if not found.anonymous and found.author_id:
            person = await session.get(Person, found.author_id)
            author = f"{person.name} <{person.email}>" if person else "-"
        lines = [
            f"{reference(found.id)}  {found.status.value}  {found.category}  "
            f"{teams.get(found.team_id or 0, '-')}  {author}",
            f"sent {_local(actor, found.created_at)}"
            + (f", published, {votes} supporter(s)" if found.published_at else "")
            + (f", merged into {reference(found.merged_into_id)}" if found.merged_into_id else ""),
            "",
            found.text,
            "",
        ]
        for event in await service.history(session, found.id):
            actor_name = ""
            if event.actor_id:
                person = await session.get(Person, event.actor_id)
                actor_name = f" ({person.email})" if person else ""
            detail = event.status.value if event.status else ""
            if event.text:
                detail = f"{detail}: {event.text}" if detail else event.text
            lines.append(f"  {_local(actor, event.at)}  {event.kind}{actor_name}  {detail}")
        _audit(session, service, actor, "suggestion.show", suggestion=found.id)
        return lines

    _print_plain(_act(ctx, as_email, work))


@suggestions_app.command("status")
def status(
    ctx: typer.Context,
    reference_: Ref,
    new_status: Annotated[str, typer.Argument(help="under_review, planned, done, declined, new")],
    as_email: AsOption,
    reason: Annotated[
        str | None, typer.Option(help="Required to decline; a note otherwise")
    ] = None,
) -> None:
    """Set the status; the author is told (through a sealed token when anonymous)."""
    from bot.suggestions.content import parse_status, reference
    from bot.suggestions.tables import SuggestionStatus

    async def work(session: Any, service: Any, actor: Any, settings: Settings) -> str:
        chosen = parse_status(new_status)
        if chosen is None:
            raise InputError("STATUS", f"unknown status {new_status!r}")
        found = await service.for_triage(session, actor, _ref(reference_))
        if chosen == SuggestionStatus.declined and not (reason or "").strip():
            # The chat's refusal says "after the status"; here the reason is an option.
            raise InputError(
                "--reason",
                f"declining {reference(found.id)} needs a reason for its author: add "
                '--reason "..."',
            )
        await service.set_status(session, actor, found, chosen, reason)
        return chosen.value

    value = _act(ctx, as_email, work)
    out.print(f"[green]{reference_}[/green] is now {value}; the author is told.", highlight=False)


def _text_command(kind: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        reference_: Ref,
        text: Annotated[str, typer.Argument(help="The text for the author")],
        as_email: AsOption,
    ) -> None:
        async def work(session: Any, service: Any, actor: Any, settings: Settings) -> None:
            found = await service.for_triage(session, actor, _ref(reference_))
            await getattr(service, kind)(session, actor, found, text)

        _act(ctx, as_email, work)
        out.print(f"[green]{reference_}[/green]: {kind} sent to the author.", highlight=False)

    return command


suggestions_app.command("reply", help="Reply to the author.")(_text_command("reply"))
suggestions_app.command("ask", help="Ask the author a follow-up question (HR).")(
    _text_command("ask")
)


@suggestions_app.command("publish")
def publish(ctx: typer.Context, reference_: Ref, as_email: AsOption) -> None:
    """Publish the text (never the author) so colleagues can support it (HR)."""

    async def work(session: Any, service: Any, actor: Any, settings: Settings) -> None:
        found = await service.for_triage(session, actor, _ref(reference_))
        await service.publish(session, actor, found)

    _act(ctx, as_email, work)
    out.print(f"[green]{reference_}[/green] is published.", highlight=False)


@suggestions_app.command("merge")
def merge(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The suggestion that joins the other")],
    target: Annotated[str, typer.Argument(help="The suggestion that stays")],
    as_email: AsOption,
) -> None:
    """Merge SOURCE into TARGET: supporters summed (one vote per person), authors told (HR)."""

    async def work(session: Any, service: Any, actor: Any, settings: Settings) -> int:
        first = await service.for_triage(session, actor, _ref(source, "SOURCE"))
        second = await service.for_triage(session, actor, _ref(target, "TARGET"))
        return int(await service.merge(session, actor, first, second))

    votes = _act(ctx, as_email, work)
    out.print(
        f"[green]{source}[/green] merged into {target}: {votes} supporter(s).", highlight=False
    )


@suggestions_app.command("digest")
def digest(ctx: typer.Context, as_email: AsOption) -> None:
    """What the next "You said, we did" digest would list so far (HR; nothing is sent)."""

    async def work(session: Any, service: Any, actor: Any, settings: Settings) -> list[str]:
        from sqlalchemy import func, select

        from bot.suggestions.digest import DigestService
        from bot.suggestions.tables import SuggestionDigest

        if await service.scope(session, actor) is not None:
            raise InputError("--as", f"{actor.email} is not HR: the digest covers everyone")
        digests = DigestService(settings, None, service.clock)
        now = service.clock.now()
        since = await session.scalar(select(func.max(SuggestionDigest.due_at))) or (
            now - digests.period()
        )
        upcoming = digests.cadence().occurrences(now, now + digests.period() * 2)
        lines = [
            f"changes since {_local(actor, since)}"
            + (f"; next digest {_local(actor, upcoming[0])}" if upcoming else "")
            + ("" if settings.suggestions.digest_enabled else " (digest disabled)")
        ]
        for item in await digests.items(session, since, now):
            text = item["excerpt"] or f"({item['category'].get('en')})"
            response = f" — {item['response']}" if item["response"] else ""
            lines.append(f"  {item['reference']}  {item['status']}  {text}{response}")
        if len(lines) == 1:
            lines.append("  no status changes: the digest would not be sent")
        return lines

    _print_plain(_act(ctx, as_email, work))


@suggestions_app.command("counts")
def counts(
    ctx: typer.Context,
    as_email: AsOption,
    since: Annotated[str, typer.Option(help="First day (YYYY-MM-DD)")],
    until: Annotated[
        str | None, typer.Option(help="Day after the last (default: tomorrow)")
    ] = None,
) -> None:
    """Per team: sent, answered, implemented, median hours to first response."""

    async def work(
        session: Any, service: Any, actor: Any, settings: Settings
    ) -> list[tuple[str, ...]]:
        from sqlalchemy import select

        from bot.db.models import Team
        from bot.suggestions.measurement import suggestion_counts

        first = parse_day(since, "--since")
        if first is None:
            raise InputError("--since", "a date written YYYY-MM-DD is needed")
        start = start_of_day(first)
        last = parse_day(until, "--until")
        end = start_of_day(last) if last else start_of_day(datetime.now(UTC).date() + timedelta(1))
        if end <= start:
            raise InputError("--until", "must be after --since")
        scope = await service.scope(session, actor)
        teams = dict((await session.execute(select(Team.id, Team.name))).tuples().all())
        wanted = sorted(teams if scope is None else scope)
        found = await suggestion_counts(session, wanted, start, end)
        _audit(session, service, actor, "suggestions.counts", since=since, until=until)
        return [
            (
                teams[t],
                str(c.sent),
                str(c.answered),
                str(c.implemented),
                "-"
                if c.median_hours_to_first_response is None
                else f"{c.median_hours_to_first_response:.1f}",
            )
            for t, c in found.items()
        ]

    rows = _act(ctx, as_email, work)
    table = Table("team", "sent", "answered", "implemented", "median h to 1st response")
    for row in rows:
        table.add_row(*row)
    out.print(table)


def _local(person: Any, when: datetime) -> str:
    """``when`` on the clock of the person reading it, with the zone named
    (``2025-03-10 09:00 Europe/Rome``); UTC when their zone is unknown."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        zone: Any = ZoneInfo(person.timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        zone = UTC
    if when.tzinfo is None:  # stored times are UTC
        when = when.replace(tzinfo=UTC)
    return f"{when.astimezone(zone):%Y-%m-%d %H:%M} {getattr(zone, 'key', 'UTC')}"


def _audit(session: Any, service: Any, actor: Any, action: str, **detail: Any) -> None:
    from bot.db.models import AuditEntry

    session.add(AuditEntry.by(actor, service.clock.now(), action, **detail, channel="cli"))
