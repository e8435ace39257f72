"""Briefing files: every problem names the file, the field and the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.briefings.body import markdown_to_neutral, render_body
from bot.briefings.content import Briefing, check_briefings, parse_briefing
from bot.briefings.search import passages_for, search

from .harness import REPO
from .test_cli import fidelio, write_config

GOOD = (REPO / "content" / "briefings" / "spring-trade-in.md").read_text(encoding="utf-8")
NOW = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)


def problems_of(text: str) -> dict[str, str]:
    briefing, problems = parse_briefing(text, "x.md")
    assert briefing is None
    return {p.where.removeprefix("x.md: "): p.reason for p in problems}


def test_shipped_briefings_are_valid() -> None:
    result = check_briefings(REPO / "content" / "briefings", NOW)
    assert result.problems == []
    assert {b.id for b in result.briefings} == {"aurora-oled-55", "spring-trade-in"}
    assert {b.kind for b in result.briefings} == {"product", "promotion"}


def test_snapshot_round_trip() -> None:
    briefing, _ = parse_briefing(GOOD, "x.md")
    assert briefing is not None
    assert Briefing.from_json(briefing.to_json()) == briefing


@pytest.mark.parametrize(
    ("old", "new", "field", "reason"),
    [
        ("kind: promotion", "kind: discount", "kind", "must be one of product, promotion"),
        (
            '    correct: 2\n    explanation:\n      en: "Broken',
            '    correct: 4\n    explanation:\n      en: "Broken',
            "quiz[1].correct",
            "1 to 3",
        ),
        ("brief: 3d", "brief: soon", "brief", "neither a lead time"),
        (
            "launch_at: 2027-03-01 09:00 Europe/Rome",
            "launch_at: next spring",
            "launch_at",
            "not a date-time",
        ),
        (
            "launch_at: 2027-03-01 09:00 Europe/Rome",
            "launch_at: 2027-03-01 09:00 Mars/Base",
            "launch_at",
            "unknown time zone",
        ),
        (
            "  teams_only: [Customer Care]\n",
            "  teams_only: [Customer Care]\n  shops: [x]\n",
            "audience.shops",
            "unknown field",
        ),
        (
            "reminders: [24h after briefing, 6h before launch]",
            "reminders: [tomorrow]",
            "reminders[1]",
            "after briefing",
        ),
        (
            '  it: "Permuta di primavera: fino a 300 euro per il vecchio TV"\n',
            "",
            "title.it",
            "missing text for this locale",
        ),
        ("::: it\n", "::: fr\n", "body", "not in locales"),
        (
            "expires_at: 2027-04-30 20:00 Europe/Rome",
            "expires_at: 2027-02-01 20:00 Europe/Rome",
            "expires_at",
            "after launch_at",
        ),
        ("id: spring-trade-in", "id: Spring Trade In!", "id", "3-32 characters"),
    ],
)
def test_each_problem_names_its_field(old: str, new: str, field: str, reason: str | None) -> None:
    assert old in GOOD, old
    problems = problems_of(GOOD.replace(old, new, 1))
    assert field in problems, problems
    if reason:
        assert reason in problems[field]


#: The keywords of the shipped file's last FAQ entry ("Is the offer valid online?").
KEYWORDS = "    keywords: {en: [website, order online], it: [sito, ordine online]}\n"


def test_faq_keywords_per_locale_or_shared_travel_with_the_snapshot() -> None:
    briefing, _ = parse_briefing(GOOD, "x.md")
    assert briefing is not None
    assert briefing.faq[3].keywords == {
        "en": ["website", "order online"],
        "it": ["sito", "ordine online"],
    }
    shared, _ = parse_briefing(GOOD.replace(KEYWORDS, "    keywords: [web, ' e-shop ']\n"), "x.md")
    assert shared is not None
    assert shared.faq[3].keywords == {"en": ["web", "e-shop"], "it": ["web", "e-shop"]}
    only_it, _ = parse_briefing(GOOD.replace(KEYWORDS, "    keywords: {it: [sito]}\n"), "x.md")
    assert only_it is not None and only_it.faq[3].keywords == {"it": ["sito"]}
    assert Briefing.from_json(briefing.to_json()) == briefing
    # A campaign scheduled before keywords existed still loads, with none.
    old = briefing.to_json()
    for entry in old["faq"]:
        del entry["keywords"]
    assert all(entry.keywords == {} for entry in Briefing.from_json(old).faq)


@pytest.mark.parametrize(
    ("keywords", "field", "reason"),
    [
        ("televisore", "faq[4].keywords", "must be a list of words or phrases, or one list per"),
        ("[tv, '']", "faq[4].keywords", "item 2 is empty"),
        ("[55, tv]", "faq[4].keywords", "item 1 (55) must be a text: put it in quotes"),
        ("[[tv, televisore]]", "faq[4].keywords", "item 1 must be a text, not a list"),
        ("{it: [sito, '  ']}", "faq[4].keywords.it", "item 2 is empty"),
        ("{it: sito}", "faq[4].keywords.it", "must be a list of words or phrases"),
        ("{fr: [site]}", "faq[4].keywords.fr", "this locale is not listed in locales"),
        (f"['{'x' * 61}']", "faq[4].keywords", "longer than 60 characters"),
    ],
)
def test_malformed_keywords_name_the_entry_and_the_item(
    keywords: str, field: str, reason: str
) -> None:
    problems = problems_of(GOOD.replace(KEYWORDS, f"    keywords: {keywords}\n"))
    assert field in problems, problems
    assert reason in problems[field]


def test_the_default_zone_applies_to_local_times() -> None:
    briefing, problems = parse_briefing(GOOD.replace(" Europe/Rome", ""), "x.md", "Europe/Rome")
    assert problems == [] and briefing is not None
    assert briefing.launch_at.utcoffset() == timedelta(hours=1)


def test_yaml_errors_give_a_line() -> None:
    problems = problems_of(GOOD.replace("kind: promotion", "kind: [promotion"))
    assert any(key.startswith("front matter line") for key in problems)


def test_missing_front_matter() -> None:
    assert "(file)" in problems_of("# just markdown\n")


def test_template_errors_in_the_body_are_caught() -> None:
    problems = problems_of(GOOD.replace("From {{ launch_local }}", "From {{ launch_local "))
    assert "body.en" in problems and "template error" in problems["body.en"]


def test_a_quiz_needs_acknowledgement_and_body_variables_must_exist() -> None:
    problems = problems_of(GOOD.replace("ack_required: true", "ack_required: false"))
    assert "needs ack_required: true" in problems["quiz"]
    problems = problems_of(GOOD.replace("{{ launch_local }} until", "{{ launch_date }} until"))
    assert "launch_date" in problems["body.en"] and "launch_local" in problems["body.en"]


def test_readiness_note_time_follows_the_lead_time() -> None:
    from bot.briefings.service import readiness_at

    briefing, _ = parse_briefing(GOOD, "x.md")
    assert briefing is not None
    assert readiness_at(briefing) == briefing.launch_at - timedelta(hours=24)
    short, _ = parse_briefing(GOOD.replace("brief: 3d", "brief: 10h"), "x.md")
    assert short is not None
    assert readiness_at(short) == short.launch_at - timedelta(hours=5)


def test_late_lead_time_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "b.md").write_text(GOOD, encoding="utf-8")
    result = check_briefings(tmp_path, datetime(2027, 2, 27, 12, 0, tzinfo=UTC))
    assert result.problems == []
    assert len(result.warnings) == 1
    assert result.warnings[0].where.endswith("b.md: brief")
    assert (
        "already past" in result.warnings[0].reason and "before launch" in result.warnings[0].reason
    )


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.md").write_text(GOOD, encoding="utf-8")
    result = check_briefings(tmp_path, NOW)
    assert [p.where for p in result.problems] == [f"{tmp_path / 'b.md'}: id"]


def test_body_rendering_and_markdown() -> None:
    briefing, _ = parse_briefing(GOOD, "x.md")
    assert briefing is not None
    body = render_body(briefing, "en", "Europe/London")
    assert body.startswith("**The offer**\nFrom 1 Mar 2027, 08:00 GMT until 30 April")
    assert "• **300 euro** for a working TV" in body
    assert markdown_to_neutral("## Head\n* item") == "**Head**\n• item"


def test_ask_ranks_the_faq_in_either_language() -> None:
    briefing, _ = parse_briefing(GOOD, "x.md")
    assert briefing is not None
    english = search(passages_for(briefing, 1, "en"), "do I need to bring the old TV to the shop")
    assert english[0].passage.question == "Do I have to bring the old TV to the shop?"
    italian = search(passages_for(briefing, 1, "it"), "finanziamento")
    assert italian[0].passage.question == "La permuta si può unire al finanziamento?"
    assert search(passages_for(briefing, 1, "en"), "the of and") == []


async def test_content_check_command_reports_file_and_field(tmp_path: Path) -> None:
    folder = tmp_path / "content" / "briefings"
    folder.mkdir(parents=True)
    (tmp_path / "content" / "templates").symlink_to(REPO / "content" / "templates")
    (folder / "good.md").write_text(GOOD, encoding="utf-8")
    (folder / "broken.md").write_text(
        GOOD.replace("id: spring-trade-in", "id: broken-one")
        .replace("kind: promotion", "kind: flyer")
        .replace(KEYWORDS, "    keywords: {it: [sito, '']}\n"),
        encoding="utf-8",
    )
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'f.db'}")
    config.write_text(config.read_text().replace(str(REPO / "content"), str(tmp_path / "content")))
    code, out, err = await fidelio(config, "content", "check")
    assert code == 2
    assert f"{folder / 'broken.md'}: kind: must be one of product, promotion" in err.replace(
        "\n", ""
    )
    assert f"{folder / 'broken.md'}: faq[4].keywords.it: item 2 is empty" in err.replace("\n", "")
    assert "ok spring-trade-in" in out
    assert "1 valid briefing(s), 2 problem(s)" in out
