"""The person's current dialogue: the one place that starts, pauses, ends and cancels them.

A dialogue is a multi-step exchange in which the person's next typed message means something
(a suggestion being written, a survey comment, an answer to HR's question). A person has at
most one ``conversation_states`` row, their *current* dialogue, and free text goes to it.
Features never insert or delete that row themselves: they call :class:`Dialogues`, so a new
dialogue can always start whatever the person left unfinished, and nothing a feature left
behind can make another one fail.

Starting a dialogue while another is in progress:

* a *pausable* one (a suggestion draft, which holds what the person wrote) is kept inside the
  new one's row, under :data:`PAUSED`, and comes back, with its question asked again, when
  the new one finishes or is cancelled. One dialogue waits at most: a second pausable one
  would replace it, and the person is told;
* any other one ends (the survey, the suggestion and its question are still there; the note
  says how to get back to them).

Either way the person gets a word (``dialogues/left``). ``cancel`` ends the current dialogue
and says which; one that was waiting then comes back.

Anonymous suggestions and answers end their dialogue in a transaction of their own on
PostgreSQL (:meth:`Dialogues.finish_apart`, bot/suggestions/scrubbing.py).
"""

from __future__ import annotations

from typing import Any

from bot.db.models import ConversationState
from bot.handling import DialogueSpec, HandlerContext
from bot.replies import Reply
from bot.suggestions.scrubbing import forget_draft

#: Key, inside a dialogue's data, of the dialogue it paused: ``{"flow": ..., "data": ...}``.
PAUSED = "paused"


def _own(data: dict[str, Any]) -> dict[str, Any]:
    """A dialogue's data without the one it paused."""
    return {k: v for k, v in data.items() if k != PAUSED}


def _paused(data: dict[str, Any]) -> dict[str, Any] | None:
    held = data.get(PAUSED)
    return held if isinstance(held, dict) and isinstance(held.get("flow"), str) else None


class Dialogues:
    """The current dialogue of ``ctx.person``, in ``ctx``'s transaction."""

    def __init__(self, ctx: HandlerContext):
        self.ctx = ctx
        self.specs: dict[str, DialogueSpec] = ctx.registry.dialogues if ctx.registry else {}

    async def _row(self) -> ConversationState | None:
        return await self.ctx.conversation_state()

    async def current_flow(self) -> str | None:
        row = await self._row()
        return row.flow if row is not None else None

    async def data(self, flow: str) -> dict[str, Any] | None:
        """The data of ``flow`` when it is the current dialogue, else None."""
        row = await self._row()
        return _own(dict(row.data or {})) if row is not None and row.flow == flow else None

    async def paused_data(self, flow: str) -> dict[str, Any] | None:
        """The data of ``flow`` when it waits behind the current dialogue, else None."""
        row = await self._row()
        held = _paused(dict(row.data or {})) if row is not None else None
        return dict(held.get("data") or {}) if held and held["flow"] == flow else None

    async def set(self, flow: str, data: dict[str, Any]) -> list[Reply]:
        """Make ``flow`` the current dialogue with ``data``: updated in place when it is
        current already, otherwise started, pausing or ending the one in progress. Returns
        the notes telling the person what happened to that one (none when nothing did)."""
        row = await self._row()
        now = self.ctx.clock.now()
        if row is None:
            self.ctx.session.add(
                ConversationState(
                    person_id=self.ctx.person.id, flow=flow, data=dict(data), updated_at=now
                )
            )
            await self.ctx.session.flush()
            return []
        stored = dict(row.data or {})
        held = _paused(stored)
        notes: list[Reply] = []
        if row.flow != flow:
            if held is not None and held["flow"] == flow:
                # Starting afresh what was waiting: the waiting one is dropped.
                notes.append(self._note("discarded", held["flow"], held.get("data") or {}))
                held = None
            spec = self.specs.get(row.flow)
            if spec is not None and spec.pausable and held is None:
                held = {"flow": row.flow, "data": _own(stored)}
                notes.append(self._note("paused", row.flow, _own(stored)))
            else:
                notes.append(self._note("ended", row.flow, _own(stored)))
        row.flow = flow
        row.data = {**_own(data), **({PAUSED: held} if held else {})}
        row.updated_at = now
        await self.ctx.session.flush()
        return notes

    async def finish(self, flow: str) -> list[Reply]:
        """``flow`` is done (current or waiting): it ends; one it had paused comes back, and
        the returned replies say so and ask its question again."""
        row = await self._row()
        if row is None:
            return []
        stored = dict(row.data or {})
        held = _paused(stored)
        if row.flow != flow:
            if held is not None and held["flow"] == flow:
                row.data = _own(stored)
                await self.ctx.session.flush()
            return []
        if held is None:
            await self.ctx.session.delete(row)
            await self.ctx.session.flush()
            return []
        row.flow, row.data, row.updated_at = (
            held["flow"],
            dict(held.get("data") or {}),
            (self.ctx.clock.now()),
        )
        await self.ctx.session.flush()
        return self._back(held["flow"], dict(held.get("data") or {}))

    async def finish_apart(self, flow: str) -> list[Reply]:
        """:meth:`finish` for the step that files an anonymous suggestion or answer: the row
        is changed by a transaction of its own (see bot/suggestions/scrubbing.py), and this
        transaction never writes it. The replies asking a returning dialogue's question are
        built from its data without storing anything."""
        row = await self._row()
        stored = dict(row.data or {}) if row is not None else {}
        held = _paused(stored)
        back: list[Reply] = []
        if row is not None and row.flow == flow:
            successor = (held["flow"], dict(held.get("data") or {})) if held else None
            await forget_draft(self.ctx.session, self.ctx.person.id, flow, successor)
            if held is not None:
                back = self._back(held["flow"], dict(held.get("data") or {}))
        elif row is not None and held is not None and held["flow"] == flow:
            await forget_draft(
                self.ctx.session, self.ctx.person.id, row.flow, (row.flow, _own(stored))
            )
        else:
            # Nothing of ``flow`` is stored; the scrub is still owed for the anonymous row.
            await forget_draft(self.ctx.session, self.ctx.person.id, flow)
        return back

    async def bring_back(self, flow: str) -> list[Reply]:
        """Put the waiting dialogue ``flow`` in front again (a press on one of its buttons):
        the current one is paused or ended, with a word, and ``flow``'s question is asked
        again."""
        row = await self._row()
        held = _paused(dict(row.data or {})) if row is not None else None
        if row is None or held is None or held["flow"] != flow:
            return []
        row.data = _own(dict(row.data or {}))
        data = dict(held.get("data") or {})
        notes = await self.set(flow, data)
        return [*notes, *self._back(flow, data)]

    async def cancel(self) -> list[Reply]:
        """End the current dialogue, whatever it is, and say which (or that there was none);
        one that was waiting comes back."""
        row = await self._row()
        if row is None:
            return [Reply("dialogues/nothing")]
        stored = dict(row.data or {})
        cancelled = self._context(row.flow, _own(stored))
        held = _paused(stored)
        if held is None:
            await self.ctx.session.delete(row)
            await self.ctx.session.flush()
            return [Reply("dialogues/cancelled", cancelled)]
        row.flow, row.data, row.updated_at = (
            held["flow"],
            dict(held.get("data") or {}),
            (self.ctx.clock.now()),
        )
        await self.ctx.session.flush()
        return [
            Reply("dialogues/cancelled", cancelled),
            *self._back(held["flow"], dict(held.get("data") or {})),
        ]

    # What the person reads

    def _context(self, flow: str, data: dict[str, Any]) -> dict[str, Any]:
        spec = self.specs.get(flow)
        extra = spec.about(data) if spec is not None and spec.about is not None else {}
        return {"flow": flow, "reference": "", **extra}

    def _note(self, action: str, flow: str, data: dict[str, Any]) -> Reply:
        return Reply("dialogues/left", {"action": action, **self._context(flow, data)})

    def _back(self, flow: str, data: dict[str, Any]) -> list[Reply]:
        spec = self.specs.get(flow)
        replies = [Reply("dialogues/back", self._context(flow, data))]
        if spec is not None and spec.prompt is not None:
            replies.append(spec.prompt(self.ctx, data))
        return replies
