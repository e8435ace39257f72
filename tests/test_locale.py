"""Every text a person reads comes from their locale: each template and label exists in English
and Italian, renders with a representative context in both, and the Italian output holds no
English outside names, titles and the commands people type."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jinja2 import meta

from bot.clock import ManualClock
from bot.db.models import CampaignStatus, Role
from bot.db.session import Database
from bot.pulse.tables import RoundStatus
from bot.render import Renderer
from bot.suggestions.tables import SuggestionStatus

from .harness import REPO
from .italian import english_words

TEMPLATES = REPO / "content" / "templates"
LOCALES = ("en", "it")
#: Templates that only define macros for the others.
MACROS = {"suggestions/macros", "dialogues/names"}


def template_names(locale: str) -> set[str]:
    root = TEMPLATES / locale
    return {str(p.relative_to(root))[: -len(".j2")] for p in root.rglob("*.j2")}


def labels(locale: str) -> dict[str, str]:
    data = yaml.safe_load((TEMPLATES / locale / "labels.yaml").read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data.items()}


# Names and titles in the sample contexts (allowed in any language)

WHERE = "content/briefings/x.md: expires_at"
NAMES = ("Marta Galli", "Vendite Milano", "Demo Elettronica", "Permuta di primavera", WHERE)
TITLE = {"en": "Spring trade-in", "it": "Permuta di primavera"}
WHEN = "2027-03-15T09:00:00+01:00"
LATER = "2027-03-20T18:00:00+01:00"

#: One representative value for every variable a template uses.
SAMPLE: dict[str, Any] = {
    "continue": True,
    "flow": "suggest",
    "action": "paused",
    "name": "Marta Galli",
    "organisation": "Demo Elettronica",
    "email": "marta.galli@demo.fidelio.example",
    "team": "Vendite Milano",
    "role": Role.hr.value,
    "language": "Italiano",
    "current": "Italiano",
    "title": TITLE,
    "summary": {"en": "Trade in your old phone.", "it": "Permuta del vecchio telefono."},
    "body": "Testo del briefing.",
    "faq": [{"q": "Domanda?", "a": "Risposta."}],
    "before_launch": False,
    "quiz_questions": 3,
    "late": False,
    "launch_at": LATER,
    "brief_at": WHEN,
    "closes_at": LATER,
    "created_at": WHEN,
    "since": WHEN,
    "taken_at": WHEN,
    "hits": [{"title": "Permuta di primavera", "question": "Domanda?", "text": "Risposta."}],
    "query": "permuta",
    "searched": 2,
    "campaigns": [
        {
            "id": 3,
            "title": "Permuta di primavera",
            "status": s.value,
            "starts_at": WHEN,
            "launch_at": LATER,
        }
        for s in CampaignStatus
    ],
    "id": 3,
    "items": [],
    "number": 2,
    "total": 5,
    "question": {"en": "Which phones?", "it": "Quali telefoni?"},
    "score": 4,
    "wrong": [{"number": 2, "correct": "B", "explanation": "Spiegazione."}],
    "not_yet": False,
    "teams": [],
    "warnings": [
        {"key": "briefing_expired", "id": "spring"},
        {"key": "launch_past"},
        {"key": "brief_past", "brief_at": WHEN, "lead": 18000},
    ],
    "note": "",
    "where": WHERE,
    "reason": "Motivo.",
    "status": CampaignStatus.paused.value,
    "campaign": 4,
    "schedule": 4,
    "survey": "pulse-fortnightly",
    "command": "hlep",
    "similar": ["help"],
    "length": 5000,
    "limit": 4000,
    "given": "klingon",
    "choices": "en, it",
    "sections": [],
    "questions": 8,
    "rounds": [],
    "kind": "likert5",
    "text": {"en": "I am satisfied.", "it": "Sono soddisfatto."},
    "k": 5,
    "live": True,
    "pooled": {"invited": 10, "finished": 1, "started": 2},
    "refresh_min": 15,
    "step": 5,
    "schedules": [],
    "people": 48,
    "reach": {"console": 2, "telegram": 30},
    "reference": "S-0001",
    "anonymous": True,
    "answer": "Risposta.",
    "author": "Marta Galli",
    "excerpt": "Estratto.",
    "category": "Negozio",
    "events": [],
    "merged_into": "S-0002",
    "published": True,
    "votes": 3,
    "filters": "nuovi",
    "categories": "negozio, prodotti",
    "source": "S-0002",
    "target": "S-0001",
    "findings": [{"kind": "email", "text": "a@b.example"}, {"kind": "phone", "text": "333"}],
    "own_team": False,
    "reply": "Risposta.",
    "added": True,
    "scope": "Vendite Milano",
    "round": 3,
    "parent": "Vendite",
    "digest": "8 gen 2027",
    "alpha": "0.81",
    "enps": "+12",
    "enps_change": {"delta": "+4", "beyond_noise": False},
    "enps_ci": "−10 … +30",
    "enps_low_precision": True,
    "enps_n": 12,
    "index": "64",
    "index_change": {"delta": "+2", "beyond_noise": True},
    "index_ci": "55 … 73",
    "index_n": 12,
    "invited": 20,
    "latest": "8 gen 2027",
    "previous": "25 dic 2026",
    "product_nps": "+20",
    "product_nps_ci": "0 … +40",
    "reportable_rounds": 2,
    "respondents": 12,
    "response_rate": "60%",
    "segments": [{"name": "apostoli", "share": "30%", "range": "15 … 50"}],
    "strongest": [{"name": "Crescita", "favorable": "80%"}],
    "weakest": [{"name": "Riconoscimento", "favorable": "30%"}],
    "problem": "rounds",
    "most": 12,
    "teams_count": 6,
    "link": "https://slack.com/app_redirect?app=A0FIDELIO&team=T0DEMO",
    "launched": True,
    "to_read": True,
    "answered": 1,
    "more": 12,
    "commands": ["briefings"],
    "more_teams": 2,
    "waiting": True,
    "opens_at": LATER,
    "starts_at": WHEN,
    "started": False,
    "minutes": 10,
    "url": "http://127.0.0.1:8080/sign-in/abc",
}

#: Further contexts per template, so each branch (and each status) is rendered too.
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "dialogues/left": [
        {"action": action, "flow": flow}
        for action in ("paused", "discarded", "ended")
        for flow in ("suggest", "sugg_answer", "sugg_triage", "pulse_text")
    ],
    "dialogues/cancelled": [{"flow": f} for f in ("sugg_answer", "sugg_triage", "pulse_text")],
    "dialogues/back": [{"flow": f} for f in ("sugg_answer", "sugg_triage", "pulse_text")],
    "briefings/acknowledged": [{"before_launch": True, "quiz_questions": 0}],
    "briefings/ask_result": [{"hits": []}, {"hits": [], "searched": 0}],
    "briefings/card": [{"late": True, "quiz_questions": 0}],
    "home/briefing": [{"launched": False, "to_read": False, "questions": 0}],
    "home/idea": [
        {"reference": "S-0001", "category": "Negozio", "status": s.value, "excerpt": "Testo."}
        for s in SuggestionStatus
    ],
    "home/suggestion": [
        {
            "reference": "S-0001",
            "category": "Negozio",
            "status": s.value,
            "excerpt": "Testo.",
            "merged_into": "S-0002",
            "waiting": True,
        }
        for s in SuggestionStatus
    ],
    "home/more": [{"commands": []}],
    "home/upcoming": [{"kind": k, "started": True} for k in ("briefing", "survey")],
    "home/readiness": [{"launched": True, "more_teams": 0}],
    "briefings/campaign_list": [{"campaigns": []}],
    "briefings/list": [
        {
            "items": [
                {
                    "title": TITLE,
                    "launched": launched,
                    "launch_at": LATER,
                    "acknowledged": ack,
                    "total": 3,
                    "score": score,
                }
                for launched, ack, score in (
                    (True, True, 2),
                    (False, True, None),
                    (False, False, None),
                )
            ]
        }
    ],
    "briefings/quiz_result": [{"wrong": []}],
    "briefings/readiness_none": [{"not_yet": True}],
    "briefings/readiness_note": [
        {
            "teams": [
                {
                    "team": "Vendite Milano",
                    "audience": 11,
                    "reached_pct": 90.0,
                    "ack_before_launch_pct": 70.0,
                    "mean_score_pct": None,
                    "most_missed": 2,
                    "most_missed_text": {"en": "Which?", "it": "Quale?"},
                    "not_acknowledged": ["Marta Galli"],
                },
                {
                    "team": "Vendite Roma",
                    "audience": 9,
                    "reached_pct": 100.0,
                    "ack_before_launch_pct": 50.0,
                    "mean_score_pct": 80.0,
                    "most_missed": None,
                    "not_acknowledged": [],
                },
            ],
            "total": {
                "audience": 20,
                "reached_pct": 95.0,
                "ack_before_launch_pct": 60.0,
                "mean_score_pct": 80.0,
            },
        }
    ],
    "briefings/reminder": [{"late": True}],
    "charts/caption": [{"note": "Nota."}],
    "errors/input/campaign_status": [{"status": s.value} for s in CampaignStatus],
    "errors/input/schedule_status": [{"status": s.value} for s in CampaignStatus],
    "errors/not_understood": [{"similar": []}, {"similar": ["summary", "survey"]}],
    "errors/unknown_command": [{"similar": []}],
    "help_list": [{"sections": []}],  # filled in by the test from the real registry
    "pulse/list": [{"rounds": [{"title": TITLE, "answered": 2, "total": 8, "closes_at": LATER}]}],
    "pulse/question": [
        {"kind": kind, "current": current}
        for kind, current in (("scale0_10", 7), ("text", None), ("choice", "Sì"))
    ]
    + [{"kind": "text", "current": None, "channel": "slack"}],
    "pulse/rates": [
        {
            "status": s.value,
            "live": s == RoundStatus.open,
            "pooled": None,
            "teams": [{"team": "Vendite Milano", "invited": 11, "finished": 5}],
        }
        for s in RoundStatus
    ],
    "pulse/schedules": [
        {
            "schedules": [
                {
                    "id": 1,
                    "title": "Permuta di primavera",
                    "status": s.value,
                    "rounds": [
                        {
                            "id": 2,
                            "number": 1,
                            "status": r.value,
                            "opens_at": WHEN,
                            "closes_at": LATER,
                        }
                        for r in RoundStatus
                    ],
                }
                for s in CampaignStatus
            ]
        }
    ],
    "pulse/status_changed": [{"status": s.value} for s in CampaignStatus],
    "status": [{"reach": {}}],
    "suggestions/answer_sent": [{"anonymous": False}],
    "suggestions/answered": [{"author": None}],
    "suggestions/detail": [
        {
            "status": s.value,
            "anonymous": False,
            "events": [
                {
                    "at": WHEN,
                    "kind": kind,
                    "status": s.value,
                    "text": "Testo.",
                    "actor": "Marta Galli",
                }
                for kind in ("status", "reply", "question", "answer", "publish", "merge")
            ],
        }
        for s in SuggestionStatus
    ],
    "suggestions/digest": [
        {
            "items": [
                {
                    "reference": "S-0001",
                    "status": s.value,
                    "excerpt": None,
                    "category": {"en": "Store", "it": "Negozio"},
                    "response": "Fatto.",
                }
                for s in SuggestionStatus
            ]
        }
    ],
    "suggestions/ideas": [
        {
            "items": [
                {
                    "reference": "S-0001",
                    "category": "Negozio",
                    "status": s.value,
                    "votes": 2,
                    "excerpt": "Estratto.",
                }
                for s in SuggestionStatus
            ]
        }
    ],
    "suggestions/list": [
        {
            "items": [
                {
                    "reference": "S-0001",
                    "status": s.value,
                    "category": "Negozio",
                    "team": "Vendite Milano",
                    "anonymous": True,
                    "published": True,
                    "votes": 2,
                    "excerpt": "Estratto.",
                }
                for s in SuggestionStatus
            ]
        },
        {"filters": ""},
    ],
    "suggestions/mine": [
        {
            "items": [
                {
                    "reference": "S-0001",
                    "status": s.value,
                    "merged_into": "S-0002",
                    "category": "Negozio",
                    "anonymous": True,
                    "excerpt": "Estratto.",
                    "exchanges": [
                        {"kind": kind, "text": "Testo."} for kind in ("question", "reply", "answer")
                    ],
                    "open_question": True,
                }
                for s in SuggestionStatus
            ]
        }
    ],
    "suggestions/prompt_text": [{"current": "Bozza.", "channel": "slack"}],
    "suggestions/question": [{"anonymous": False}],
    "suggestions/same_status": [{"status": s.value} for s in SuggestionStatus],
    "suggestions/sent": [{"anonymous": False}, {"own_team": True}],
    "suggestions/status_changed": [{"status": s.value} for s in SuggestionStatus],
    "suggestions/triage_prompt": [{"kind": k} for k in ("declined", "reply", "ask")],
    "suggestions/triaged": [{"kind": "status", "status": s.value} for s in SuggestionStatus]
    + [{"kind": k} for k in ("reply", "ask", "publish")],
    "suggestions/voted": [{"added": False}],
    "summaries/not_enough": [{"parent": None}],
    "summaries/summary": [{"digest": None, "index_ci": None, "enps_low_precision": False}],
    "summaries/usage": [{"problem": "date"}],
    "whoami": [{"role": r.value} for r in Role],
    "onboarding/unknown": [{"channel": c} for c in ("telegram", "slack")],
}


#: Where a template reads a variable differently from the others.
OVERRIDES: dict[str, dict[str, Any]] = {
    "home/idea": {"status": SuggestionStatus.planned.value},
    "home/readiness": {
        "teams": [
            {
                "team": "Milano Centro",
                "audience": 12,
                "reached_pct": 100.0,
                "ack_pct": 75.0,
                "ack_before_launch_pct": 50.0,
                "quiz_done": 6,
                "mean_score_pct": 80.0,
            }
        ],
        "total": {"audience": 20, "reached_pct": 95.0, "ack_pct": 70.0},
    },
    "home/rates": {
        "total": {"invited": 40, "started": 25, "finished": 20},
        "live": True,
        "step": 5,
    },
    "home/suggestion": {"status": SuggestionStatus.new.value},
    "briefings/readiness_note": {
        "total": {
            "audience": 20,
            "reached_pct": 95.0,
            "ack_before_launch_pct": 60.0,
            "mean_score_pct": 80.0,
        }
    },
    "pulse/write_prompt": {"text": {"en": "Anything else?", "it": "Altro?"}},
    "pulse/rates": {
        "total": {"invited": 46, "finished": 20, "started": 25},
        "status": RoundStatus.open.value,
    },
    "suggestions/answered": {"question": "Quali telefoni?"},
    "suggestions/question": {"question": "Quali telefoni?"},
    "suggestions/unknown_category": {"choices": "negozio, prodotti"},
    "status": {"teams": 6},
    "summaries/summary": {"rounds": 3},
    "errors/unknown_language": {"choices": "English, Italiano"},
    **{
        name: {"title": "Permuta di primavera"}
        for name in (
            "briefings/cancelled",
            "briefings/closed",
            "charts/caption",
            "pulse/status_changed",
        )
    },
    **{
        f"suggestions/{name}": {"status": SuggestionStatus.planned.value, "text": "Testo."}
        for name in ("detail", "same_status", "status_changed", "triaged")
    },
}


def contexts(template: str, sections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    base = {**SAMPLE, "sections": sections, **OVERRIDES.get(template, {})}
    return [base] + [{**base, **variant} for variant in VARIANTS.get(template, [])]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES)


@pytest.fixture(scope="module")
def hr_sections() -> list[dict[str, Any]]:
    from bot.features import build_registry

    return build_registry().help_sections(Role.hr)


def test_every_template_and_label_exists_in_both_locales() -> None:
    assert template_names("en") == template_names("it")
    assert set(labels("en")) == set(labels("it"))


def test_every_variable_a_template_uses_has_a_sample(renderer: Renderer) -> None:
    known = set(SAMPLE) | {"locale", "channel", "timezone", "pick", "label"}
    for locale in LOCALES:
        for name in sorted(template_names(locale)):
            source = (TEMPLATES / locale / f"{name}.j2").read_text(encoding="utf-8")
            used = meta.find_undeclared_variables(renderer.env.parse(source))
            assert used <= known, f"{locale}/{name}.j2 uses {sorted(used - known)}: add samples"


def test_every_template_renders_in_both_locales_and_italian_has_no_english(
    renderer: Renderer, hr_sections: list[dict[str, Any]]
) -> None:
    problems = []
    for name in sorted(template_names("it") - MACROS):
        for context in contexts(name, hr_sections):
            channel = context.pop("channel", "console")
            for locale in LOCALES:
                text = renderer.text(name, locale, dict(context), channel=channel)
                assert text.strip(), f"{locale}/{name} renders empty"
            italian = renderer.text(name, "it", dict(context), channel=channel)
            found = english_words(italian, NAMES)
            if found:
                problems.append(f"it/{name}: {found} in {italian!r}")
    assert problems == []


_JINJA = re.compile(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}", re.DOTALL)


def test_italian_template_text_has_no_english_in_any_branch() -> None:
    """The literal text of every branch, including those no sample reaches."""
    problems = {}
    for name in sorted(template_names("it")):
        source = (TEMPLATES / "it" / f"{name}.j2").read_text(encoding="utf-8")
        found = english_words(_JINJA.sub(" ", source))
        if found:
            problems[name] = found
    assert problems == {}


def test_italian_labels_have_no_english() -> None:
    problems = {k: english_words(v) for k, v in labels("it").items() if english_words(v)}
    assert problems == {}


def test_the_english_word_check_finds_what_it_should() -> None:
    assert english_words("Il sondaggio 3 ora è paused") == ["paused"]
    assert english_words("Non è stato possibile. 3: the schedule is cancelled") == [
        "the",
        "schedule",
        "is",
        "cancelled",
    ]
    assert english_words("Scrivi `survey list` all’HR, Permuta di primavera") == []
    assert english_words("Spring trade-in è chiuso", ["Spring trade-in"]) == []


async def test_the_html_report_in_italian_has_no_english(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    from .test_cli import fidelio, write_config
    from .test_summaries_e2e import seed

    await seed(db, clock, database_url, rounds=2)
    config = write_config(tmp_path, database_url)
    code, _, err = await fidelio(
        config,
        "report",
        "loyalty",
        "--as",
        "hr@demo.fidelio.example",
        "--format",
        "html",
        "--locale",
        "it",
        "-o",
        "r.html",
    )
    assert code == 0, err
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert '<html lang="it">' in page and "<h1>Rapporto di fedeltà Fidelio</h1>" in page
    alts = re.findall(r'alt="([^"]*)"', page)
    visible = re.sub(r"<[^>]+>", " ", page.split("<body>", 1)[1])
    assert english_words(" ".join([visible, *alts])) == []


# Bot/locale.py: Babel's formatting as Fidelio uses it


def test_times_are_day_first_24_hour_with_the_zone_abbreviation() -> None:
    from datetime import UTC, datetime

    from bot.locale import format_local_time

    when = datetime.fromisoformat(WHEN)
    assert format_local_time(when, "Europe/Rome", "en") == "15 Mar 2027, 09:00 CET"
    assert format_local_time(when, "Europe/Rome", "it") == "15 mar 2027, 09:00 CET"
    summer = datetime(2027, 4, 12, 7, 0, tzinfo=UTC)
    assert format_local_time(summer, "Europe/London", "en") == "12 Apr 2027, 08:00 BST"
    assert format_local_time(summer, "Europe/Rome", "it") == "12 apr 2027, 09:00 CEST"
    # A zone the time zone database names only by its offset.
    assert format_local_time(when, "Europe/Istanbul", "en") == "15 Mar 2027, 11:00 GMT+03:00"


def test_numbers_percentages_and_durations_follow_the_locale() -> None:
    from datetime import timedelta

    from bot.locale import format_duration, format_number, format_pct

    assert format_number(0.6049, "en", decimals=2) == "0.60"
    assert format_number(0.6049, "it", decimals=2) == "0,60"
    assert format_number(1234, "en") == "1,234" and format_number(1234, "it") == "1.234"
    assert [format_number(v, "it", signed=True) for v in (12.6, -0.4, -21.2)] == [
        "+13",
        "0",
        "−21",
    ]
    assert format_number(None, "en") == format_pct(None, "it") == "–"
    assert format_pct(60.4, "en") == format_pct(60.4, "it") == "60%"
    assert format_duration(timedelta(hours=5), "en") == "5 hours"
    assert format_duration(5400, "it") == "90 minuti"


def test_plural_forms_and_language_names_come_from_cldr() -> None:
    from bot.locale import counted, format_choices, language_choice, language_name

    assert counted(1, "en", "person", "people") == "1 person"
    assert counted(0, "en", "person", "people") == "0 people"
    assert counted(1, "it", "persona", "persone") == "1 persona"
    assert counted(2, "it", "persona", "persone") == "2 persone"
    # In a sentence Italian writes language names lowercase; a menu shows each in itself.
    assert language_name("it", "it") == "italiano" and language_name("en", "it") == "inglese"
    assert language_name("en", "en") == "English" and language_name("it", "en") == "Italian"
    assert [language_choice(code) for code in LOCALES] == ["English", "Italiano"]
    assert format_choices(["English", "Italiano"], "it") == "English e Italiano"
