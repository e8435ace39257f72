"""Pulse survey content as pydantic models: an entry of the item bank (:class:`ItemFields`)
and a survey definition (:class:`SurveyFields`, with :class:`CadenceFields` and
:class:`RotatingFields`). The formats are described in :mod:`bot.pulse.content`, which
turns the validated models into the values the service uses and reports each problem as
``<file>: <field>: <reason>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainValidator,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.config import check_timezone
from bot.content_fields import (
    AudienceField,
    ContentModel,
    LocalisedText,
    one_of,
    optional_list,
    same_option_count,
)
from bot.durations import parse_duration
from bot.settings_section import SUPPORTED_LOCALES

KINDS = ("likert5", "scale0_10", "choice", "text")
ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{1,31}")
_REMINDER = re.compile(r"^\s*(?:(halfway)|(\S+)\s+(before close|after open))\s*$")


@dataclass(frozen=True)
class ReminderRule:
    kind: str  # halfway | before_close | after_open
    offset_s: int = 0

    def at(self, opens: datetime, closes: datetime) -> datetime:
        if self.kind == "halfway":
            return opens + (closes - opens) / 2
        if self.kind == "before_close":
            return closes - timedelta(seconds=self.offset_s)
        return opens + timedelta(seconds=self.offset_s)


# The item bank


def _choice_options(value: Any) -> list[str]:
    if not isinstance(value, list) or not 2 <= len(value) <= 8:
        raise ValueError("a choice item needs 2 to 8 options")
    return [str(o) for o in value]


def _options_for_kind(value: Any, info: ValidationInfo) -> dict[str, Any]:
    kind = info.data.get("kind")
    if kind != "choice":
        if value is not None and kind is not None:
            raise ValueError("only choice items have options")
        return {}
    if isinstance(value, list):
        return {locale: value for locale in SUPPORTED_LOCALES}
    return {
        locale: value.get(locale) if isinstance(value, dict) else None
        for locale in SUPPORTED_LOCALES
    }


def _content_id(value: Any) -> str:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise ValueError("required: 2-32 characters of a-z, 0-9, _ and -")
    return value


#: The id of an item or a survey.
ContentId = Annotated[str, PlainValidator(_content_id)]


class ItemFields(ContentModel):
    """One entry of ``items:`` in the item bank."""

    id: ContentId = Field(None, validate_default=True)
    kind: Annotated[str, one_of(KINDS)] = Field(None, validate_default=True)
    dimension: str = Field(None, validate_default=True)
    reverse: bool = False
    text: LocalisedText
    options: Annotated[
        dict[str, Annotated[list[str], PlainValidator(_choice_options)]],
        BeforeValidator(_options_for_kind),
        AfterValidator(same_option_count),
    ] = Field(None, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _a_mapping(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError("must be a mapping")
        return {str(key): field for key, field in value.items()}

    @field_validator("dimension", mode="plain")
    @classmethod
    def _dimension(cls, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("required")
        return value

    @field_validator("reverse", mode="plain")
    @classmethod
    def _reverse(cls, value: Any, info: ValidationInfo) -> bool:
        if not isinstance(value, bool) or (value and info.data.get("kind", "likert5") != "likert5"):
            raise ValueError("true or false; only likert5 items can be reversed")
        return value


# Survey definitions


class CadenceFields(ContentModel):
    """``cadence:`` of a survey (the time zone first: the crontab is read in it)."""

    timezone: str = Field(None, validate_default=True)
    cron: str = Field(None, validate_default=True)
    every_weeks: int = 1
    start: str | None = None

    @field_validator("timezone", mode="plain")
    @classmethod
    def _timezone(cls, value: Any) -> str:
        check_timezone(str(value))  # its ValueError names the zone
        return str(value)

    @field_validator("cron", mode="plain")
    @classmethod
    def _cron(cls, value: Any, info: ValidationInfo) -> str:
        zone = info.data.get("timezone", "UTC")
        try:
            CronTrigger.from_crontab(str(value), timezone=ZoneInfo(zone))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a five-field crontab ({exc})") from None
        return str(value)

    @field_validator("every_weeks", mode="plain")
    @classmethod
    def _every_weeks(cls, value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 52:
            raise ValueError("must be a whole number from 1 to 52")
        return value

    @field_validator("start", mode="plain")
    @classmethod
    def _start(cls, value: Any) -> str | None:
        if value is None:
            return None
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise ValueError("must be a date like 2027-01-04") from None


def _cadence_mapping(value: Any) -> Any:
    if not isinstance(value, dict):
        raise ValueError("required: cron, timezone (and optionally every_weeks, start)")
    return value


def _item_ids(value: Any, info: ValidationInfo) -> tuple[str, ...]:
    """Ids of the bank's questions (context ``items``), each once, no text item."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of item ids")
    bank = info.context.get("items", {}) if isinstance(info.context, dict) else {}
    reasons = []
    for item_id in dict.fromkeys(value):
        if item_id not in bank:
            reasons.append(f"unknown item {item_id!r} (not in items.yaml)")
        elif bank[item_id].kind == "text":
            reasons.append(f"{item_id!r} is a text item: use comment: true")
    if len(set(value)) != len(value):
        reasons.append("lists an item twice")
    if reasons:
        raise ValueError("; ".join(reasons))
    return tuple(value)


#: A list of item ids of the bank the survey is validated with (``context={"items": ...}``).
ItemIdList = Annotated[tuple[str, ...], PlainValidator(_item_ids)]


class RotatingFields(ContentModel):
    """``rotating:``: items taken in turn, ``per_round`` of them each round."""

    items: ItemIdList = ()
    per_round: int = Field(None, validate_default=True)

    @field_validator("per_round", mode="plain")
    @classmethod
    def _per_round(cls, value: Any, info: ValidationInfo) -> int:
        if "items" not in info.data:
            return value if isinstance(value, int) else 0  # items has its own problem
        items = info.data["items"]
        if value is None:
            return 1 if items else 0
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= len(items):
            raise ValueError(f"must be a whole number from 0 to {len(items)}")
        return value


def _rotating_mapping(value: Any) -> Any:
    if not value:
        return {}
    if not isinstance(value, dict):
        raise ValueError("must be a mapping with items and per_round")
    return value


def _survey_reminder(value: Any, info: ValidationInfo) -> ReminderRule:
    match = _REMINDER.match(str(value))
    if not match:
        raise ValueError(
            f"{value!r}: use halfway, '<duration> before close' or '<duration> after open'"
        )
    if match.group(1):
        return ReminderRule("halfway")
    offset = int(parse_duration(match.group(2)).total_seconds())  # its ValueError says why
    open_for_s = info.data.get("open_for") or 0
    if open_for_s and offset >= open_for_s:
        raise ValueError("falls outside the round (longer than open_for)")
    kind = "before_close" if match.group(3) == "before close" else "after_open"
    return ReminderRule(kind, offset)


class SurveyFields(ContentModel):
    """A survey definition file (see the module docstring), validated with
    ``context={"items": <the item bank>}``. Fields are declared in the order their checks
    depend on each other."""

    id: ContentId = Field(None, validate_default=True)
    title: LocalisedText
    cadence: Annotated[CadenceFields, BeforeValidator(_cadence_mapping)] = Field(
        None, validate_default=True
    )
    #: How long a round stays open, in seconds.
    open_for: int = Field(None, validate_default=True)
    audience: AudienceField = Field(None, validate_default=True)
    rotating: Annotated[RotatingFields, BeforeValidator(_rotating_mapping)] = Field(
        None, validate_default=True
    )
    core: ItemIdList = Field(None, validate_default=True)
    comment: StrictBool = False
    reminders: Annotated[
        list[Annotated[ReminderRule, PlainValidator(_survey_reminder)]],
        optional_list("must be a list like [halfway, 24h before close]"),
    ] = []
    skip_weekends: StrictBool = False

    @field_validator("open_for", mode="plain")
    @classmethod
    def _open_for(cls, value: Any) -> int:
        return int(parse_duration(str("" if value is None else value)).total_seconds())

    @field_validator("core")
    @classmethod
    def _asks_something(cls, core: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        rotating = info.data.get("rotating")
        both = sorted(set(core) & set(rotating.items if rotating else ()))
        if both:
            raise ValueError(f"also in rotating.items: {', '.join(both)}")
        if not core and not (rotating.per_round if rotating else 0):
            raise ValueError("the survey asks nothing: list core items or rotating items")
        return core
