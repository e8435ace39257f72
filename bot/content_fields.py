"""Field types shared by content files (briefings, surveys): localised texts, lists of names,
audiences, and a problem list that names the file and the field.

The fields are pydantic types used by the header models of :mod:`bot.briefings.content` and
:mod:`bot.pulse.content`. A localised text needs the file's locales: the model is validated
with ``context={"locales": (...)}`` (the supported locales when not given).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainValidator,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.db.models import Role
from bot.errors import InputError
from bot.field_errors import field_problems
from bot.settings_section import SUPPORTED_LOCALES


@dataclass(frozen=True)
class Audience:
    everyone: bool = False
    teams: tuple[str, ...] = ()
    teams_only: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()


class Problems:
    """Every problem of one content file, as ``InputError("<file>: <field>", reason)``."""

    def __init__(self, source: str):
        self.source = source
        self.items: list[InputError] = []

    def add(self, path: str, reason: str) -> None:
        self.items.append(InputError(f"{self.source}: {path}", reason))

    def add_validation_error(self, error: ValidationError, prefix: str = "") -> None:
        """Every problem a header model found, each under its field."""
        for path, reason in field_problems(error, prefix):
            self.add(path, reason)


class ContentModel(BaseModel):
    """A part of a content file: unknown fields are refused, values are never coerced.

    A part given as something other than a mapping is refused with :attr:`mapping_hint`
    (what the part should hold) when the model sets one, else with pydantic's own reason.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    mapping_hint: ClassVar[str | None] = None

    @model_validator(mode="before")
    @classmethod
    def _a_mapping(cls, value: Any) -> Any:
        if cls.mapping_hint is not None and not isinstance(value, dict):
            raise ValueError(cls.mapping_hint)
        return value


def one_of(choices: tuple[str, ...]) -> PlainValidator:
    """A field whose value must be one of ``choices`` (a content kind, an item kind)."""

    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return str(value)

    return PlainValidator(check)


def optional_list(hint: str) -> BeforeValidator:
    """A list field that may be left out or empty (``None`` reads as ``[]``); anything else
    but a list is refused with ``hint`` (what the list should look like)."""

    def check(value: Any) -> Any:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ValueError(hint)
        return value

    return BeforeValidator(check)


def same_option_count(options: dict[str, list[str]]) -> dict[str, list[str]]:
    """Options given per locale: every locale has as many (the answer is their position)."""
    if len({len(texts) for texts in options.values()}) > 1:
        raise ValueError("every locale needs the same number of options")
    return options


def usable_locales(value: Any) -> tuple[str, ...]:
    """The supported locales a ``locales`` field lists (all supported ones when it lists none),
    so the texts can be checked even while ``locales`` itself has a problem."""
    if not isinstance(value, list):
        return SUPPORTED_LOCALES
    return tuple(x for x in value if x in SUPPORTED_LOCALES) or SUPPORTED_LOCALES


def context_locales(info: ValidationInfo) -> tuple[str, ...]:
    """The locales a model is validated for (its ``context``), else the supported ones."""
    context = info.context if isinstance(info.context, dict) else {}
    locales = context.get("locales") or SUPPORTED_LOCALES
    return tuple(locales)


class _UnlistedLocale:
    """Stands for a text given for a locale the file does not list."""


_UNLISTED = _UnlistedLocale()


def _over_locales(value: Any, info: ValidationInfo) -> dict[str, Any]:
    """One text for every locale, or a mapping with a text per locale."""
    locales = context_locales(info)
    if value is None:
        raise ValueError("required")
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("must not be empty")
        return {locale: value for locale in locales}
    if isinstance(value, dict):
        per_locale = {locale: value.get(locale) for locale in locales}
        per_locale.update({str(key): _UNLISTED for key in value if key not in locales})
        return per_locale
    raise ValueError("must be a text or a mapping of locale to text")


def _locale_text(value: Any) -> str:
    if value is _UNLISTED:
        raise ValueError("this locale is not listed in locales")
    if not isinstance(value, str) or not value.strip():
        raise ValueError("missing text for this locale")
    return value.strip()


#: A text per locale: ``title: Hello`` (the same for all) or ``title: {en: Hello, it: Ciao}``.
LocalisedText = Annotated[
    dict[str, Annotated[str, PlainValidator(_locale_text)]], BeforeValidator(_over_locales)
]


#: Longest keyword: a word or a short phrase, not a sentence.
MAX_KEYWORD = 60


def _keyword_list(value: Any) -> list[str]:
    """A list of words or short phrases; each problem names the item (counting from 1)."""
    if not isinstance(value, list):
        raise ValueError("must be a list of words or phrases, such as [televisore, in vendita]")
    items = []
    for number, item in enumerate(value, 1):
        if isinstance(item, bool | int | float):
            raise ValueError(f"item {number} ({item!r}) must be a text: put it in quotes")
        if not isinstance(item, str):
            raise ValueError(f"item {number} must be a text, not a {type(item).__name__}")
        if not item.strip():
            raise ValueError(f"item {number} is empty")
        if len(item.strip()) > MAX_KEYWORD:
            raise ValueError(
                f"item {number} is longer than {MAX_KEYWORD} characters: "
                "give words or short phrases"
            )
        items.append(item.strip())
    return items


def _keywords_over_locales(value: Any, info: ValidationInfo) -> dict[str, Any]:
    """One list for every locale (checked once, so a problem is reported once), or a list
    per locale; locales may be left out."""
    locales = context_locales(info)
    if value is None:
        return {}
    if isinstance(value, list):
        items = _keyword_list(value)
        return {locale: items for locale in locales}
    if isinstance(value, dict):
        return {str(key): words if key in locales else _UNLISTED for key, words in value.items()}
    raise ValueError(
        "must be a list of words or phrases, or one list per locale ({it: [...], en: [...]})"
    )


def _locale_keywords(value: Any) -> list[str]:
    if value is _UNLISTED:
        raise ValueError("this locale is not listed in locales")
    return _keyword_list(value)


#: Keywords: ``[tv, televisore]`` (the same for all locales) or ``{it: [...], en: [...]}``.
LocalisedKeywords = Annotated[
    dict[str, Annotated[list[str], PlainValidator(_locale_keywords)]],
    BeforeValidator(_keywords_over_locales),
]


def _names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError("must be a list of names")
    return tuple(v.strip() for v in value)


#: A list of names (one name alone is a list of one).
NameList = Annotated[tuple[str, ...], PlainValidator(_names)]


class AudienceFields(ContentModel):
    """``audience:``: everyone, or teams (with or without sub-teams), roles and locations."""

    everyone: StrictBool = False
    teams: NameList = ()
    teams_only: NameList = ()
    roles: NameList = ()
    locations: NameList = ()

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, roles: tuple[str, ...]) -> tuple[str, ...]:
        known = {r.value for r in Role}
        unknown = [role for role in roles if role not in known]
        if unknown:
            names = ", ".join(repr(role) for role in unknown)
            raise ValueError(
                f"unknown role{'s' if len(unknown) > 1 else ''} {names}"
                f" (roles: {', '.join(sorted(known))})"
            )
        return roles

    @model_validator(mode="after")
    def _names_somebody(self) -> AudienceFields:
        if not (self.everyone or self.teams or self.teams_only or self.roles or self.locations):
            raise ValueError("names nobody: set everyone: true or list teams, roles or locations")
        if self.everyone and (self.teams or self.teams_only):
            raise ValueError("everyone: true cannot be combined with teams")
        return self

    def audience(self) -> Audience:
        return Audience(
            everyone=self.everyone,
            teams=self.teams,
            teams_only=self.teams_only,
            roles=self.roles,
            locations=self.locations,
        )


def _audience_mapping(value: Any) -> Any:
    if not isinstance(value, dict):
        raise ValueError("required: everyone: true, or teams / teams_only / roles / locations")
    return value


#: The ``audience`` field of a content file (required: give it ``validate_default=True``).
AudienceField = Annotated[AudienceFields, BeforeValidator(_audience_mapping)]
