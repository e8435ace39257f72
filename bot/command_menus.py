"""Command menus: the list a platform shows when a person types "/" (Telegram), kept in step
with the handler registry and with each person's role.

Everyone is shown the employee commands: one menu per language Fidelio speaks, for the apps
set to that language, and one in the organisation's language for every other app. A manager,
HR person or admin gets a menu of their own, in their chat, listing exactly the commands
their role may run, described in their language (the directory's, whatever their app's).
Descriptions are the one-line summaries ``help`` shows, and the order is ``help``'s.

**Keeping people's menus in step with their roles.** Roles change through people imports,
and an import runs in a process of its own (``fidelio people import``) that has no chat
platform and is not connected to the running Fidelio. Rather than being told, the running
Fidelio compares, at start and every ``telegram.menu_refresh_s``: on one side who should have
a menu of their own (active people whose role is not employee and who are linked on the
platform, a small query); on the other the menus it gave, recorded on each identity as a
digest of chat and menu (``channel_identities.menu_digest``). Only differences cost a
request: a new or changed menu is set (promotion, new language, new link), a menu no longer
due is deleted (demotion, leaving), so that chat shows the general menu again. An unchanged
directory costs one query and no request.

The record is in the database rather than in memory so that a restart, or the other
instance of a fail-over pair, knows which chats have a menu: a manager demoted while Fidelio
was stopped loses the menu at the next start. Two instances comparing at once may both send
the same menu, which is harmless. Code in the same process that changes roles can call
:meth:`CommandMenus.refresh` rather than wait.

Known limit: when an identity is removed (``people forget``) or moved to another account,
the old chat keeps its menu, since nothing records it any more; the commands shown there are
still refused by the role check.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select, update

from bot.channels.port import (
    HasCommandMenu,
    MenuCommand,
    PermanentFailure,
    RateLimited,
    SendError,
)
from bot.clock import Clock
from bot.db.models import ChannelIdentity, ChannelName, Person, Role
from bot.db.session import Database
from bot.handling import Registry
from bot.markup import to_plain
from bot.render import Renderer
from bot.settings_section import SUPPORTED_LOCALES

log = logging.getLogger(__name__)

Menu = tuple[MenuCommand, ...]


@dataclass(frozen=True)
class Change:
    """One chat whose menu differs from what its person should have."""

    identity_id: int
    chat: str | None
    #: The menu to set, or None to drop the chat's own menu.
    menu: Menu | None
    #: What to record once done (None with no menu).
    digest: str | None


class CommandMenus:
    """The command menus of one platform (a :class:`~bot.channels.port.HasCommandMenu`)."""

    def __init__(
        self,
        port: HasCommandMenu,
        db: Database,
        registry: Registry,
        renderer: Renderer,
        clock: Clock,
        *,
        default_locale: str,
        every_s: float,
    ):
        self.port = port
        self.db = db
        self.registry = registry
        self.renderer = renderer
        self.clock = clock
        self.default_locale = default_locale
        self.every_s = every_s
        self.general_published = False
        self._menus: dict[tuple[Role, str], Menu] = {}
        self._lock = asyncio.Lock()

    def menu(self, role: Role, locale: str) -> Menu:
        """The commands ``role`` may run, in ``help``'s order, described in ``locale``."""
        key = (role, locale)
        if key not in self._menus:
            self._menus[key] = tuple(
                MenuCommand(
                    command["name"],
                    to_plain(self.renderer.text(command["summary"], locale, {}, self.port.name)),
                )
                for section in self.registry.help_sections(role)
                for command in section["commands"]
            )
        return self._menus[key]

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set: the general menus (until published once), then people's own
        menus, at once and every ``every_s`` seconds. Failures are logged and tried again."""
        while not stop.is_set():
            for step in (self._publish_general_once, self.refresh):
                try:
                    await step()
                except Exception as exc:
                    if stop.is_set():
                        return  # stopping: the platform's client may be closed under us
                    if isinstance(exc, SendError):
                        log.warning("%s: command menus not updated yet: %s", self.port.name, exc)
                    else:
                        log.exception("%s: updating the command menus failed", self.port.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every_s)

    async def _publish_general_once(self) -> None:
        if not self.general_published:
            await self.publish_general()

    async def publish_general(self) -> None:
        """Everyone's menu: the employee commands in each language, and by default in the
        organisation's. Raises the SendError family."""
        for locale in SUPPORTED_LOCALES:
            await self.port.set_menu(self.menu(Role.employee, locale), language=locale)
        await self.port.set_menu(self.menu(Role.employee, self.default_locale))
        self.general_published = True

    async def refresh(self) -> int:
        """Set, change or drop people's own menus where they differ from the directory; the
        number of chats changed."""
        async with self._lock:
            changed = 0
            for change in await self.changes():
                applied = await self._apply(change)
                if applied is None:
                    break  # rate limited: the rest waits for the next round
                changed += applied
            return changed

    async def changes(self) -> list[Change]:
        """The chats whose menu differs from what their person should have."""
        today = self.clock.now().date()
        async with self.db.session() as session:
            rows = await session.execute(
                select(
                    ChannelIdentity.id,
                    ChannelIdentity.address,
                    ChannelIdentity.menu_digest,
                    Person,
                )
                .join(Person, Person.id == ChannelIdentity.person_id)
                .where(
                    ChannelIdentity.channel == ChannelName(self.port.name),
                    or_(Person.role != Role.employee, ChannelIdentity.menu_digest.is_not(None)),
                )
                .order_by(ChannelIdentity.id)
            )
            found = rows.tuples().all()
        changes = []
        for identity_id, chat, given, person in found:
            menu = None
            if chat and person.role != Role.employee and person.is_active(today):
                menu = self.menu(person.role, person.locale)
            wanted = digest(chat, menu) if chat and menu is not None else None
            if wanted != given:
                changes.append(Change(identity_id, chat, menu, wanted))
        return changes

    async def _apply(self, change: Change) -> bool | None:
        """Send one change and record it: True when done, False when it is to be tried again
        next round, None when the platform asks to slow down."""
        try:
            if change.chat and change.menu is not None:
                await self.port.set_menu(change.menu, chat=change.chat)
            elif change.chat:
                await self.port.reset_menu(change.chat)
        except RateLimited as exc:
            log.info("%s: command menus wait (%s)", self.port.name, exc)
            return None
        except PermanentFailure as exc:
            # Asking again will not help (a chat gone, say): recorded as done, not retried.
            log.warning("%s: the menu of chat %s: %s", self.port.name, change.chat, exc)
        except SendError as exc:
            log.info("%s: the menu of chat %s, next round: %s", self.port.name, change.chat, exc)
            return False
        async with self.db.session(queue_writes=True) as session:
            await session.execute(
                update(ChannelIdentity)
                .where(ChannelIdentity.id == change.identity_id)
                .values(menu_digest=change.digest)
            )
        return True


def digest(chat: str, menu: Sequence[MenuCommand]) -> str:
    """What is recorded for a chat given ``menu``: changes with the chat and with any entry."""
    data = json.dumps([chat, [[c.name, c.description] for c in menu]], ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()
