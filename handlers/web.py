"""``web``: a one-time link that signs HR or a manager in to the web console."""

from __future__ import annotations

from bot.handling import MANAGERS, HandlerContext, Registry
from bot.replies import Reply
from bot.web.access import issue_link, sign_in_url


def register(registry: Registry) -> None:
    registry.command("web", summary="help/web", roles=MANAGERS, audited=True)(web_link)


async def web_link(ctx: HandlerContext) -> Reply:
    """A sign-in link for the person asking, working once and for a few minutes."""
    settings = ctx.settings.web
    if not settings.enabled:
        return Reply("web/off")
    token = await issue_link(ctx.session, ctx.person, ctx.clock.now(), settings, by=ctx.channel)
    return Reply(
        "web/link", {"url": sign_in_url(settings, token), "minutes": settings.link_ttl_minutes}
    )
