"""How often ``ask`` puts the right passage first, on questions worded the way people ask at
the counter (tests/data/ask_questions.yaml), over the shipped briefings and two more in
tests/data/briefings, in Italian and English.

Run with ``-s`` to see the figures. ask_questions.yaml is what the search and the keywords
were tuned on: it must stay at 90 % first and 97 % in the top three. ask_questions_later.yaml
was written afterwards and never tuned on; its figures show how ``ask`` does on wording it
was not shaped around, and its floor only guards against a slide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.briefings.body import render_body
from bot.briefings.content import Briefing, check_briefings
from bot.briefings.search import Passage, passages_for, search
from bot.briefings.words import fold

from .harness import REPO

DATA = Path(__file__).resolve().parent / "data"
NOW = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)
LOCALES = ("it", "en")
#: A question sharing this many consecutive words with a FAQ entry copies its wording.
COPIED_RUN = 5


@dataclass
class Score:
    asked: int = 0
    first: int = 0
    top3: int = 0

    def add(self, hits: list[Passage], right: set[Passage]) -> None:
        self.asked += 1
        self.first += bool(hits) and hits[0] in right
        self.top3 += any(hit in right for hit in hits[:3])

    def line(self, label: str) -> str:
        return (
            f"{label}: top-1 {self.first / self.asked:.3f} ({self.first}/{self.asked}),"
            f" top-3 {self.top3 / self.asked:.3f} ({self.top3}/{self.asked})"
        )


def briefings() -> dict[str, Briefing]:
    found: dict[str, Briefing] = {}
    for folder in (REPO / "content" / "briefings", DATA / "briefings"):
        result = check_briefings(folder, NOW)
        assert result.problems == [], result.problems
        found.update({b.id: b for b in result.briefings})
    return found


def all_passages(everything: dict[str, Briefing], locale: str) -> list[Passage]:
    """Every passage of every briefing, as someone in every audience gets them."""
    out = []
    for number, briefing in enumerate(everything.values(), 1):
        body = render_body(briefing, locale, "Europe/Rome")
        out += passages_for(briefing, number, locale, body)
    return out


def resolve(target: dict[str, Any], briefing_id: str, passages: list[Passage]) -> Passage:
    """The one passage a question's target names: a FAQ entry by its English question, or
    the body paragraph holding the marker text."""
    briefing_id = target.get("briefing", briefing_id)
    if "faq" in target:
        index = [entry.q["en"] for entry in BRIEFINGS[briefing_id].faq].index(target["faq"])
        found = [p for p in passages if p.briefing_id == briefing_id and p.kind == "faq"]
        return found[index]  # passages_for keeps the FAQ's order
    found = [
        p
        for p in passages
        if p.briefing_id == briefing_id and p.kind == "body" and target["body"] in p.text
    ]
    assert len(found) == 1, f"{target['body']!r} is in {len(found)} paragraphs of {briefing_id}"
    return found[0]


BRIEFINGS = briefings()
PASSAGES = {locale: all_passages(BRIEFINGS, locale) for locale in LOCALES}


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((DATA / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def measure(questions: list[dict[str, Any]]) -> dict[str, Score]:
    scores = {"all": Score(), **{locale: Score() for locale in LOCALES}}
    for question in questions:
        locale = question["locale"]
        passages = PASSAGES[locale]
        right = {resolve(question, question["briefing"], passages)}
        right |= {
            resolve(also, question["briefing"], passages) for also in question.get("also", [])
        }
        hits = [hit.passage for hit in search(passages, question["ask"], locale)]
        for key in ("all", locale):
            scores[key].add(hits, right)
    return scores


def report(title: str, scores: dict[str, Score]) -> None:
    print(f"\n{title}")
    for key, label in (("all", "overall"), ("it", "italian"), ("en", "english")):
        print("  " + scores[key].line(label))


def runs(text: str, length: int) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9]+", fold(text))
    return {tuple(words[i : i + length]) for i in range(len(words) - length + 1)}


@pytest.mark.parametrize("name", ["ask_questions.yaml", "ask_questions_later.yaml"])
def test_the_questions_are_asked_in_their_own_words(name: str) -> None:
    questions = load(name)["questions"]
    faq_runs: set[tuple[str, ...]] = set()
    for briefing in BRIEFINGS.values():
        for entry in briefing.faq:
            for text in (*entry.q.values(), *entry.a.values()):
                faq_runs |= runs(text, COPIED_RUN)
    for question in questions:
        copied = runs(question["ask"], COPIED_RUN) & faq_runs
        assert not copied, f"{question['ask']!r} copies a FAQ: {' '.join(sorted(copied)[0])}"
        assert question["locale"] in LOCALES and question["briefing"] in BRIEFINGS


def test_the_dataset_is_large_half_italian_and_spread_over_four_briefings() -> None:
    questions = load("ask_questions.yaml")["questions"]
    assert len(questions) >= 60
    assert sum(q["locale"] == "it" for q in questions) * 2 == len(questions)
    assert {q["briefing"] for q in questions} == {
        "aurora-oled-55",
        "spring-trade-in",
        "nimbus-book-14",
        "price-match",
    }
    targets = [(q["briefing"], q.get("faq"), q.get("body"), q["locale"]) for q in questions]
    assert sum(t[2] is not None for t in targets) >= 15  # body paragraphs, not only FAQ


def test_ask_puts_the_right_passage_first_nine_times_in_ten() -> None:
    scores = measure(load("ask_questions.yaml")["questions"])
    report("ask_questions.yaml (tuned on)", scores)
    assert scores["all"].first / scores["all"].asked >= 0.9
    assert scores["all"].top3 / scores["all"].asked >= 0.97


def test_on_questions_it_was_not_tuned_on_ask_stays_above_its_floor() -> None:
    scores = measure(load("ask_questions_later.yaml")["questions"])
    report("ask_questions_later.yaml (not tuned on)", scores)
    # Measured 0.58 and 0.79 when written: a floor against a slide, not a target.
    assert scores["all"].first / scores["all"].asked >= 0.5
    assert scores["all"].top3 / scores["all"].asked >= 0.75


def test_how_often_a_question_no_briefing_answers_gets_no_answer() -> None:
    unanswerable = load("ask_questions.yaml")["nothing"]
    answered = [
        q["ask"] for q in unanswerable if search(PASSAGES[q["locale"]], q["ask"], q["locale"])
    ]
    print(f"\nno answer for {len(unanswerable) - len(answered)} of {len(unanswerable)} unrelated")
    print("  answered anyway: " + "; ".join(answered))
    # Word matching cannot tell "paid this month" from "monthly instalments": a floor only.
    assert len(answered) <= 4
