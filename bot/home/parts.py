"""What a section of the Home tab is before it is rendered, and what building one is given."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.db.models import Person
from bot.replies import Reply, ReplyButton


@dataclass(frozen=True)
class HomeContext:
    """Whose Home tab is being built, in whose transaction, for which platform."""

    session: AsyncSession
    settings: Settings
    clock: Clock
    person: Person
    channel: str

    @property
    def limit(self) -> int:
        """Entries shown per section (``home.items``)."""
        return self.settings.home.items

    def audit_where(self) -> dict[str, str]:
        """How a view shown on the Home tab is told apart in the audit log."""
        return {"channel": self.channel, "route": "home"}


@dataclass(frozen=True)
class Part:
    """One section: the label of its title, its entries as replies (template, context,
    buttons: the buttons are the chat's own actions), and what follows them."""

    title: str
    items: Sequence[Reply] = ()
    #: Shown instead of the entries when there are none (a template).
    empty: str = ""
    #: Shown after the entries (how many more there are, where to see the rest).
    note: Reply | None = None
    buttons: tuple[ReplyButton, ...] = field(default_factory=tuple)


#: Builds one section of a person's Home tab (None: nothing to show them there).
Builder = Callable[[HomeContext], Awaitable[Part | None]]


def shortened(
    title: str,
    items: Sequence[Reply],
    ctx: HomeContext,
    *commands: str,
    empty: str = "",
    total: int | None = None,
    buttons: tuple[ReplyButton, ...] = (),
) -> Part:
    """A section showing the first ``home.items`` of ``items``; the others (``total`` in
    all, when more exist than were loaded) are counted, with the chat ``commands`` that list
    them: "and 12 more: type `briefings`"."""
    shown = list(items[: ctx.limit])
    more = (len(items) if total is None else total) - len(shown)
    note = Reply("home/more", {"more": more, "commands": list(commands)}) if more > 0 else None
    return Part(title, shown, empty, note, buttons)
