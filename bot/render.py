"""The one Jinja2 environment over content/templates/<locale>/, and button labels."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, pass_context
from jinja2.runtime import Context

from bot.channels.port import Button, Message
from bot.errors import InputError
from bot.locale import (
    counted,
    format_duration,
    format_local_time,
    format_number,
    format_pct,
    plural,
)
from bot.markup import escape
from bot.replies import Reply
from bot.settings_section import SUPPORTED_LOCALES

_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


class Trusted(str):
    """Text already in neutral markup (e.g. a rendered briefing body): not escaped again."""


class Renderer:
    """Renders replies in a person's locale, falling back to the default locale."""

    def __init__(
        self, templates_dir: Path, default_locale: str = "en", timezone: str = "Europe/Rome"
    ):
        self.templates_dir = templates_dir
        self.default_locale = default_locale
        self.timezone = timezone
        self.env = Environment(
            loader=FileSystemLoader(str(templates_dir)),
            undefined=StrictUndefined,
            # Every {{ value }} is made literal, so user text cannot inject markup.
            finalize=lambda value: value if isinstance(value, Trusted) else escape(value),
            trim_blocks=False,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            autoescape=False,
        )
        self.env.filters["trusted"] = Trusted
        self.env.globals["pick"] = _pick
        # Locale-aware formatting (bot/locale.py), in the locale of the template being rendered.
        self.env.filters["local_time"] = _local_time
        self.env.filters["pct"] = _pct
        self.env.filters["number"] = _number
        self.env.filters["duration"] = _duration
        self.env.filters["counted"] = _counted
        self.env.globals["plural"] = _plural
        self._labels = {locale: self._load_labels(locale) for locale in SUPPORTED_LOCALES}
        self.env.globals["label"] = self._label_in_context

    def _load_labels(self, locale: str) -> dict[str, str]:
        return read_labels(self.templates_dir / locale / "labels.yaml")

    def _locale(self, locale: str | None) -> str:
        return locale if locale in SUPPORTED_LOCALES else self.default_locale

    def text(
        self,
        template: str,
        locale: str | None,
        context: dict[str, Any] | None = None,
        channel: str = "console",
        timezone: str | None = None,
    ) -> str:
        """Render ``<locale>/<template>.j2``; a template missing in that locale falls back.

        ``locale``, ``channel`` and ``timezone`` are available to every template (for
        per-channel hints, ``pick(texts)`` and ``when | local_time``).
        """
        chosen = self._locale(locale)
        names = [f"{chosen}/{template}.j2"]
        if chosen != self.default_locale:
            names.append(f"{self.default_locale}/{template}.j2")
        tmpl = self.env.select_template(names)
        extra = {"locale": chosen, "channel": channel, "timezone": timezone or self.timezone}
        text = tmpl.render({**(context or {}), **extra})
        # Template control flow leaves runs of empty lines; one empty line is the most we show.
        return _BLANK_RUNS.sub("\n\n", text).strip()

    def has(self, template: str, locale: str) -> bool:
        try:
            self.env.get_template(f"{self._locale(locale)}/{template}.j2")
        except TemplateNotFound:
            return False
        return True

    def label(self, key: str, locale: str | None) -> str:
        chosen = self._locale(locale)
        return (
            self._labels.get(chosen, {}).get(key)
            or self._labels.get(self.default_locale, {}).get(key)
            or key
        )

    @pass_context
    def _label_in_context(self, ctx: Context, key: str) -> str:
        """``label("campaign.paused")`` in a template: the label in the template's locale."""
        return self.label(key, ctx.get("locale"))

    def render(
        self,
        reply: Reply,
        locale: str | None,
        channel: str = "console",
        timezone: str | None = None,
    ) -> Message:
        """Turn a handler's Reply into a neutral Message."""
        return Message(
            text=self.text(reply.template, locale, reply.context, channel, timezone),
            buttons=tuple(
                Button(self.label(b.label, locale), b.action, b.value) for b in reply.buttons
            ),
            image=reply.image,
            image_name=reply.image_name,
            form=reply.form,
            retry=self.label("retry_choice", locale) if reply.buttons else "",
        )


@pass_context
def _pick(ctx: Context, values: Any) -> Any:
    """The text for the current locale from ``{"en": ..., "it": ...}`` (or a plain value)."""
    if not isinstance(values, dict):
        return values
    return values.get(ctx.get("locale")) or next(iter(values.values()), "")


@pass_context
def _local_time(ctx: Context, value: Any) -> str:
    """The ``local_time`` filter: an ISO time (or datetime) for the reader of the reply."""
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return format_local_time(when, ctx.get("timezone") or "UTC", ctx.get("locale") or "en")


@pass_context
def _pct(ctx: Context, value: Any) -> str:
    """The ``pct`` filter: a percentage on 0–100 (``60%``), a dash when there is none."""
    return format_pct(None if value is None else float(value), ctx.get("locale") or "en")


@pass_context
def _number(ctx: Context, value: Any) -> str:
    """The ``number`` filter: a count or figure with the reader's digit grouping."""
    return format_number(None if value is None else float(value), ctx.get("locale") or "en")


@pass_context
def _duration(ctx: Context, value: Any) -> str:
    """The ``duration`` filter: seconds (or a timedelta) in words, ``5 hours``/``5 ore``."""
    return format_duration(value, ctx.get("locale") or "en")


@pass_context
def _counted(ctx: Context, count: Any, one: str, other: str) -> str:
    """``n | counted("person", "people")``: the count and the noun in its plural form."""
    return counted(int(count), ctx.get("locale") or "en", one, other)


@pass_context
def _plural(ctx: Context, count: Any, one: str, other: str) -> str:
    """``plural(n, "in your active briefing", "in your N active briefings")``: the text
    matching the count, by the locale's plural rule."""
    return plural(count, ctx.get("locale") or "en", one, other)


def read_labels(path: Path) -> dict[str, str]:
    """A labels.yaml file (label key -> text); empty when missing, InputError when malformed."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(str(path), f"YAML syntax error: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(str(path), "must be a mapping of label keys to texts")
    return {str(k): str(v) for k, v in data.items()}
