"""``fidelio content check``: every briefing file and the pulse surveys, checked together."""

from __future__ import annotations

import typer

from bot.cli.common import err, group, load, out
from bot.pulse.cli import survey_summaries

content_app = group("Briefing and survey content files.")


@content_app.command("check")
def content_check() -> None:
    """Validate every briefing file and the pulse surveys (item bank and survey definitions);
    report file, field and reason. Exit 2 on any problem."""
    from bot.briefings.content import check_briefings
    from bot.clock import SystemClock

    settings = load()
    now = SystemClock().now()
    folder = settings.content_dir / "briefings"
    result = check_briefings(folder, now, settings.organisation.default_timezone)
    surveys_folder = settings.content_dir / "surveys"
    surveys, survey_problems = survey_summaries(surveys_folder, now)
    for problem in [*result.problems, *survey_problems]:
        err.print(
            f"[red]error[/red] {problem.where}: {problem.reason}", highlight=False, soft_wrap=True
        )
    for warning in result.warnings:
        err.print(
            f"[yellow]warning[/yellow] {warning.where}: {warning.reason}",
            highlight=False,
            soft_wrap=True,
        )
    for briefing in result.briefings:
        out.print(
            f"[green]ok[/green] {briefing.id} ({briefing.kind}): launch "
            f"{briefing.launch_at.isoformat(timespec='minutes')}, briefing "
            f"{briefing.brief_at.isoformat(timespec='minutes')}, {len(briefing.quiz)} quiz questions, "
            f"{len(briefing.faq)} FAQ, locales {', '.join(briefing.locales)}",
            highlight=False,
            soft_wrap=True,
        )
    for line in surveys:
        out.print(f"[green]ok[/green] {line}", highlight=False, soft_wrap=True)
    survey_summary = (
        f"{len(surveys)} valid survey(s), {len(survey_problems)} problem(s) in {surveys_folder}"
        if surveys_folder.is_dir()
        else f"no surveys ({surveys_folder} does not exist)"
    )
    out.print(
        f"{len(result.briefings)} valid briefing(s), {len(result.problems)} problem(s), "
        f"{len(result.warnings)} warning(s) in {folder}; {survey_summary}",
        highlight=False,
        soft_wrap=True,
    )
    if result.problems or survey_problems:
        raise typer.Exit(2)
