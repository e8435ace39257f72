"""The people directory: importing it from CSV, and looking people and teams up."""

from bot.people.importing import (
    ImportFailed,
    ImportSummary,
    import_people,
    managed_team_ids,
    person_by_email,
    team_by_name,
    team_subtree_ids,
)

__all__ = [
    "ImportFailed",
    "ImportSummary",
    "import_people",
    "managed_team_ids",
    "person_by_email",
    "team_by_name",
    "team_subtree_ids",
]
