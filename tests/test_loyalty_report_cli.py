"""`fidelio report loyalty` as a real process: every format, bad arguments named, audited."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from sqlalchemy import select

from bot.clock import ManualClock
from bot.db.models import AuditEntry
from bot.db.session import Database

from .test_cli import fidelio, write_config
from .test_summaries_e2e import seed

HR = "hr@demo.fidelio.example"


async def report_as_hr(config: Path, *args: str) -> tuple[int, str, str]:
    """``fidelio report loyalty --as HR ARGS``."""
    return await fidelio(config, "report", "loyalty", "--as", HR, *args)


async def test_report_formats_and_audit(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    await seed(db, clock, database_url, rounds=3)
    config = write_config(tmp_path, database_url)

    code, out, err = await report_as_hr(config, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["reportable"] and data["summary"]["organisation"]
    assert len(data["summary"]["rounds"]) == 3
    assert -100 <= data["summary"]["headline"]["enps"] <= 100

    code, out, err = await report_as_hr(
        config, "--team", "Sales Milano", "--last", "2", "--format", "csv"
    )
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["scope"] for r in rows} == {"Sales Milano"}
    assert any(r["measure"] == "enps" and r["low"] and r["high"] for r in rows)
    assert any(r["measure"].startswith("favorable_pct_") for r in rows)

    code, out, err = await report_as_hr(config, "--format", "html", "-o", "r.html")
    assert code == 0, err
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 2  # the summary chart and the heat map
    assert "http://" not in page and "https://" not in page  # self-contained

    code, out, err = await report_as_hr(config, "--format", "png", "-o", "r.png")
    assert code == 0, err
    assert (tmp_path / "r.png").read_bytes().startswith(b"\x89PNG")

    code, out, err = await report_as_hr(config, "--team", "HR & People", "--locale", "en")
    assert code == 0, err
    assert "not enough answers from HR & People" in out
    assert "Loyalty summary: the organisation" in out

    code, out, err = await report_as_hr(config, "--team", "Nowhere")
    assert code == 2 and "--team" in err and "Nowhere" in err
    code, out, err = await report_as_hr(config, "--since", "2027-13-01")
    assert code == 2 and "--since" in err
    code, out, err = await report_as_hr(config, "--format", "pdf")
    assert code == 2 and "--format" in err

    async with db.session() as session:
        audit = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "loyalty.report"))
        )
    assert [a.detail["format"] for a in audit] == ["json", "csv", "html", "png", "text"]
    assert all(a.actor_label == HR and a.actor_person_id for a in audit)
    assert all(a.detail["route"] == "cli" for a in audit)


async def test_reports_act_for_a_named_person_with_their_role(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    """No anonymous command-line viewer: --as names the person, whose chat role applies."""
    await seed(db, clock, database_url, rounds=2)
    config = write_config(tmp_path, database_url)

    code, _, err = await fidelio(config, "report", "loyalty", "--format", "json")
    assert code == 2 and "--as" in err
    code, _, err = await fidelio(config, "report", "loyalty", "--as", "nobody@example.com")
    assert code == 2 and "--as" in err and "nobody@example.com" in err
    # A manager: their own team, not a sibling's.
    manager = "luca.moretti@demo.fidelio.example"  # Sales Milano
    code, out, err = await fidelio(config, "report", "loyalty", "--as", manager, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["summary"]["scope"] == "Sales Milano"
    code, _, err = await fidelio(
        config, "report", "loyalty", "--as", manager, "--team", "Sales Roma"
    )
    assert code == 2 and "--team" in err and "may not see" in err
    # An employee: the organisation only; comments are for HR.
    employee = "hannah.weber@demo.fidelio.example"
    code, _, err = await fidelio(
        config, "report", "loyalty", "--as", employee, "--team", "Sales Roma"
    )
    assert code == 2 and "may not see" in err
    code, _, err = await fidelio(config, "report", "comments", "--as", employee)
    assert code == 2 and "--as" in err and "HR" in err
    code, _, err = await fidelio(config, "indicators", "show", "--as", employee)
    assert code == 2 and "--as" in err


async def test_report_csv_cells_cannot_run_as_formulas(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    """Team names come from the directory file: in the CSV report they are neutralised
    (OWASP CSV injection) while the figures, negative ones too, stay numbers."""
    from sqlalchemy import update

    from bot.db.models import Team

    await seed(db, clock, database_url, rounds=3)
    async with db.session() as session:
        await session.execute(update(Team).where(Team.name == "Sales Milano").values(name="+cmd"))
        await session.execute(
            update(Team).where(Team.name == "Customer Care").values(name="@SUM(1)")
        )
    config = write_config(tmp_path, database_url)
    for team, shown in (("+cmd", "'+cmd"), ("@SUM(1)", "'@SUM(1)")):
        code, out, err = await report_as_hr(
            config, "--team", team, "--last", "2", "--format", "csv"
        )
        assert code == 0, err
        rows = list(csv.reader(io.StringIO(out)))
        assert rows[0] == ["scope", "round", "measure", "n", "value", "low", "high"]
        figures = rows[1:]
        assert figures and {r[0] for r in figures} == {shown}
        for row in figures:
            assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for cell in row), row
            for cell in row[3:]:
                if cell:
                    float(cell)  # a figure is a bare number, never quoted
        enps = [float(r[4]) for r in figures if r[2] == "enps" and r[4]]
        assert enps and all(-100 <= value <= 100 for value in enps)
        # Negative figures (an eNPS, its interval) stay numbers: "-18.1818", not "'-18.1818".
        assert any(cell.startswith("-") for r in figures for cell in r[4:])


async def test_comments_for_the_organisation_only_above_the_comment_threshold(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    from bot.db.models import Person

    from .harness import load_demo, make_settings
    from .loyalty_seed import closed_round, schedule_survey

    await load_demo(db, clock)
    campaign = await schedule_survey(make_settings(database_url), db, clock)
    items = ["sat_overall", "comment"]
    async with db.session() as session:
        ids = sorted(await session.scalars(select(Person.id).where(Person.leave_date.is_(None))))
    writers = {1: ids[:12], 2: ids[:4]}

    def answers(person: Person, number: int) -> dict[str, int | str | None]:
        given: dict[str, int | str | None] = {"sat_overall": 4 if number == 1 else 3}
        if person.id in writers[number]:
            given["comment"] = (
                f"Idea number {writers[number].index(person.id):02d} for round {number}"
            )
        return given

    many = await closed_round(db, campaign, 1, items, answers)
    few = await closed_round(db, campaign, 2, items, answers)
    config = write_config(tmp_path, database_url)

    code, out, err = await fidelio(config, "report", "comments", "--as", HR, "--last", "2")
    assert code == 0, err
    shown = [line.removeprefix("  • ") for line in out.splitlines() if line.startswith("  • ")]
    assert shown == [f"Idea number {i:02d} for round {many}" for i in range(12)]  # sorted
    assert f"round {few}" not in " ".join(shown)
    assert "4 wrote" in out and "withheld: fewer than 10 people" in out
    assert "Sales" not in out and "Headquarters" not in out  # no team goes with a comment
    async with db.session() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "loyalty.comments")
        )
    assert entry is not None and entry.detail["shown"] == [many]

    code, _, err = await fidelio(config, "report", "comments", "--as", HR, "--since", "2031-01-01")
    assert code == 2 and "--since" in err and "no closed pulse round" in err
