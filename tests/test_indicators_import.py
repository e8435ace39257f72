"""``fidelio indicators import``: all or nothing, every bad line reported, months replaced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.db.models import AuditEntry, Team
from bot.db.session import Database
from bot.loyalty.indicators_import import import_indicators
from bot.loyalty.tables import IndicatorFigure
from bot.people import ImportFailed

from .harness import load_demo
from .test_cli import fidelio, write_config

HEADER = "team,period,absence_days,absence_spells,available_days,disciplinary_cases,initiative_participants,eligible"


def write(tmp_path: Path, text: str, name: str = "figures.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


async def stored(db: Database) -> dict[tuple[str, str], tuple[float, int, float, int, int, int]]:
    async with db.session() as session:
        rows = await session.execute(
            select(IndicatorFigure, Team.name).join(Team, Team.id == IndicatorFigure.team_id)
        )
        return {
            (name, f.period): (
                f.absence_days,
                f.absence_spells,
                f.available_days,
                f.disciplinary_cases,
                f.initiative_participants,
                f.eligible,
            )
            for f, name in rows
        }


async def test_a_clean_file_is_stored_and_reimporting_a_month_replaces_it(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    await load_demo(db, clock)
    first = write(
        tmp_path,
        f"\ufeff{HEADER}\n"  # the byte-order mark spreadsheets write is accepted
        "Sales Milano,2026-09,12.5,4,220,1,6,11\n"
        "Sales Roma,2026-09,3,1,180,0,9,9\n"
        "Marketing,2026-10,0,0,140,0,2,7\n",
    )
    summary = await import_indicators(db, first, clock)
    assert (summary.rows, summary.periods, summary.replaced) == (3, ("2026-09", "2026-10"), 0)
    assert (await stored(db))[("Sales Milano", "2026-09")] == (12.5, 4, 220.0, 1, 6, 11)

    # September again, corrected and without Sales Roma: the whole month is replaced,
    # October is untouched. Semicolons and decimal commas, as Italian spreadsheets export.
    second = write(
        tmp_path,
        HEADER.replace(",", ";") + "\nSales Milano;2026-09;10,5;3;220;0;7;11\n",
        "again.csv",
    )
    summary = await import_indicators(db, second, clock)
    assert (summary.rows, summary.periods, summary.replaced) == (1, ("2026-09",), 2)
    assert await stored(db) == {
        ("Sales Milano", "2026-09"): (10.5, 3, 220.0, 0, 7, 11),
        ("Marketing", "2026-10"): (0.0, 0, 140.0, 0, 2, 7),
    }
    async with db.session() as session:
        audit = list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "indicators_import")
            )
        )
    assert [a.detail["rows"] for a in audit] == [3, 1]


async def test_every_bad_line_is_reported_and_nothing_is_written(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    await load_demo(db, clock)
    good = write(tmp_path, f"{HEADER}\nMarketing,2026-08,1,1,100,0,1,5\n", "good.csv")
    await import_indicators(db, good, clock)
    before = await stored(db)
    bad = write(
        tmp_path,
        f"{HEADER}\n"
        "Sales Milano,2026-08,2,1,100,0,1,5\n"  # 2: fine
        "Atlantis,2026-08,2,1,100,0,1,5\n"  # 3: unknown team
        "Sales Roma,2026-13,2,1,100,0,1,5\n"  # 4: bad month
        "Sales Roma,2026-08,two,1,100,0,1,5\n"  # 5: bad number
        "Sales Roma,2026-08,2,1.5,100,0,1,-1\n"  # 6: spells and eligible not whole >= 0
        "Sales Milano,2026-08,3,1,100,0,1,5\n"  # 7: duplicate of line 2
        "Marketing,2026-08,120,1,100,0,9,5\n"  # 8: more absence than available, too many
        "Marketing,2026-08,1,1\n",  # 9: too few values
    )
    with pytest.raises(ImportFailed) as caught:
        await import_indicators(db, bad, clock)
    problems = [(p.where, p.reason) for p in caught.value.problems]
    wheres = [where for where, _ in problems]
    assert wheres == sorted(wheres, key=lambda w: int(w.rsplit(":", 1)[1]))
    text = "\n".join(f"{w} {r}" for w, r in problems)
    assert "figures.csv:3 team: unknown team 'Atlantis'" in text
    assert "figures.csv:4 period: '2026-13' is not a month written YYYY-MM" in text
    assert "figures.csv:5 absence_days: 'two' is not a number" in text
    assert "figures.csv:6 absence_spells: '1.5' is not a whole number" in text
    assert "figures.csv:6 eligible: '-1' is not a whole number" in text
    assert (
        "figures.csv:7 duplicate: team 'Sales Milano' and period 2026-08 already on line 2" in text
    )
    assert "figures.csv:8 absence_days: 120 is more than available_days 100" in text
    assert "figures.csv:8 initiative_participants: 9 is more than eligible 5" in text
    assert "figures.csv:9 4 values but the header has 8 columns" in text
    assert not any(w.endswith(":2") for w in wheres)
    assert await stored(db) == before  # nothing half-applied


@pytest.mark.parametrize(
    ("content", "encoding", "expected"),
    [
        (
            "team,period,absence_days\nSales Roma,2026-08,1\n",
            "utf-8",
            "missing column(s): absence_spells",
        ),
        (f"{HEADER},mood\n", "utf-8", "unknown column(s): mood"),
        (f"{HEADER}\nVendite Città,2026-08,1,1,10,0,1,5\n", "latin-1", "not UTF-8 text"),
        ("", "utf-8", "the file is empty"),
        (f"{HEADER}\n", "utf-8", "no figures"),
    ],
)
async def test_file_level_problems_are_named(
    db: Database, clock: ManualClock, tmp_path: Path, content: str, encoding: str, expected: str
) -> None:
    await load_demo(db, clock)
    path = write(tmp_path, content, encoding=encoding)
    with pytest.raises(ImportFailed) as caught:
        await import_indicators(db, path, clock)
    assert any(expected in p.reason for p in caught.value.problems), caught.value
    assert await stored(db) == {}


async def test_cli_imports_a_big_file_and_shows_the_indicators(
    db: Database, clock: ManualClock, database_url: str, tmp_path: Path
) -> None:
    await load_demo(db, clock)
    teams = [
        "Headquarters",
        "Customer Care",
        "HR & People",
        "Marketing",
        "Sales Milano",
        "Sales Roma",
    ]
    lines = [HEADER]
    for year in range(2010, 2027):
        for month in range(1, 13):
            for team in teams:
                lines.append(f"{team},{year}-{month:02d},2,1,100,1,3,10")
    path = write(tmp_path, "\n".join(lines) + "\n", "big.csv")
    config = write_config(tmp_path, database_url)
    code, out, err = await fidelio(config, "indicators", "import", str(path))
    assert code == 0, err
    assert f"Imported big.csv: {len(lines) - 1} rows" in out
    code, out, err = await fidelio(config, "indicators", "import", str(path))
    assert code == 0, err
    assert f"replacing {len(lines) - 1} rows stored for those months" in out

    code, out, err = await fidelio(
        config,
        "indicators",
        "show",
        "--as",
        "hr@demo.fidelio.example",
        "--team",
        "Sales Roma",
        "--since",
        "2026-01-01",
        "--until",
        "2026-12-31",
        "--json",
    )
    assert code == 0, err
    shown = json.loads(out)
    components = {c["name"]: c for c in shown["components"]}
    assert components["absence_rate"]["raw"] == pytest.approx(2.0)
    assert components["initiative_participation"]["raw"] == pytest.approx(30.0)
    assert components["absence_rate"]["mapped"] == pytest.approx(100 * 6 / 7)
    assert shown["voluntary_turnover"] is None and shown["bradford_share_above_trigger"] is None

    async with db.session() as session:
        views = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "indicators_view"))
        )
    assert [v.detail for v in views] == [
        {"team": "Sales Roma", "since": "2026-01-01", "until": "2026-12-31", "route": "cli"}
    ]
    assert [v.actor_label for v in views] == ["hr@demo.fidelio.example"]
    code, out, err = await fidelio(
        config, "indicators", "show", "--as", "hr@demo.fidelio.example", "--team", "Nowhere"
    )
    assert code == 2 and "--team" in err and "Nowhere" in err
    bad = write(tmp_path, f"{HEADER}\nNowhere,2026-01,1,1,10,0,0,0\n", "bad.csv")
    code, out, err = await fidelio(config, "indicators", "import", str(bad))
    assert code == 2 and "bad.csv:2" in err and "Nothing was imported" in err
    assert "Traceback" not in err
