"""Parsing of short durations ("3d", "24h", "90m", "1d12h") and local date-times."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import InputError

_PART = re.compile(r"(\d+)\s*(w|d|h|m)")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}


def parse_duration(text: str) -> timedelta:
    """``"3d"`` -> 3 days; ``"1d 12h"`` -> 36 hours. Raises ValueError with the accepted form."""
    cleaned = str(text).strip().lower()
    if not cleaned or _PART.sub("", cleaned).strip():
        raise ValueError(f"{text!r} is not a duration (use forms like 3d, 24h, 90m, 1d12h)")
    total = timedelta()
    for amount, unit in _PART.findall(cleaned):
        total += timedelta(**{_UNITS[unit]: int(amount)})
    if total <= timedelta():
        raise ValueError(f"{text!r} must be longer than zero")
    return total


def parse_local_datetime(value: object, default_zone: str | None = None) -> datetime:
    """An aware datetime from ``2027-03-15T09:00+01:00`` or ``2027-03-15 09:00 Europe/Rome``.

    A value without offset or zone name uses ``default_zone``; with neither, it is an error,
    because a launch time without a zone is ambiguous.
    """
    if isinstance(value, datetime):
        parsed, zone_name = value, None
    else:
        text = str(value).strip()
        zone_name = None
        head, _, tail = text.rpartition(" ")
        if head and "/" in tail or tail in ("UTC",):
            text, zone_name = head, tail
        try:
            parsed = datetime.fromisoformat(text.replace(" ", "T", 1))
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date-time (use 2027-03-15T09:00+01:00 or 2027-03-15 09:00 Europe/Rome)"
            ) from None
    if parsed.tzinfo is not None:
        if zone_name:
            raise ValueError(f"{value!r} has both an offset and a zone name; use one")
        return parsed
    zone_name = zone_name or default_zone
    if not zone_name:
        raise ValueError(
            f"{value!r} has no time zone (add an offset or a zone such as Europe/Rome)"
        )
    try:
        return parsed.replace(tzinfo=ZoneInfo(zone_name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {zone_name!r}") from None


def parse_day(value: str | None, option: str) -> date | None:
    """A command-line date ``YYYY-MM-DD`` (None when not given); InputError names ``option``."""
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InputError(option, f"{value!r} is not a date written YYYY-MM-DD") from None


def start_of_day(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime.combine(day, time(0), tzinfo=UTC)
