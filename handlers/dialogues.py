"""``cancel`` (``annulla``, ``stop``): leave whatever dialogue the person is in."""

from __future__ import annotations

from dataclasses import replace

from bot.dialogues import Dialogues
from bot.events import TextReceived
from bot.handling import HandlerContext, HandlerResult, Registry


def register(registry: Registry) -> None:
    registry.command("cancel", summary="help/cancel", aliases=("annulla", "stop"))(cancel)


async def cancel(ctx: HandlerContext) -> HandlerResult:
    """End the current dialogue and say which (or that there was none).

    Only the bare word cancels while a dialogue waits for a typed message: "Stop printing the
    weekly report" is what the person wanted to write, not a command, so it goes to that
    dialogue as typed.
    """
    dialogues = Dialogues(ctx)
    event = ctx.event
    flow = await dialogues.current_flow()
    if (
        ctx.args.strip()
        and isinstance(event, TextReceived)
        and not event.text.lstrip().startswith("/")
        and flow is not None
        and ctx.registry is not None
        and flow in ctx.registry.flows
    ):
        return await ctx.registry.flows[flow](replace(ctx, args=event.text))
    return await dialogues.cancel()
