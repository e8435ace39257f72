"""The ``fidelio`` command, run as a real process."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.db.models import AuditEntry, Invite, Person
from bot.db.session import Database

from .fakes.telegram import FakeTelegramServer
from .harness import REPO, STRONG_KEY, load_demo

HR = "hr@demo.fidelio.example"


def write_config(tmp_path: Path, database_url: str, **sections: object) -> Path:
    data: dict[str, object] = {
        "database": {"url": database_url},
        "content_dir": str(REPO / "content"),
        "organisation": {"name": "Demo Elettronica"},
        "logging": {"level": "INFO"},
        "security": {"secret_key": STRONG_KEY},
        **sections,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


async def start_fidelio(
    config: Path, *args: str, env_extra: dict[str, str] | None = None, **options: Any
) -> asyncio.subprocess.Process:
    """``fidelio -c config args`` started as a process, its output piped, with none of this
    process's ``FIDELIO_`` variables (``env_extra`` adds some); ``options`` go to the exec."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIDELIO_")}
    env.update(env_extra or {})
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "-c",
        str(config),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        **options,
    )


async def fidelio(
    config: Path,
    *args: str,
    stdin: str | None = None,
    timeout: float = 60.0,
    env_extra: dict[str, str] | None = None,
) -> tuple[int, str, str]:
    process = await start_fidelio(
        config, *args, env_extra=env_extra, stdin=asyncio.subprocess.PIPE, cwd=str(config.parent)
    )
    out, err = await asyncio.wait_for(
        process.communicate(stdin.encode() if stdin is not None else None), timeout
    )
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_chat_through_a_pipe_answers_help(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    await load_demo(db, clock)
    config = write_config(tmp_path, database_url)
    code, out, err = await fidelio(config, "chat", "--as", HR, stdin="help\nlanguage\n1\nwhoami\n")
    assert code == 0, err
    # Marta's directory language is Italian, until she picks English.
    assert "fidelio> Ciao Marta Galli, ecco cosa posso fare per te:" in out
    assert "• status — dimensione dell’anagrafica e copertura per canale (HR)" in out
    assert "[1] English  [2] Italiano" in out
    assert "I will write to you in English" in out
    assert out.rstrip().endswith("language: English · channel: console")


async def test_chat_as_unknown_person_is_a_clear_error(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    await load_demo(db, clock)
    config = write_config(tmp_path, database_url)
    code, _, err = await fidelio(config, "chat", "--as", "ghost@nowhere.example", stdin="help\n")
    assert code == 2
    assert "--as" in err and "ghost@nowhere.example" in err
    assert "Traceback" not in err


async def test_a_database_never_migrated_is_a_clear_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    for args in (("chat", "--as", HR), ("people", "list"), ("survey", "list")):
        code, _, err = await fidelio(config, *args, stdin="help\n")
        assert code == 2, (args, err)
        assert "fidelio db upgrade" in err and "Traceback" not in err, (args, err)


async def test_config_check_reports_key_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("anonymity:\n  min_group: 1\nslack:\n  enabled: true\n", encoding="utf-8")
    code, out, err = await fidelio(path, "config", "check")
    assert code == 2
    assert "anonymity.min_group" in err and "greater than or equal to 3" in err
    assert "Traceback" not in err
    good = tmp_path / "good" / "config.yaml"
    good.parent.mkdir()
    (good.parent / "content").symlink_to(REPO / "content")
    good.write_text((REPO / "config.yaml").read_text(), encoding="utf-8")
    code, out, err = await fidelio(good, "config", "check")
    assert code == 0, err
    assert "Configuration OK" in out and "channels: console" in out


async def test_db_upgrade_then_demo_load_is_repeatable(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'new' / 'f.db'}")
    code, out, err = await fidelio(config, "db", "upgrade")
    assert code == 0, err
    from alembic.script import ScriptDirectory

    from bot.db.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert f"Database at revision {head}" in out
    code, out, _ = await fidelio(config, "demo", "load")
    assert code == 0 and "48 created" in out
    code, out, _ = await fidelio(config, "demo", "load")
    assert code == 0 and "48 unchanged" in out


async def test_people_import_reports_every_bad_line_and_changes_nothing(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    await load_demo(db, clock)
    bad = tmp_path / "people.csv"
    bad.write_text(
        "email,name,team,role,locale,hire_date\n"
        "new.person@demo.fidelio.example,New Person,Marketing,employee,en,2024-01-01\n"
        "not-an-email,Someone,Marketing,employee,en,2024-01-01\n"
        "other@demo.fidelio.example,Other,Marketing,chief,en,2024-01-01\n"
        "third@demo.fidelio.example,Third,Marketing,employee,fr,2024-13-01\n",
        encoding="utf-8",
    )
    config = write_config(tmp_path, database_url)
    code, _, err = await fidelio(config, "people", "import", str(bad))
    assert code == 2
    assert "Nothing was imported" in err
    for line in ("people.csv:3", "people.csv:4", "people.csv:5"):
        assert line in err
    assert "people.csv:2" not in err
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Person)) == 48


async def test_invites_exported_to_csv_with_hashed_codes(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    await load_demo(db, clock)
    config = write_config(tmp_path, database_url)
    target = tmp_path / "links.csv"
    code, out, err = await fidelio(
        config,
        "people",
        "invite",
        "--team",
        "Customer Care",
        "--bot-username",
        "fidelio_demo_bot",
        "-o",
        str(target),
    )
    assert code == 0, err
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert rows and all(r["team"] == "Customer Care" for r in rows)
    codes = [r["link"].removeprefix("https://t.me/fidelio_demo_bot?start=") for r in rows]
    assert all(len(c) >= 30 and "/" not in c for c in codes)
    async with db.session() as session:
        hashes = set(await session.scalars(select(Invite.code_hash)))
        assert {hashlib.sha256(c.encode()).hexdigest() for c in codes} == hashes
        audit = await session.scalar(select(AuditEntry).where(AuditEntry.action == "invites.issue"))
        assert audit is not None and audit.detail["count"] == len(rows)

    code, _, err = await fidelio(
        config, "people", "invite", "--team", "Nowhere", "--bot-username", "b"
    )
    assert code == 2 and "--team" in err and "Nowhere" in err


async def test_run_serves_telegram_and_stops_cleanly_on_sigterm(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    await load_demo(db, clock)
    async with FakeTelegramServer(rate_scale=20.0) as fake:
        fake.add_user(4242, "Stranger", language_code="it")
        config = write_config(
            tmp_path,
            database_url,
            console={"enabled": False},
            telegram={
                "enabled": True,
                "token": fake.token,
                "base_url": fake.base_url,
                "base_file_url": fake.base_file_url,
                "poll_timeout_s": 1,
            },
        )
        process = await start_fidelio(config, "run")
        assert process.stderr is not None
        lines: list[str] = []
        try:
            while not any("Fidelio started" in line for line in lines):
                line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
                assert line, "fidelio run exited early:\n" + "".join(lines)
                lines.append(line)
            started = next(line for line in lines if "Fidelio started" in line)
            assert "channels=telegram" in started and "scheduler=active" in started
            await fake.send_text(4242, "/start")
            reply = (await fake.wait_for_messages(4242, 1, timeout=15))[0]
            assert "Non ti conosco ancora" in (reply.text or "")
        finally:
            process.send_signal(signal.SIGTERM)
            rest = (await asyncio.wait_for(process.stderr.read(), 30)).decode()
            code = await process.wait()
    assert code == 0, rest
    assert "Fidelio stopped" in rest
    assert "Traceback" not in rest


async def test_run_with_console_ends_with_its_input(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    """What ``make run`` starts: the console as the demo HR person; end of input stops it."""
    await load_demo(db, clock)
    config = write_config(tmp_path, database_url, console={"enabled": True, "as_email": HR})
    code, out, err = await fidelio(config, "run", stdin="whoami\n")
    assert code == 0, err
    assert "Marta Galli (hr@demo.fidelio.example)" in out
    assert "Fidelio started: channels=console" in err
    assert "Fidelio stopped" in err


async def test_a_weak_secret_key_stops_telegram_and_slack_but_not_the_console(
    tmp_path: Path,
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'f.db'}"
    telegram = {"enabled": True, "token": "123456:test-token"}
    slack = {"enabled": True, "bot_token": "xoxb-test", "app_token": "xapp-test"}
    too_short = "x" * 31  # one byte short of the 32 required
    for channel in ({"telegram": telegram}, {"slack": slack}):
        for key in ("change-me-in-production", too_short, "é" * 15 + "x"):  # 31 bytes as UTF-8
            config = write_config(
                tmp_path,
                database,
                console={"enabled": False},
                security={"secret_key": key},
                **channel,
            )
            for args in (("config", "check"), ("run",)):
                code, out, err = await fidelio(config, *args, timeout=30)
                assert code == 2, (channel, key, args, out, err)
                lines = err.strip().splitlines()
                assert len(lines) == 1, err  # one line, no traceback
                assert "FIDELIO_SECRET_KEY" in lines[0]
                assert 'python -c "import secrets; print(secrets.token_urlsafe(48))"' in lines[0]
                reason = "default value" if key.startswith("change-me") else "31 bytes long"
                assert reason in lines[0]
                assert "Configuration OK" not in out and "Fidelio started" not in err
        config = write_config(
            tmp_path,
            database,
            console={"enabled": False},
            security={"secret_key": "k" * 32},
            **channel,
        )
        code, out, err = await fidelio(config, "config", "check")
        assert code == 0, err
        assert "Configuration OK" in out and "warning" not in err

    # The console alone keeps working with the default key (`make run` on a fresh clone),
    # with a warning.
    config = write_config(tmp_path, database, security={"secret_key": "change-me-in-production"})
    code, out, err = await fidelio(config, "config", "check")
    assert code == 0, err
    assert "Configuration OK" in out
    assert "warning" in err and "FIDELIO_SECRET_KEY" in err


async def test_the_shipped_config_takes_the_key_from_fidelio_secret_key(tmp_path: Path) -> None:
    """The variable the refusal names is the one that fixes it."""
    folder = tmp_path / "shipped"
    folder.mkdir()
    (folder / "content").symlink_to(REPO / "content")
    shipped = folder / "config.yaml"
    shipped.write_text((REPO / "config.yaml").read_text(), encoding="utf-8")
    env = {"FIDELIO_TELEGRAM_ENABLED": "true", "TELEGRAM_BOT_TOKEN": "123456:test-token"}
    code, _, err = await fidelio(shipped, "config", "check", env_extra=env)
    assert code == 2 and "FIDELIO_SECRET_KEY" in err and "Traceback" not in err
    code, out, err = await fidelio(
        shipped, "config", "check", env_extra={**env, "FIDELIO_SECRET_KEY": STRONG_KEY}
    )
    assert code == 0, err
    assert "channels: console, telegram" in out and "warning" not in err


async def test_invite_csv_cells_cannot_run_as_formulas(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    """Names and teams come from the directory file; in the exported CSV none runs as a
    formula when HR opens it in a spreadsheet (OWASP CSV injection)."""
    people = tmp_path / "people.csv"
    with people.open("w", newline="", encoding="utf-8") as handle:
        rows = csv.writer(handle)
        rows.writerow(["email", "name", "team", "role", "locale", "hire_date"])
        rows.writerow(["mallory@x.example", '=HYPERLINK("http://x","y")', "+cmd", "hr", "en", ""])
        rows.writerow(["eve@x.example", "@SUM(1)", "+cmd", "employee", "en", ""])
        rows.writerow(["trent@x.example", "-2+3", "@SUM(1)", "employee", "en", ""])
        rows.writerow(["ann@x.example", "Ann Normal", "Ops", "employee", "en", ""])
    config = write_config(tmp_path, database_url)
    code, _, err = await fidelio(config, "people", "import", str(people))
    assert code == 0, err
    target = tmp_path / "links.csv"
    code, _, err = await fidelio(
        config, "people", "invite", "--bot-username", "fidelio_demo_bot", "-o", str(target)
    )
    assert code == 0, err
    with target.open(newline="", encoding="utf-8") as handle:
        read = list(csv.reader(handle))
    assert read[0] == ["email", "name", "team", "link", "expires_at"]
    by_email = {row[0]: row for row in read[1:]}
    assert by_email["mallory@x.example"][1:3] == ['\'=HYPERLINK("http://x","y")', "'+cmd"]
    assert by_email["eve@x.example"][1:3] == ["'@SUM(1)", "'+cmd"]
    assert by_email["trent@x.example"][1:3] == ["'-2+3", "'@SUM(1)"]
    assert by_email["ann@x.example"][1:3] == ["Ann Normal", "Ops"]  # plain text untouched
    for row in read:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row), row
