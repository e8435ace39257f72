"""Bad input of every kind: a clear error naming the place, nothing half-applied, and nothing
that a person types can crash the bot or inject markup into its messages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.config import ConfigError, load_settings
from bot.db.models import Person
from bot.db.session import Database
from bot.people import ImportFailed, import_people

from .fakes.telegram import FakeTelegramServer
from .harness import (
    REPO,
    fake_telegram,
    invite_code,
    load_demo,
    make_settings,
    running,
    telegram_section,
)
from .test_cli import fidelio, write_config

HEADER = (
    "email,name,team,parent_team,manager_email,role,locale,timezone,location,hire_date,leave_date\n"
)
GOOD_ROW = (
    "ok.person@example.com,Ok Person,Shop Torino,,,employee,it,Europe/Rome,Torino,2020-01-01,\n"
)


# Configuration


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("operations:\n  http_port: lots\n", "operations.http_port", "integer"),
        ("operations:\n  http_port: 70000\n", "operations.http_port", "65535"),
        ("operations:\n  log_format: xml\n", "operations.log_format", "'text' or 'json'"),
        ("privacy:\n  audit_retention_days: 0\n", "privacy.audit_retention_days", "1"),
        ("privacy:\n  keep_forever: true\n", "privacy.keep_forever", "unknown key"),
        ("operations: [1, 2]\n", "operations", "dictionary"),
    ],
)
def test_bad_operations_and_privacy_settings_name_the_key(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"content_dir: {REPO / 'content'}\n{text}", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert any(k == key and reason in r for k, r in caught.value.problems), caught.value.problems


def test_a_config_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes("organisation:\n  name: Caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert caught.value.problems == [("(file)", "not UTF-8 text (invalid continuation byte)")]


# People CSV


@pytest.mark.parametrize(
    ("content", "where", "reason"),
    [
        (HEADER.encode("utf-16"), "people.csv", "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "people.csv", "not UTF-8"),
        ((HEADER + GOOD_ROW.replace("2020-01-01", "31/12/2020")).encode(), ":2", "hire_date"),
        (
            (HEADER + GOOD_ROW.replace(",2020-01-01,", ",2020-01-01,2019-13-01")).encode(),
            ":2",
            "leave_date",
        ),
        (
            (HEADER + GOOD_ROW + GOOD_ROW.replace("ok.person@", "OK.Person@")).encode(),
            ":3",
            "appears on lines 2 and 3",
        ),
        (("\ufeffemail,name\n" + "a@example.com,A\n").encode(), "people.csv", "team"),
        ((HEADER + GOOD_ROW.replace("Ok Person", "Ok\u200b Person\u202e")).encode(), None, None),
    ],
    ids=[
        "utf16",
        "binary",
        "bad-date",
        "bad-month",
        "dup-email-case",
        "bom-missing-column",
        "odd-unicode-name",
    ],
)
async def test_bad_people_files_are_refused_whole_and_named(
    db: Database,
    clock: ManualClock,
    tmp_path: Path,
    content: bytes,
    where: str | None,
    reason: str | None,
) -> None:
    await load_demo(db, clock)
    path = tmp_path / "people.csv"
    path.write_bytes(content)
    if where is None:  # accepted: odd but valid text is stored as given
        await import_people(db, path, clock)
        async with db.session() as session:
            assert await session.scalar(select(func.count()).select_from(Person)) == 49
        return
    with pytest.raises(ImportFailed) as caught:
        await import_people(db, path, clock)
    assert any(
        where in p.where and reason in f"{p.where} {p.reason}" for p in caught.value.problems
    ), [(p.where, p.reason) for p in caught.value.problems]
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Person)) == 48  # unchanged


# Content files


@pytest.fixture
def content(tmp_path: Path) -> Path:
    folder = tmp_path / "content"
    shutil.copytree(REPO / "content", folder, ignore=shutil.ignore_patterns("demo"))
    return folder


@pytest.mark.parametrize(
    ("file", "data", "expected"),
    [
        (
            "briefings/spring-trade-in.md",
            "title: Caf\xe9".encode("latin-1"),
            "spring-trade-in.md: (file): not UTF-8",
        ),
        (
            "surveys/items.yaml",
            "items: [caf\xe9]".encode("latin-1"),
            "items.yaml: (file): not UTF-8",
        ),
        ("surveys/pulse-fortnightly.yaml", b"id: [unclosed", "pulse-fortnightly.yaml: line"),
        ("briefings/extra.md", b"\xef\xbb\xbf---\nid: x\n---\n", "extra.md: id"),
    ],
    ids=["latin1-briefing", "latin1-item-bank", "yaml-error", "bom-and-missing-fields"],
)
async def test_bad_content_files_are_named_without_a_traceback(
    tmp_path: Path, database_url: str, content: Path, file: str, data: bytes, expected: str
) -> None:
    (content / file).write_bytes(data)
    config = write_config(tmp_path, database_url, console={"enabled": True})
    config.write_text(config.read_text().replace(str(REPO / "content"), str(content)))
    code, out, err = await fidelio(config, "content", "check")
    text = " ".join((out + err).split())
    assert code == 2, text
    assert expected in text, text
    assert "Traceback" not in text


# Chat messages

ODD_MESSAGES = [
    "\u202eevil reversed text\u202c",  # RTL override
    "مرحبا، ما هي العروض؟",  # Arabic, right to left
    "he\u200bl\u200dp",  # zero-width space and joiner inside a command
    "\u0000\u0001\u0007",  # control characters
    "Z\u0335\u0336a\u0337\u0338l\u0334g\u0335o\u0336",  # combining marks
    "𝕳𝖊𝖑𝖑𝖔 👩🏽‍💻🏳️‍🌈",  # astral plane, emoji sequences
    "x" * 10_000,  # oversized
    "<b>bold</b> <a href='http://evil.example'>click</a> **md** [x](http://evil.example) `c`",
    "/" + "a" * 300,  # an absurd command
    "   ",
]


telegram = fake_telegram("telegram", 50.0)


async def test_odd_and_hostile_messages_get_a_polite_answer_and_inject_nothing(
    db: Database, clock: ManualClock, database_url: str, telegram: FakeTelegramServer
) -> None:
    await load_demo(db, clock)
    # A name that tries to inject markup into every template that shows it.
    async with db.session() as session:
        james = await session.scalar(
            select(Person).where(Person.email == "james.whitaker@demo.fidelio.example")
        )
        assert james is not None
        james.name = "James <i>x</i> **Bold** [link](http://evil.example) _u_"
    code = await invite_code(db, "james.whitaker@demo.fidelio.example", clock)
    telegram.add_user(913, "James")
    settings = make_settings(database_url, telegram=telegram_section(telegram))
    async with running(settings, clock):
        await telegram.send_text(913, f"/start {code}")
        welcome = (await telegram.wait_for_messages(913, 1))[0].text or ""
        sent = 1
        for text in ODD_MESSAGES + [f"/ask {ODD_MESSAGES[7]}"]:
            await telegram.send_text(913, text)
            sent += 1
            replies = await telegram.wait_for_messages(913, sent)
            answer = replies[-1].text or ""
            assert answer and "Traceback" not in answer, (text, answer)
            assert "something went wrong" not in answer, (text, answer)
        await telegram.send_text(913, "/whoami")
        whoami = (await telegram.wait_for_messages(913, sent + 1))[-1].text or ""
    for message in (welcome, whoami):
        assert "&lt;i&gt;x&lt;/i&gt;" in message
        assert "<i>x</i>" not in message and "<a " not in message
    everything = " ".join(m.text or "" for m in telegram.messages_to(913))
    assert "<a href" not in everything  # no link was smuggled into any message
    assert "<b>bold</b>" not in everything
    assert "too long for me (10000 characters" in everything
