"""``ask <words>``: find the answer in active briefings' FAQ and body, ranked.

Retrieval for a lookup at the counter, in Italian and English (:mod:`bot.briefings.words`
turns a text into stems):

- every FAQ entry and every body paragraph is a passage, in the language the reader gets the
  briefing in; the question is stemmed in that same language;
- passages are ranked with BM25; a FAQ question and its ``keywords`` count double, because
  they are written the way people ask; a keyword of several words ("offerta lampo") counts
  only when the question has all of them;
- each question word counts once per passage, by its best match: itself or a word of its
  synonym group (:mod:`bot.briefings.synonyms`, lower weight), or, when neither is in any
  passage, the words one or two letters away (a typo, lower weight still);
- the score is scaled by the share of the question's weight the passage matches, so a
  passage answering most of the question beats one repeating a single word;
- the briefing matters too: words found anywhere in the same briefing ("aurora", "permuta")
  add a little, and so does holding the kind of answer asked for (a date for "quando");
- a passage matching too little of the question does not fit: an unrelated question gets no
  answer rather than a random one.

Matching every passage across both languages as well (the question stemmed both ways, or
the passage's translation added to it) was measured on tests/data/ask_questions.yaml: the
right passage came first less often (71.9 % and 68.8 %, against 73.4 % for the same engine
without it). So only a briefing not written in the reader's language is matched both ways.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass

from bot.briefings import answer_types
from bot.briefings.content import Briefing
from bot.briefings.synonyms import expansions
from bot.briefings.words import fold, near, stem, stems, words

K1, B = 1.2, 0.5
#: How much a FAQ question and its keywords count, against 1 for the answer and the title.
QUESTION_WEIGHT = KEYWORD_WEIGHT = 2.0
#: A word of the question's synonym groups counts this much of the word itself.
SYNONYM_WEIGHT = 0.6
#: A word matched only through a near word (a likely typo) counts this much of the word.
FUZZY_WEIGHT = 0.5
#: The briefing-wide match, added in units of the matched words' IDF.
BRIEFING_WEIGHT = 0.6
#: Lift for a passage holding the kind of answer the question asks for (a date, a sum).
ANSWER_TYPE_LIFT = 0.3
#: Share of the question's weight (its words' IDF) a passage must match to be shown at all.
MIN_COVERAGE = 0.15
#: People name a briefing by its kind ("this promotion", "la promo"): words of every passage.
KIND_WORDS = {
    "promotion": {"en": "promotion promo", "it": "promozione promo"},
    "product": {"en": "product", "it": "prodotto"},
}


@dataclass(frozen=True)
class Passage:
    briefing_id: str
    campaign_id: int
    title: str
    kind: str  # faq | body
    question: str
    text: str
    #: The language the passage is written in (the briefing's text chosen for the reader).
    locale: str = "en"
    keywords: tuple[str, ...] = ()
    #: What the passage is about besides its own words: the title and the briefing's kind.
    about: str = ""


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float
    #: Share of the question's weight this passage matched (0 to 1).
    coverage: float = 0.0


def passages_for(
    briefing: Briefing, campaign_id: int, locale: str, body: str | None = None
) -> list[Passage]:
    """FAQ entries and body paragraphs in ``locale``; ``body`` is the body as rendered for
    the reader (dates filled in), defaulting to the raw source."""
    chosen = briefing.locale_for(locale)
    title = briefing.text(briefing.title, chosen)
    about = f"{title} {KIND_WORDS.get(briefing.kind, {}).get(chosen, '')}".strip()
    out = [
        Passage(
            briefing.id,
            campaign_id,
            title,
            "faq",
            entry.q[chosen],
            entry.a[chosen],
            chosen,
            tuple(entry.keywords.get(chosen, ())),
            about,
        )
        for entry in briefing.faq
    ]
    source = body if body is not None else briefing.body.get(chosen, "")
    for paragraph in paragraphs(source):
        out.append(
            Passage(briefing.id, campaign_id, title, "body", "", paragraph, chosen, (), about)
        )
    return out


def paragraphs(body: str) -> list[str]:
    """The body's paragraphs (blank-line separated), Jinja blocks left out. A paragraph that
    only introduces what follows (a heading alone, or text ending with ":") is joined to the
    next one: "From 1 March, every customer gets:" means nothing without its list."""
    out: list[str] = []
    pending = ""
    for block in re.split(r"\n\s*\n", body):
        cleaned = block.strip()
        if not cleaned or cleaned.startswith("{%"):
            continue
        joined = f"{pending}\n\n{cleaned}" if pending else cleaned
        if cleaned.endswith(":") or _only_heading(cleaned):
            pending = joined
            continue
        out.append(joined)
        pending = ""
    if pending:
        out.append(pending)
    return out


def _only_heading(block: str) -> bool:
    # A heading as written ("# Title") or as rendered for chat ("**Title**").
    return "\n" not in block and (
        block.startswith("#") or re.fullmatch(r"\*\*[^*]+\*\*", block) is not None
    )


class _Index:
    """The stems of every passage with what BM25 needs: lengths and document frequencies.

    A keyword of one word is part of its passage's terms; a keyword of several words is kept
    aside and lends its words only to a question that has all of them, so "offerta lampo"
    does not make every question about an "offerta" match.
    """

    def __init__(self, passages: list[Passage]):
        self.docs: list[dict[str, float]] = []
        self.phrases: list[list[tuple[str, ...]]] = []
        self.vocabulary: dict[str, set[str]] = defaultdict(set)
        #: Per locale, every word of the passages (accent-free) and its stem: typos are
        #: looked for among words, since a misspelt word often stems differently.
        self.words: dict[str, dict[str, str]] = defaultdict(dict)
        for p in passages:
            doc: dict[str, float] = defaultdict(float)
            phrases = []
            for keyword in p.keywords:
                parts = tuple(stems(keyword, p.locale))
                if len(parts) > 1:
                    phrases.append(parts)
                elif parts:
                    doc[parts[0]] += KEYWORD_WEIGHT
            for text, weight in ((p.question, QUESTION_WEIGHT), (p.text, 1.0), (p.about, 1.0)):
                for term in stems(text, p.locale):
                    doc[term] += weight
            for word in words(" ".join((p.question, p.text, p.about, *p.keywords))):
                self.words[p.locale].setdefault(fold(word), stem(word, p.locale))
            self.docs.append(dict(doc))
            self.phrases.append(phrases)
            self.vocabulary[p.locale].update(doc, *phrases)
        self.lengths = [sum(doc.values()) for doc in self.docs]
        self.average = sum(self.lengths) / len(self.lengths) or 1.0
        self.df: Counter[str] = Counter()
        for doc, phrases in zip(self.docs, self.phrases, strict=True):
            self.df.update(set(doc).union(*phrases))

    def idf(self, term: str) -> float:
        n, df = len(self.docs), self.df.get(term, 0)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def terms_for(self, i: int, asked: set[str]) -> dict[str, float]:
        """Passage ``i``'s term frequencies for a question with the stems ``asked``: its
        own terms, plus the words of each keyword phrase the question has in full."""
        complete = [phrase for phrase in self.phrases[i] if asked.issuperset(phrase)]
        if not complete:
            return self.docs[i]
        doc = dict(self.docs[i])
        for phrase in complete:
            for term in phrase:
                doc[term] = doc.get(term, 0.0) + KEYWORD_WEIGHT
        return doc


class _Question:
    """The question as compared with passages in one language: its stems, what each of them
    matches (itself, its synonyms, or near words) and how much each weighs."""

    def __init__(self, query: str, language: str, asker: str, index: _Index):
        # The asker's words are stemmed in the passage's language; for a briefing not
        # written in the asker's language, in theirs too (names and numbers still meet).
        languages = dict.fromkeys((language, asker))
        self.stems = {term for lang in languages for term in stems(query, lang)}
        self.terms = _query_terms(query, language, index)
        if asker != language:
            for term, matches in _query_terms(query, asker, index).items():
                self.terms.setdefault(term, matches)
        self.weight = {term: _word_weight(index, m) for term, m in self.terms.items()}
        self.total = sum(self.weight.values()) or 1.0

    def share(self, words: set[str]) -> float:
        """The share of the question's weight that ``words`` (some of its stems) carry."""
        return sum(self.weight[word] for word in words) / self.total


def _word_weight(index: _Index, matches: dict[str, float]) -> float:
    """A question word's weight: the IDF of its best match, the highest IDF when it matches
    nothing (an unknown word is the strongest sign a passage is not about the question)."""
    return max((index.idf(v) for v in matches), default=index.idf(""))


def _query_terms(query: str, locale: str, index: _Index) -> dict[str, dict[str, float]]:
    """Per question stem in ``locale``: the vocabulary stems it matches and their weight: 1
    for the stem itself, :data:`SYNONYM_WEIGHT` for its synonyms, :data:`FUZZY_WEIGHT` for
    the stems of near words when it has neither (a typo)."""
    vocabulary = index.vocabulary.get(locale, set())
    asked = [(fold(word), stem(word, locale)) for word in words(query)]
    synonyms = expansions([term for _, term in asked], locale)
    terms: dict[str, dict[str, float]] = {}
    for word, term in asked:
        if term in terms:
            continue
        matches = {v: SYNONYM_WEIGHT for v in synonyms.get(term, ()) if v in vocabulary}
        if term in vocabulary:
            matches[term] = 1.0
        terms[term] = matches or _typo_matches(word, index.words.get(locale, {}))
    return terms


def typo_limit(word: str) -> int:
    """Edits allowed between a question word and a passage word: none below 6 letters (one
    letter changes a short word into another: "stuck", "stock"), one up to 8, two from 9."""
    return 0 if len(word) < 6 else 1 if len(word) < 9 else 2


def _typo_matches(word: str, known: dict[str, str]) -> dict[str, float]:
    """The stems of the passage words nearest to ``word``, if within :func:`typo_limit`."""
    limit = typo_limit(word)
    if not limit:
        return {}
    # Typos rarely hit the first letter; asking for it halves the false friends.
    found = {
        other: d
        for other in sorted(known)
        if other[:1] == word[:1] and (d := near(word, other, limit)) is not None
    }
    closest = min(found.values(), default=None)
    return {known[other]: FUZZY_WEIGHT for other, d in found.items() if d == closest}


def _bm25(index: _Index, i: int, question: _Question) -> tuple[float, set[str]]:
    """BM25 of passage ``i``, and the question's stems it matched. Each question word counts
    once, by its best match (a passage with both "televisore" and "TV" is not twice about
    television)."""
    doc = index.terms_for(i, question.stems)
    length_norm = K1 * (1 - B + B * index.lengths[i] / index.average)
    score = 0.0
    matched = set()
    for word, matches in question.terms.items():
        best = 0.0
        for term, weight in matches.items():
            tf = doc.get(term, 0.0)
            if tf:
                best = max(best, weight * index.idf(term) * tf * (K1 + 1) / (tf + length_norm))
        if best:
            score += best
            matched.add(word)
    return score, matched


def search(passages: list[Passage], query: str, locale: str = "en", limit: int = 3) -> list[Hit]:
    """The passages that answer ``query`` (written by someone reading ``locale``), best first
    (FAQ entries first on a tie); none when nothing fits."""
    if not passages or not words(query):
        return []
    index = _Index(passages)
    questions = {
        language: _Question(query, language, locale, index)
        for language in {p.locale for p in passages}
    }
    own = [_bm25(index, i, questions[p.locale]) for i, p in enumerate(passages)]
    in_briefing: dict[int, set[str]] = defaultdict(set)
    for passage, (_, matched) in zip(passages, own, strict=True):
        in_briefing[passage.campaign_id] |= matched
    kinds = answer_types.wanted(query)
    hits = []
    for passage, (score, matched) in zip(passages, own, strict=True):
        question = questions[passage.locale]
        coverage = question.share(matched)
        if score <= 0 or coverage < MIN_COVERAGE:
            continue
        score += BRIEFING_WEIGHT * question.share(in_briefing[passage.campaign_id]) * question.total
        if kinds and answer_types.gives(passage.text, kinds):
            score *= 1 + ANSWER_TYPE_LIFT
        hits.append(Hit(passage, score * coverage, coverage))
    hits.sort(key=lambda h: (-h.score, h.passage.kind != "faq"))
    return hits[:limit]
