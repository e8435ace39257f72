"""Who may now see something different: a small in-process signal, told after the commit.

Code that changes what a person is shown outside the chat (their Slack Home tab: open
surveys, briefings to read, suggestions and their status) notes it in its transaction::

    note_change(session, person.id)   # what this person sees has changed
    note_change(session)              # what everyone may see has changed (a round opened)
    note_opened(session, person.id)   # the person opened a view of their own (Home tab)

Nothing is written: the notes ride on the session (``session.info``) and are announced by
:class:`bot.db.session.Database` once the transaction has committed, so a rolled-back change
announces nothing and listeners read what was committed. Listeners (the Home feature, see
bot/home/refresh.py) are plain functions called in the committing task; they must return at
once (schedule work, do not await it). Without listeners (the command line, most tests) a
note costs one set insertion.

The signal lives in this process only: another Fidelio instance does not hear it. A person's
Home tab is published afresh whenever they open it, so a missed signal costs freshness until
then, never correctness.

Where changes are noted: a survey round opening or closing, schedules and campaigns changing
(everyone); an answer to a pulse item, a briefing acknowledged or its quiz answered (the
person); a suggestion sent, triaged, answered, published or merged (everyone); a vote (the
voter).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: Where the notes of one transaction wait in ``session.info`` until it commits.
NOTES_KEY = "fidelio.changes"


@dataclass
class Changed:
    """What one committed transaction noted."""

    #: People whose view has changed.
    people: set[int] = field(default_factory=set)
    #: What everyone may see has changed.
    everyone: bool = False
    #: People who opened a view of their own (the Slack Home tab).
    opened: set[int] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.people or self.everyone or self.opened)


Listener = Callable[[Changed], None]


def _notes(session: Any) -> Changed:
    notes = session.info.get(NOTES_KEY)
    if notes is None:
        notes = session.info[NOTES_KEY] = Changed()
    return notes  # type: ignore[no-any-return]


def note_change(session: Any, person_id: int | None = None) -> None:
    """Note in ``session``'s transaction that what ``person_id`` sees (None: everyone) has
    changed; announced once the transaction commits."""
    notes = _notes(session)
    if person_id is None:
        notes.everyone = True
    else:
        notes.people.add(person_id)


def note_opened(session: Any, person_id: int) -> None:
    """Note that ``person_id`` opened a view of their own (the Slack Home tab)."""
    _notes(session).opened.add(person_id)


class Changes:
    """The listeners of one database's committed changes (``Database.changes``)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def forget(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def announce_noted(self, session: Any) -> None:
        """Tell the listeners what ``session``'s committed transaction noted (if anything)."""
        notes = session.info.pop(NOTES_KEY, None)
        if not notes:
            return
        for listener in list(self._listeners):
            try:
                listener(notes)
            except Exception:
                # A listener's failure must not turn a committed change into an error.
                log.exception("a change listener failed")
