"""The console channel: a local terminal conversation as any person in the directory.

Buttons are shown as numbered choices; typing the number presses the button. Answers on a scale
(buttons labelled 0 to 10, or 1 to 5) are typed as the value itself, ``7`` for 7, and the other
buttons beside them (Skip) by a letter; a number off the scale is asked again. It works the same
on a terminal and through a pipe (``echo help | fidelio chat --as someone@example.com``).
Messages for other console users (broadcasts while ``fidelio run`` is open) are shown with
their recipient so nothing is silently lost. ``:as WHO`` switches to another person of the
directory and shows the latest messages they received (``fidelio demo tour`` sends some).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

from bot.channels.port import Address, Button, Message, MessageRef
from bot.events import ButtonPressed, ChannelUser, InboundEvent, TextReceived
from bot.markup import escape, to_plain

EXIT_WORDS = {"quit", "exit", "esci", ":q"}
#: ``:as WHO`` switches the person at the keyboard (an email, or part of one or of a name).
SWITCH_WORD = ":as"

_NUMBER = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def is_scale(buttons: list[Button] | tuple[Button, ...]) -> bool:
    """Two or more buttons labelled with distinct whole numbers: a 1-5 or 0-10 scale."""
    numbers = [b.label.strip() for b in buttons if b.label.strip().isdigit()]
    return len(numbers) >= 2 and len(set(numbers)) == len(numbers)


def choice_keys(buttons: list[Button] | tuple[Button, ...]) -> list[str]:
    """What to type for each button.

    On a scale (:func:`is_scale`) each number is chosen by typing it, and any other button
    (Skip) by a letter, the first of its label when free. Otherwise the buttons are numbered
    1, 2, 3...
    """
    labels = [b.label.strip() for b in buttons]
    if not is_scale(buttons):
        return [str(i) for i in range(1, len(buttons) + 1)]
    used: set[str] = {label for label in labels if label.isdigit()}
    keys = []
    for label in labels:
        if label.isdigit():
            keys.append(label)
            continue
        first = next((ch.lower() for ch in label if ch.isalpha()), "")
        key = first if first and first in _LETTERS and first not in used else ""
        key = key or next(letter for letter in _LETTERS if letter not in used)
        used.add(key)
        keys.append(key)
    return keys


class ConsoleChannel:
    name = "console"

    def __init__(self, out: TextIO | None = None, image_dir: Path | None = None):
        self.out = out or sys.stdout
        self.image_dir = image_dir or Path("var") / "console-images"
        self._ids = itertools.count(1)
        #: The person at the keyboard (their email), and the choices last shown to them.
        self.active: str | None = None
        self._choices: list[Button] = []
        #: What to type for each choice (see :func:`choice_keys`), and what to say after a
        #: number that is none of them on a scale.
        self._keys: list[str] = []
        self._retry = ""
        self.on_event: Callable[[InboundEvent], Awaitable[object]] | None = None
        #: ``:as WHO`` switches the person at the keyboard: given WHO, returns their email
        #: (after showing what they received) or None (after saying why not).
        self.on_switch: Callable[[str], Awaitable[str | None]] | None = None

    # ChatPort

    async def send(self, to: Address, message: Message) -> MessageRef:
        ref = MessageRef(self.name, to.chat_id, str(next(self._ids)))
        self._show(to.chat_id, message.text, message.buttons, message.retry)
        return ref

    async def edit(self, ref: MessageRef, message: Message) -> None:
        self._show(ref.chat_id, "(updated) " + message.text, message.buttons, message.retry)

    async def send_image(self, to: Address, png: bytes, caption: str) -> MessageRef:
        self.image_dir.mkdir(parents=True, exist_ok=True)
        ref = MessageRef(self.name, to.chat_id, str(next(self._ids)))
        path = self.image_dir / f"image-{ref.message_id}-{uuid.uuid4().hex[:6]}.png"
        path.write_bytes(png)
        # The path is escaped: underscores in it must not read as markup.
        self._show(to.chat_id, f"{caption}\n[image saved to {escape(path.resolve())}]", ())
        return ref

    async def open(self, external_id: str) -> Address:
        return Address(self.name, external_id)

    # Terminal

    def _show(self, chat: str, text: str, buttons: tuple[Button, ...], retry: str = "") -> None:
        plain = to_plain(text)
        if chat != self.active:
            self.out.write(f"\n[to {chat}] " + plain.replace("\n", "\n    ") + "\n")
        else:
            self.out.write("\nfidelio> " + plain.replace("\n", "\n         ") + "\n")
            if buttons:
                self._choices = list(buttons)
                self._keys = choice_keys(buttons)
                self._retry = retry
                self._write_choices()
        self.out.flush()

    def _write_choices(self) -> None:
        """``[1] Yes  [2] No``; on a scale ``[0]  [1] ... [10]  [s] Skip``."""
        scale = is_scale(self._choices)
        shown = [
            f"[{key}]" if scale and key == b.label.strip() else f"[{key}] {b.label}"
            for key, b in zip(self._keys, self._choices, strict=True)
        ]
        self.out.write("         " + "  ".join(shown) + "\n")

    def event_for(self, line: str, email: str) -> InboundEvent | None:
        """Turn a typed line into an event: the key of a shown choice presses it, anything
        else is text. On a scale, a number that is not on it is asked again here (None)."""
        user = ChannelUser(self.name, email, email, display_name=email)
        event_id = uuid.uuid4().hex
        stripped = line.strip()
        if self._choices:
            typed = stripped.lower()
            if typed in self._keys:
                chosen = self._choices[self._keys.index(typed)]
                self._choices, self._keys = [], []
                return ButtonPressed(user, event_id, chosen.action, chosen.value)
            if _NUMBER.match(typed) and is_scale(self._choices):
                self.out.write("\nfidelio> " + to_plain(self._retry or "?") + "\n")
                self._write_choices()
                self.out.flush()
                return None
        return TextReceived(user, event_id, stripped)

    def note(self, text: str) -> None:
        """A line from the console itself, not from Fidelio (switching person)."""
        self.out.write("\n-- " + text.replace("\n", "\n   ") + "\n")
        self.out.flush()

    async def switch(self, who: str) -> str | None:
        """``:as WHO``: chat as another person from now on; returns their email, or None."""
        if self.on_switch is None:
            self.note("switching person is not available here")
            return None
        email = await self.on_switch(who)
        if email is not None:
            self.active = email
        return email

    async def converse(
        self, email: str, stdin: TextIO | None = None, *, prompt: bool = True
    ) -> None:
        """Read lines until end of input or ``quit``; each line goes to the dispatcher, except
        ``:as WHO``, which switches to another person (see :meth:`switch`)."""
        assert self.on_event is not None, "console channel not wired to a dispatcher"
        source = stdin or sys.stdin
        self.active = email
        interactive = prompt and source.isatty()
        lines = _read_lines_in_background(source)
        while True:
            if interactive:
                self.out.write(f"{self.active}> ")
                self.out.flush()
            line = await lines.get()
            if not line:
                break
            if not line.strip():
                continue
            if line.strip().lower() in EXIT_WORDS:
                break
            word, _, rest = line.strip().partition(" ")
            if word.lower() == SWITCH_WORD:
                await self.switch(rest.strip())
                continue
            event = self.event_for(line, self.active or email)
            if event is not None:
                await self.on_event(event)


def _read_lines_in_background(source: TextIO) -> asyncio.Queue[str]:
    """Feed lines from a blocking stream into a queue ("" marks the end).

    A daemon thread, not ``asyncio.to_thread``: a thread blocked in ``readline`` must not keep
    the process alive after Ctrl-C / SIGTERM.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str] = asyncio.Queue()

    def pump() -> None:
        try:
            for line in iter(source.readline, ""):
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except (OSError, ValueError):
            pass
        finally:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, "")
            except RuntimeError:  # the loop is already closed
                pass

    threading.Thread(target=pump, name="console-stdin", daemon=True).start()
    return queue
