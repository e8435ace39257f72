"""Suggestions without chat: measurement, sealing, personal data, anonymous teams, config."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.config import ConfigError, load_settings
from bot.db.models import Person, Team
from bot.db.session import Database
from bot.errors import UserFacingError
from bot.loyalty.objective import objective_summary
from bot.suggestions.content import parse_reference, parse_status, personal_data, redact
from bot.suggestions.measurement import TOTAL, SuggestionCounts, suggestion_counts
from bot.suggestions.seal import Sealer, author_purpose
from bot.suggestions.service import SuggestionService
from bot.suggestions.tables import Suggestion, SuggestionStatus

from .harness import REPO, load_demo, make_settings

T0 = datetime(2027, 5, 3, 9, 0, tzinfo=UTC)


async def _people(db: Database) -> dict[str, Person]:
    async with db.session() as session:
        return {p.email.split("@")[0]: p for p in await session.scalars(select(Person))}


async def _teams(db: Database) -> dict[str, int]:
    async with db.session() as session:
        return {t.name: t.id for t in await session.scalars(select(Team))}


async def _file_and_triage_suggestions_around_t0(
    db: Database, clock: ManualClock, service: SuggestionService, people: dict[str, Person]
) -> None:
    """Suggestions filed and triaged around the week from ``T0``: Sales Milano files three in
    the week (one anonymous) and one before it; HR & People one, anonymously."""

    async def send(who: str, at: datetime, anonymous: bool = False) -> int:
        clock.set(at)
        async with db.session() as session:
            author = await session.get(Person, people[who].id)
            assert author is not None
            return (await service.create(session, author, f"idea of {who}", "other", anonymous)).id

    async def triage(
        sid: int, at: datetime, status: SuggestionStatus | None, reply: str = ""
    ) -> None:
        clock.set(at)
        async with db.session() as session:
            hr = await session.get(Person, people["hr"].id)
            found = await session.get(Suggestion, sid)
            assert hr is not None and found is not None
            if status is not None:
                await service.set_status(
                    session,
                    hr,
                    found,
                    status,
                    "because" if status == SuggestionStatus.declined else None,
                )
            else:
                await service.reply(session, hr, found, reply)

    # Sales Milano: three in the period (one anonymous), one before it.
    early = await send("aisha.khan", T0 - timedelta(days=3))
    a = await send("aisha.khan", T0 + timedelta(hours=1))
    b = await send("kevin.liu", T0 + timedelta(days=1))
    c = await send("sara.greco", T0 + timedelta(days=2), anonymous=True)
    # HR & People is small: an anonymous one counts for Headquarters.
    d = await send("hannah.weber", T0 + timedelta(days=2, hours=3), anonymous=True)
    await triage(early, T0 + timedelta(hours=2), SuggestionStatus.done)
    await triage(a, T0 + timedelta(hours=5), SuggestionStatus.under_review)  # 4 h
    await triage(a, T0 + timedelta(days=3), SuggestionStatus.done)
    await triage(b, T0 + timedelta(days=1, hours=10), None, "thanks")  # 10 h, a reply
    await triage(c, T0 + timedelta(days=9), SuggestionStatus.done)  # after the period
    await triage(d, T0 + timedelta(days=2, hours=5), SuggestionStatus.declined)


async def test_suggestion_counts_per_team_and_period(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await load_demo(db, clock)
    people = await _people(db)
    teams = await _teams(db)
    settings = make_settings(database_url)
    service = SuggestionService(settings, clock)

    await _file_and_triage_suggestions_around_t0(db, clock, service, people)

    until = T0 + timedelta(days=7)
    async with db.session() as session:
        counts = await suggestion_counts(
            session,
            [
                teams["Sales Milano"],
                teams["Headquarters"],
                teams["HR & People"],
                teams["Marketing"],
            ],
            T0,
            until,
        )
    assert counts[teams["Sales Milano"]] == SuggestionCounts(
        sent=3, answered=2, implemented=1, median_hours_to_first_response=7.0
    )
    # The anonymous one was sent at 11:00 (kept to the hour) and answered at 14:00.
    assert counts[teams["Headquarters"]] == SuggestionCounts(
        sent=1, answered=1, implemented=0, median_hours_to_first_response=2.0
    )
    assert counts[teams["HR & People"]] == SuggestionCounts()
    assert counts[teams["Marketing"]].median_hours_to_first_response is None
    # A later period sees the late "done" of c only as a sent-before suggestion: not counted.
    async with db.session() as session:
        later = await suggestion_counts(
            session, [teams["Sales Milano"]], until, until + timedelta(days=7)
        )
        assert later[teams["Sales Milano"]].sent == 0
        assert await suggestion_counts(session, [], T0, until) == {}
        # Together: the median is over every suggestion (4 h, 10 h, 2 h), not of the teams'.
        both = await suggestion_counts(
            session, [teams["Sales Milano"], teams["Headquarters"]], T0, until, total=True
        )
        assert both[TOTAL] == SuggestionCounts(
            sent=4, answered=3, implemented=1, median_hours_to_first_response=4.0
        )
        # They feed the objective measurement as participation in initiatives.
        summary = await objective_summary(
            session,
            settings,
            [teams["Sales Milano"]],
            T0.date(),
            (until - timedelta(days=1)).date(),
        )
    rate = summary.component("suggestion_rate")
    assert summary.average_headcount
    assert rate.raw == pytest.approx(100 * 3 / summary.average_headcount)
    assert rate.weight == settings.objective.suggestion_rate.weight > 0
    assert summary.counts["suggestions_sent"] == 3
    assert summary.counts["suggestions_answered"] == 2
    assert summary.counts["suggestions_implemented"] == 1
    assert summary.counts["suggestions_median_hours_to_first_response"] == 7.0


async def test_anonymous_team_walks_up_to_k_members(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await load_demo(db, clock)
    teams = await _teams(db)
    service = SuggestionService(make_settings(database_url), clock)
    strict = SuggestionService(make_settings(database_url, suggestions={"min_team": 12}), clock)
    async with db.session() as session:
        assert await service.anonymous_team(session, teams["Sales Milano"]) == teams["Sales Milano"]
        assert await service.anonymous_team(session, teams["HR & People"]) == teams["Headquarters"]
        assert await strict.anonymous_team(session, teams["Sales Milano"]) == teams["Headquarters"]


async def test_create_refuses_bad_input_and_stores_no_author_when_anonymous(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await load_demo(db, clock)
    people = await _people(db)
    service = SuggestionService(make_settings(database_url), clock)
    async with db.session() as session:
        author = await session.get(Person, people["aisha.khan"].id)
        assert author is not None
        with pytest.raises(UserFacingError) as empty:
            await service.create(session, author, "   ", "other", False)
        assert empty.value.template_key == "suggestions/empty"
        with pytest.raises(UserFacingError) as unknown:
            await service.create(session, author, "idea", "snacks", False)
        assert unknown.value.template_key == "suggestions/unknown_category"
        with pytest.raises(UserFacingError):
            await service.create(session, author, "x" * 2001, "other", False)
        made = await service.create(session, author, "idea", "other", True)
        assert made.author_id is None and made.reply_token is not None
        # Sealed: it opens only with Fidelio's key (searching the id's digits in random bytes
        # would fail by chance).
        assert Sealer("another-key").open(made.reply_token, author_purpose(made.id)) is None
        assert service.is_author(made, author)


def test_sealer_binds_key_purpose_and_integrity() -> None:
    sealer = Sealer("k1")
    token = sealer.seal(42, author_purpose(7))
    assert sealer.open(token, author_purpose(7)) == 42
    assert sealer.seal(42, author_purpose(7)) != token  # fresh nonce: unlinkable tokens
    assert Sealer("k2").open(token, author_purpose(7)) is None
    assert sealer.open(token, author_purpose(8)) is None
    tampered = token[:-1] + bytes([token[-1] ^ 1])
    assert sealer.open(tampered, author_purpose(7)) is None
    assert sealer.open(b"", author_purpose(7)) is None and sealer.open(None, "x") is None
    text = sealer.seal_text(5, "p")
    assert sealer.open_text(text, "p") == 5 and sealer.open_text("%%%", "p") is None
    assert sealer.voter_key(1) == Sealer("k1").voter_key(1) != sealer.voter_key(2)


def test_personal_data_is_flagged_and_redacted() -> None:
    text = "Mail mario.rossi@example.com or call +39 333 123 4567 / 02-1234-5678 by 2027-05-03"
    found = personal_data(text)
    assert [(f.kind, f.text) for f in found] == [
        ("email", "mario.rossi@example.com"),
        ("phone", "+39 333 123 4567"),
        ("phone", "02-1234-5678"),
    ]
    assert redact(text) == "Mail […] or call […] / […] by 2027-05-03"
    assert personal_data("We sold 1500 TVs in 12 shops, 3 times more than in 2025") == []
    assert parse_reference("S-0042") == parse_reference("#42") == parse_reference("42") == 42
    assert parse_reference("S-x") is None
    assert parse_status("under review") == SuggestionStatus.under_review
    assert parse_status("pianificato") == SuggestionStatus.planned
    assert parse_status("merged") is None


def test_config_rejects_bad_suggestion_settings(tmp_path: object) -> None:
    from pathlib import Path

    base = Path(str(tmp_path))
    path = base / "config.yaml"
    path.write_text(
        "content_dir: " + str(REPO / "content") + "\n"
        "suggestions:\n"
        "  categories:\n"
        "    - {id: product, en: Product, it: Prodotto}\n"
        "    - {id: product, en: Again, it: Ancora}\n"
        "  digest_cron: '0 9 * * 1'\n"
        "  min_team: 2\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as exc:
        load_settings(path, env={})
    keys = {key for key, _ in exc.value.problems}
    assert keys == {"suggestions.categories", "suggestions.digest_cron", "suggestions.min_team"}
    reasons = dict(exc.value.problems)
    assert "unique" in reasons["suggestions.categories"]
    assert "day of the week as a name" in reasons["suggestions.digest_cron"]
    shipped = load_settings(REPO / "config.yaml", env={})
    assert [c.id for c in shipped.suggestions.categories][:2] == ["product", "customer_service"]
