"""``fidelio db backup``: a consistent copy of a SQLite database, even while Fidelio runs.

SQLite's online backup API copies the database page by page inside one read transaction, so
the copy is the database as it was at one moment, whatever the running Fidelio writes
meanwhile (WAL mode lets it keep writing). PostgreSQL has its own tool, pg_dump.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.errors import InputError

PG_DUMP_HINT = (
    "fidelio db backup copies SQLite databases only; back up PostgreSQL with its own tool, "
    "for example: pg_dump --format=custom --file=fidelio.dump <database>"
)


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size_bytes: int
    pages: int
    revision: str | None


def sqlite_file(url: str) -> Path:
    """The database file of a ``sqlite+aiosqlite:///`` URL, or an InputError saying why not."""
    if not url.startswith("sqlite"):
        raise InputError("database.url", PG_DUMP_HINT)
    database = make_url(url).database
    if not database or database == ":memory:":
        raise InputError("database.url", "an in-memory SQLite database cannot be backed up")
    path = Path(database)
    if not path.is_file():
        raise InputError("database.url", f"{path} does not exist (run fidelio db upgrade first)")
    return path


async def backup_database(url: str, target: Path, *, overwrite: bool = False) -> BackupResult:
    """Copy the database at ``url`` to ``target`` (written under a temporary name, checked
    with ``PRAGMA integrity_check``, then renamed, so ``target`` is never half-written)."""
    source = sqlite_file(url)
    target = target.expanduser()
    if target.resolve() == source.resolve():
        raise InputError(str(target), "is the database itself; choose another file")
    if target.exists() and not overwrite:
        raise InputError(str(target), "already exists (use --force to replace it)")
    if not target.parent.is_dir():
        raise InputError(str(target), f"folder {target.parent} does not exist")
    return await asyncio.to_thread(_copy, source, target)


def _copy(source: Path, target: Path) -> BackupResult:
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(str(source), timeout=30)
    try:
        dst = sqlite3.connect(str(partial))
        try:
            # pages=-1: the whole database in one step, i.e. one read transaction on the
            # source: a snapshot, however much the running Fidelio writes meanwhile.
            src.backup(dst, pages=-1)
            # A self-contained file: no -wal or -shm beside it.
            dst.execute("PRAGMA journal_mode=DELETE")
            check = dst.execute("PRAGMA integrity_check").fetchone()[0]
            if check != "ok":
                raise InputError(str(target), f"the copy failed its integrity check: {check}")
            pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
            try:
                row = dst.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = row[0] if row else None
            except sqlite3.DatabaseError:
                revision = None
        finally:
            dst.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    os.replace(partial, target)
    return BackupResult(target, target.stat().st_size, pages, revision)
