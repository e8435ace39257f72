"""What kind of answer a question wants: a date ("when", "fino a quando"), an amount ("how
much", "quanto costa") or a duration ("how long", "quanto dura").

Question words carry little for word matching (they are in every question), but they say
what the answer looks like. A passage holding that kind of answer (a date, a sum in euro, a
number of hours or years) gets a small lift in :mod:`bot.briefings.search`.
"""

from __future__ import annotations

import re

from bot.briefings.words import fold

_MONTH = r"(?:gen|feb|mar|apr|mag|giu|lug|ago|set|ott|nov|dic|jan|may|jun|jul|aug|sep|oct|dec)"
_UNIT = r"(?:hours?|years?|days?|minutes?|months?|weeks?|ore|anni|giorni|minuti|mesi|settimane)"

#: kind -> (how a question asks for it, how a passage gives it); both read accent-free text.
ANSWER_TYPES: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "date": (
        re.compile(r"\b(?:when|until|what date|quando|che giorno|che data|da che)\b"),
        re.compile(
            rf"\b\d{{1,2}} {_MONTH}[a-z]*\b|\blaunch day\b|\bgiorno del lancio\b"
            r"|\bfrom launch\b|\bdal lancio\b"
        ),
    ),
    "amount": (
        re.compile(
            r"\b(?:how much|price|cost|costs|quanto costa|quanto viene|quanto mi|quanto ci"
            r"|prezzo|costa)\b"
        ),
        re.compile(r"\d+(?:[.,]\d+)? ?(?:euro|eur)\b|€ ?\d"),
    ),
    "duration": (
        re.compile(r"\b(?:how long|quanto dura|quante ore|quanto tempo|per quanto)\b"),
        re.compile(rf"\b\d+(?:[.,]\d+)?[ -]?{_UNIT}\b"),
    ),
}


def wanted(question: str) -> frozenset[str]:
    """The kinds of answer ``question`` asks for (often none)."""
    text = fold(question)
    return frozenset(kind for kind, (asks, _) in ANSWER_TYPES.items() if asks.search(text))


def gives(text: str, kinds: frozenset[str]) -> bool:
    """Whether ``text`` holds an answer of one of ``kinds``."""
    folded = fold(text)
    return any(ANSWER_TYPES[kind][1].search(folded) for kind in kinds)
