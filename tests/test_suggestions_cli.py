"""``fidelio suggestions`` as a real process: scope, triage, notices, refusals."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.db.models import AuditEntry, Delivery, Person
from bot.db.session import Database
from bot.suggestions.service import SuggestionService
from bot.suggestions.tables import SealedNotice, Suggestion, SuggestionStatus

from .harness import load_demo, make_settings
from .test_cli import fidelio, write_config

HR = "hr@demo.fidelio.example"
LUCA = "luca.moretti@demo.fidelio.example"  # manager of Sales Milano


async def _seed(db: Database, clock: ManualClock, database_url: str) -> None:
    service = SuggestionService(make_settings(database_url), clock)
    async with db.session() as session:
        people = {p.email: p for p in await session.scalars(select(Person))}
        for email, text, anonymous in (
            ("aisha.khan@demo.fidelio.example", "Demo OLED at every till", True),
            ("marco.bianchi@demo.fidelio.example", "Più parcheggi il sabato", False),
            ("kevin.liu@demo.fidelio.example", "Shorter Monday meeting", False),
        ):
            await service.create(session, people[email], text, "other", anonymous)


async def test_cli_triage_respects_scope_and_notifies(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    await load_demo(db, clock)
    await _seed(db, clock, database_url)
    # The same secret as the seeding service: the CLI must open the sealed reply token.
    config = write_config(tmp_path, database_url, security={"secret_key": "test-secret-key"})

    code, out, err = await fidelio(config, "suggestions", "list", "--as", LUCA)
    assert code == 0, err
    assert "S-0001" in out and "S-0003" in out and "S-0002" not in out
    assert "3 suggestion(s)" not in out and "2 suggestion(s)" in out

    code, out, err = await fidelio(
        config, "suggestions", "list", "--as", HR, "--anonymous", "--category", "other"
    )
    assert code == 0, err
    assert "S-0001" in out and "1 suggestion(s)" in out

    # Outside his subtree: refused, nothing changed.
    code, out, err = await fidelio(config, "suggestions", "status", "S-0002", "done", "--as", LUCA)
    assert code == 2 and "There is no suggestion S-0002 that you can see" in err
    # Declining needs a reason; an employee cannot triage; bad filters name the option.
    code, _, err = await fidelio(config, "suggestions", "status", "2", "declined", "--as", HR)
    assert code == 2 and "needs a reason" in err
    code, _, err = await fidelio(
        config, "suggestions", "list", "--as", "kevin.liu@demo.fidelio.example"
    )
    assert code == 2 and "--as" in err and "HR or a manager" in err
    code, _, err = await fidelio(config, "suggestions", "list", "--as", HR, "--status", "meh")
    assert code == 2 and "--status" in err

    code, out, err = await fidelio(
        config, "suggestions", "status", "S-0001", "planned", "--as", LUCA, "--reason", "Q3"
    )
    assert code == 0, err
    code, out, err = await fidelio(
        config, "suggestions", "reply", "S-0003", "Agreed, 30 minutes from May.", "--as", LUCA
    )
    assert code == 0, err
    code, out, err = await fidelio(config, "suggestions", "publish", "S-0003", "--as", LUCA)
    assert code == 2 and "publish is not available to you" in err
    code, out, err = await fidelio(config, "suggestions", "show", "S-0001", "--as", HR)
    assert code == 0, err
    assert "anonymous" in out and "planned: Q3" in out and LUCA in out

    code, out, err = await fidelio(config, "suggestions", "digest", "--as", HR)
    assert code == 0, err
    assert "S-0001  planned" in out and "S-0003" not in out  # a reply is not a status change
    code, _, err = await fidelio(config, "suggestions", "digest", "--as", LUCA)
    assert code == 2 and "not HR" in err

    async with db.session() as session:
        first = await session.get(Suggestion, 1)
        assert first is not None and first.status == SuggestionStatus.planned
        sealed = await session.scalar(select(func.count()).select_from(SealedNotice))
        named = list(
            await session.scalars(select(Delivery).where(Delivery.purpose == "suggestion-notice"))
        )
        actions = [a.action for a in await session.scalars(select(AuditEntry))]
    # The anonymous author's notice waits sealed; the named author's is in the outbox.
    assert sealed == 1
    assert [d.template for d in named] == ["suggestions/replied"]
    assert "suggestion.status" in actions and "suggestion.reply" in actions
    assert "suggestion.show" in actions
