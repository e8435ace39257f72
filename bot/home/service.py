"""A person's Home tab: built from the other features' services as a platform-neutral
:class:`~bot.channels.port.HomeView` in their language, and published on every platform
that has one (:class:`~bot.channels.port.PublishesHome`: Slack).

Which sections whom: everyone has the surveys to answer, the briefings to read or to quiz,
their suggestions and the ideas board; managers add launch readiness and the loyalty summary
of their teams; HR (and administrators) add those for the organisation, then what is coming
up, live response rates and the suggestions awaiting triage. Texts are templates under
``content/templates/<locale>/home/`` (the summary keeps the chat's own); each section shows
``home.items`` entries and counts the others, with the chat command that lists them.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.port import Button, HomeItem, HomeSection, HomeView, PublishesHome
from bot.db.models import ChannelIdentity, Person, Role
from bot.home import sections, staff
from bot.home.parts import Builder, HomeContext, Part
from bot.replies import Reply, ReplyButton
from bot.service import SendingService

EVERYONE: tuple[Builder, ...] = (sections.surveys, sections.briefings)
MANAGERS: tuple[Builder, ...] = (staff.readiness, staff.summary)
HR: tuple[Builder, ...] = (staff.triage, staff.rates, staff.upcoming)
LAST: tuple[Builder, ...] = (sections.suggestions, sections.ideas)


def builders(role: Role) -> tuple[Builder, ...]:
    """The sections of a role's Home tab, in order: the person's own to-dos first."""
    if role in (Role.hr, Role.admin):
        return EVERYONE + MANAGERS + HR + LAST
    if role == Role.manager:
        return EVERYONE + MANAGERS + LAST
    return EVERYONE + LAST


class HomeService(SendingService):
    async def build(self, session: AsyncSession, person: Person, channel: str) -> HomeView:
        """``person``'s Home tab as it stands, in their language (read in ``session``,
        which also takes the audit entries of the figures shown)."""
        ctx = HomeContext(session, self.settings, self.clock, person, channel)
        parts = [await build(ctx) for build in builders(person.role)]
        return HomeView(
            title=self.renderer.label("home.title", person.locale),
            intro=self._text(ctx, Reply("home/intro", {"name": person.name})),
            sections=tuple(self._section(ctx, part) for part in parts if part is not None),
            cut=self._text(ctx, Reply("home/cut")),
        )

    async def publish(self, person_id: int) -> None:
        """Build ``person_id``'s Home tab and publish it on each of their accounts whose
        platform has one; nothing for someone unknown, who has left or has no such account.
        Raises the SendError family (RateLimited: the refresher tries again)."""
        async with self.session() as session:
            person = await session.get(Person, person_id)
            if person is None or person.erased_at is not None:
                return
            if not person.is_active(self.clock.now().date()):
                return
            accounts = [
                (str(identity.channel), identity.external_id)
                for identity in await session.scalars(
                    select(ChannelIdentity).where(ChannelIdentity.person_id == person_id)
                )
                if isinstance(self.sender.ports.get(str(identity.channel)), PublishesHome)
            ]
            if not accounts:
                return
            view = await self.build(session, person, accounts[0][0])
        for channel, external_id in accounts:
            await self.sender.publish_home(channel, external_id, view)

    def _text(self, ctx: HomeContext, reply: Reply) -> str:
        return self.renderer.text(
            reply.template, ctx.person.locale, reply.context, ctx.channel, ctx.person.timezone
        )

    def _buttons(self, ctx: HomeContext, buttons: tuple[ReplyButton, ...]) -> tuple[Button, ...]:
        locale = ctx.person.locale
        return tuple(
            Button(self.renderer.label(b.label, locale), b.action, b.value) for b in buttons
        )

    def _section(self, ctx: HomeContext, part: Part) -> HomeSection:
        items = tuple(
            HomeItem(self._text(ctx, reply), self._buttons(ctx, reply.buttons))
            for reply in part.items
        )
        if not items and part.empty:
            items = (HomeItem(self._text(ctx, Reply(part.empty))),)
        return HomeSection(
            title=self.renderer.label(part.title, ctx.person.locale),
            items=items,
            note=self._text(ctx, part.note) if part.note is not None else "",
            buttons=self._buttons(ctx, part.buttons),
        )
