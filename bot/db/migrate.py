"""Run Alembic migrations programmatically (``fidelio db upgrade``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our migrations and at ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def check_revision(revision: str) -> None:
    """InputError naming REVISION when no migration has that id (``head`` is always fine)."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from bot.errors import InputError

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    found: tuple[object, ...] = ()
    if revision.strip():
        try:
            found = tuple(script.get_revisions(revision))
        except (CommandError, AssertionError):
            found = ()
    if found:
        return
    ids = sorted(r.revision for r in script.walk_revisions())
    raise InputError(
        "REVISION",
        f"no migration {revision!r}: give head (the default) or one of {ids[0]} to {ids[-1]}",
    )


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Alembic is synchronous; run it in a worker thread
    (its env.py opens its own event loop for the async engine)."""
    await asyncio.to_thread(command.upgrade, alembic_config(url), revision)


async def current_revision(url: str) -> str | None:
    """The revision the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()
