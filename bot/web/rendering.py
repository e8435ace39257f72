"""The pages' Jinja2 environment: HTML escaped by default, texts in the reader's language
(``texts/<locale>/*.yaml``, one file per part of the console, English where a text is
missing), dates and numbers as the reader
writes them."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context

from bot.locale import format_local_time, format_number, format_pct
from bot.settings_section import SUPPORTED_LOCALES

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
TEXTS = HERE / "texts"


@cache
def texts(locale: str) -> dict[str, str]:
    """The page texts of ``locale`` over the English ones."""
    english = _read(TEXTS / "en")
    if locale == "en" or locale not in SUPPORTED_LOCALES:
        return english
    return {**english, **_read(TEXTS / locale)}


def _read(folder: Path) -> dict[str, str]:
    """The texts of every file in ``folder``; a key written in two files is a mistake."""
    found: dict[str, str] = {}
    where: dict[str, Path] = {}
    for path in sorted(folder.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key, value in data.items():
            if str(key) in where:
                raise ValueError(f"{path}: {key}: already written in {where[str(key)].name}")
            where[str(key)] = path
            found[str(key)] = str(value)
    return found


class Pages:
    """Renders ``templates/<name>.html`` for a reader (their locale and time zone)."""

    def __init__(self) -> None:
        self.env = Environment(
            loader=FileSystemLoader(str(TEMPLATES)),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["t"] = _text
        self.env.filters["local_time"] = _local_time
        self.env.filters["pct"] = _pct
        self.env.filters["number"] = _number

    def render(
        self, template_name: str, locale: str, timezone: str | None = None, /, **context: Any
    ) -> str:
        """The page ``template_name`` in ``locale``; ``context`` fills it."""
        chosen = locale if locale in SUPPORTED_LOCALES else "en"
        template = self.env.get_template(f"{template_name}.html")
        return template.render(locale=chosen, timezone=timezone, **context)


@pass_context
def _text(ctx: Context, key: str, **values: Any) -> str:
    """``t("dashboard.title")``: the text in the page's language, ``{name}`` filled in."""
    text = texts(ctx.get("locale") or "en").get(key, key)
    return text.format(**values) if values else text


@pass_context
def _local_time(ctx: Context, value: datetime | str | None) -> str:
    if value is None:
        return "–"
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return format_local_time(when, ctx.get("timezone"), ctx.get("locale") or "en")


@pass_context
def _pct(ctx: Context, value: float | None) -> str:
    return format_pct(value, ctx.get("locale") or "en")


@pass_context
def _number(ctx: Context, value: float | None) -> str:
    return "–" if value is None else format_number(value, ctx.get("locale") or "en")
