"""The one Jinja2 environment over content/templates/<locale>/, and button labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

from bot.channels.port import Button, Message
from bot.config import SUPPORTED_LOCALES
from bot.errors import InputError
from bot.markup import escape
from bot.replies import Reply


class Trusted(str):
    """Text already in neutral markup (e.g. a rendered briefing body): not escaped again."""


class Renderer:
    """Renders replies in a person's locale, falling back to the default locale."""

    def __init__(self, templates_dir: Path, default_locale: str = "en"):
        self.templates_dir = templates_dir
        self.default_locale = default_locale
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
        self._labels = {locale: self._load_labels(locale) for locale in SUPPORTED_LOCALES}

    def _load_labels(self, locale: str) -> dict[str, str]:
        path = self.templates_dir / locale / "labels.yaml"
        if not path.exists():
            return {}
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise InputError(str(path), f"YAML syntax error: {exc}") from None
        if not isinstance(data, dict):
            raise InputError(str(path), "must be a mapping of label keys to texts")
        return {str(k): str(v) for k, v in data.items()}

    def _locale(self, locale: str | None) -> str:
        return locale if locale in SUPPORTED_LOCALES else self.default_locale

    def text(
        self,
        template: str,
        locale: str | None,
        context: dict[str, Any] | None = None,
        channel: str = "console",
    ) -> str:
        """Render ``<locale>/<template>.j2``; a template missing in that locale falls back.

        ``locale`` and ``channel`` are available to every template (for per-channel hints).
        """
        chosen = self._locale(locale)
        names = [f"{chosen}/{template}.j2"]
        if chosen != self.default_locale:
            names.append(f"{self.default_locale}/{template}.j2")
        tmpl = self.env.select_template(names)
        return tmpl.render({**(context or {}), "locale": chosen, "channel": channel}).strip()

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

    def render(self, reply: Reply, locale: str | None, channel: str = "console") -> Message:
        """Turn a handler's Reply into a neutral Message."""
        return Message(
            text=self.text(reply.template, locale, reply.context, channel),
            buttons=tuple(
                Button(self.label(b.label, locale), b.action, b.value) for b in reply.buttons
            ),
            image=reply.image,
            image_name=reply.image_name,
        )
