"""Where briefings written in the web console live: the ``briefing_texts`` table.

A briefing written or edited in the browser is stored in the database, in the table
``briefing_texts``, as the full text of a briefing file (YAML front matter, then one
``::: <locale>`` section of Markdown per language), and it is checked by the very parser of
``content/briefings/*.md`` (:func:`bot.briefings.content.parse_briefing`) before it is stored:
a text with a problem is never saved. Every Fidelio instance on the same PostgreSQL therefore
sees, edits and schedules the same briefing. Files in ``content/briefings/`` stay an import
path: a file whose id is not in the table yet is listed beside the stored ones, and the first
save or schedule of it from the console copies its text into the table, which from then on
is the briefing's text (the file is not changed, and a file of that id is ignored). Each save
counts a ``version``: an edit started from an older version is refused rather than
overwriting what somebody else saved in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from bot.briefings.content import Briefing, declared_id, load_briefing, parse_briefing
from bot.briefings.tables import BriefingText
from bot.db.models import AuditEntry, Person
from bot.errors import InputError

#: Where a stored text's problems say they are (``<source>: <field>``), as a file's name does.
SOURCE = "briefing {id}"


def source_of(briefing_id: str) -> str:
    """The name a stored briefing's problems carry in place of a file name."""
    return SOURCE.format(id=briefing_id or "(new)")


@dataclass(frozen=True)
class BriefingSource:
    """The text of a briefing: stored in the database, or only in a content file so far."""

    briefing_id: str
    text: str
    stored: BriefingText | None = None
    path: Path | None = None

    @property
    def version(self) -> int:
        return self.stored.version if self.stored is not None else 0


def file_texts(folder: Path) -> dict[str, tuple[Path, str]]:
    """The briefing files of ``folder`` by the id they declare (a broken file too, when its
    id can be read), the first file of an id winning as ``content check`` reports it."""
    found: dict[str, tuple[Path, str]] = {}
    for path in sorted(folder.glob("*.md")):
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            continue
        briefing_id = declared_id(text)
        if briefing_id and briefing_id not in found:
            found[briefing_id] = (path, text)
    return found


async def all_sources(session: AsyncSession, folder: Path) -> list[BriefingSource]:
    """Every briefing: the stored ones, then the files whose id is not stored, by id."""
    stored = {row.briefing_id: row for row in await session.scalars(select(BriefingText))}
    sources = [BriefingSource(key, row.text, stored=row) for key, row in stored.items()]
    for key, (path, text) in file_texts(folder).items():
        if key not in stored:
            sources.append(BriefingSource(key, text, path=path))
    return sorted(sources, key=lambda s: s.briefing_id)


async def find_source(
    session: AsyncSession, folder: Path, briefing_id: str
) -> BriefingSource | None:
    """The briefing ``briefing_id``: its stored text, else its file's, else None."""
    row = await session.scalar(select(BriefingText).where(BriefingText.briefing_id == briefing_id))
    if row is not None:
        return BriefingSource(briefing_id, row.text, stored=row)
    found = file_texts(folder).get(briefing_id)
    return BriefingSource(briefing_id, found[1], path=found[0]) if found else None


def parse_source(source: BriefingSource, zone: str) -> tuple[Briefing | None, list[InputError]]:
    """The briefing of a text with every problem, named as the stored text or the file."""
    name = str(source.path) if source.stored is None and source.path else None
    return parse_briefing(source.text, name or source_of(source.briefing_id), zone)


async def save_text(
    session: AsyncSession,
    text: str,
    *,
    actor: Person,
    now: datetime,
    zone: str,
    editing: BriefingSource | None = None,
    version: int = 0,
) -> tuple[Briefing | None, list[InputError]]:
    """Check ``text`` as a briefing file and store it: a new briefing, or ``editing`` (read
    at ``version``). Returns the briefing, or None and every problem (nothing stored). Each
    save is audited: ``briefing.create``, ``briefing.edit``, or ``briefing.import`` for the
    first save of a briefing that was only a file."""
    wanted = editing.briefing_id if editing is not None else (declared_id(text) or "")
    briefing, problems = parse_briefing(text, source_of(wanted), zone)
    if problems or briefing is None:
        return None, problems
    where = f"{source_of(wanted)}: id"
    if editing is not None and briefing.id != editing.briefing_id:
        reason = f"cannot change once stored (this is {editing.briefing_id!r}): write a new one"
        return None, [InputError(where, reason)]
    row = await session.scalar(select(BriefingText).where(BriefingText.briefing_id == briefing.id))
    if editing is None and row is not None:
        return None, [InputError(where, f"{briefing.id!r} is already used by another briefing")]
    if editing is not None and (row.version if row is not None else 0) != version:
        by = row.updated_by if row is not None else "?"
        reason = f"{by} saved this briefing after you opened it: open it again to see their changes"
        return None, [InputError(f"{source_of(wanted)}: (file)", reason)]
    if row is None:
        row = BriefingText(
            briefing_id=briefing.id,
            text=text,
            created_at=now,
            created_by=actor.email,
            updated_at=now,
            updated_by=actor.email,
        )
        session.add(row)
        action = "briefing.import" if editing is not None else "briefing.create"
    else:
        row.text, row.updated_at, row.updated_by = text, now, actor.email
        action = "briefing.edit"
    try:
        await session.flush()
    except (IntegrityError, StaleDataError):
        # Another instance stored this id, or saved this version, a moment ago. The caller
        # rolls its transaction back (nothing of this request is kept).
        reason = "was saved by someone else a moment ago: open it again to see their changes"
        return None, [InputError(f"{source_of(wanted)}: (file)", reason)]
    session.add(AuditEntry.by(actor, now, action, briefing=briefing.id, version=row.version))
    return briefing, []


async def load_scheduled_briefing(
    session: AsyncSession, folder: Path, briefing_id: str, zone: str
) -> Briefing:
    """The briefing ``campaign schedule`` schedules: its stored text when the web console
    keeps one (every instance agrees on it), else its file; InputError when it has a problem."""
    row = await session.scalar(select(BriefingText).where(BriefingText.briefing_id == briefing_id))
    if row is None:
        return load_briefing(folder, briefing_id, zone)
    briefing, problems = parse_source(BriefingSource(briefing_id, row.text, stored=row), zone)
    if briefing is None:
        first = problems[0]
        raise InputError(first.where, first.reason)
    return briefing
