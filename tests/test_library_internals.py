"""The private library names Fidelio relies on, each behind one adapter module.

Each check below fails with a message naming the library, the private name and the adapter
module to revisit when a new version of a pinned library changes what Fidelio relies on; the
last one makes sure no other module reaches for those names.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import socket
from importlib.metadata import version
from typing import Any

import pytest
import telegram
from aiohttp import web
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from pydantic_settings import EnvSettingsSource
from telegram.request import BaseRequest, RequestData

from bot.aiohttp_sites import bound_port
from bot.channels.telegram_internals import post_json
from bot.config import GivenEnvSource, Settings
from scheduler.executor import FinishingExecutor

from .harness import REPO

#: Private attribute name -> the only modules (relative to the repository) allowed to use it.
PRIVATE_NAMES = {
    "_post": {"bot/channels/telegram_internals.py"},
    "_pending_futures": {"scheduler/executor.py"},
    # aiohttp's public BaseRunner.addresses replaced TCPSite._server (bot/aiohttp_sites.py).
    "_server": set(),
}


def changed(library: str, what: str, adapter: str) -> str:
    return (
        f"{library} {version(library)} changed {what}, which Fidelio relies on in {adapter}: "
        f"revisit that module (its docstring says why the private name is needed) before "
        f"upgrading {library}"
    )


# Python-telegram-bot: Bot._post


def test_telegram_bot_still_has_post() -> None:
    why = changed("python-telegram-bot", "Bot._post", "bot/channels/telegram_internals.py")
    post = getattr(telegram.Bot, "_post", None)
    assert post is not None, why
    assert inspect.iscoroutinefunction(post), why
    parameters = inspect.signature(post).parameters
    names = list(parameters)
    assert names[:2] == ["self", "endpoint"], why
    assert parameters["endpoint"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, why
    assert "api_kwargs" in parameters, why
    assert parameters["api_kwargs"].kind is inspect.Parameter.KEYWORD_ONLY, why


class _RecordingRequest(BaseRequest):
    """A Bot API transport that records the one request and answers a fixed result."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        self.calls.append((url, dict(request_data.parameters) if request_data else {}))
        return 200, b'{"ok": true, "result": {"message_id": 42, "chat": {"id": 7}}}'


async def test_post_json_sends_plain_json_and_returns_it() -> None:
    why = changed("python-telegram-bot", "Bot._post", "bot/channels/telegram_internals.py")
    request = _RecordingRequest()
    bot = telegram.Bot("123:abc", request=request, get_updates_request=_RecordingRequest())
    result = await post_json(bot, "sendMessage", {"chat_id": 7, "text": "hi", "reply_markup": None})
    assert result == {"message_id": 42, "chat": {"id": 7}}, why  # raw JSON, no PTB objects
    [(url, params)] = request.calls
    assert url.endswith("/bot123:abc/sendMessage"), why
    assert params == {"chat_id": 7, "text": "hi"}, why  # None values left out


# Aiohttp: the bound port of a site (public BaseRunner.addresses)


async def test_bound_port_reports_the_port_the_system_chose() -> None:
    why = changed("aiohttp", "BaseRunner.addresses", "bot/aiohttp_sites.py")
    assert isinstance(inspect.getattr_static(web.BaseRunner, "addresses", None), property), why
    runner = web.AppRunner(web.Application(), access_log=None)
    await runner.setup()
    try:
        assert bound_port(runner, 1234) == 1234  # no site started yet
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = bound_port(runner, 0)
        assert port != 0, why
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            pass
    finally:
        await runner.cleanup()


# APScheduler: AsyncIOExecutor._pending_futures


async def test_asyncio_executor_keeps_pending_futures() -> None:
    why = changed("APScheduler", "AsyncIOExecutor._pending_futures", "scheduler/executor.py")
    executor = FinishingExecutor()
    assert isinstance(executor, AsyncIOExecutor)
    scheduler = AsyncIOScheduler(timezone="UTC", executors={"default": executor})
    started, release = asyncio.Event(), asyncio.Event()

    async def job() -> None:
        started.set()
        await release.wait()

    scheduler.start()
    try:
        assert isinstance(getattr(executor, "_pending_futures", None), set), why
        scheduler.add_job(job, id="job")
        async with asyncio.timeout(5):
            await started.wait()
        [future] = executor.running()
        assert future in executor._pending_futures, why
    finally:
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0)
    # Shut down, the job is still running (not cancelled) until finish() lets it end.
    assert not future.done(), why
    finishing = asyncio.ensure_future(executor.finish(5.0))
    await asyncio.sleep(0)
    assert not finishing.done()
    release.set()
    async with asyncio.timeout(5):
        await finishing
    assert future.done() and not future.cancelled(), why
    assert executor.running() == set(), why  # done callbacks remove the future


async def test_finish_cancels_a_job_that_outlives_the_grace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    executor = FinishingExecutor()
    scheduler = AsyncIOScheduler(timezone="UTC", executors={"default": executor})
    started, cut_off = asyncio.Event(), asyncio.Event()

    async def job() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cut_off.set()
            raise

    scheduler.start()
    scheduler.add_job(job, id="job")
    async with asyncio.timeout(5):
        await started.wait()
    [future] = executor.running()
    scheduler.shutdown(wait=False)
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await executor.finish(0.05)
    assert future.done() and cut_off.is_set()
    assert "did not finish within" in caplog.text


# Pydantic-settings: EnvSettingsSource.env_vars


def test_env_source_reads_only_the_given_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    why = changed("pydantic-settings", "EnvSettingsSource.env_vars", "bot/config.py")
    monkeypatch.setenv("FIDELIO_LOGGING__LEVEL", "DEBUG")
    assert "env_vars" in vars(EnvSettingsSource(Settings)), why
    source = GivenEnvSource(Settings, {"FIDELIO_ANONYMITY__MIN_GROUP": "7", "OTHER": "x"})
    assert source() == {"anonymity": {"min_group": "7"}}, why


# Nowhere else


def private_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, name) of every ``x.<name>`` and ``getattr(x, "<name>" ...)`` of a tracked name."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in PRIVATE_NAMES:
            found.append((node.lineno, node.attr))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"getattr", "setattr", "hasattr"}
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in PRIVATE_NAMES
        ):
            found.append((node.lineno, str(node.args[1].value)))
    return found


def test_private_names_only_in_their_adapter_modules() -> None:
    files = [f for root in ("bot", "handlers", "scheduler") for f in (REPO / root).rglob("*.py")]
    assert files
    offenders = []
    for path in sorted(files):
        relative = path.relative_to(REPO).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=relative)
        for line, name in private_uses(tree):
            if relative not in PRIVATE_NAMES[name]:
                offenders.append(f"{relative}:{line}: .{name}")
    assert offenders == [], (
        "private library names used outside their adapter module (see PRIVATE_NAMES): "
        + ", ".join(offenders)
    )


def test_the_scan_sees_each_adapter_use() -> None:
    """Guards the scan itself: each allowed module is found using its name."""
    for name, modules in PRIVATE_NAMES.items():
        for module in modules:
            tree = ast.parse((REPO / module).read_text(encoding="utf-8"))
            assert name in {found for _line, found in private_uses(tree)}, (module, name)
    sample = ast.parse("x = site._server\ny = getattr(bot, '_post')\n")
    assert private_uses(sample) == [(1, "_server"), (2, "_post")]
