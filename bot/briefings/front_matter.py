"""The front matter of a briefing file (``content/briefings/*.md``) as pydantic models.

:class:`BriefingHeader` checks every field of the YAML header (the format is described in
:mod:`bot.briefings.content`); quiz and FAQ entries are models of their own, so a problem is
named down to its entry (``quiz[2].options.it``); :class:`bot.content_fields.Problems`
reports them as ``<file>: <field>: <reason>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainValidator,
    StrictBool,
    ValidationInfo,
    field_validator,
)

from bot.content_fields import (
    AudienceField,
    ContentModel,
    LocalisedKeywords,
    LocalisedText,
    context_locales,
    one_of,
    optional_list,
    same_option_count,
)
from bot.durations import parse_duration, parse_local_datetime
from bot.settings_section import SUPPORTED_LOCALES

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{2,31}")
_REMINDER = re.compile(r"^\s*(\S+)\s+(after briefing|before launch)\s*$")
DEFAULT_EXPIRY = timedelta(days=30)
KINDS = ("product", "promotion")


@dataclass(frozen=True)
class QuizQuestion:
    question: dict[str, str]
    options: dict[str, list[str]]
    correct: int  # 0-based index
    explanation: dict[str, str]


@dataclass(frozen=True)
class FaqEntry:
    q: dict[str, str]
    a: dict[str, str]
    #: Extra words or phrases per locale that ``ask`` matches as if they were in the question.
    keywords: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Reminder:
    """``offset`` after the briefing (``anchor='brief'``) or before the launch (``'launch'``)."""

    anchor: str
    offset_s: int

    def label(self) -> str:
        hours = self.offset_s / 3600
        amount = f"{hours:g}h" if hours >= 1 else f"{self.offset_s // 60}m"
        return f"{amount} {'after briefing' if self.anchor == 'brief' else 'before launch'}"


def _zone(info: ValidationInfo) -> str:
    context = info.context if isinstance(info.context, dict) else {}
    return str(context.get("default_zone") or "Europe/Rome")


def _option_list(value: Any) -> list[str]:
    if (
        not isinstance(value, list)
        or not 2 <= len(value) <= 5
        or not all(isinstance(o, str | int | float) for o in value)
    ):
        raise ValueError("must be a list of 2 to 5 options")
    return [str(o).strip() for o in value]


def _options_per_locale(value: Any, info: ValidationInfo) -> dict[str, Any]:
    locales = context_locales(info)
    if isinstance(value, list):
        return {locale: value for locale in locales}
    if not isinstance(value, dict):
        raise ValueError("must be a list, or a list per locale")
    return {locale: value.get(locale) for locale in locales}


class QuizQuestionFields(ContentModel):
    """One ``quiz:`` entry; ``correct`` is 1-based, as the file writes it."""

    mapping_hint = "must be a mapping with question, options, correct, explanation"

    question: LocalisedText
    options: Annotated[
        dict[str, Annotated[list[str], PlainValidator(_option_list)]],
        BeforeValidator(_options_per_locale),
        AfterValidator(same_option_count),
    ]
    correct: int = Field(None, validate_default=True)
    explanation: LocalisedText

    @field_validator("correct", mode="plain")
    @classmethod
    def _an_option(cls, value: Any, info: ValidationInfo) -> int:
        options = info.data.get("options") or {}
        count = len(next(iter(options.values()))) if options else 0
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= count:
            raise ValueError(f"must be the number of the right option (1 to {count or '?'})")
        return value

    def question_of_quiz(self) -> QuizQuestion:
        return QuizQuestion(self.question, self.options, self.correct - 1, self.explanation)


class FaqFields(ContentModel):
    """One ``faq:`` entry: ``q`` and ``a``, and optional ``keywords`` for ``ask``."""

    mapping_hint = "must be a mapping with q and a (and optional keywords)"

    q: LocalisedText
    a: LocalisedText
    keywords: LocalisedKeywords = {}


def _reminder(value: Any) -> Reminder:
    match = _REMINDER.match(str(value))
    if not match:
        raise ValueError(
            f"{value!r}: use '<duration> after briefing' or '<duration> before launch'"
        )
    offset = parse_duration(match.group(1))  # its ValueError names the duration
    anchor = "brief" if match.group(2) == "after briefing" else "launch"
    return Reminder(anchor, int(offset.total_seconds()))


class BriefingHeader(ContentModel):
    """The YAML front matter of a briefing file (see the module docstring).

    Validated with ``context={"locales": ..., "default_zone": ...}``: the locales the texts
    must cover (:func:`usable_locales`) and the zone of date-times written without one.
    Fields are declared in the order their checks depend on each other.
    """

    id: str = Field(None, validate_default=True)
    kind: Annotated[str, one_of(KINDS)] = Field(None, validate_default=True)
    locales: tuple[str, ...] = SUPPORTED_LOCALES
    title: LocalisedText
    summary: LocalisedText
    launch_at: datetime = Field(None, validate_default=True)
    #: The briefing time (``brief:`` is a lead time before launch, or a date-time).
    brief: datetime | None = Field(None, validate_default=True)
    expires_at: datetime | None = Field(None, validate_default=True)
    audience: AudienceField = Field(None, validate_default=True)
    ack_required: StrictBool = True
    quiz: list[QuizQuestionFields] = []
    faq: Annotated[list[FaqFields], optional_list("must be a list of q/a pairs")] = []
    reminders: Annotated[
        list[Annotated[Reminder, PlainValidator(_reminder)]],
        optional_list("must be a list like [24h after briefing, 6h before launch]"),
    ] = []

    @field_validator("id", mode="plain")
    @classmethod
    def _id(cls, value: Any) -> str:
        if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
            raise ValueError(
                "required: 3-32 characters of a-z, 0-9 and '-', starting with a letter or digit"
            )
        return value

    @field_validator("locales", mode="plain")
    @classmethod
    def _locales(cls, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            raise ValueError("must be a non-empty list")
        bad = [x for x in value if x not in SUPPORTED_LOCALES]
        if bad:
            raise ValueError(
                f"unsupported: {', '.join(map(str, bad))}"
                f" (supported: {', '.join(SUPPORTED_LOCALES)})"
            )
        return tuple(value)

    @field_validator("launch_at", mode="plain")
    @classmethod
    def _launch_at(cls, value: Any, info: ValidationInfo) -> datetime:
        if value is None:
            raise ValueError("required")
        return parse_local_datetime(value, _zone(info))

    @field_validator("brief", mode="plain")
    @classmethod
    def _brief(cls, value: Any, info: ValidationInfo) -> datetime | None:
        if value is None:
            raise ValueError("required: a lead time such as 3d, or a date-time")
        launch_at = info.data.get("launch_at")
        if launch_at is None:
            return None  # launch_at has its own problem
        try:
            brief_at = launch_at - parse_duration(str(value))
        except ValueError:
            try:
                brief_at = parse_local_datetime(value, _zone(info))
            except ValueError as exc:
                raise ValueError(f"neither a lead time (3d, 24h) nor a date-time: {exc}") from None
        if brief_at >= launch_at:
            raise ValueError("must be before launch_at")
        return brief_at

    @field_validator("expires_at", mode="plain")
    @classmethod
    def _expires_at(cls, value: Any, info: ValidationInfo) -> datetime | None:
        launch_at = info.data.get("launch_at")
        if launch_at is None:
            return None
        if value is None:
            return launch_at + DEFAULT_EXPIRY
        expires_at = parse_local_datetime(value, _zone(info))
        if expires_at <= launch_at:
            raise ValueError("must be after launch_at")
        return expires_at

    @field_validator("quiz", mode="before")
    @classmethod
    def _quiz_size(cls, value: Any) -> Any:
        if value is None:
            return []
        if not isinstance(value, list) or not 2 <= len(value) <= 5:
            raise ValueError("must be a list of 2 to 5 questions")
        return value

    @field_validator("quiz")
    @classmethod
    def _quiz_needs_ack(
        cls, quiz: list[QuizQuestionFields], info: ValidationInfo
    ) -> list[QuizQuestionFields]:
        if quiz and info.data.get("ack_required") is False:
            raise ValueError('the quiz follows "Got it": it needs ack_required: true')
        return quiz
