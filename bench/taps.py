"""People who tap through a pulse round as people do, for the realistic mode of bench.answers.

Each person waits for a message from the bot on the fake Telegram server, reads it for a
while (``think_s``, random, seeded per person) and taps one of its buttons: Start on the
invitation, then one answer (never Skip) on each question, until the thank-you arrives. A tap
is one callback query queued on the fake, exactly what Telegram makes available to a polling
bot; the next message (or edit) the fake stores for that chat answers it.

Per tap the crowd records:

* **shown**: from the tap being queued to the fake storing the bot's next message for that
  person (what the person waits for);
* **ready**: from the tap being queued to Fidelio handing its reply to the sender (its own
  work: the poll, the transaction, rendering), so that shown - ready is the wait for the
  platform's pace and the send itself.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.channels.callbacks import CallbackCodec
from tests.fakes.telegram import FakeTelegramServer, SentMessage


@dataclass(frozen=True)
class Answer:
    """One answer a person gave: which item of the round, which value."""

    user_id: int
    person_id: int
    item_id: str
    value: int


@dataclass
class _Tap:
    at: float
    answer: bool
    ready: float | None = None


@dataclass
class Crowd:
    """``people`` ((person id, Telegram user id) pairs) answering the round whose items are
    ``round_items``, on ``fake``, with buttons signed by ``codec``."""

    fake: FakeTelegramServer
    codec: CallbackCodec
    round_items: Sequence[str]
    people: Sequence[tuple[int, int]]
    seed: int
    think_s: tuple[float, float] = (1.0, 4.0)
    #: Tap → next message shown (ms), answer taps and Start taps apart.
    shown_ms: list[float] = field(default_factory=list)
    start_shown_ms: list[float] = field(default_factory=list)
    #: Tap → reply handed to the sender (ms), every tap.
    ready_ms: list[float] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    invited: set[int] = field(default_factory=set)
    finished: set[int] = field(default_factory=set)
    #: Messages nobody was waiting for (a second copy of a question, say).
    unexpected: int = 0
    #: When the first invitation and the last thank-you arrived (perf_counter).
    first_invited: float = 0.0
    last_finished: float = 0.0

    def __post_init__(self) -> None:
        self._person = {user_id: person_id for person_id, user_id in self.people}
        self._rng = {user_id: random.Random(f"{self.seed}:{user_id}") for _, user_id in self.people}
        self._pending: dict[int, _Tap] = {}
        self._acted: dict[int, int] = {}  # chat -> index of the last item answered (-1: Start)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def taps(self) -> int:
        return len(self.shown_ms) + len(self.start_shown_ms)

    def attach(self) -> None:
        self.fake.message_observers.append(self.on_message)

    def detach(self) -> None:
        self.fake.message_observers.remove(self.on_message)
        for task in self._tasks:
            task.cancel()

    def reply_ready(self, chat_id: str) -> None:
        """Fidelio is about to send its reply to ``chat_id`` (first reply to a tap counts)."""
        tap = self._pending.get(int(chat_id))
        if tap is not None and tap.ready is None:
            tap.ready = time.perf_counter()

    def on_message(self, message: SentMessage) -> None:
        """The fake stored a message for a chat: time the tap it answers, plan the next one."""
        at = time.perf_counter()
        chat = message.chat_id
        if chat not in self._person:
            return
        tap = self._pending.pop(chat, None)
        if tap is not None:
            (self.shown_ms if tap.answer else self.start_shown_ms).append((at - tap.at) * 1000)
            if tap.ready is not None:
                self.ready_ms.append((tap.ready - tap.at) * 1000)
        decoded = [(data, self.codec.decode(data, str(chat))) for _label, data in message.buttons()]
        actions = {got[0]: (data, got[1]) for data, got in decoded if got is not None}
        if "pulse_review" in actions:  # the thank-you
            self.finished.add(chat)
            self.last_finished = at
            return
        if "pulse_start" in actions and chat not in self._acted:
            if not self.invited:
                self.first_invited = at
            self.invited.add(chat)
            self._acted[chat] = -1
            self._later(chat, actions["pulse_start"][0], None)
            return
        choices = []
        for data, got in decoded:
            if got is None or got[0] != "pa":
                continue
            _round, index, value = got[1].split(".")
            if value.isdigit():
                choices.append((int(index), int(value), data))
        if not choices or choices[0][0] <= self._acted.get(chat, -2):
            self.unexpected += 1
            return
        index, value, data = self._rng[chat].choice(choices)
        self._acted[chat] = index
        answer = Answer(chat, self._person[chat], self.round_items[index], value)
        self._later(chat, data, answer)

    def _later(self, chat: int, data: str, answer: Answer | None) -> None:
        delay = self._rng[chat].uniform(*self.think_s)
        task = asyncio.get_running_loop().create_task(self._tap(chat, data, answer, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tap(self, chat: int, data: str, answer: Answer | None, delay: float) -> None:
        await asyncio.sleep(delay)
        message_id = self.fake.last_message(chat).message_id
        # Timed from here: press_data queues the update before it yields.
        self._pending[chat] = _Tap(time.perf_counter(), answer is not None)
        if answer is not None:
            self.answers.append(answer)
        await self.fake.press_data(chat, message_id, data)
