"""What a suggestion may hold: categories, obvious personal data, short excerpts, references."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.suggestions.settings import SuggestionSettings
from bot.suggestions.tables import SuggestionEvent, SuggestionStatus

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
#: Digits with at most one separator (space, dot, dash, brackets) between them; checked for
#: 8-15 digits below, so counts and years are left alone.
PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d(?:[ .\-]?\(?\d\)?){6,16}(?!\w)")
DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$|^\d{1,2}[./-]\d{1,2}[./-]\d{2,4}$")
EXCERPT = 160

#: The statuses triage may set, in life-cycle order (``merged`` is set by merging only).
TRIAGE_STATUSES = (
    SuggestionStatus.new,
    SuggestionStatus.under_review,
    SuggestionStatus.planned,
    SuggestionStatus.done,
    SuggestionStatus.declined,
)


@dataclass(frozen=True)
class Finding:
    kind: str  # email | phone
    text: str


def personal_data(text: str) -> list[Finding]:
    """Obvious personal data: email addresses and phone numbers (8 to 15 digits)."""
    found = [Finding("email", m.group(0)) for m in EMAIL.finditer(text)]
    without_emails = EMAIL.sub(" ", text)
    for match in PHONE.finditer(without_emails):
        candidate = match.group(0).strip()
        digits = sum(ch.isdigit() for ch in candidate)
        if 8 <= digits <= 15 and not DATE.match(candidate):
            found.append(Finding("phone", candidate))
    return found


def redact(text: str) -> str:
    """``text`` with the findings of :func:`personal_data` replaced by a placeholder."""
    out = EMAIL.sub("[…]", text)
    for finding in personal_data(out):
        out = out.replace(finding.text, "[…]")
    return out


def excerpt(text: str, limit: int = EXCERPT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def open_question(events: list[SuggestionEvent]) -> bool:
    """True when HR's latest question (in ``SuggestionService.exchanges``' events) has no
    answer after it."""
    for event in reversed(events):
        if event.kind == "answer":
            return False
        if event.kind == "question":
            return True
    return False


def reference(suggestion_id: int) -> str:
    """The reference number people quote: ``S-0042``."""
    return f"S-{suggestion_id:04d}"


def parse_reference(text: str) -> int | None:
    """``42``, ``#42``, ``S-0042`` or ``s42`` -> 42; None when it is not a reference."""
    cleaned = text.strip().lstrip("#").upper().removeprefix("S").lstrip("-")
    return int(cleaned) if cleaned.isdigit() and 0 < int(cleaned) < 10**9 else None


def parse_status(text: str) -> SuggestionStatus | None:
    """A status from its id or a common spelling (``under review``, ``review``, Italian)."""
    key = text.strip().lower().replace(" ", "_").replace("-", "_")
    aliases = {
        "review": "under_review",
        "reviewing": "under_review",
        "in_valutazione": "under_review",
        "valutazione": "under_review",
        "nuovo": "new",
        "nuova": "new",
        "pianificato": "planned",
        "pianificata": "planned",
        "fatto": "done",
        "fatta": "done",
        "implemented": "done",
        "realizzato": "done",
        "rifiutato": "declined",
        "rifiutata": "declined",
        "decline": "declined",
    }
    key = aliases.get(key, key)
    try:
        status = SuggestionStatus(key)
    except ValueError:
        return None
    return status if status in TRIAGE_STATUSES else None


def category_labels(settings: SuggestionSettings, locale: str) -> dict[str, str]:
    return {c.id: c.label(locale) for c in settings.categories}


#: Texts of the Slack modal (forms are not rendered through templates).
FORM_TEXTS = {
    "en": {
        "title": "Suggestion",
        "submit": "Send",
        "text": "Your suggestion",
        "category": "Category",
        "anonymous": "Anonymity",
        "anonymous_option": "Send anonymously",
        "answer_title": "Your answer",
        "answer": "Your answer to the question",
    },
    "it": {
        "title": "Suggerimento",
        "submit": "Invia",
        "text": "Il tuo suggerimento",
        "category": "Categoria",
        "anonymous": "Anonimato",
        "anonymous_option": "Invia in forma anonima",
        "answer_title": "La tua risposta",
        "answer": "La tua risposta alla domanda",
    },
}


def form_text(locale: str, key: str) -> str:
    return FORM_TEXTS.get(locale, FORM_TEXTS["en"])[key]
