"""What a checked people file would change, worked out before anything is written.

The web console shows it as a dry run, and applies a file only when the changes it would
make now are exactly the ones that were shown (:attr:`ImportPreview.digest`): if the file or
the directory changed in between, the confirmation is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from bot.db.models import Person, Team

#: The directory fields a row sets, in the order a change lists them.
FIELDS = ("name", "team", "role", "locale", "timezone", "location", "hire_date", "leave_date")


@dataclass(frozen=True)
class FieldChange:
    """One field of a person or team: what it is, what it would become (as text)."""

    field: str
    old: str
    new: str


@dataclass(frozen=True)
class PersonPreview:
    """A person of the file that would be added or changed (``changes``: old → new)."""

    line: int
    email: str
    name: str
    team: str
    changes: tuple[FieldChange, ...] = ()

    @property
    def leave_date(self) -> str:
        """The leave date the file gives, when it is new (the person becomes a leaver)."""
        return next((c.new for c in self.changes if c.field == "leave_date"), "")


@dataclass(frozen=True)
class TeamPreview:
    """A team the file would create (``new``) or whose parent or manager it would change."""

    name: str
    new: bool
    changes: tuple[FieldChange, ...] = ()


@dataclass
class ImportPreview:
    """Everything applying the file would change; ``untouched`` counts the active people of
    the directory the file does not mention (an import never removes anyone)."""

    file_name: str
    lines: int
    added: list[PersonPreview] = field(default_factory=list)
    changed: list[PersonPreview] = field(default_factory=list)
    teams: list[TeamPreview] = field(default_factory=list)
    unchanged: int = 0
    untouched: int = 0

    @property
    def leavers(self) -> list[PersonPreview]:
        """Changed people who get a leave date (they stop receiving messages from then)."""
        return [person for person in self.changed if person.leave_date]

    @property
    def empty(self) -> bool:
        """Applying the file would change nothing."""
        return not (self.added or self.changed or self.teams)

    @property
    def digest(self) -> str:
        """A fingerprint of the changes (not of the file's name or the untouched count):
        equal digests mean applying would make exactly the same changes."""
        changes = {key: asdict(self)[key] for key in ("added", "changed", "teams")}
        text = json.dumps(changes, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


def shown(value: Any) -> str:
    """A field's value as the preview writes it (empty for none)."""
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return str(getattr(value, "value", value))


def person_changes(
    person: Person, values: dict[str, Any], team_names: dict[int, str]
) -> tuple[FieldChange, ...]:
    """The fields of ``person`` that ``values`` (the row, with ``team`` as a name) changes."""
    current = {key: getattr(person, key) for key in FIELDS if key != "team"}
    current["team"] = team_names.get(person.team_id, "")
    return tuple(
        FieldChange(key, shown(current[key]), shown(values[key]))
        for key in FIELDS
        if shown(current[key]) != shown(values[key])
    )


def team_previews(
    declared_teams: list[str],
    parents: dict[str, str],
    managers: dict[str, str],
    teams: dict[str, Team],
    manager_emails: dict[int, str],
) -> list[TeamPreview]:
    """New teams, and teams whose parent or manager the file changes (names and emails)."""
    name_of = {team.id: team.name for team in teams.values()}
    out = []
    for name in declared_teams:
        existing = teams.get(name)
        old_parent = name_of.get(existing.parent_id or 0, "") if existing else ""
        old_manager = manager_emails.get(existing.manager_id or 0, "") if existing else ""
        changes = []
        if name in parents and parents[name] != old_parent:
            changes.append(FieldChange("parent_team", old_parent, parents[name]))
        if name in managers and managers[name] != old_manager:
            changes.append(FieldChange("manager_email", old_manager, managers[name]))
        if existing is None or changes:
            out.append(TeamPreview(name, existing is None, tuple(changes)))
    return out
