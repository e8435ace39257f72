"""Loyalty report benchmark: summaries over about three million responses.

Run from the repository root (a benchmark, not a test; nothing asserts its figures)::

    .venv/bin/python -m bench.report [--people 10000] [--teams 200] [--rounds 26]
        [--databases sqlite,postgres]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/fidelio_bench]

For each database a scratch database is created and migrated (SQLite: a temporary file;
PostgreSQL: ``<db>_report_<pid>`` on the server of ``--database-url``, dropped at the end).
It is filled in bulk (PostgreSQL: COPY through asyncpg's ``copy_records_to_table``; SQLite:
``executemany`` in large transactions) with an org tree (one root, divisions, leaf teams:
``--teams`` in all), ``--people`` people in the leaf teams, one pulse schedule and
``--rounds`` rounds of 12 items each (10 likert, eNPS and product NPS) with about 95 %
response and 3 % skipped answers, plus the participation rows response rates need. The rounds
are written as rounds closed before release plans existed, then closed the way Fidelio closes
them (:func:`bot.loyalty.release.rewrite_closed_rounds`, as ``db upgrade`` does): the plan is
decided, the aggregates of each plan atom stored, the answers kept by atom. That step is
timed too (``<db>_plan_round_ms``, per round).

Then, in the same run and on the same data (the default window: the last
``loyalty.default_rounds`` rounds):

* a **team summary** (:meth:`LoyaltyService.summarise` for a leaf team) for ``--samples``
  teams: p50 / p95;
* the **organisation summary** (median of three) and, for comparison, the organisation over
  every round;
* a **bare scan** of the same answers, ``SELECT item_id, avg(value_num) FROM
  closed_responses WHERE round_id IN (<the window>) GROUP BY item_id`` (median of three), and
  the organisation summary as a ratio to it (goal <= 1 on both databases: a summary reads the
  stored atoms of the plan, not the answers);
* the database size.

The last line is one JSON object with ``postgres_team_p50_ms``, ``postgres_team_p95_ms``,
``postgres_org_ms``, ``postgres_org_vs_scan``, ``sqlite_team_p95_ms``, ``sqlite_org_ms``,
``sqlite_org_vs_scan`` and ``responses`` (plus a few more figures).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.common import loopback_only, scratch_database, task_progress
from bot.config import DatabaseSettings, Settings
from bot.db.session import Database
from bot.loyalty.release import rewrite_closed_rounds
from bot.loyalty.service import LoyaltyService, TeamTree, Window, closed_rounds
from bot.pulse.content import load_survey

REPO = Path(__file__).resolve().parent.parent
ITEMS = [
    "sat_overall",
    "intent_stay",
    "enps",
    "product_nps",
    "trust_leadership",
    "trust_manager",
    "recognition",
    "frustration",
    "growth",
    "service_climate",
    "news_first",
    "ambassador",
]
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
console = Console()


# Data


def org_tree(teams: int) -> list[tuple[int, str, int | None]]:
    """(id, name, parent): a root, about sqrt(teams) divisions, the rest leaf teams."""
    divisions = max(1, round((teams - 1) ** 0.5 / 1.5))
    rows: list[tuple[int, str, int | None]] = [(1, "Organisation", None)]
    for d in range(divisions):
        rows.append((2 + d, f"Division {d + 1:02d}", 1))
    for leaf in range(teams - 1 - divisions):
        rows.append((2 + divisions + leaf, f"Team {leaf + 1:03d}", 2 + leaf % divisions))
    return rows


async def _bulk(db: Database, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """PostgreSQL: COPY; SQLite: one executemany in one transaction."""
    async with db.engine.begin() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        if db.is_sqlite:
            marks = ", ".join("?" for _ in columns)
            await driver.executemany(  # type: ignore[union-attr]
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
            )
        else:
            await driver.copy_records_to_table(table, records=rows, columns=columns)  # type: ignore[union-attr]


async def generate(db: Database, settings: Settings, args: argparse.Namespace, label: str) -> int:
    """Fill the database; returns the number of responses."""
    rng = random.Random(2027)
    tree = org_tree(args.teams)
    leaves = [team_id for team_id, _name, parent in tree if parent not in (None,) and team_id > 1]
    divisions = {parent for _t, _n, parent in tree if parent is not None and parent != 1}
    leaves = [t for t, _n, p in tree if p in divisions]
    now = START
    survey, items = load_survey(REPO / "content" / "surveys", "pulse-fortnightly")
    snapshot = {
        "survey": survey.to_json(),
        "items": {key: vars(items[key]) | {"text": items[key].text} for key in ITEMS + ["comment"]},
    }
    total = args.rounds * args.people * len(ITEMS)
    with task_progress(console, f"[bold]{label}[/bold] {{task.description}}") as progress:
        task = progress.add_task("responses", total=total)
        async with db.engine.begin() as conn:
            for team_id, name, parent in tree:
                await conn.execute(
                    text(
                        "INSERT INTO teams (id, name, parent_id, created_at) VALUES (:i, :n, :p, :c)"
                    ),
                    {"i": team_id, "n": name, "p": parent, "c": now.replace(tzinfo=None)},
                )
        people = [(pid, leaves[pid % len(leaves)]) for pid in range(1, args.people + 1)]
        naive = now.replace(tzinfo=None)
        await _bulk(
            db,
            "people",
            [
                "id",
                "email",
                "name",
                "team_id",
                "role",
                "locale",
                "timezone",
                "created_at",
                "updated_at",
            ],
            [
                (
                    pid,
                    f"p{pid}@bench.example",
                    f"Person {pid}",
                    team,
                    "employee",
                    "en",
                    "Europe/Rome",
                    naive,
                    naive,
                )
                for pid, team in people
            ],
        )
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO campaigns (id, kind, content_id, title, status, snapshot, starts_at,"
                    " ends_at, created_by, created_at) VALUES (1, 'pulse', 'pulse-fortnightly',"
                    " 'Fortnightly pulse', 'scheduled', :s, :t, :e, 'bench', :t)"
                ),
                {"s": json.dumps(snapshot), "t": naive, "e": naive + timedelta(days=3650)},
            )
        trait = {pid: rng.gauss(0, 0.8) for pid, _team in people}
        responses = 0
        for number in range(1, args.rounds + 1):
            opens = naive + timedelta(weeks=2 * (number - 1))
            async with db.engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO survey_rounds (id, campaign_id, number, opens_at, closes_at,"
                        " status, secret, items, invited, opened_at, closed_at) VALUES"
                        " (:i, 1, :i, :o, :c, 'closed', NULL, :items, :n, :o, :c)"
                    ),
                    {
                        "i": number,
                        "o": opens,
                        "c": opens + timedelta(days=4),
                        "items": json.dumps(ITEMS),
                        "n": args.people,
                    },
                )
            participation: list[tuple[Any, ...]] = []
            rows: list[tuple[Any, ...]] = []
            for pid, team in people:
                answered = rng.random() < 0.95
                participation.append((number, pid, team, len(ITEMS) if answered else 0, answered))
                if not answered:
                    continue
                key = hashlib.sha256(f"{number}:{pid}".encode()).hexdigest()
                base = 3 + trait[pid]
                for item in ITEMS:
                    if rng.random() < 0.03:
                        continue
                    if item in ("enps", "product_nps"):
                        value = min(10, max(0, round(6.5 + 2 * trait[pid] + rng.gauss(0, 1.5))))
                    else:
                        value = min(5, max(1, round(base + rng.gauss(0, 0.9))))
                    rows.append((number, key, item, team, value, None))
            await _bulk(
                db,
                "participation",
                ["round_id", "person_id", "team_id", "answered", "finished"],
                participation,
            )
            await _bulk(
                db,
                "responses",
                ["round_id", "respondent_key", "item_id", "team_id", "value_num", "value_text"],
                rows,
            )
            responses += len(rows)
            progress.update(
                task,
                advance=args.people * len(ITEMS),
                description=f"responses (round {number}/{args.rounds})",
            )
    await analyze(db)
    return responses


async def analyze(db: Database) -> None:
    """Refresh the planner's statistics (PostgreSQL: VACUUM ANALYZE) after a bulk load."""
    async with db.engine.connect() as conn:
        if db.is_sqlite:
            await conn.execute(text("ANALYZE"))
            await conn.commit()
        else:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            raw = await conn.get_raw_connection()
            await raw.driver_connection.execute("VACUUM ANALYZE")  # type: ignore[union-attr]


# Measurements


async def timed(work: Any) -> float:
    started = time.perf_counter()
    await work()
    return (time.perf_counter() - started) * 1000


async def measure(db: Database, settings: Settings, args: argparse.Namespace) -> dict[str, float]:
    service = LoyaltyService(settings)
    now = datetime.now(UTC)
    window = Window(last=settings.loyalty.default_rounds)
    async with db.session() as session:
        tree = await TeamTree.load(session)
    leaves = sorted(t for t in tree.names if not tree.children.get(t))
    sample = random.Random(7).sample(leaves, min(args.samples, len(leaves)))
    viewer = iter(range(1_000_000))

    async def summary(team: int | None, win: Window = window) -> None:
        async with db.session() as session:
            result = await service.summarise(
                session, f"bench:{next(viewer)}", TeamTree.scope(tree, team), win, now
            )
            assert result is not None

    await summary(sample[0])  # warm caches and connections
    team_ms = [await timed(lambda t=t: summary(t)) for t in sample]
    org_ms = statistics.median([await timed(lambda: summary(None)) for _ in range(3)])
    all_ms = await timed(lambda: summary(None, Window(last=args.rounds)))

    async with db.session() as session:
        in_window = ", ".join(str(r.id) for r in await closed_rounds(session, window))

    async def scan() -> None:
        async with db.session() as session:
            rows = (
                await session.execute(
                    text(
                        "SELECT item_id, avg(value_num) FROM closed_responses "
                        f"WHERE round_id IN ({in_window}) GROUP BY item_id"
                    )
                )
            ).all()
            assert rows

    await scan()
    scan_ms = statistics.median([await timed(scan) for _ in range(3)])
    team_ms.sort()
    return {
        "team_p50_ms": statistics.median(team_ms),
        "team_p95_ms": team_ms[min(len(team_ms) - 1, int(round(0.95 * (len(team_ms) - 1))))],
        "org_ms": org_ms,
        "org_all_rounds_ms": all_ms,
        "scan_ms": scan_ms,
        "org_vs_scan": org_ms / scan_ms,
    }


async def size_mb(db: Database, url: str) -> float:
    if db.is_sqlite:
        return Path(make_url(url).database or "").stat().st_size / 1e6
    async with db.session() as session:
        return (
            float(await session.scalar(text("SELECT pg_database_size(current_database())")) or 0)
            / 1e6
        )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for kind in args.databases.split(","):
        server = None if kind == "sqlite" else args.database_url
        async with scratch_database(server, "report") as url:
            settings = Settings(database=DatabaseSettings(url=url), content_dir=REPO / "content")
            db = Database(url)
            try:
                started = time.perf_counter()
                responses = await generate(db, settings, args, kind)
                generated_s = time.perf_counter() - started
                started = time.perf_counter()
                with task_progress(console, f"[bold]{kind}[/bold] closing rounds") as progress:
                    task = progress.add_task("close", total=args.rounds)
                    await rewrite_closed_rounds(
                        db,
                        settings,
                        START,
                        lambda done, _total, task=task: progress.update(task, completed=done),
                    )
                plan_round_ms = (time.perf_counter() - started) * 1000 / args.rounds
                await analyze(db)
                result = await measure(db, settings, args)
                size = await size_mb(db, url)
            finally:
                await db.dispose()
        prefix = "postgres" if kind == "postgres" else "sqlite"
        console.print(
            f"[bold]{kind}[/bold]: {responses:,} responses generated in {generated_s:.0f} s; "
            f"team summary p50 {result['team_p50_ms']:.0f} ms, p95 {result['team_p95_ms']:.0f} ms; "
            f"organisation summary (last {settings.loyalty.default_rounds} rounds) "
            f"{result['org_ms']:.0f} ms, over all {args.rounds} rounds "
            f"{result['org_all_rounds_ms']:.0f} ms; bare scan {result['scan_ms']:.0f} ms; "
            f"organisation / scan {result['org_vs_scan']:.2f}; closing a round (plan, atoms, "
            f"storage) {plan_round_ms:.0f} ms; database {size:.0f} MB",
            highlight=False,
        )
        figures["responses"] = responses
        for key, value in result.items():
            figures[f"{prefix}_{key}"] = round(value, 2)
        figures[f"{prefix}_size_mb"] = round(size, 1)
        figures[f"{prefix}_generate_s"] = round(generated_s, 1)
        figures[f"{prefix}_plan_round_ms"] = round(plan_round_ms, 1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--teams", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=26)
    parser.add_argument("--samples", type=int, default=40, help="team summaries timed")
    parser.add_argument("--databases", default="postgres,sqlite")
    parser.add_argument(
        "--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/fidelio_bench"
    )
    args = parser.parse_args()
    loopback_only("bench.report")
    figures = asyncio.run(run(args))
    keys = [
        "postgres_team_p50_ms",
        "postgres_team_p95_ms",
        "postgres_org_ms",
        "postgres_org_vs_scan",
        "sqlite_team_p95_ms",
        "sqlite_org_ms",
        "sqlite_org_vs_scan",
        "responses",
    ]
    ordered = {key: figures[key] for key in keys if key in figures}
    ordered.update({k: v for k, v in sorted(figures.items()) if k not in ordered})
    print(json.dumps(ordered))


if __name__ == "__main__":
    main()
