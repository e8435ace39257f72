"""The digest: after a round closes, managers with a reportable team and HR get summaries
unasked through the outbox (photos on Telegram); HR's includes the team heat map."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.db.models import AuditEntry, Delivery, LoyaltyDigest
from bot.db.session import Database
from bot.loyalty.digest import DigestService

from .fakes.telegram import FakeTelegramServer
from .harness import make_settings, running, telegram_section
from .test_summaries_e2e import FAST_RATES, HR, LUCA, _link_telegram, _people, seed, uid

SILVIA = "silvia.rossi@demo.fidelio.example"  # manages HR & People: too few to report


async def test_digest_reaches_managers_and_hr_once(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await seed(db, clock, database_url, rounds=2)
    async with FakeTelegramServer(rate_scale=50.0) as fake:
        await _link_telegram(db, fake, clock, LUCA, HR, SILVIA)
        people = await _people(db)
        settings = make_settings(database_url, telegram=telegram_section(fake), rates=FAST_RATES)
        async with running(settings, clock, background=False) as runtime:
            digest = DigestService(settings, runtime.db, clock)
            stats = await digest.run_due()
            assert stats.rounds == 2
            again = await digest.run_due()
            assert again.rounds == 0
            await runtime.outbox.drain()

            luca = fake.messages_to(uid(people[LUCA].id))
            texts = [m.text or m.caption or "" for m in luca]
            assert any("Riepilogo fedeltà: Sales Milano" in t for t in texts)
            assert any("si è chiuso" in t for t in texts)
            assert sum(1 for m in luca if m.photo) == 2  # one chart per round's digest

            hr = fake.messages_to(uid(people[HR].id))
            assert any("l'organizzazione" in (m.text or "") for m in hr)
            heat = [m for m in hr if m.photo and "Mappa" in (m.caption or "")]
            assert heat and heat[0].photo is not None and heat[0].photo.startswith(b"\x89PNG")

            # Silvia's team (4 people) cannot be reported: she gets nothing unasked.
            assert fake.messages_to(uid(people[SILVIA].id)) == []

    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(LoyaltyDigest)) == 2
        keys = list(await session.scalars(select(Delivery.key)))
        assert len(keys) == len(set(keys))
        audit = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "loyalty.digest"))
        )
        assert len(audit) == 2


async def test_digest_can_be_switched_off(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await seed(db, clock, database_url, rounds=1)
    settings = make_settings(database_url, loyalty={"digest": False})
    stats = await DigestService(settings, db, clock).run_due()
    assert stats.rounds == 0
