"""Answer benchmark: many people answering a pulse round through the fake Telegram, in two modes.

Run from the repository root (it is a benchmark, not a test; nothing asserts its figures)::

    .venv/bin/python -m bench.answers [--realistic | --burst] [--people 2000] [--items 10]
        [--databases sqlite,postgres] [--global-scale 1] [--profile FILE]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/<db>]

Without ``--realistic`` or ``--burst`` both modes run, realistic first. For each mode and
database: a scratch database is created and migrated (SQLite: a temporary file; PostgreSQL:
``<db>_answers_<pid>`` / ``<db>_taps_<pid>`` on the server of ``--database-url``, dropped at
the end; ``<db>`` itself is never touched). ``--people`` people with Telegram accounts are
inserted in bulk, a survey whose rounds ask ``--items`` one-tap items (likert / 0-10 / choice,
from ``content/surveys/items.yaml``; no comment) is scheduled, and its round is opened with
:meth:`SurveyService.run_due` at the cadence's time (injected clock), so participation rows
and the round secret exist. The fake Telegram server runs in this process on 127.0.0.1.

**Realistic** (what a person feels when they tap): the fake enforces Telegram's published
limits (30 sends/s overall, 1/s per chat) and Fidelio keeps its own pacing (28/s, 1/s per
chat); ``--global-scale`` multiplies both overall figures, to see Fidelio without the
platform's cap. Fidelio's real outbox sends the invitations at that pace while people are
already answering. Each person (:class:`bench.taps.Crowd`) reacts to what the fake stores for
their chat: 1-4 s (uniform, seeded per person) after the invitation they tap Start, and 1-4 s
after each question they tap one of its answers (never Skip), until the thank-you comes. Per
tap: **tap → next question shown**, from the press being queued on the fake (available to the
polling bot) to the fake storing the bot's next message (or edit) for that person, p50 / p95
/ p99 over the answer taps; and tap → reply handed to Fidelio's sender, its own part before
the pace. Goals: Fidelio's own part p99 < 300 ms at saturation (the platform's rate, the
default); tap → next question p99 < 300 ms below the platform rate (``--global-scale`` above
what the crowd asks for), since at saturation the rest is time in the platform's queue.

**Burst** (throughput): the fake's rate limits are scaled far up (``RATE_SCALE``) and Fidelio's
pacing raised to match; the invitations are sent by the real outbox first. Then, measured on
the same fake server in the same run:

* **bare**: a plain python-telegram-bot ``Application`` (long polling, ``concurrent_updates``,
  one ``TypeHandler`` that only timestamps), twice, fed ``people × items`` callback queries;
* **bare replying**: the same application sending, per press, the two replies Fidelio sends:
  ``answerCallbackQuery`` and the next question (or the thank-you) with its keyboard, the very
  text and signed buttons Fidelio renders (:func:`fidelio_replies`);
* **Fidelio**: the real Telegram channel of :func:`bot.app.build_runtime` fed the same button
  presses (fresh updates), signed with the bot's :class:`CallbackCodec` secret, interleaved
  across people and in item order per person.

The whole burst is queued on the fake as fast as it takes it, then the application starts
long polling (as if everybody had tapped at once). For Fidelio an update counts as stored when
:meth:`Dispatcher.process` (or ``process_many``) has returned for it, and as replied when the
channel's handler has returned (its replies sent). Reported per database: answers stored per
second and their ratio to the bare application; **the ratio to the bare replying
application** (Fidelio's presses replied to per second over the bare application's, both
sending the same replies; goal ≥ 0.9); p50 / p99 from an update being queued to its answer
being stored (mostly waiting behind the rest of the burst).

Both modes check every answer given against the ``responses`` rows (by the respondent keys
the round's secret gives) and ``participation.answered``: lost answers (missing or with
another value; goal 0) and duplicated ones (events processed more than once; goal 0).

The last line of output is one JSON object: ``<db>_realistic_p50_ms`` / ``_p95_ms`` /
``_p99_ms`` / ``_lost`` / ``_duplicated``, the burst's ``<db>_answers_per_s``,
``<db>_ratio_to_bare``, ``<db>_burst_ratio_to_replying``, ``<db>_p50_ms``, ``<db>_p99_ms``,
``<db>_lost``, ``<db>_duplicated`` (``<db>`` is ``sqlite`` or ``postgres``), and ``lost`` and
``duplicated`` summed over every run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dtm
import gc
import json
import logging
import os
import platform as host_platform
import random
import statistics
import sys
import time
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from rich.console import Console
from rich.progress import Progress, TaskID
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, Update
from telegram.ext import ApplicationBuilder, ContextTypes, TypeHandler
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bench.common import (
    insert_identities,
    insert_people,
    loopback_only,
    postgres_reachable,
    results_table,
    scratch_database,
    task_progress,
)
from bench.taps import Answer, Crowd
from bot.app import Runtime, build_runtime
from bot.channels.callbacks import CallbackCodec
from bot.channels.port import Address, Message
from bot.channels.telegram import AiohttpRequest
from bot.clock import ManualClock
from bot.config import RateSettings, Settings
from bot.content_fields import Audience
from bot.db.models import ChannelName, ProcessedEvent
from bot.db.session import Database
from bot.dispatch import DispatchResult
from bot.events import ButtonPressed, InboundEvent
from bot.markup import to_telegram_html
from bot.pulse.content import Cadence, Item, Survey, load_survey_content
from bot.pulse.schedule import respondent_key
from bot.pulse.tables import Participation, Response, SurveyRound
from bot.replies import Reply, ReplyButton
from handlers.pulse import question
from tests.fakes.telegram import FakeTelegramServer
from tests.harness import REPO, make_settings, telegram_section

#: Multiplier on the fake's Telegram limits (1/s per chat, 30/s overall): far above the burst.
RATE_SCALE = 1000.0
#: The Bot API's published limits that the fake models (messages per second).
TELEGRAM_PER_CHAT_PER_S = 1.0
TELEGRAM_GLOBAL_PER_S = 30.0
#: Runs of the bare application per database; the fastest is the ceiling.
BARE_RUNS = 2
#: Long-poll timeout of both applications (seconds).
POLL_TIMEOUT_S = 1
#: A run whose stored count has not moved for this long is abandoned (and reported).
STALL_S = 45.0
#: How often the stored count is read (seconds), and how often per second the bar is drawn
#: (drawing runs in a thread of this process and takes CPU from the bot).
TICK_S = 0.05
REFRESH_PER_S = 4
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/fidelio"
SURVEY_ID = "bench-answers"
ROME = "Europe/Rome"

log = logging.getLogger("bench.answers")


# Results


@dataclass
class Timing:
    """When each update was queued and when it was handled (``time.perf_counter``)."""

    queued: dict[int, float] = field(default_factory=dict)
    handled: dict[int, float] = field(default_factory=dict)
    #: When Fidelio's reply to each update had been sent (its handler returned).
    replied: dict[int, float] = field(default_factory=dict)
    #: Times each update id was handled (processed, not dropped as a duplicate).
    handled_count: Counter[int] = field(default_factory=Counter)
    #: Deliveries dropped by Fidelio's de-duplication.
    dropped_duplicates: int = 0
    timed_out: bool = False
    #: CPU seconds this process used (all threads) while the run was measured.
    cpu_s: float = 0.0
    #: Wall seconds of the measured run (first queued until done or stalled).
    wall_s: float = 0.0

    @property
    def done(self) -> int:
        return len(self.handled)

    def window_s(self) -> float:
        if not self.queued or not self.handled:
            return 0.0
        return max(self.handled.values()) - min(self.queued.values())

    def per_s(self) -> float:
        window = self.window_s()
        return self.done / window if window > 0 else 0.0

    def replied_per_s(self) -> float:
        """Updates per second, from the first queued to the last one replied to."""
        if not self.queued or not self.replied:
            return 0.0
        window = max(self.replied.values()) - min(self.queued.values())
        return len(self.replied) / window if window > 0 else 0.0

    def latencies_ms(self) -> list[float]:
        return sorted(
            (self.handled[u] - self.queued[u]) * 1000.0 for u in self.handled if u in self.queued
        )

    def twice(self) -> int:
        return sum(count - 1 for count in self.handled_count.values() if count > 1)


@dataclass
class PhaseResult:
    """One database's figures."""

    database: str
    people: int
    items: int
    setup_s: float = 0.0
    #: The fastest of the bare runs, and every bare run's rate.
    bare: Timing = field(default_factory=Timing)
    bare_rates: list[float] = field(default_factory=list)
    #: The fastest run of a bare application that also sends the two replies every answer
    #: needs (answerCallbackQuery and the next question with its keyboard).
    replying: Timing = field(default_factory=Timing)
    replying_rates: list[float] = field(default_factory=list)
    fidelio: Timing = field(default_factory=Timing)
    lost: int = 0
    wrong_value: int = 0
    unexpected_rows: int = 0
    not_finished: int = 0
    processed_events: int = 0
    replies_sent: int = 0
    replies_expected: int = 0
    replies_done_s: float = 0.0
    callbacks_answered: int = 0

    @property
    def answers(self) -> int:
        return self.people * self.items

    @property
    def ratio(self) -> float:
        bare = self.bare.per_s()
        return self.fidelio.per_s() / bare if bare > 0 else 0.0

    @property
    def ratio_replying(self) -> float:
        """Like with like: Fidelio's presses answered (stored, next question sent) per second
        over the bare application's presses answered (the same two replies sent)."""
        replying = self.replying.per_s()
        return self.fidelio.replied_per_s() / replying if replying > 0 else 0.0

    def percentile(self, q: float) -> float:
        return percentile(self.fidelio.latencies_ms(), q)

    @property
    def duplicated(self) -> int:
        return self.fidelio.twice()

    def summary(self) -> dict[str, Any]:
        prefix = "sqlite" if self.database == "sqlite" else "postgres"
        return {
            f"{prefix}_answers_per_s": round(self.fidelio.per_s(), 1),
            f"{prefix}_ratio_to_bare": round(self.ratio, 3),
            f"{prefix}_burst_ratio_to_replying": round(self.ratio_replying, 3),
            f"{prefix}_p50_ms": round(self.percentile(0.5), 1),
            f"{prefix}_p99_ms": round(self.percentile(0.99), 1),
            f"{prefix}_lost": self.lost,
            f"{prefix}_duplicated": self.duplicated,
        }


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0 < q < 1) of ``values``, 0 when there are none."""
    values = sorted(values)
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1]


@dataclass(frozen=True)
class Press:
    """One button press: who, on which message, with which signed data, and what it means."""

    user_id: int
    message_id: int
    data: str
    person_id: int
    item_id: str
    value: int


# Setup


def user_id_of(index: int) -> int:
    """The Telegram user (and private chat) id of person number ``index``."""
    return 500_000 + index


async def create_people(
    db: Database, fake: FakeTelegramServer, count: int
) -> list[tuple[int, int]]:
    """Bulk-insert ``count`` people linked to accounts on the fake; (person id, user id)."""
    async with db.session() as session:
        people = await insert_people(
            session,
            count,
            prefix="answers",
            per_team=50,
            name_of=lambda i: f"Person {i:06d}",
            locale_of=lambda i: "it" if i % 3 == 0 else "en",
        )
        linked = [(person_id, user_id_of(i)) for i, (person_id, *_rest) in enumerate(people)]
        for index, (_id, _email, _name, locale) in enumerate(people):
            fake.add_user(user_id_of(index), f"Person{index}", language_code=locale)
        await insert_identities(
            session,
            ChannelName.telegram,
            [(person_id, str(user_id), str(user_id)) for person_id, user_id in linked],
        )
    return linked


def bench_survey(items: int) -> tuple[Survey, dict[str, Item]]:
    """A daily survey asking the first ``items`` one-tap items of the repository's item bank."""
    content = load_survey_content(REPO / "content" / "surveys")
    if content.problems:
        raise SystemExit(f"content/surveys has problems: {content.problems[0]}")
    one_tap = [item.id for item in content.items.values() if item.kind != "text"]
    if items > len(one_tap):
        raise SystemExit(f"--items: the item bank has only {len(one_tap)} one-tap items")
    survey = Survey(
        id=SURVEY_ID,
        title={"en": "Answer burst", "it": "Raffica di risposte"},
        cadence=Cadence(cron="0 9 * * *", timezone=ROME),
        open_for_s=int(timedelta(hours=8).total_seconds()),
        audience=Audience(everyone=True),
        core=tuple(one_tap[:items]),
        rotating=(),
        per_round=0,
        comment=False,
        reminders=(),
        skip_weekends=False,
    )
    return survey, content.items


async def prepared_round(
    settings: Settings, url: str, fake: Any, people: int, items: int, clock: ManualClock
) -> tuple[Any, list[Any], Survey, dict[str, Item], Any]:
    """``people`` people inserted and the bench survey's round opened, by a started runtime
    that the caller stops: (runtime, linked people, survey, item bank, round)."""
    survey, bank = bench_survey(items)
    db = Database(url)
    try:
        linked = await create_people(db, fake, people)
    finally:
        await db.dispose()
    setup = build_runtime(settings, clock=clock)
    await setup.start(sync_slack=False, background=False)
    try:
        round_ = await open_round(setup, clock, survey, bank)
    except BaseException:
        await setup.stop()
        raise
    return setup, linked, survey, bank, round_


async def open_round(
    runtime: Runtime, clock: ManualClock, survey: Survey, items: dict[str, Item]
) -> SurveyRound:
    """Schedule the survey, move the clock to its next opening and let ``run_due`` open it."""
    async with runtime.db.session() as session:
        await runtime.service("surveys").schedule_in(session, survey, items, "hr@bench.example")
    opening = survey.cadence.occurrences(clock.now(), clock.now() + timedelta(days=2))[0]
    clock.set(opening + timedelta(minutes=1))
    due = await runtime.service("surveys").run_due()
    if due.opened != 1:
        raise RuntimeError(f"run_due opened {due.opened} rounds, expected 1")
    async with runtime.db.session() as session:
        round_ = await session.scalar(select(SurveyRound))
    assert round_ is not None and round_.secret is not None
    return round_


def plan_presses(
    round_: SurveyRound,
    survey_items: dict[str, Item],
    people: Sequence[tuple[int, int]],
    invitations: dict[int, int],
    codec: CallbackCodec,
    rng: random.Random,
) -> list[Press]:
    """Every answer as a signed button press: item by item, each item across everybody."""
    presses: list[Press] = []
    for index, item_id in enumerate(round_.items):
        item = survey_items[item_id]
        for person_id, user_id in people:
            labels = item.choices("en")
            position = rng.randrange(len(labels))
            value = int(labels[position]) if item.kind in ("likert5", "scale0_10") else position
            data = codec.encode("pa", f"{round_.id}.{index}.{value}", str(user_id))
            presses.append(Press(user_id, invitations[user_id], data, person_id, item_id, value))
    return presses


async def queue_burst(fake: FakeTelegramServer, presses: Sequence[Press], timing: Timing) -> None:
    """Queue every press on the fake as fast as it takes them; records when each update was
    queued. Nothing polls meanwhile, so this is the whole burst arriving at once."""
    clock = time.perf_counter
    for press in presses:
        at = clock()
        update_id = await fake.press_data(press.user_id, press.message_id, press.data)
        timing.queued[update_id] = at


async def measure_burst(
    fake: FakeTelegramServer,
    presses: Sequence[Press],
    timing: Timing,
    start: Callable[[], Awaitable[None]],
    progress: Progress,
    label: str,
) -> None:
    """Queue the burst, then ``start`` the polling application and follow ``timing``'s
    handled count on a progress bar until every update is handled (or nothing moves for a
    while). The application's handler fills ``timing.handled``.

    The measured window runs from the first update queued to the last one handled, and
    includes queueing the burst and starting the application.
    """
    if fake.pending_update_count:
        raise RuntimeError(f"{fake.pending_update_count} updates still pending on the fake")
    task = progress.add_task(label, total=len(presses), rate=0.0)
    # Every run starts from the same heap: what exists now (the fake's records of the runs
    # before, the presses) is set aside from the garbage collector for this run, so no run
    # pays for scanning what earlier runs left (the last run's heap is twice the first's).
    gc.collect()
    gc.freeze()
    cpu_began = time.process_time()
    await queue_burst(fake, presses, timing)
    began = min(timing.queued.values())
    try:
        await start()
        await _wait(lambda: timing.done, len(presses), progress, task, began, timing)
    finally:
        timing.cpu_s = time.process_time() - cpu_began
        timing.wall_s = time.perf_counter() - began
        gc.unfreeze()


async def _wait(
    done: Callable[[], int],
    total: int,
    progress: Progress,
    task: TaskID,
    began: float,
    timing: Timing,
) -> None:
    last_count, last_move = -1, time.perf_counter()
    while True:
        await asyncio.sleep(TICK_S)
        now = time.perf_counter()
        count = done()
        progress.update(task, completed=count, rate=count / max(now - began, 1e-9))
        if count >= total:
            return
        if count != last_count:
            last_count, last_move = count, now
        elif now - last_move > STALL_S:
            timing.timed_out = True
            return


# The bare application


#: The reply to a press on item ``index``: text (Telegram HTML) and keyboard.
BareReplies = dict[int, tuple[str, InlineKeyboardMarkup]]


def fidelio_replies(
    runtime: Runtime,
    round_: SurveyRound,
    survey: Survey,
    bank: dict[str, Item],
    codec: CallbackCodec,
    chat_id: int,
) -> BareReplies:
    """What Fidelio sends after a press on each item, rendered by Fidelio's own renderer and
    signed like its buttons (for one chat: every chat's payload has the same length): the next
    question with its keyboard, or the thank-you after the last item."""
    ctx = SimpleNamespace(locale="en", channel="telegram")
    schedule = SimpleNamespace(items=bank, survey=survey)
    replies: BareReplies = {}
    for index in range(len(round_.items)):
        if index + 1 < len(round_.items):
            reply = question(ctx, round_, schedule, index + 1)  # type: ignore[arg-type]
        else:
            reply = Reply(
                "pulse/thanks",
                {"title": survey.title, "closes_at": round_.closes_at.isoformat()},
                (ReplyButton("pulse_review", "pulse_review", str(round_.id)),),
            )
        message = runtime.renderer.render(reply, "en", "telegram", ROME)
        per_row = 6 if all(len(b.label) <= 3 for b in message.buttons) else 2
        keys = [
            InlineKeyboardButton(
                b.label, callback_data=codec.encode(b.action, b.value, str(chat_id))
            )
            for b in message.buttons
        ]
        keyboard = InlineKeyboardMarkup(
            [keys[i : i + per_row] for i in range(0, len(keys), per_row)]
        )
        replies[index] = (to_telegram_html(message.text), keyboard)
    return replies


async def run_bare(
    fake: FakeTelegramServer,
    presses: Sequence[Press],
    progress: Progress,
    label: str,
    *,
    replies: BareReplies | None = None,
) -> Timing:
    """A plain python-telegram-bot application whose only handler timestamps each update.

    ``replies``: the handler first sends what Fidelio sends for each answer, the ordinary
    python-telegram-bot way: it answers the callback query, then sends the reply to a press on
    that item (the next question with its keyboard, or the thank-you; the very text and
    keyboard Fidelio renders, see :func:`fidelio_replies`). No database, no logic.
    """
    timing = Timing()
    no_preview = LinkPreviewOptions(is_disabled=True)

    async def noop(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if replies is not None and update.callback_query is not None:
            query = update.callback_query
            await query.answer()
            index = int((query.data or "").split("|")[1].split(".")[1])
            text, keyboard = replies[index]
            await context.bot.send_message(
                query.from_user.id,
                text,
                "HTML",
                reply_markup=keyboard,
                link_preview_options=no_preview,
            )
        timing.handled[update.update_id] = time.perf_counter()
        timing.handled_count[update.update_id] += 1

    app = (
        ApplicationBuilder()
        .token(fake.token)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        .get_updates_request(HTTPXRequest(connect_timeout=5.0, read_timeout=POLL_TIMEOUT_S + 10.0))
        # Replies through the HTTP backend Fidelio uses (PTB's default httpx one with its pool
        # of one connection manages about a fifth of this rate): the fairest ceiling.
        .request(AiohttpRequest(connection_pool_size=128, read_timeout=30.0, pool_timeout=30.0))
        .concurrent_updates(True)
        .build()
    )
    app.add_handler(TypeHandler(Update, noop))

    async def start() -> None:
        await app.initialize()
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(
            poll_interval=0.0,
            timeout=dtm.timedelta(seconds=POLL_TIMEOUT_S),
            allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY],
            drop_pending_updates=False,
        )

    try:
        await measure_burst(fake, presses, timing, start, progress, label)
    finally:
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()
    return timing


# Fidelio


def instrument(runtime: Runtime, timing: Timing) -> None:
    """Timestamp every event once its transaction has committed (``Dispatcher.process`` or,
    for presses handled together, ``Dispatcher.process_many`` returned), and once its replies
    have been sent (the channel's handler returned), keyed by the Telegram update id."""
    dispatcher = runtime.dispatcher
    process = dispatcher.process

    async def timed(event: InboundEvent) -> DispatchResult:
        result = await process(event)
        if isinstance(event, ButtonPressed):
            update_id = int(event.event_id)
            if result.duplicate:
                timing.dropped_duplicates += 1
            else:
                timing.handled[update_id] = time.perf_counter()
                timing.handled_count[update_id] += 1
        return result

    dispatcher.process = timed  # type: ignore[method-assign]
    process_many = dispatcher.process_many

    async def timed_many(action: str, events: list[ButtonPressed]) -> list[DispatchResult]:
        # Presses that fell back to the one-by-one path were counted by ``timed`` already.
        before = {e.event_id: timing.handled_count[int(e.event_id)] for e in events}
        results = await process_many(action, events)
        now = time.perf_counter()
        for event, result in zip(events, results, strict=True):
            update_id = int(event.event_id)
            if timing.handled_count[update_id] != before[event.event_id]:
                continue
            if result.duplicate:
                timing.dropped_duplicates += 1
            else:
                timing.handled[update_id] = now
                timing.handled_count[update_id] += 1
        return results

    dispatcher.process_many = timed_many  # type: ignore[method-assign]
    channel = runtime.channels["telegram"]
    on_event = channel.on_event

    async def timed_event(event: InboundEvent) -> Any:
        # Handled and its replies sent: what the bare application's handler does per update.
        try:
            return await on_event(event)
        finally:
            if isinstance(event, ButtonPressed):
                timing.replied[int(event.event_id)] = time.perf_counter()

    channel.on_event = timed_event


async def send_invitations(runtime: Runtime) -> int:
    """The real outbox sends the round's invitations (the messages people then tap on)."""
    stats = await runtime.outbox.drain()
    return stats.sent


async def run_fidelio(
    settings: Settings,
    clock: ManualClock,
    fake: FakeTelegramServer,
    presses: Sequence[Press],
    progress: Progress,
    label: str,
    result: PhaseResult,
) -> Timing:
    """Fidelio's real Telegram channel, fed the presses; returns when every answer is stored
    (and then waits, unmeasured, for the replies still being sent)."""
    timing = Timing()
    runtime = build_runtime(settings, clock=clock)
    instrument(runtime, timing)
    sent_before = len(fake.calls_to("sendMessage"))
    answered_before = len(fake.answered_callbacks)

    async def start() -> None:
        await runtime.start(sync_slack=False, background=False)

    try:
        await measure_burst(fake, presses, timing, start, progress, label)
        began = time.perf_counter()
        result.replies_expected = len(presses)
        # Replies are not part of the figure, but they are real: let them finish.
        while time.perf_counter() - began < STALL_S:
            sent = sum(1 for c in fake.calls_to("sendMessage")[sent_before:] if c.status == 200)
            if sent >= result.replies_expected:
                break
            await asyncio.sleep(0.1)
        result.replies_sent = sent
        result.replies_done_s = time.perf_counter() - min(timing.queued.values())
        result.callbacks_answered = len(fake.answered_callbacks) - answered_before
    finally:
        await runtime.stop()
    return timing


async def check_answers(
    url: str,
    round_id: int,
    presses: Sequence[Press | Answer],
    result: PhaseResult | RealisticResult,
) -> None:
    """Compare the stored rows with the answers given: missing, wrong, unexpected, unfinished."""
    db = Database(url)
    try:
        async with db.session() as session:
            round_ = await session.get(SurveyRound, round_id)
            assert round_ is not None and round_.secret is not None
            secret = round_.secret
            rows = {
                (key, item): value
                for key, item, value in (
                    await session.execute(
                        select(Response.respondent_key, Response.item_id, Response.value_num).where(
                            Response.round_id == round_id
                        )
                    )
                ).all()
            }
            result.not_finished = int(
                await session.scalar(
                    select(func.count())
                    .select_from(Participation)
                    .where(
                        Participation.round_id == round_id,
                        Participation.answered < len(round_.items),
                    )
                )
                or 0
            )
            result.processed_events = int(
                await session.scalar(select(func.count()).select_from(ProcessedEvent)) or 0
            )
    finally:
        await db.dispose()
    keys: dict[int, str] = {}
    expected: dict[tuple[str, str], int] = {}
    for press in presses:
        key = keys.get(press.person_id)
        if key is None:
            key = keys[press.person_id] = respondent_key(secret, press.person_id)
        expected[(key, press.item_id)] = press.value
    for cell, value in expected.items():
        if cell not in rows:
            result.lost += 1
        elif rows[cell] != value:
            result.wrong_value += 1
    result.lost += result.wrong_value
    result.unexpected_rows = len(set(rows) - set(expected))


# One database


async def run_phase(
    kind: str,
    server_url: str,
    people: int,
    items: int,
    console: Console,
    profile: str | None = None,
) -> PhaseResult:
    """Set up, then measure the bare application and Fidelio on one database."""
    result = PhaseResult(kind, people, items)
    async with scratch_database(None if kind == "sqlite" else server_url, "answers") as url:
        fake = FakeTelegramServer(
            per_chat_per_s=TELEGRAM_PER_CHAT_PER_S,
            global_per_s=TELEGRAM_GLOBAL_PER_S,
            rate_scale=RATE_SCALE,
            fractional_retry_after=True,
        )
        async with fake:
            began = time.perf_counter()
            settings = make_settings(
                url,
                telegram=telegram_section(
                    fake, poll_timeout_s=POLL_TIMEOUT_S, request_timeout_s=30.0
                ),
                rates={
                    "telegram_global_per_s": TELEGRAM_GLOBAL_PER_S * RATE_SCALE,
                    "telegram_per_chat_per_s": TELEGRAM_PER_CHAT_PER_S * RATE_SCALE,
                },
            )
            clock = ManualClock(datetime(2027, 3, 1, 7, 0, tzinfo=UTC))
            setup, linked, survey, bank, round_ = await prepared_round(
                settings, url, fake, people, items, clock
            )
            try:
                sent = await send_invitations(setup)
            finally:
                await setup.stop()
            invitations = {
                user_id: fake.last_message(user_id).message_id for _person, user_id in linked
            }
            codec = CallbackCodec(settings.security.secret_key.get_secret_value())
            presses = plan_presses(round_, bank, linked, invitations, codec, random.Random(people))
            result.setup_s = time.perf_counter() - began
            console.print(
                f"{kind}: {people} people, round {round_.id} with {len(round_.items)} items "
                f"({', '.join(round_.items)}), {sent} invitations sent; set up in "
                f"{result.setup_s:.1f} s",
                soft_wrap=True,
            )
            with task_progress(
                console,
                "{task.description:>20}",
                rate="{task.fields[rate]:7.0f}/s",
                refresh_per_second=REFRESH_PER_S,
            ) as progress:
                # The ceiling: best of a few runs, so a hiccup of this shared machine does
                # not flatter the ratio.
                for attempt in range(1, BARE_RUNS + 1):
                    bare = await run_bare(fake, presses, progress, f"{kind} bare PTB #{attempt}")
                    result.bare_rates.append(bare.per_s())
                    if bare.per_s() >= result.bare.per_s():
                        result.bare = bare
                replies = fidelio_replies(setup, round_, survey, bank, codec, linked[0][1])
                replying = await run_bare(
                    fake, presses, progress, f"{kind} bare replying", replies=replies
                )
                result.replying = replying
                result.replying_rates.append(replying.per_s())
                profiler = cProfile.Profile() if profile else None
                if profiler is not None:
                    profiler.enable()
                try:
                    result.fidelio = await run_fidelio(
                        settings, clock, fake, presses, progress, f"{kind} Fidelio", result
                    )
                finally:
                    if profiler is not None:
                        profiler.disable()
                        profiler.dump_stats(f"{profile}.{kind}")
                        console.print(f"{kind}: profile of the Fidelio run in {profile}.{kind}")
        await check_answers(url, round_.id, presses, result)
    return result


# Realistic mode


@dataclass
class RealisticResult:
    """One database's figures in the realistic mode."""

    database: str
    people: int
    items: int
    global_scale: float
    crowd: Crowd | None = None
    setup_s: float = 0.0
    wall_s: float = 0.0
    timed_out: bool = False
    load: tuple[float, float] = (0.0, 0.0)
    invitations_sent: int = 0
    rate_limited: int = 0
    timing: Timing = field(default_factory=Timing)
    lost: int = 0
    wrong_value: int = 0
    unexpected_rows: int = 0
    not_finished: int = 0
    processed_events: int = 0

    @property
    def duplicated(self) -> int:
        return self.timing.twice()

    @property
    def not_given(self) -> int:
        """Answers nobody could give: the person never got the question."""
        given = len(self.crowd.answers) if self.crowd else 0
        return self.people * self.items - given

    def shown(self, q: float) -> float:
        return percentile(self.crowd.shown_ms if self.crowd else [], q)

    def summary(self) -> dict[str, Any]:
        prefix = "sqlite" if self.database == "sqlite" else "postgres"
        return {
            f"{prefix}_realistic_p50_ms": round(self.shown(0.5), 1),
            f"{prefix}_realistic_p95_ms": round(self.shown(0.95), 1),
            f"{prefix}_realistic_p99_ms": round(self.shown(0.99), 1),
            f"{prefix}_realistic_lost": self.lost,
            f"{prefix}_realistic_duplicated": self.duplicated,
        }


async def run_realistic(
    kind: str,
    server_url: str,
    people: int,
    items: int,
    console: Console,
    global_scale: float = 1.0,
    profile: str | None = None,
) -> RealisticResult:
    """Invite everybody through Fidelio's outbox at the platform's pace, and let each person
    tap through the round as they receive its messages (:class:`bench.taps.Crowd`)."""
    result = RealisticResult(kind, people, items, global_scale)
    async with scratch_database(None if kind == "sqlite" else server_url, "taps") as url:
        # Telegram's published limits; the global one (and Fidelio's pace) only if asked.
        fake = FakeTelegramServer(
            per_chat_per_s=TELEGRAM_PER_CHAT_PER_S,
            global_per_s=TELEGRAM_GLOBAL_PER_S * global_scale,
        )
        async with fake:
            began = time.perf_counter()
            pacing = RateSettings()
            settings = make_settings(
                url,
                telegram=telegram_section(
                    fake, poll_timeout_s=POLL_TIMEOUT_S, request_timeout_s=30.0
                ),
                rates={
                    "telegram_global_per_s": pacing.telegram_global_per_s * global_scale,
                    "telegram_per_chat_per_s": pacing.telegram_per_chat_per_s,
                },
            )
            clock = ManualClock(datetime(2027, 3, 1, 7, 0, tzinfo=UTC))
            setup, linked, survey, bank, round_ = await prepared_round(
                settings, url, fake, people, items, clock
            )
            await setup.stop()
            codec = CallbackCodec(settings.security.secret_key.get_secret_value())
            crowd = Crowd(fake, codec, round_.items, linked, seed=people)
            result.crowd = crowd
            result.setup_s = time.perf_counter() - began
            console.print(
                f"{kind} realistic: {people} people, round {round_.id} with "
                f"{len(round_.items)} items; invitations at {settings.rates.telegram_global_per_s:g}"
                f"/s (fake: {TELEGRAM_GLOBAL_PER_S * global_scale:g}/s overall, "
                f"{TELEGRAM_PER_CHAT_PER_S:g}/s per chat); set up in {result.setup_s:.1f} s",
                soft_wrap=True,
            )
            runtime = build_runtime(settings, clock=clock)
            instrument(runtime, result.timing)
            reply = runtime.sender.reply

            async def timed_reply(to: Address, message: Message, edit: Any = None) -> Any:
                crowd.reply_ready(to.chat_id)
                return await reply(to, message, edit)

            runtime.sender.reply = timed_reply  # type: ignore[method-assign]
            profiler = cProfile.Profile() if profile else None
            gc.collect()
            result.load = (os.getloadavg()[0], 0.0)
            crowd.attach()
            await runtime.start(sync_slack=False, background=False)
            if profiler is not None:
                profiler.enable()
            began = time.perf_counter()
            # Fidelio's real outbox at its real pace sends the invitations, while people answer.
            outbox = asyncio.create_task(runtime.outbox.drain())
            try:
                with task_progress(
                    console,
                    "{task.description:>20}",
                    rate="{task.fields[rate]:7.0f}/s",
                    refresh_per_second=REFRESH_PER_S,
                ) as progress:
                    task = progress.add_task(f"{kind} taps", total=people * (items + 1), rate=0.0)
                    result.timed_out = not await _follow(
                        lambda: crowd.taps, people * (items + 1), progress, task, began
                    )
                result.wall_s = time.perf_counter() - began
                stats = await outbox
                result.invitations_sent = stats.sent
            finally:
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(f"{profile}.realistic.{kind}")
                crowd.detach()
                await runtime.stop()
            result.load = (result.load[0], os.getloadavg()[0])
            result.rate_limited = fake.rate_limited
        await check_answers(url, round_.id, crowd.answers, result)
    return result


async def _follow(
    done: Callable[[], int], total: int, progress: Progress, task: TaskID, began: float
) -> bool:
    """Show ``done()`` until it reaches ``total`` (True) or stops moving for a while (False)."""
    last_count, last_move = -1, time.perf_counter()
    while True:
        await asyncio.sleep(TICK_S * 4)
        now = time.perf_counter()
        count = done()
        progress.update(task, completed=count, rate=count / max(now - began, 1e-9))
        if count >= total:
            return True
        if count != last_count:
            last_count, last_move = count, now
        elif now - last_move > STALL_S:
            return False


def report_realistic(console: Console, results: Sequence[RealisticResult]) -> None:
    table = results_table(
        "Taps under real load through the fake Telegram (tap → next question shown)",
        (result.database for result in results),
    )
    row = table.add_row
    row("people × items", *(f"{r.people} × {r.items}" for r in results))
    row(
        "global pace (Fidelio / fake), per chat",
        *(
            f"{RateSettings().telegram_global_per_s * r.global_scale:g} / "
            f"{TELEGRAM_GLOBAL_PER_S * r.global_scale:g} per s, {TELEGRAM_PER_CHAT_PER_S:g}/s"
            for r in results
        ),
    )
    row("invitations sent by the outbox", *(f"{r.invitations_sent}" for r in results))
    row(
        "people finished (thank-you shown)",
        *(f"{len(r.crowd.finished) if r.crowd else 0}" for r in results),
    )
    row("answer taps timed", *(f"{len(r.crowd.shown_ms) if r.crowd else 0}" for r in results))
    for q in (0.5, 0.95, 0.99):
        row(
            f"tap → next question shown p{round(q * 100)}"
            + (" (goal < 300 ms below the platform rate)" if q == 0.99 else ""),
            *(f"{r.shown(q):.0f} ms" for r in results),
        )
    row(
        "  max",
        *(f"{max(r.crowd.shown_ms, default=0):.0f} ms" if r.crowd else "-" for r in results),
    )
    for q in (0.5, 0.99):
        row(
            f"Start tap → first question p{round(q * 100)}",
            *(
                f"{percentile(r.crowd.start_shown_ms if r.crowd else [], q):.0f} ms"
                for r in results
            ),
        )
    for q in (0.5, 0.95, 0.99):
        row(
            f"tap → reply handed to the sender p{round(q * 100)} (Fidelio's own part"
            + ("; goal < 300 ms at saturation)" if q == 0.99 else ")"),
            *(f"{percentile(r.crowd.ready_ms if r.crowd else [], q):.0f} ms" for r in results),
        )
    row(
        "taps per second (whole run)",
        *(f"{(r.crowd.taps if r.crowd else 0) / max(r.wall_s, 1e-9):.1f}" for r in results),
    )
    row(
        "run (first invitation queued → last tap answered)", *(f"{r.wall_s:.1f} s" for r in results)
    )
    row("lost answers (goal 0)", *(f"{r.lost}" for r in results))
    row("duplicated answers (goal 0)", *(f"{r.duplicated}" for r in results))
    row("answers never given (question never came)", *(f"{r.not_given}" for r in results))
    row("messages nobody waited for", *(f"{r.crowd.unexpected if r.crowd else 0}" for r in results))
    row("429 answers from the fake", *(f"{r.rate_limited}" for r in results))
    row("participation not finished", *(f"{r.not_finished}" for r in results))
    row(
        "load average (1 min) at start / end",
        *(f"{r.load[0]:.2f} / {r.load[1]:.2f}" for r in results),
    )
    console.print(table)
    for r in results:
        console.print(
            f"{r.database} realistic: tap → next question shown p50 {r.shown(0.5):.0f} ms, "
            f"p95 {r.shown(0.95):.0f} ms, p99 {r.shown(0.99):.0f} ms; lost {r.lost}; "
            f"duplicated {r.duplicated}" + ("; TIMED OUT" if r.timed_out else ""),
            soft_wrap=True,
        )


# Reporting


def report(console: Console, results: Sequence[PhaseResult]) -> None:
    """The per-database table and one summary line per database."""
    table = results_table(
        "Answer burst through the fake Telegram (update → stored answer)",
        (result.database for result in results),
    )
    row = table.add_row

    def run_rows(
        heading: str, run: Callable[[PhaseResult], Timing], rate: str, window: str | None
    ) -> None:
        """How one kind of run went: handled, its window, its rate, its CPU."""
        row(heading, *(f"{run(r).done}" for r in results))
        if window:
            row(
                f"  window (first queued → {window})",
                *(f"{run(r).window_s():.2f} s" for r in results),
            )
        row(f"  {rate}", *(f"{run(r).per_s():.0f}" for r in results))
        row(
            "  CPU of this process / wall",
            *(f"{run(r).cpu_s:.1f} s / {run(r).wall_s:.1f} s" for r in results),
        )

    row("answers (people × items)", *(f"{r.people} × {r.items} = {r.answers}" for r in results))
    row(
        f"bare PTB: updates/s in each of {BARE_RUNS} runs",
        *(", ".join(f"{rate:.0f}" for rate in r.bare_rates) for r in results),
    )
    run_rows(
        "bare PTB, fastest run: handled",
        lambda r: r.bare,
        "updates/s (the ceiling)",
        "last handled",
    )
    run_rows("bare PTB sending the 2 replies: handled", lambda r: r.replying, "updates/s", None)
    run_rows("Fidelio: stored", lambda r: r.fidelio, "answers/s", "last stored")
    row("  replied to/s (replies sent)", *(f"{r.fidelio.replied_per_s():.0f}" for r in results))
    row("ratio to bare (goal ≥ 0.5)", *(f"{r.ratio:.3f}" for r in results))
    row(
        "ratio replied/s to bare sending the 2 replies (goal ≥ 0.9)",
        *(f"{r.ratio_replying:.3f}" for r in results),
    )
    row("update → stored p50", *(f"{r.percentile(0.5):.0f} ms" for r in results))
    row("update → stored p99", *(f"{r.percentile(0.99):.0f} ms" for r in results))
    row("lost answers (goal 0)", *(f"{r.lost}" for r in results))
    row("  of which stored with another value", *(f"{r.wrong_value}" for r in results))
    row("duplicated answers (goal 0)", *(f"{r.duplicated}" for r in results))
    row("redeliveries dropped by de-dup", *(f"{r.fidelio.dropped_duplicates}" for r in results))
    row("unexpected response rows", *(f"{r.unexpected_rows}" for r in results))
    row("participation not finished", *(f"{r.not_finished}" for r in results))
    row("processed_events rows", *(f"{r.processed_events}" for r in results))
    row("replies sent / expected", *(f"{r.replies_sent} / {r.replies_expected}" for r in results))
    row("all replies sent after", *(f"{r.replies_done_s:.2f} s" for r in results))
    row("callback queries answered", *(f"{r.callbacks_answered}" for r in results))
    row("set-up (not measured)", *(f"{r.setup_s:.1f} s" for r in results))
    console.print(table)
    for r in results:
        console.print(
            f"{r.database}: {r.fidelio.per_s():.0f} answers/s vs bare PTB "
            f"{r.bare.per_s():.0f} updates/s → ratio {r.ratio:.3f} (to bare sending the two "
            f"replies: {r.ratio_replying:.3f}); update → stored p50 "
            f"{r.percentile(0.5):.0f} ms, p99 {r.percentile(0.99):.0f} ms; lost {r.lost}; "
            f"duplicated {r.duplicated}"
            + ("; TIMED OUT" if r.fidelio.timed_out or r.bare.timed_out else ""),
            soft_wrap=True,
        )


# Main


async def answers(
    people: int,
    items: int,
    databases: Sequence[str],
    server_url: str,
    explicit: bool,
    console: Console,
    profile: str | None = None,
    modes: Sequence[str] = ("burst", "realistic"),
    global_scale: float = 1.0,
) -> dict[str, Any]:
    """Run every requested mode on every requested database; print the reports; return the
    JSON summary."""
    cores = os.cpu_count() or 1
    console.print(
        f"Fidelio answer benchmark ({', '.join(modes)}): {people} people × {items} items = "
        f"{people * items} answers per run. Python {host_platform.python_version()} on "
        f"{host_platform.machine()}: {cores} CPU core{'s' if cores != 1 else ''} shared by the "
        "fake Telegram server, the bot and the database (fake and bot in this one process and "
        "event loop; PostgreSQL in its own processes; loopback only). Load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}.",
        soft_wrap=True,
    )
    chosen = list(databases)
    if "postgres" in chosen and not await postgres_reachable(server_url):
        if explicit:
            raise SystemExit(
                f"PostgreSQL at {make_url(server_url).render_as_string()} is not reachable"
            )
        console.print(
            f"postgres: skipped, no PostgreSQL answers at "
            f"{make_url(server_url).host}:{make_url(server_url).port or 5432}",
            soft_wrap=True,
        )
        chosen.remove("postgres")
    summary: dict[str, Any] = {}
    lost = duplicated = 0
    if "realistic" in modes:
        realistic = [
            await run_realistic(kind, server_url, people, items, console, global_scale, profile)
            for kind in chosen
        ]
        report_realistic(console, realistic)
        for outcome in realistic:
            summary.update(outcome.summary())
            lost += outcome.lost
            duplicated += outcome.duplicated
    if "burst" in modes:
        console.print(
            f"Burst: fake rate limits × {RATE_SCALE:g}, Fidelio's pacing raised to match.",
            soft_wrap=True,
        )
        results = [
            await run_phase(kind, server_url, people, items, console, profile) for kind in chosen
        ]
        report(console, results)
        for result in results:
            summary.update(result.summary())
            lost += result.lost
            duplicated += result.duplicated
    summary["lost"] = lost
    summary["duplicated"] = duplicated
    return summary


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.answers", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--people", type=int, default=2000, help="people answering (2000)")
    parser.add_argument("--items", type=int, default=10, help="one-tap items in the round (10)")
    parser.add_argument(
        "--databases",
        default=None,
        help="comma-separated: sqlite, postgres (default: both; postgres only when reachable)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help=f"PostgreSQL server to make the scratch database on (default {DEFAULT_PG})",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--realistic",
        action="store_true",
        help="only the realistic mode: paced invitations, people tapping 1-4 s after each message",
    )
    mode.add_argument("--burst", action="store_true", help="only the burst mode")
    parser.add_argument(
        "--global-scale",
        type=float,
        default=1.0,
        help="realistic mode: multiply Telegram's overall limit (30/s) and Fidelio's overall pace "
        "(28/s) by this (default 1: the platform's own; the per-chat limit always stays 1/s)",
    )
    parser.add_argument(
        "--profile",
        default=None,
        metavar="FILE",
        help="write a cProfile of each Fidelio run to FILE.<database> (slows the run down)",
    )
    args = parser.parse_args(argv)
    if args.people < 1 or args.items < 1:
        parser.error("--people and --items must be ≥ 1")
    names = [n.strip() for n in (args.databases or "sqlite,postgres").split(",") if n.strip()]
    if not names or set(names) - {"sqlite", "postgres"}:
        parser.error("--databases takes sqlite and/or postgres")
    args.database_list = list(dict.fromkeys(names))
    args.modes = (
        ["realistic"] if args.realistic else ["burst"] if args.burst else ["realistic", "burst"]
    )
    if args.global_scale <= 0:
        parser.error("--global-scale must be positive")
    args.explicit_postgres = args.databases is not None or args.database_url is not None
    args.database_url = args.database_url or DEFAULT_PG
    if not args.database_url.startswith("postgresql+asyncpg://"):
        parser.error("--database-url must start with postgresql+asyncpg://")
    return args


def _not_a_dropped_poll(record: logging.LogRecord) -> bool:
    """Drop the fake server's report of a client that hung up mid-request: a polling
    application that stops cancels the long poll it has just sent (PTB's own backend too)."""
    error = record.exc_info[1] if record.exc_info else None
    return not isinstance(error, ConnectionResetError)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    loopback_only("bench.answers")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.server").addFilter(_not_a_dropped_poll)
    # PTB 22 warns whenever RetryAfter.retry_after is read; that is PTB's migration, not ours.
    warnings.filterwarnings("ignore", category=PTBDeprecationWarning)
    console = Console(highlight=False)
    summary = asyncio.run(
        answers(
            args.people,
            args.items,
            args.database_list,
            args.database_url,
            args.explicit_postgres,
            console,
            args.profile,
            args.modes,
            args.global_scale,
        )
    )
    sys.stdout.flush()
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
