"""Pulse survey content: the shipped item bank, every problem named by file and field, the
cadence across daylight saving time, item rotation and reminders kept off weekends."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.pulse.content import (
    COMMENT_ITEM,
    Cadence,
    Survey,
    load_survey_content,
    parse_items,
    parse_survey,
)

from .harness import REPO
from .test_cli import fidelio, write_config

ROME = ZoneInfo("Europe/Rome")
SURVEYS = REPO / "content" / "surveys"
ITEMS = (SURVEYS / "items.yaml").read_text(encoding="utf-8")
PULSE = (SURVEYS / "pulse-fortnightly.yaml").read_text(encoding="utf-8")
BANK, _ = parse_items(ITEMS, "items.yaml")

#: The dimensions the pulse must measure (MEASUREMENT.md and the loyalty model).
DIMENSIONS = {
    "overall_satisfaction",
    "trust_leadership",
    "trust_manager",
    "recognition",
    "frustration",
    "growth",
    "intent_to_stay",
    "enps",
    "product_advocacy",
    "service_climate",
    "news_before_customers",
    "willingness_to_speak",
}


def survey_of(text: str) -> Survey:
    survey, problems = parse_survey(text, "s.yaml", BANK)
    assert problems == [] and survey is not None, problems
    return survey


# The shipped content


def test_shipped_bank_covers_every_dimension_and_the_comment() -> None:
    content = load_survey_content(SURVEYS)
    assert content.problems == []
    by_dimension = {item.dimension: item for item in content.items.values()}
    assert DIMENSIONS <= set(by_dimension), DIMENSIONS - set(by_dimension)
    # eNPS and product advocacy are 0-10 recommendations; the rest are 1-5 agreement.
    assert by_dimension["enps"].kind == "scale0_10"
    assert by_dimension["product_advocacy"].kind == "scale0_10"
    for dimension in DIMENSIONS - {"enps", "product_advocacy"}:
        assert by_dimension[dimension].kind == "likert5", dimension
    # Frustration is the one reverse-keyed item (scored 6 - x before any index).
    assert [i.id for i in content.items.values() if i.reverse] == [by_dimension["frustration"].id]
    comment = content.items[COMMENT_ITEM]
    assert comment.kind == "text" and comment.dimension == "comment"
    for item in content.items.values():
        assert set(item.text) == {"en", "it"} and all(item.text.values()), item.id


def test_shipped_survey_and_snapshot_round_trip() -> None:
    content = load_survey_content(SURVEYS)
    assert [s.id for s in content.surveys] == ["pulse-fortnightly"]
    survey = content.surveys[0]
    assert survey.core == ("sat_overall", "intent_stay", "enps")
    assert len(survey.rotating) == 10 and survey.per_round == 4 and survey.comment
    assert survey.skip_weekends and survey.open_for_s == 4 * 86400
    assert Survey.from_json(survey.to_json()) == survey
    # Every item of the bank but the comment is asked, in core or in rotation.
    assert set(survey.core) | set(survey.rotating) == set(content.items) - {COMMENT_ITEM}


# Problems name the file and the field


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


ENPS_KIND = "  - id: enps\n    dimension: enps\n    kind: scale0_10\n"


@pytest.mark.parametrize(
    ("old", "new", "field", "reason"),
    [
        (ENPS_KIND, ENPS_KIND + "    reverse: true\n", "items[3] (enps).reverse", "likert5"),
        (
            "    dimension: growth\n",
            "    dimension: growth\n    colour: green\n",
            "items[9] (growth).colour",
            "unknown field",
        ),
        (
            '      it: "Tutto considerato, sono soddisfatto di lavorare qui."\n',
            "",
            "items[1] (sat_overall).text.it",
            "missing text for this locale",
        ),
        ("  - id: product_nps\n", "  - id: enps\n", "items[4] (enps).id", "used twice"),
        ("    kind: likert5\n", "    kind: stars\n", "items[1] (sat_overall).kind", "one of"),
        ("  - id: comment\n", "  - id: remarks\n", "items", "'comment'"),
    ],
    ids=["reverse-on-0-10", "unknown-field", "missing-locale", "duplicate-id", "kind", "comment"],
)
def test_item_bank_problems_name_file_and_field(
    tmp_path: Path, old: str, new: str, field: str, reason: str
) -> None:
    (tmp_path / "items.yaml").write_text(_replace(ITEMS, old, new), encoding="utf-8")
    (tmp_path / "pulse.yaml").write_text(PULSE, encoding="utf-8")
    content = load_survey_content(tmp_path)
    problems = {p.where: p.reason for p in content.problems}
    where = f"{tmp_path / 'items.yaml'}: {field}"
    assert where in problems, problems
    assert reason in problems[where]
    # A broken bank yields no items, so no survey can be scheduled from it.
    assert content.items == {}


@pytest.mark.parametrize(
    ("old", "new", "field", "reason"),
    [
        (
            "core: [sat_overall, intent_stay, enps]",
            "core: [sat_overall, intent_stay, happiness]",
            "core",
            "unknown item 'happiness'",
        ),
        (
            "core: [sat_overall, intent_stay, enps]",
            "core: [sat_overall, intent_stay, enps, comment]",
            "core",
            "text item",
        ),
        ('cron: "0 10 * * mon"', 'cron: "0 25 * * mon"', "cadence.cron", "five-field crontab"),
        ('cron: "0 10 * * mon"', 'cron: "every monday"', "cadence.cron", "five-field crontab"),
        (
            "timezone: Europe/Rome",
            "timezone: Europe/Atlantis",
            "cadence.timezone",
            "unknown time zone",
        ),
        ("per_round: 4", "per_round: 11", "rotating.per_round", "from 0 to 10"),
        (
            "reminders: [halfway, 24h before close]",
            "reminders: [halfway, 5d before close]",
            "reminders[2]",
            "longer than open_for",
        ),
        (
            "reminders: [halfway, 24h before close]",
            "reminders: [halfway, tomorrow]",
            "reminders[2]",
            "before close",
        ),
        ("skip_weekends: true", "skip_weekends: true\ncolour: blue", "colour", "unknown field"),
        (
            "  every_weeks: 2 ",
            "  every_weeks: 2\n  month: 3\n ",
            "cadence.month",
            "unknown field",
        ),
        ('  it: "Pulse quindicinale"\n', "", "title.it", "missing text for this locale"),
        ("open_for: 4d", "open_for: four days", "open_for", "not a duration"),
        ("start: 2027-01-04", "start: 2027-13-04", "cadence.start", "date like"),
        ("  everyone: true", "  everyone: true\n  shops: [Milano]", "audience.shops", "unknown"),
    ],
    ids=[
        "unknown-item",
        "text-in-core",
        "bad-cron-hour",
        "bad-cron-words",
        "bad-timezone",
        "per-round-too-big",
        "reminder-too-long",
        "reminder-form",
        "unknown-field",
        "unknown-cadence-field",
        "missing-locale",
        "open-for",
        "start",
        "audience",
    ],
)
def test_survey_problems_name_file_and_field(
    tmp_path: Path, old: str, new: str, field: str, reason: str
) -> None:
    (tmp_path / "items.yaml").write_text(ITEMS, encoding="utf-8")
    (tmp_path / "pulse.yaml").write_text(_replace(PULSE, old, new), encoding="utf-8")
    content = load_survey_content(tmp_path)
    problems = {p.where: p.reason for p in content.problems}
    where = f"{tmp_path / 'pulse.yaml'}: {field}"
    assert where in problems, problems
    assert reason in problems[where]
    assert content.surveys == []


def test_duplicate_survey_ids_name_the_second_file(tmp_path: Path) -> None:
    (tmp_path / "items.yaml").write_text(ITEMS, encoding="utf-8")
    (tmp_path / "a.yaml").write_text(PULSE, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(PULSE, encoding="utf-8")
    content = load_survey_content(tmp_path)
    assert [(p.where, p.reason) for p in content.problems] == [
        (f"{tmp_path / 'b.yaml'}: id", f"'pulse-fortnightly' is also used by {tmp_path / 'a.yaml'}")
    ]
    assert [s.source for s in content.surveys] == [str(tmp_path / "a.yaml")]


def test_a_missing_bank_and_yaml_errors_are_reported(tmp_path: Path) -> None:
    content = load_survey_content(tmp_path)
    assert [p.where for p in content.problems] == [f"{tmp_path / 'items.yaml'}: (file)"]
    survey, problems = parse_survey("id: [broken\n", "s.yaml", BANK)
    assert survey is None and problems[0].where.startswith("s.yaml: line ")


# Cadence


def test_cadence_keeps_local_time_across_the_march_dst_change() -> None:
    cadence = survey_of(PULSE).cadence
    found = cadence.occurrences(
        datetime(2027, 3, 10, tzinfo=ROME), datetime(2027, 4, 20, tzinfo=ROME)
    )
    local = [when.astimezone(ROME) for when in found]
    assert [d.date().isoformat() for d in local] == ["2027-03-15", "2027-03-29", "2027-04-12"]
    assert all((d.hour, d.minute) == (10, 0) for d in local)
    # Europe/Rome moves from +01:00 to +02:00 on Sunday 28 March 2027.
    assert [d.utcoffset() for d in local] == [
        timedelta(hours=1),
        timedelta(hours=2),
        timedelta(hours=2),
    ]
    assert [w.astimezone(ZoneInfo("UTC")).hour for w in found] == [9, 8, 8]
    # And back on 31 October: still 10:00 local, 09:00 UTC again.
    autumn = cadence.occurrences(
        datetime(2027, 10, 20, tzinfo=ROME), datetime(2027, 11, 10, tzinfo=ROME)
    )
    assert [(w.astimezone(ROME).hour, w.astimezone(ROME).utcoffset()) for w in autumn] == [
        (10, timedelta(hours=2)),
        (10, timedelta(hours=1)),
    ]


def test_cadence_respects_start_and_every_weeks() -> None:
    cadence = survey_of(PULSE).cadence
    found = cadence.occurrences(
        datetime(2026, 11, 1, tzinfo=ROME), datetime(2027, 2, 2, tzinfo=ROME)
    )
    # No Monday before 4 January 2027, then every second Monday.
    assert [w.astimezone(ROME).date().isoformat() for w in found] == [
        "2027-01-04",
        "2027-01-18",
        "2027-02-01",
    ]
    weekly = Cadence("0 10 * * mon", "Europe/Rome", 1, "2027-01-04")
    assert (
        len(
            weekly.occurrences(datetime(2027, 1, 1, tzinfo=ROME), datetime(2027, 2, 1, tzinfo=ROME))
        )
        == 4
    )
    # latest(): only an opening whose round would still be open.
    window = timedelta(days=4)
    assert cadence.latest(datetime(2027, 1, 7, tzinfo=ROME), window) == found[0]
    assert cadence.latest(datetime(2027, 1, 9, tzinfo=ROME), window) is None


def test_every_weeks_without_start_is_anchored_once() -> None:
    """Without ``start``, the alternate weeks are fixed when the survey is scheduled (pinned),
    not re-derived from whatever range is looked at (which would open a round every week)."""
    floating = Cadence("0 10 * * mon", "Europe/Rome", 2, None)
    pinned = floating.pinned(datetime(2027, 1, 6, 12, 0, tzinfo=ROME))  # a Wednesday
    assert pinned.start == "2027-01-11"
    window = timedelta(days=4)
    opened = [
        pinned.latest(datetime(2027, 1, 11, 12, 0, tzinfo=ROME) + timedelta(weeks=n), window)
        for n in range(5)
    ]
    assert [w.astimezone(ROME).date().isoformat() if w else None for w in opened] == [
        "2027-01-11",
        None,
        "2027-01-25",
        None,
        "2027-02-08",
    ]
    assert Cadence("0 10 * * mon", "Europe/Rome", 1).pinned(datetime(2027, 1, 6)).start is None


# Rounds


def test_rotation_covers_every_rotating_item_evenly() -> None:
    survey = survey_of(PULSE)
    rounds = [survey.items_for_round(n) for n in range(5)]
    for items in rounds:
        assert items[:3] == list(survey.core) and items[-1] == COMMENT_ITEM
        assert len(items) == 8 and len(set(items)) == 8
    asked = [item for items in rounds for item in items[3:-1]]
    # 5 rounds x 4 = 20 slots over 10 items: each item exactly twice, all by the third round.
    assert {item: asked.count(item) for item in survey.rotating} == dict.fromkeys(
        survey.rotating, 2
    )
    assert set(asked[:12]) == set(survey.rotating)
    no_comment = survey_of(_replace(PULSE, "comment: true", "comment: false"))
    assert COMMENT_ITEM not in no_comment.items_for_round(0)


FRIDAY = _replace(PULSE, 'cron: "0 10 * * mon"', 'cron: "0 10 * * fri"')


def test_reminders_move_off_weekends_and_never_past_close() -> None:
    opens = datetime(2027, 1, 8, 10, 0, tzinfo=ROME)  # a Friday
    # Open 4 days (to Tuesday 10:00): halfway is Sunday 10:00, moved to Monday 10:00;
    # 24h before close is Monday 10:00 already.
    survey = survey_of(FRIDAY)
    closes = opens + timedelta(seconds=survey.open_for_s)
    times = survey.reminder_times(opens, closes)
    assert [(i, w.astimezone(ROME)) for i, w in times] == [
        (0, datetime(2027, 1, 11, 10, 0, tzinfo=ROME)),
        (1, datetime(2027, 1, 11, 10, 0, tzinfo=ROME)),
    ]
    # Without skip_weekends the halfway reminder stays on Sunday.
    weekend = survey_of(_replace(FRIDAY, "skip_weekends: true", "skip_weekends: false"))
    assert weekend.reminder_times(opens, closes)[0][1] == datetime(2027, 1, 10, 10, 0, tzinfo=ROME)
    # Open 3 days (to Monday 10:00): halfway is Saturday 22:00, which would move to Monday
    # 22:00, after the close: dropped. "1h after open" stays on Friday.
    short = survey_of(
        _replace(
            _replace(FRIDAY, "open_for: 4d", "open_for: 3d"),
            "reminders: [halfway, 24h before close]",
            "reminders: [halfway, 1h after open]",
        )
    )
    closes = opens + timedelta(days=3)
    assert [(i, w.astimezone(ROME)) for i, w in short.reminder_times(opens, closes)] == [
        (1, datetime(2027, 1, 8, 11, 0, tzinfo=ROME))
    ]


def test_reminder_off_the_weekend_keeps_local_time_across_dst() -> None:
    survey = survey_of(FRIDAY)
    opens = datetime(2027, 3, 26, 10, 0, tzinfo=ROME)  # Friday before the change
    closes = opens + timedelta(seconds=survey.open_for_s)
    halfway = survey.reminder_times(opens, closes)[0][1].astimezone(ROME)
    assert (halfway.date().isoformat(), halfway.hour) == ("2027-03-29", 10)
    assert halfway.utcoffset() == timedelta(hours=2)


# Fidelio content check


async def test_content_check_reports_a_broken_survey_file_and_field(tmp_path: Path) -> None:
    content = tmp_path / "content"
    folder = content / "surveys"
    folder.mkdir(parents=True)
    (content / "templates").symlink_to(REPO / "content" / "templates")
    (content / "briefings").symlink_to(REPO / "content" / "briefings")
    (folder / "items.yaml").write_text(ITEMS, encoding="utf-8")
    (folder / "pulse-fortnightly.yaml").write_text(PULSE, encoding="utf-8")
    (folder / "broken.yaml").write_text(
        _replace(
            _replace(PULSE, "id: pulse-fortnightly", "id: broken-pulse"),
            "timezone: Europe/Rome",
            "timezone: Mars/Olympus",
        ),
        encoding="utf-8",
    )
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'f.db'}")
    config.write_text(config.read_text().replace(str(REPO / "content"), str(content)))
    code, out, err = await fidelio(config, "content", "check")
    assert code == 2, out + err
    assert (
        f"error {folder / 'broken.yaml'}: cadence.timezone: unknown time zone 'Mars/Olympus'"
        in err.replace("\n", "")
    )
    assert "ok pulse-fortnightly: cadence" in out
    assert "ok spring-trade-in" in out
    assert f"1 valid survey(s), 1 problem(s) in {folder}" in out.replace("\n", "")


async def test_content_check_summarises_the_shipped_survey(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'f.db'}")
    code, out, err = await fidelio(config, "content", "check")
    assert code == 0, err
    line = next(x for x in out.splitlines() if x.startswith("ok pulse-fortnightly"))
    assert 'cadence "0 10 * * mon" every 2 weeks in Europe/Rome' in line
    assert "next rounds: " in line and line.count(" 10:00") == 3
    assert "3 core + 10 rotating (4 per round), comment on" in line
    assert "reminders halfway, 24h before close (moved off weekends)" in line
    assert "1 valid survey(s), 0 problem(s)" in out
