"""The people directory: importing it from CSV, and looking people and teams up.

- :mod:`bot.people.csv_rows`: checking each row of the CSV file (pydantic models).
- :mod:`bot.people.importing`: checks across rows and against the database, then applying.
- :mod:`bot.people.preview`: what a checked file would change (the dry run).
- :mod:`bot.people.directory`: queries (a person by email, a team by name, team subtrees).

The names below are the package's public API, importable as ``from bot.people import ...``.
"""

from bot.csv_files import ImportFailed
from bot.people.directory import managed_team_ids, person_by_email, team_by_name, team_subtree_ids
from bot.people.importing import (
    CsvUpload,
    ImportSummary,
    PlanChanged,
    import_people,
    preview_import,
)

__all__ = [
    "CsvUpload",
    "ImportFailed",
    "ImportSummary",
    "PlanChanged",
    "import_people",
    "managed_team_ids",
    "person_by_email",
    "preview_import",
    "team_by_name",
    "team_subtree_ids",
]
