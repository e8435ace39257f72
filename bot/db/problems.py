"""Why the database could not be reached, in one line that names ``database.url``.

The command line turns these failures into one line and exit status 2 instead of a traceback:
a PostgreSQL database that does not exist, a port where nothing listens, an unknown host, a
refused login, a SQLite file that cannot be opened.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SETTING = "database.url"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, what it wraps (SQLAlchemy's ``orig``) and its causes, each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        todo += [
            orig if isinstance(orig, BaseException) else None,
            current.__cause__,
            current.__context__,
        ]


def _where(url: str | None) -> tuple[str, str, str, str]:
    """(host:port, database, user, sqlite path) from the URL, blanks when unknown."""
    if not url:
        return "", "", "", ""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "", "", "", ""
    if parsed.get_backend_name() == "sqlite":
        return "", "", "", parsed.database or ""
    address = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    return address, parsed.database or "", parsed.username or "", ""


def connection_problem(exc: BaseException, url: str | None = None) -> str | None:
    """One line saying what is wrong with the database connection and what to do, or None
    when ``exc`` is not a connection problem (a missing table, a bug...)."""
    address, database, user, sqlite_path = _where(url)
    at = f" at {address}" if address else ""
    for found in _chain(exc):
        name = type(found).__name__
        sqlstate = getattr(found, "sqlstate", None)
        text = str(found)
        if name == "InvalidCatalogNameError" or sqlstate == "3D000":
            db_name = database or _quoted(text) or "the database"
            host, _, port = address.partition(":")
            login = f" -U {user}" if user else ""
            create = f"createdb -h {host} -p {port}{login} {db_name}" if address else "createdb"
            return (
                f"{SETTING}: PostgreSQL{at} has no database {db_name!r}: create it "
                f"({create}) and run fidelio db upgrade, or correct the name in {SETTING}"
            )
        if name in ("InvalidPasswordError", "InvalidAuthorizationSpecificationError") or (
            sqlstate in ("28P01", "28000")
        ):
            who = f" of user {user!r}" if user else ""
            return (
                f"{SETTING}: PostgreSQL{at} refused the login{who}: check the user and "
                f"password in {SETTING}"
            )
        if isinstance(found, socket.gaierror):
            host = address.partition(":")[0] or "the host"
            return f"{SETTING}: the host {host!r} is not known: check the host in {SETTING}"
        if isinstance(found, ConnectionRefusedError) or (
            isinstance(found, OSError) and found.errno == errno.ECONNREFUSED
        ):
            return (
                f"{SETTING}: nothing accepts connections{at} (connection refused): start "
                f"PostgreSQL, or check the host and port in {SETTING}"
            )
        if isinstance(found, TimeoutError) and address:
            return (
                f"{SETTING}: no answer from {address}: check the host and port in {SETTING} "
                "and that a firewall lets the connection through"
            )
        if "unable to open database file" in text.lower():
            file = sqlite_path or "the SQLite file"
            return (
                f"{SETTING}: cannot open {file}: check that its folder exists and is "
                f"writable, or correct the path in {SETTING}"
            )
    return None


def _quoted(text: str) -> str:
    """The first double-quoted word of a message (asyncpg names the database that way)."""
    parts = text.split('"')
    return parts[1] if len(parts) >= 3 else ""
