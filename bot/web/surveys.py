"""HR's Surveys page: the survey schedules and their latest rounds with the coarse response
rates ``survey rates`` shows (:func:`bot.pulse.rates.response_rates`, never a finer figure),
scheduling, pausing, resuming and stopping a schedule, closing a round, and a preview of a
round per language as each platform shows it (:mod:`bot.pulse.preview`).

Every action calls the service call of the ``survey`` chat command and is audited as chat
audits it (``command.survey`` with the words chat would have been given, ``channel`` web,
besides the service's own entry); a refused action changes nothing and shows its error at
its field."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.campaign_refs import find_campaign, ref_of, refs_of
from bot.db.models import AuditEntry, Campaign, CampaignKind, CampaignStatus, Person
from bot.errors import InputError
from bot.handling import HR
from bot.pulse.content import load_survey, load_survey_content
from bot.pulse.preview import PLATFORMS, as_platform_shows, preview_round
from bot.pulse.rates import response_rates
from bot.pulse.service import SurveyService
from bot.pulse.tables import RoundStatus, SurveyRound
from bot.web.pages import requires
from bot.web.refusals import Refused, chat_renderer, in_words, refusable, refused_of
from bot.web.rendering import texts
from bot.web.shared import Web, see_other
from bot.web.views import pick

#: The latest rounds listed per schedule (as ``survey list`` in chat).
ROUNDS_SHOWN = 3
#: A schedule's action -> the status it sets (as ``survey pause|resume|stop``).
STATUS_OF = {
    "pause": CampaignStatus.paused,
    "resume": CampaignStatus.scheduled,
    "stop": CampaignStatus.cancelled,
}
#: The notices after a successful action (``surveys.done.<name>``).
DONE = frozenset({"schedule", "pause", "resume", "stop", "close"})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/hr/surveys", surveys_page)
    router.add_get("/hr/surveys/preview", preview_page)
    router.add_post("/hr/surveys/schedule", refusable(schedule, surveys_page))
    router.add_post(
        r"/hr/surveys/{ref}/{action:pause|resume|stop}", refusable(status, surveys_page)
    )
    router.add_post(r"/hr/surveys/rounds/{round:\d+}/close", refusable(close, surveys_page))


def _service(shared: Web) -> SurveyService:
    return SurveyService(shared.settings, None, shared.clock)


def _audit(shared: Web, session: AsyncSession, person: Person, args: str) -> None:
    """The entry chat writes for an audited command, with the words it would be given."""
    session.add(
        AuditEntry.by(person, shared.clock.now(), "command.survey", args=args, channel="web")
    )


def _refuse(shared: Web, person: Person, field: str, error: InputError, **values: str) -> Refused:
    return Refused({field: in_words(shared.settings, error, person.locale)}, values)


@requires(HR, "surveys")
async def surveys_page(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """The schedules, their latest rounds with coarse rates, and what can be scheduled."""
    refused = refused_of(request)
    now, locale = shared.clock.now(), person.locale
    schedules = await _schedules(shared, session, person, locale)
    content = load_survey_content(shared.settings.content_dir / "surveys")
    done = request.query.get("done", "")
    session.add(AuditEntry.by(person, now, "web.view", page="surveys"))
    return shared.page(
        request,
        "surveys",
        schedules=schedules,
        surveys=[{"id": s.id, "title": pick(s.title, locale)} for s in content.surveys],
        problems=len(content.problems),
        done=done if done in DONE else "",
        done_ref=request.query.get("ref", "")[:20],
        errors=refused.errors if refused else {},
        values=refused.values if refused else {},
        k=shared.settings.anonymity.min_group,
        refresh_min=shared.settings.anonymity.live_rates_refresh_s // 60,
    )


async def _schedules(
    shared: Web, session: AsyncSession, person: Person, locale: str
) -> list[dict[str, Any]]:
    """Every survey schedule with its latest rounds and their rates as ``survey rates``
    gives them (each showing of a round's rates audited as there)."""
    campaigns = await session.scalars(
        select(Campaign).where(Campaign.kind == CampaignKind.pulse).order_by(Campaign.id.desc())
    )
    refs = await refs_of(session, CampaignKind.pulse)
    out = []
    for campaign in list(campaigns):
        rounds = await session.scalars(
            select(SurveyRound)
            .where(SurveyRound.campaign_id == campaign.id)
            .order_by(SurveyRound.opens_at.desc())
            .limit(ROUNDS_SHOWN)
        )
        shown = []
        for round_ in list(rounds):
            rates = await response_rates(session, round_, shared.settings.anonymity, shared.clock)
            session.add(
                AuditEntry.by(
                    person, shared.clock.now(), "survey.rates", round=round_.id, channel="web"
                )
            )
            shown.append({"round": round_, "rates": rates})
        title = ((campaign.snapshot or {}).get("survey") or {}).get("title") or campaign.title
        out.append(
            {
                "ref": refs[campaign.id],
                "content_id": campaign.content_id,
                "title": pick(title, locale),
                "status": campaign.status.value,
                "rounds": shown,
            }
        )
    return out


@requires(HR, "surveys")
async def schedule(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """``survey schedule ID``: rounds open on the survey's cadence until it is stopped."""
    form = await request.post()
    survey_id = str(form.get("survey", "")).strip()[:120]
    try:
        found, items = load_survey(shared.settings.content_dir / "surveys", survey_id)
        campaign = await _service(shared).schedule_in(session, found, items, person.email)
        await session.flush()
    except InputError as exc:
        raise _refuse(shared, person, "survey", exc, survey=survey_id) from None
    _audit(shared, session, person, f"schedule {survey_id}")
    ref = await ref_of(session, campaign)
    return see_other(f"/hr/surveys?done=schedule&ref={ref}")


@requires(HR, "surveys")
async def status(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """``survey pause|resume|stop P-n``."""
    given, action = request.match_info["ref"][:20], request.match_info["action"]
    try:
        found = await find_campaign(session, given, CampaignKind.pulse)
    except InputError:
        raise web.HTTPNotFound() from None  # no such schedule: no form of the page names it
    ref = await ref_of(session, found)
    try:
        await _service(shared).set_status_in(session, found.id, STATUS_OF[action], person.email)
    except InputError as exc:
        raise _refuse(shared, person, f"schedule:{given}", exc) from None
    _audit(shared, session, person, f"{action} {ref}")
    return see_other(f"/hr/surveys?done={action}&ref={ref}")


@requires(HR, "surveys")
async def close(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """``survey close ROUND``: the round closes now, its secret is destroyed."""
    round_id = int(request.match_info["round"])
    found = await session.get(SurveyRound, round_id)
    if found is None:
        raise web.HTTPNotFound()
    if found.status != RoundStatus.open:
        # Chat closes a closed round again without a word; here the button was stale.
        said = texts(person.locale)["surveys.error.closed"].format(id=round_id)
        raise Refused({f"round:{round_id}": said}, {})
    await _service(shared).close_round_in(session, round_id, person.email)
    _audit(shared, session, person, f"close {round_id}")
    return see_other(f"/hr/surveys?done=close&ref={round_id}")


@requires(HR, "surveys")
async def preview_page(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """What people receive in round N of a survey, per language, as each platform shows it
    (``fidelio survey preview``). Reads only the content files."""
    settings = shared.settings
    content = load_survey_content(settings.content_dir / "surveys")
    surveys = [{"id": s.id, "title": pick(s.title, person.locale)} for s in content.surveys]
    wanted = {
        "survey": request.query.get("survey", surveys[0]["id"] if surveys else "")[:120],
        "locale": request.query.get("locale", person.locale)[:8],
        "round": request.query.get("round", "1")[:6],
    }
    errors: dict[str, str] = {}
    shown: dict[str, Any] = {}
    preview = None
    words = texts(person.locale)
    if not wanted["round"].isdigit():
        errors["round"] = words["surveys.preview.bad_round"]
    else:
        try:
            preview = preview_round(
                settings,
                wanted["survey"],
                wanted["locale"],
                int(wanted["round"]),
                shared.clock.now(),
                fields=("survey", "locale", "round"),
            )
        except InputError as exc:
            # The locale and the round are checked there; said here in the page's words.
            if exc.where in ("locale", "round"):
                errors[exc.where] = words[f"surveys.preview.bad_{exc.where}"]
            else:
                errors["survey"] = in_words(settings, exc, person.locale)
    if preview is not None:
        zone = settings.organisation.default_timezone
        shown = await as_platform_shows(preview, chat_renderer(settings), zone)
    session.add(AuditEntry.by(person, shared.clock.now(), "web.view", page="survey_preview"))
    return shared.page(
        request,
        "survey_preview",
        status=400 if errors else 200,
        surveys=surveys,
        wanted=wanted,
        errors=errors,
        preview=preview,
        shown=shown,
        platforms=PLATFORMS,
    )
