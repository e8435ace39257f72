"""Personal-data parts: what a feature holds about a person, how to export and erase it.

A part knows how to export what one feature holds about a person and how to erase it. Erasure
keeps what is anonymous or aggregate (survey answers carry no person id at all; participation
and briefing receipts stay, attached to a row that no longer identifies anyone, so response
rates and readiness counts do not change) and removes or scrubs everything that identifies
the person.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import (
    Person,
)

ERASED = "[erased]"
ERASED_NAME = "Erased person"


@dataclass(frozen=True)
class Erasure:
    """What an eraser needs: the person (fields still intact), and the moment."""

    person: Person
    now: datetime
    email: str
    name: str

    def scrub(self, value: Any) -> Any:
        """``value`` (any JSON) with the person's email and name replaced by ``[erased]``."""
        if isinstance(value, str):
            out = replace_ci(value, self.email, ERASED)
            return out.replace(self.name, ERASED) if self.name else out
        if isinstance(value, list):
            return [self.scrub(item) for item in value]
        if isinstance(value, dict):
            return {key: self.scrub(item) for key, item in value.items()}
        return value

    def mentions(self, value: Any) -> bool:
        """Does ``value`` (any JSON) contain the person's email or name?"""
        return self.scrub(value) != value


Exporter = Callable[[AsyncSession, Person], Awaitable[Any]]
Eraser = Callable[[AsyncSession, Erasure], Awaitable[int]]


@dataclass(frozen=True)
class PersonalDataPart:
    """One feature's personal data: ``export`` returns JSON-ready data, ``erase`` returns how
    many rows it deleted or changed."""

    name: str
    export: Exporter
    erase: Eraser


@dataclass
class PrivacyRegistry:
    """Parts in order: erasers run in this order, the directory last (the others still need
    the person's email and name to find mentions of them)."""

    parts: list[PersonalDataPart] = field(default_factory=list)

    def register(self, part: PersonalDataPart) -> None:
        if any(p.name == part.name for p in self.parts):
            raise ValueError(f"personal-data part {part.name!r} registered twice")
        directory = [p for p in self.parts if p.name == "directory"]
        others = [p for p in self.parts if p.name != "directory"]
        self.parts = [*others, part, *directory] if part.name != "directory" else [*others, part]


def build_privacy_registry(parts: Iterable[PersonalDataPart]) -> PrivacyRegistry:
    """A registry of ``parts`` (every feature's, in the features' order; the directory last)."""
    registry = PrivacyRegistry()
    for part in parts:
        registry.register(part)
    return registry


def iso(value: datetime | date | None) -> str | None:
    """An ISO 8601 string, or None."""
    return None if value is None else value.isoformat()


def replace_ci(text: str, needle: str, replacement: str) -> str:
    """``text`` with every case-insensitive occurrence of ``needle`` replaced."""
    if not needle:
        return text
    lowered, target = text.lower(), needle.lower()
    out, start = [], 0
    while (found := lowered.find(target, start)) >= 0:
        out.append(text[start:found] + replacement)
        start = found + len(needle)
    out.append(text[start:])
    return "".join(out)


async def keep(_session: AsyncSession, _erasure: Erasure) -> int:
    """Anonymous or aggregate once the directory row is erased: kept as it is."""
    return 0
