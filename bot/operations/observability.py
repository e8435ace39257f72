"""Structured logs: readable text lines or one JSON object per line, with context fields.

Context fields (the channel and id of the inbound event being handled, for example) are set
with :func:`log_context` around a piece of work; every record logged inside it carries them,
whichever module logs it. Fields passed with ``extra=`` are included as well.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

_CONTEXT: ContextVar[dict[str, Any]] = ContextVar("fidelio_log_context", default={})  # noqa: B039

#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "context", "taskName"}
)

#: Libraries whose every request at INFO would drown Fidelio's own lines.
NOISY = ("httpx", "telegram", "apscheduler", "slack_sdk", "slack_bolt", "aiohttp.access")


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every record logged inside the block (nested blocks add up)."""
    token = _CONTEXT.set({**_CONTEXT.get(), **fields})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class _ContextFilter(logging.Filter):
    """Copies the current context onto the record when it is created (not when formatted)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = dict(_CONTEXT.get())
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                fields.setdefault(key, value)
        record.context = fields
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, context fields,
    and ``exception`` (the formatted traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in getattr(record, "context", {}).items():
            data.setdefault(key, value)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        # default=str: a context value that JSON cannot hold is written as its text.
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with context fields appended as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "context", {})
        if fields:
            extra = " ".join(f"{key}={value}" for key, value in fields.items())
            head, sep, rest = line.partition("\n")  # keep a traceback below the fields
            line = f"{head} [{extra}]{sep}{rest}"
        return line


def setup_logging(
    level: str | int,
    log_format: Literal["text", "json"] = "text",
    stream: TextIO | None = None,
    *,
    quiet: bool = False,
) -> logging.Handler:
    """Configure the root logger once (replacing earlier handlers); returns the handler."""
    numeric = (
        logging.WARNING if quiet else (level if isinstance(level, int) else getattr(logging, level))
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    return handler
