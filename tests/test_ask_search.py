"""``ask``'s retrieval piece by piece: stems per language, typos, synonyms, keyword phrases,
the kind of answer asked for, paragraphs, and no answer when nothing fits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.briefings import answer_types
from bot.briefings.body import render_body
from bot.briefings.content import Briefing, check_briefings
from bot.briefings.search import Passage, paragraphs, passages_for, search
from bot.briefings.synonyms import synonym_stems
from bot.briefings.words import near, stem, stems

from .harness import REPO

NOW = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)


def shipped() -> dict[str, Briefing]:
    result = check_briefings(REPO / "content" / "briefings", NOW)
    return {b.id: b for b in result.briefings}


def passages(locale: str, *ids: str) -> list[Passage]:
    briefings = shipped()
    out = []
    for number, briefing_id in enumerate(ids or sorted(briefings), 1):
        briefing = briefings[briefing_id]
        out += passages_for(briefing, number, locale, render_body(briefing, locale, "Europe/Rome"))
    return out


def best(locale: str, query: str) -> str:
    hits = search(passages(locale), query, locale)
    assert hits, query
    return hits[0].passage.question or hits[0].passage.text


def test_words_meet_on_their_snowball_stem_in_their_own_language() -> None:
    assert stem("università", "it") == stem("universita", "it") == "univers"
    assert stems("garanzia garanzie", "it") == ["garanz", "garanz"]
    assert stems("warranty warranties", "en") == ["warranti", "warranti"]
    assert stems("finanziamento finanziare", "it") == ["finanz", "finanz"]
    # Common words of either language are left out, numbers are kept.
    assert stems("Il cliente chiede se la TV da 55 è in vendita", "it") == ["tv", "55", "vend"]
    assert stems("does the customer want it in 55 inch", "en") == ["55", "inch"]


def test_edit_distance_counts_swapped_letters_once_and_stops_at_the_limit() -> None:
    assert near("permtua", "permuta", 1) == 1
    assert near("garanzai", "garanzia", 1) == 1
    assert near("finanzimento", "finanziamento", 2) == 1
    assert near("televisore", "televisione", 1) is None
    assert near("abc", "abcdef", 2) is None


@pytest.mark.parametrize(
    ("locale", "query", "answer"),
    [
        ("it", "la garanzai copre il burnin?", "La garanzia copre il burn-in?"),
        ("it", "finanzimento a tasso zero?", "C'è un finanziamento?"),
        ("en", "does the waranty cover burn in?", "Does the warranty cover burn-in?"),
        ("it", "PERCHE lo facciamo? perché conta?", "Perché conta"),
    ],
)
def test_typos_and_accents_still_find_the_answer(locale: str, query: str, answer: str) -> None:
    assert answer in best(locale, query)


def test_synonyms_of_everyday_words_match_at_a_lower_weight() -> None:
    # "televisore" and "parete" are nowhere in the briefings: "TV" and "muro" are.
    assert best("it", "il televisore si può mettere alla parete?") == "Si può appendere al muro?"
    assert best("en", "does the telly come with a guarantee on burn-in?") == (
        "Does the warranty cover burn-in?"
    )
    groups = synonym_stems("it")
    assert any(("televisor",) in group and ("tv",) in group for group in groups)


def test_a_keyword_phrase_counts_only_when_the_question_has_all_its_words() -> None:
    faq = Passage("b", 1, "Title", "faq", "Do flash sales count?", "No.", "en", ("lightning deal",))
    other = Passage("b", 1, "Title", "faq", "Which deal is this?", "The spring one.", "en")
    assert search([faq, other], "is a lightning deal ok")[0].passage is faq
    assert search([faq, other], "which deal")[0].passage is other


def test_keywords_make_an_entry_findable_by_words_it_does_not_use() -> None:
    assert best("it", "la rottamazione è vera?").startswith("È vero che avete un'offerta permuta")


def test_a_question_for_a_date_prefers_the_passage_that_gives_one() -> None:
    assert answer_types.wanted("fino a quando vale?") == {"date"}
    assert answer_types.wanted("how much is it and how long is the warranty") == {
        "amount",
        "duration",
    }
    assert answer_types.gives("Dal 1 mar 2027 al 30 aprile", frozenset({"date"}))
    assert not answer_types.gives("solo in negozio", frozenset({"date", "amount"}))


def test_a_paragraph_that_introduces_a_list_is_one_passage_with_it() -> None:
    body = "# The offer\n\nFrom March, customers get:\n\n- 300 euro\n- 200 euro\n\nOne per TV."
    assert paragraphs(body) == [
        "# The offer\n\nFrom March, customers get:\n\n- 300 euro\n- 200 euro",
        "One per TV.",
    ]
    assert paragraphs("**Why**\n\nBecause.\n\n{% if x %}\n\n**Tail**") == [
        "**Why**\n\nBecause.",
        "**Tail**",
    ]


def test_nothing_fits_an_unrelated_question_or_only_common_words() -> None:
    assert search(passages("it"), "a che ora apre il negozio la domenica?", "it") == []
    assert search(passages("en"), "the of and is it", "en") == []
    assert search([], "permuta", "it") == []


def test_a_briefing_not_written_in_the_readers_language_is_searched_in_its_own() -> None:
    italian_only = Passage(
        "b", 1, "Aurora", "body", "", "Il TV OLED da 55 pollici costa 1.299 euro.", "it"
    )
    english = Passage("c", 2, "Trade-in", "faq", "Must the old TV work?", "No.", "en")
    # An English reader's words are also stemmed in Italian for the Italian passage: names
    # and numbers meet whatever the language.
    hits = search([italian_only, english], "price of the 55 inch OLED TV", "en")
    assert hits[0].passage is italian_only
