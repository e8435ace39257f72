"""``ask <words>``: find the answer in active briefings' FAQ and body, ranked.

Small, dependency-free retrieval that suits a counter-side lookup in Italian and English:
accents folded, stop words dropped, words cut to a 5-letter stem (so "promozione" and
"promozioni", "financing" and "finance" meet), BM25 scoring over passages. A FAQ question
counts double: it is written the way people ask.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from bot.briefings.content import Briefing

STOP_WORDS = frozenset(
    """a about an and are as at be by can do does for from how i if in is it its me my of on or
    our so that the this to we what when where which who why will with you your
    ad al alla alle ai agli allo che chi ci come con cosa da dal dalla dei del della delle di do
    e ed gli ha hanno i il in la le lo ma mi ne nel nella non o per piu quale quali quando se si
    sono su sul sulla tra un una uno vi""".split()
)
STEM = 5
K1, B = 1.2, 0.75


def normalise(text: str) -> list[str]:
    """Lower-case, accent-free, stop-word-free stems."""
    folded = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(ch for ch in folded if not unicodedata.combining(ch))
    words = re.findall(r"[a-z0-9]+", plain)
    return [w[:STEM] for w in words if w not in STOP_WORDS and (len(w) > 1 or w.isdigit())]


@dataclass(frozen=True)
class Passage:
    briefing_id: str
    campaign_id: int
    title: str
    kind: str  # faq | body
    question: str
    text: str


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float


def passages_for(
    briefing: Briefing, campaign_id: int, locale: str, body: str | None = None
) -> list[Passage]:
    """FAQ entries and body paragraphs in ``locale``; ``body`` is the body as rendered for
    the reader (dates filled in), defaulting to the raw source."""
    chosen = briefing.locale_for(locale)
    title = briefing.text(briefing.title, chosen)
    out = [
        Passage(briefing.id, campaign_id, title, "faq", entry.q[chosen], entry.a[chosen])
        for entry in briefing.faq
    ]
    source = body if body is not None else briefing.body.get(chosen, "")
    for paragraph in re.split(r"\n\s*\n", source):
        cleaned = paragraph.strip()
        if cleaned and not cleaned.startswith("{%"):
            out.append(Passage(briefing.id, campaign_id, title, "body", "", cleaned))
    return out


def search(passages: list[Passage], query: str, limit: int = 3) -> list[Hit]:
    """BM25 over passages; a FAQ passage's question counts twice. Best first."""
    terms = normalise(query)
    if not terms or not passages:
        return []
    docs = [
        Counter(normalise(p.question) * 2 + normalise(p.text) + normalise(p.title))
        for p in passages
    ]
    lengths = [sum(d.values()) for d in docs]
    average = sum(lengths) / len(lengths) or 1.0
    n = len(docs)
    hits = []
    for passage, doc, length in zip(passages, docs, lengths, strict=True):
        score = 0.0
        for term in set(terms):
            tf = doc.get(term, 0)
            if not tf:
                continue
            df = sum(1 for d in docs if term in d)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            score += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / average))
        if score > 0:
            hits.append(Hit(passage, score))
    hits.sort(key=lambda h: (-h.score, h.passage.kind != "faq"))
    return hits[:limit]
