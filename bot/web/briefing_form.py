"""The briefing editor's form and the briefing file it stands for.

The form has one control per field of a briefing file's front matter (texts once per
language) and one body per language; :func:`text_of_form` writes them as the text of a
briefing file, which :func:`bot.briefings.content.parse_briefing` then checks exactly as it
checks ``content/briefings/*.md``. Its problems (``<source>: quiz[2].options.it: ...``) are
put back under the control they are about by :func:`field_of`. The parts of the front matter
that are lists of mappings (audience, quiz, FAQ) are written as YAML in their own box, as in
a file; a YAML slip there is reported at that box.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import yaml
from multidict import MultiDictProxy

from bot.briefings.content import body_sections, file_parts
from bot.briefings.front_matter import KINDS
from bot.errors import InputError
from bot.settings_section import SUPPORTED_LOCALES

#: Controls with one value each, in the order of the form (texts per language are added).
SINGLE = (
    "id",
    "kind",
    "launch_at",
    "brief",
    "expires_at",
    "audience",
    "reminders",
    "quiz",
    "faq",
)
#: The controls written as YAML, as the same part of a file is.
YAML_FIELDS = ("audience", "quiz", "faq")
PER_LOCALE = ("title", "summary", "body")
#: A new briefing starts from this: everything HR must fill in, in both languages.
BLANK: dict[str, Any] = {
    "id": "",
    "kind": "product",
    "locales": list(SUPPORTED_LOCALES),
    "launch_at": "",
    "brief": "3d",
    "expires_at": "",
    "audience": "everyone: true\n",
    "ack_required": True,
    "reminders": "24h after briefing",
    "quiz": "",
    "faq": "",
    **{f"{part}.{locale}": "" for part in PER_LOCALE for locale in SUPPORTED_LOCALES},
}


def control_names() -> list[str]:
    """Every control of the form that holds a text."""
    per_locale = [f"{part}.{loc}" for part in PER_LOCALE for loc in SUPPORTED_LOCALES]
    return [*SINGLE, *per_locale]


def form_of_post(post: MultiDictProxy[Any]) -> dict[str, Any]:
    """The form's values as the browser sent them (texts stripped of trailing spaces)."""
    values: dict[str, Any] = {
        name: str(post.get(name, "")).replace("\r\n", "\n").rstrip() for name in control_names()
    }
    values["locales"] = [x for x in post.getall("locales", []) if x in SUPPORTED_LOCALES]
    values["ack_required"] = post.get("ack_required") == "on"
    return values


def _plain(value: Any) -> str:
    """A front-matter scalar as a control shows it (YAML may have read a date-time)."""
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _yaml_box(value: Any) -> str:
    if value in (None, [], {}):
        return ""
    flow = None if isinstance(value, dict) else False
    return str(yaml.safe_dump(value, allow_unicode=True, sort_keys=False, default_flow_style=flow))


def form_of_text(text: str) -> dict[str, Any]:
    """The form's values for a briefing file's text (a stored one, or a file to import)."""
    values = dict(BLANK)
    parts = file_parts(text)
    try:
        meta = yaml.safe_load(parts[0]) if parts else None
    except yaml.YAMLError:
        meta = None
    if not isinstance(meta, dict) or parts is None:
        return values  # a file too broken to show field by field; the form says so
    locales = meta.get("locales")
    values["locales"] = (
        [x for x in locales if x in SUPPORTED_LOCALES]
        if isinstance(locales, list)
        else list(SUPPORTED_LOCALES)
    )
    for name in ("id", "kind", "launch_at", "brief", "expires_at"):
        values[name] = _plain(meta.get(name))
    for name in YAML_FIELDS:
        values[name] = _yaml_box(meta.get(name))
    reminders = meta.get("reminders")
    values["reminders"] = ", ".join(map(str, reminders)) if isinstance(reminders, list) else ""
    values["ack_required"] = meta.get("ack_required", True) is not False
    for part in ("title", "summary"):
        given = meta.get(part)
        for locale in SUPPORTED_LOCALES:
            own = given.get(locale) if isinstance(given, dict) else given
            values[f"{part}.{locale}"] = _plain(own)
    sections = body_sections(parts[1])
    for locale in SUPPORTED_LOCALES:
        values[f"body.{locale}"] = sections.get(locale, sections.get("", ""))
    return values


def text_of_form(values: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The briefing file the form stands for, and the problems of its YAML boxes (the file
    is then checked as a whole by the caller; a box with a YAML slip is left out of it)."""
    locales = list(values["locales"])
    errors: dict[str, str] = {}
    meta: dict[str, Any] = {
        "id": values["id"] or None,
        "kind": values["kind"] or None,
        "locales": locales,
        "title": {loc: values[f"title.{loc}"] for loc in locales},
        "summary": {loc: values[f"summary.{loc}"] for loc in locales},
        "launch_at": values["launch_at"] or None,
        "brief": values["brief"] or None,
    }
    if values["expires_at"]:
        meta["expires_at"] = values["expires_at"]
    for name in YAML_FIELDS:
        if not values[name].strip():
            continue
        try:
            meta[name] = yaml.safe_load(values[name])
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" on line {mark.line + 1}" if mark else ""
            errors[name] = f"YAML syntax error{line}: {getattr(exc, 'problem', None) or exc}"
    meta.setdefault("audience", None)
    meta["ack_required"] = bool(values["ack_required"])
    reminders = [r.strip() for r in values["reminders"].replace("\n", ",").split(",")]
    if any(reminders):
        meta["reminders"] = [r for r in reminders if r]
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, width=100)
    bodies = "".join(f"::: {loc}\n{values[f'body.{loc}'].strip()}\n\n" for loc in locales)
    return f"---\n{front}---\n{bodies}".rstrip() + "\n", errors


def field_of(problem: InputError, source: str, locales: list[str]) -> str:
    """The control a problem of the file is about (``""``: the form as a whole)."""
    path = problem.where.removeprefix(f"{source}: ")
    first = locales[0] if locales else SUPPORTED_LOCALES[0]
    for part in PER_LOCALE:
        if path == part or path.startswith(part + "."):
            locale = path[len(part) + 1 :][:2]
            return f"{part}.{locale if locale in SUPPORTED_LOCALES else first}"
    for name in (*SINGLE, "locales", "ack_required"):
        if path == name or path.startswith((name + ".", name + "[")):
            return name
    return ""


def errors_by_field(
    problems: list[InputError], source: str, locales: list[str]
) -> dict[str, list[str]]:
    """Each problem's reason under its control, the field path kept when it says more
    (``quiz[2].options.it: ...`` under *quiz*)."""
    out: dict[str, list[str]] = {}
    for problem in problems:
        name = field_of(problem, source, locales)
        path = problem.where.removeprefix(f"{source}: ")
        reason = problem.reason if path in (name, "") else f"{path}: {problem.reason}"
        out.setdefault(name, []).append(reason)
    return out


__all__ = ["BLANK", "KINDS", "errors_by_field", "form_of_post", "form_of_text", "text_of_form"]
