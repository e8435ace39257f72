"""Field parsers shared by content files (briefings, surveys): localised texts, audiences,
and a problem list that names the file and the field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.db.models import Role
from bot.errors import InputError


@dataclass(frozen=True)
class Audience:
    everyone: bool = False
    teams: tuple[str, ...] = ()
    teams_only: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()


class Problems:
    def __init__(self, source: str):
        self.source = source
        self.items: list[InputError] = []

    def add(self, path: str, reason: str) -> None:
        self.items.append(InputError(f"{self.source}: {path}", reason))


def localised(
    value: Any, path: str, locales: tuple[str, ...], problems: Problems, *, required: bool = True
) -> dict[str, str]:
    if value is None:
        if required:
            problems.add(path, "required")
        return {}
    if isinstance(value, str):
        if not value.strip() and required:
            problems.add(path, "must not be empty")
        return {locale: value.strip() for locale in locales}
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for locale in locales:
            text = value.get(locale)
            if not isinstance(text, str) or not text.strip():
                problems.add(f"{path}.{locale}", "missing text for this locale")
            else:
                out[locale] = text.strip()
        extra = set(value) - set(locales)
        if extra:
            problems.add(
                path, f"locale(s) {', '.join(sorted(map(str, extra)))} not listed in locales"
            )
        return out
    problems.add(path, "must be a text or a mapping of locale to text")
    return {}


def string_list(value: Any, path: str, problems: Problems) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.add(path, "must be a list of names")
        return ()
    return tuple(v.strip() for v in value)


def parse_audience(value: Any, problems: Problems) -> Audience:
    if not isinstance(value, dict):
        problems.add(
            "audience", "required: everyone: true, or teams / teams_only / roles / locations"
        )
        return Audience()
    for key in sorted(
        set(map(str, value)) - {"everyone", "teams", "teams_only", "roles", "locations"}
    ):
        problems.add(f"audience.{key}", "unknown field")
    everyone = value.get("everyone", False)
    if not isinstance(everyone, bool):
        problems.add("audience.everyone", "must be true or false")
        everyone = False
    audience = Audience(
        everyone=everyone,
        teams=string_list(value.get("teams"), "audience.teams", problems),
        teams_only=string_list(value.get("teams_only"), "audience.teams_only", problems),
        roles=string_list(value.get("roles"), "audience.roles", problems),
        locations=string_list(value.get("locations"), "audience.locations", problems),
    )
    roles = {r.value for r in Role}
    for role in audience.roles:
        if role not in roles:
            problems.add(
                "audience.roles", f"unknown role {role!r} (roles: {', '.join(sorted(roles))})"
            )
    if not (
        audience.everyone
        or audience.teams
        or audience.teams_only
        or audience.roles
        or audience.locations
    ):
        problems.add(
            "audience", "names nobody: set everyone: true or list teams, roles or locations"
        )
    if audience.everyone and (audience.teams or audience.teams_only):
        problems.add("audience", "everyone: true cannot be combined with teams")
    return audience
