"""Web console benchmark: the server time of every page over the 10,000-person organisation.

Run from the repository root (a benchmark, not a test; nothing asserts its figures)::

    .venv/bin/python -m bench.web [--people 10000] [--teams 200] [--rounds 26]
        [--requests 40] [--database postgres|sqlite]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/fidelio_bench]
        [--keep] [--quick]

The organisation is the one of :mod:`bench.report` (``--people`` people in ``--teams``
teams, ``--rounds`` closed pulse rounds of 12 items, about three million answers at the
defaults), built in a scratch database (PostgreSQL: ``<db>_web_<pid>``, dropped at the end).
``--keep`` builds it as ``<db>_web`` instead, keeps it, and reuses it on the next run when it
holds the same organisation. One person is made HR, one the manager of a leaf team; both
sign in with one-time links as a browser does (open the link, press the button).

The web console runs as it does in Fidelio (:func:`bot.web.server.build_app` on a TCP port of
127.0.0.1). Every page of :data:`PAGES` is requested ``--requests`` times, one request at a
time, after one request to warm it up (its time is printed as "first": the charts of a
loyalty page are drawn on the first request and kept while they stay the same). **Server time** is measured by a middleware placed
before every other one: from the moment aiohttp hands the request to the application until
its response is ready (session check, CSRF, role check, the page's queries, rendering), sent
back in a response header. The round trip on loopback is printed beside it.

In the same run and on the same data, the loyalty report's own organisation summary (what
:func:`bench.report.measure` times) runs once after each request of the organisation
loyalty page, so that both see the machine in the same state (on a shared machine the load
moves during a run); and once more as bench/report.py times it (median of three).

HR's loyalty page (``/hr/loyalty``: the organisation's summary, segments, rounds, chart and
heat map) is measured the same way against ``report loyalty --format html`` for the
organisation, which holds the same.

Goal: p95 under 150 ms for every page, except the organisation loyalty pages, whose p95 must
stay under twice the p95 of the report that shows the same. The last line is one JSON object with
``web_p95_ms_max`` (the largest p95 of the pages under the 150 ms goal), ``org_page_p95_ms``,
``report_org_p95_ms``, ``org_page_vs_report`` (the ratio of the two),
``report_html_p95_ms`` and ``hr_loyalty_vs_report_html`` (the same for HR's loyalty page), ``report_org_ms``
(bench/report.py's median of three) and ``<page>_p50_ms`` / ``<page>_p95_ms`` per page.

``--quick``: a small organisation (300 people, 6 rounds) and 5 requests per page, on SQLite
unless ``--database`` says otherwise: a check that the benchmark runs, not a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from aiohttp import ClientSession, CookieJar, web
from rich.console import Console
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url

from bench.common import (
    admin_execute,
    loopback_only,
    results_table,
    scratch_database,
    task_progress,
)
from bench.report import REPO, START, analyze, generate, measure
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.db.migrate import upgrade
from bot.db.models import Person, Role, Team
from bot.db.session import Database
from bot.features import privacy_registry
from bot.loyalty.release import rewrite_closed_rounds
from bot.loyalty.report_files import report_file
from bot.loyalty.service import LoyaltyService, TeamTree, Window
from bot.pulse.tables import SurveyRound
from bot.web.access import issue_link
from bot.web.rendering import Pages
from bot.web.server import build_app
from bot.web.shared import Web

#: The pages measured: (path, who views it, name). ``hr``: an HR person; ``manager``: the
#: manager of one leaf team. Adding a page is one line here.
PAGES: tuple[tuple[str, str, str], ...] = (
    ("/", "hr", "home"),
    ("/hr", "hr", "dashboard"),
    ("/hr/launches", "hr", "launches"),
    ("/hr/audit", "hr", "audit"),
    ("/hr/audit?action=web", "hr", "audit_filtered"),
    ("/team", "manager", "team"),
    ("/team/trends", "manager", "trends"),
    ("/team?team=organisation", "hr", "org_loyalty"),
    ("/hr/loyalty", "hr", "hr_loyalty"),
    ("/loyalty/report?format=csv", "hr", "download_csv"),
    ("/hr/briefings", "hr", "briefings"),
    ("/hr/briefings/new", "hr", "briefing_new"),
    ("/hr/briefings/spring-trade-in", "hr", "briefing"),
    ("/hr/briefings/spring-trade-in/edit", "hr", "briefing_edit"),
    ("/hr/surveys", "hr", "surveys"),
    ("/hr/surveys/preview?survey=pulse-fortnightly", "hr", "survey_preview"),
    ("/suggestions", "hr", "suggestions"),
    ("/suggestions", "manager", "suggestions_manager"),
    ("/hr/people", "hr", "people"),
    ("/hr/people/invites", "hr", "people_invites"),
    ("/hr/people/forget?email=p3@bench.example", "hr", "people_forget"),
)
#: The organisation loyalty pages, whose goal is relative to the report's own time for the
#: same content, measured after each of their requests: ``/team?team=organisation`` shows
#: the summary (against the report's organisation summary), HR's loyalty page shows the
#: summary, segments, rounds, chart and heat map (against ``report loyalty --format html``
#: for the organisation, which holds the same).
BASELINES = {"org_loyalty": "report", "hr_loyalty": "report_html"}
ORG_PAGE = "org_loyalty"
GOAL_MS = 150.0
ORG_GOAL_RATIO = 2.0
TIMING_HEADER = "X-Bench-Server-Ms"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
console = Console()


@web.middleware
async def server_time(request: web.Request, handler: Any) -> web.StreamResponse:
    """The time the application spends on a request, in a response header."""
    started = time.perf_counter()
    response = await handler(request)
    response.headers[TIMING_HEADER] = f"{(time.perf_counter() - started) * 1000:.3f}"
    return response


# The organisation


@asynccontextmanager
async def organisation(args: argparse.Namespace) -> AsyncIterator[str]:
    """The database of the organisation (built, or reused with ``--keep``); its URL."""
    if args.database == "sqlite" or not args.keep:
        server = None if args.database == "sqlite" else args.database_url
        async with scratch_database(server, "web") as url:
            await build(url, args)
            yield url
        return
    base = make_url(args.database_url)
    name = f"{base.database or 'fidelio'}_web"
    url = base.set(database=name).render_as_string(hide_password=False)
    if not await holds_organisation(url, args):
        await admin_execute(
            args.database_url,
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f'CREATE DATABASE "{name}"',
        )
        await upgrade(url)
        await build(url, args)
    else:
        console.print(f"reusing the organisation in {name}")
    yield url


async def holds_organisation(url: str, args: argparse.Namespace) -> bool:
    """Does the kept database hold the organisation asked for?"""
    try:
        db = Database(url)
        try:
            async with db.session() as session:
                people = await session.scalar(select(func.count()).select_from(Person))
                teams = await session.scalar(select(func.count()).select_from(Team))
                rounds = await session.scalar(select(func.count()).select_from(SurveyRound))
        finally:
            await db.dispose()
    except Exception:  # no such database yet, or not migrated
        return False
    return (people, teams, rounds) == (args.people, args.teams, args.rounds)


async def build(url: str, args: argparse.Namespace) -> None:
    """The report's organisation, its rounds closed as Fidelio closes them."""
    settings = bench_settings(url)
    db = Database(url)
    try:
        started = time.perf_counter()
        await generate(db, settings, args, args.database)
        with task_progress(console, "closing rounds") as progress:
            task = progress.add_task("close", total=args.rounds)
            await rewrite_closed_rounds(
                db, settings, START, lambda done, _t: progress.update(task, completed=done)
            )
        await analyze(db)
        console.print(f"organisation built in {time.perf_counter() - started:.0f} s")
    finally:
        await db.dispose()


def bench_settings(url: str) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": url},
            "content_dir": str(REPO / "content"),
            # The port is not used: the pages are served on a port the system chooses.
            "web": {"enabled": True, "port": 8089, "idle_minutes": 24 * 60},
            "security": {"secret_key": "bench-web-secret-key-not-for-production"},
            "telegram": {"bot_username": "fidelio_bench_bot"},
        }
    )


async def viewers(db: Database) -> dict[str, str]:
    """Make one person HR and another the manager of a leaf team; their emails by role."""
    async with db.session() as session:
        leaf = await session.scalar(
            select(Team.id)
            .where(~Team.id.in_(select(Team.parent_id).where(Team.parent_id.is_not(None))))
            .order_by(Team.id)
            .limit(1)
        )
        manager = await session.scalar(
            select(Person).where(Person.team_id == leaf).order_by(Person.id).limit(1)
        )
        assert manager is not None
        hr = await session.scalar(select(Person).where(Person.id != manager.id).order_by(Person.id))
        assert hr is not None
        await session.execute(update(Person).where(Person.id == hr.id).values(role=Role.hr))
        await session.execute(
            update(Person).where(Person.id == manager.id).values(role=Role.manager)
        )
        await session.execute(update(Team).where(Team.id == leaf).values(manager_id=manager.id))
        return {"hr": hr.email, "manager": manager.email}


# The console


async def sign_in(
    db: Database, settings: Settings, clock: Clock, base: str, email: str
) -> ClientSession:
    """A browser signed in as ``email``: the link opened, then its button pressed."""
    async with db.session() as session:
        person = await session.scalar(select(Person).where(Person.email == email))
        assert person is not None
        token = await issue_link(session, person, clock.now(), settings.web, by="cli")
    browser = ClientSession(base_url=base, cookie_jar=CookieJar(unsafe=True))
    page = await browser.get(f"/signin/{token}")
    found = CSRF.search(await page.text())
    assert found is not None, "the sign-in page has no form"
    pressed = await browser.post(
        f"/signin/{token}", data={"csrf": found.group(1)}, allow_redirects=False
    )
    assert pressed.status == 303, await pressed.text()
    return browser


async def timed_page(browser: ClientSession, path: str) -> tuple[float, float]:
    """(server ms, round-trip ms) of one request; the page must answer (200, or 303 for the
    start page, which sends HR and managers on to their own)."""
    started = time.perf_counter()
    async with browser.get(path, allow_redirects=False) as answer:
        await answer.read()
        assert answer.status in (200, 303), f"{path}: {answer.status}"
        server = float(answer.headers[TIMING_HEADER])
    return server, (time.perf_counter() - started) * 1000


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


class ReportSummary:
    """The report's own organisation summary (what :func:`bench.report.measure` times: the
    summary of every team over the default window, for a new viewer each time)."""

    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.service = LoyaltyService(settings)
        self.window = Window(last=settings.loyalty.default_rounds)
        self.viewers = iter(range(1_000_000))

    async def timed(self) -> float:
        started = time.perf_counter()
        async with self.db.session() as session:
            tree = await TeamTree.load(session)
            result = await self.service.summarise(
                session,
                f"bench:{next(self.viewers)}",
                TeamTree.scope(tree, None),
                self.window,
                datetime.now(UTC),
            )
            assert result is not None
        return (time.perf_counter() - started) * 1000


class ReportHtml:
    """``fidelio report loyalty --format html`` for the organisation, as HR asks for it:
    the summary, segments, rounds, the chart and the heat map in one file."""

    def __init__(self, db: Database, settings: Settings, hr_email: str):
        self.db = db
        self.settings = settings
        self.hr_email = hr_email
        self.window = Window(last=settings.loyalty.default_rounds)

    async def timed(self) -> float:
        started = time.perf_counter()
        async with self.db.session() as session:
            hr = await session.scalar(select(Person).where(Person.email == self.hr_email))
            assert hr is not None
            made = await report_file(
                session, self.settings, hr, "", self.window, "html", hr.locale, datetime.now(UTC)
            )
            assert made
        return (time.perf_counter() - started) * 1000


def percentiles(server: list[float], trip: list[float] | None = None) -> dict[str, float]:
    out = {"p50_ms": statistics.median(server), "p95_ms": p95(server)}
    if trip:
        out |= {"trip_p50_ms": statistics.median(trip), "trip_p95_ms": p95(trip)}
    return out


async def measure_pages(url: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """p50 and p95 of server time and round trip of every page; and, one run after each
    request of the organisation loyalty page (so both see the machine in the same state),
    the report's own organisation summary (as ``report``)."""
    settings = bench_settings(url)
    db = Database(url)
    clock = SystemClock()
    app = build_app(Web(settings, db, clock, Pages(), privacy_registry()))
    app.middlewares.insert(0, server_time)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    browsers: dict[str, ClientSession] = {}
    try:
        emails = await viewers(db)
        baselines = {
            "report": ReportSummary(db, settings),
            "report_html": ReportHtml(db, settings, emails["hr"]),
        }
        base = f"http://127.0.0.1:{port}"
        for who, email in emails.items():
            browsers[who] = await sign_in(db, settings, clock, base, email)
        figures: dict[str, dict[str, float]] = {}
        baseline_ms: dict[str, list[float]] = {name: [] for name in baselines}
        with task_progress(console, "{task.description}") as progress:
            task = progress.add_task("pages", total=len(PAGES) * args.requests)
            for path, who, name in PAGES:
                progress.update(task, description=name)
                # The first request warms caches and connections (charts are drawn once).
                first, _trip = await timed_page(browsers[who], path)
                server, trip = [], []
                for _ in range(args.requests):
                    s, r = await timed_page(browsers[who], path)
                    server.append(s)
                    trip.append(r)
                    if name in BASELINES:
                        baseline = BASELINES[name]
                        baseline_ms[baseline].append(await baselines[baseline].timed())
                    progress.advance(task)
                figures[name] = percentiles(server, trip) | {"first_ms": first}
        for baseline, times in baseline_ms.items():
            figures[baseline] = percentiles(times)
        return figures
    finally:
        for browser in browsers.values():
            await browser.close()
        await runner.cleanup()
        await db.dispose()


async def report_time(url: str, args: argparse.Namespace) -> float:
    """The report's own organisation summary as bench/report.py times it (median of three)."""
    db = Database(url)
    try:
        settings = bench_settings(url)
        figures = await measure(db, settings, argparse.Namespace(samples=5, rounds=args.rounds))
        return figures["org_ms"]
    finally:
        await db.dispose()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with organisation(args) as url:
        pages = await measure_pages(url, args)
        report_ms = await report_time(url, args)
    baselines = {name: pages.pop(name) for name in set(BASELINES.values())}
    report = baselines["report"]
    table = results_table(
        f"Web console, {args.people:,} people, {args.database} "
        f"({args.requests} requests a page; server time, round trip on loopback)",
        ["first", "server p50", "server p95", "trip p95", "goal"],
    )
    for _path, _who, name in PAGES:
        f = pages[name]
        goal = (
            ORG_GOAL_RATIO * baselines[BASELINES[name]]["p95_ms"] if name in BASELINES else GOAL_MS
        )
        met = "met" if f["p95_ms"] < goal else "MISSED"
        table.add_row(
            name,
            f"{f['first_ms']:.0f} ms",
            f"{f['p50_ms']:.1f} ms",
            f"{f['p95_ms']:.1f} ms",
            f"{f['trip_p95_ms']:.1f} ms",
            f"< {goal:.0f} ms: {met}",
        )
    for baseline, label in (("report", "report (org summary)"), ("report_html", "report html")):
        f = baselines[baseline]
        table.add_row(label, "", f"{f['p50_ms']:.1f} ms", f"{f['p95_ms']:.1f} ms", "", "")
    console.print(table)
    console.print(
        f"the report's own organisation summary: {report['p50_ms']:.1f} ms p50, "
        f"{report['p95_ms']:.1f} ms p95 (run after each request of the {ORG_PAGE} page); "
        f"{report_ms:.1f} ms as bench/report.py times it (median of three)",
        highlight=False,
    )
    under_goal = [pages[name]["p95_ms"] for _p, _w, name in PAGES if name not in BASELINES]
    html = baselines["report_html"]
    org = pages[ORG_PAGE]
    result: dict[str, Any] = {
        "web_p95_ms_max": round(max(under_goal), 1),
        "org_page_p95_ms": round(org["p95_ms"], 1),
        "report_org_p95_ms": round(report["p95_ms"], 1),
        "org_page_vs_report": round(org["p95_ms"] / report["p95_ms"], 2),
        "org_page_p50_vs_report_p50": round(org["p50_ms"] / report["p50_ms"], 2),
        "report_org_p50_ms": round(report["p50_ms"], 1),
        "report_org_ms": round(report_ms, 1),
        "report_html_p95_ms": round(html["p95_ms"], 1),
        "hr_loyalty_vs_report_html": round(pages["hr_loyalty"]["p95_ms"] / html["p95_ms"], 2),
        "people": args.people,
        "database": args.database,
    }
    for _path, _who, name in PAGES:
        result[f"{name}_p50_ms"] = round(pages[name]["p50_ms"], 1)
        result[f"{name}_p95_ms"] = round(pages[name]["p95_ms"], 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--teams", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=26)
    parser.add_argument("--requests", type=int, default=40, help="requests per page")
    parser.add_argument("--database", choices=("postgres", "sqlite"), default=None)
    parser.add_argument(
        "--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/fidelio_bench"
    )
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the organisation")
    parser.add_argument("--quick", action="store_true", help="a small organisation, few requests")
    args = parser.parse_args()
    if args.quick:
        args.people, args.teams, args.rounds, args.requests = 300, 20, 6, 5
    args.database = args.database or ("sqlite" if args.quick else "postgres")
    loopback_only("bench.web")
    started = datetime.now(UTC)
    figures = asyncio.run(run(args))
    console.print(f"done in {(datetime.now(UTC) - started).total_seconds():.0f} s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
