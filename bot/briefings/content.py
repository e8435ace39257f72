"""Briefing files: ``content/briefings/*.md`` = YAML front matter + Markdown body per locale.

Format (docs/content-authoring.md, "Writing a briefing", has a full example)::

    ---
    id: aurora-oled-2027          # 3-32 chars of a-z 0-9 -; unique; travels in button data
    kind: product                 # product | promotion
    title: {en: ..., it: ...}     # a text, or one text per locale
    summary: {en: ..., it: ...}
    launch_at: 2027-03-15 09:00 Europe/Rome     # or 2027-03-15T09:00+01:00
    brief: 3d                     # lead time before launch, or a date-time
    expires_at: 2027-04-30 23:59 Europe/Rome    # optional: launch + 30 days
    audience:                     # everyone: true, or any of:
      teams: [Sales Milano]       #   these teams and their sub-teams
      teams_only: [Headquarters]  #   these teams without sub-teams
      roles: [employee, manager]  #   and only these roles
      locations: [Milano]         #   and only these locations
    locales: [it, en]
    ack_required: true
    quiz:                         # 2-5 questions (optional)
      - question: {en: ..., it: ...}
        options: {en: [..], it: [..]}   # 2-5 options
        correct: 2                        # 1-based
        explanation: {en: ..., it: ...}
    faq:
      - q: {en: ..., it: ...}
        a: {en: ..., it: ...}
        keywords: {en: [..], it: [..]}   # optional: more words for `ask` to match
    reminders: [24h after briefing, 6h before launch]
    ---
    ::: en
    English body (Markdown; Jinja2 allowed: {{ launch_local }}, {{ title }}) ...
    ::: it
    Corpo in italiano ...

The front matter is checked by the pydantic model
:class:`bot.briefings.front_matter.BriefingHeader`; every problem is
reported as ``InputError("<file>: <field>", reason)``; ``check`` also returns
warnings (e.g. a lead time already past, so the briefing cannot arrive before launch).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import ValidationError

from bot.briefings.front_matter import BriefingHeader, FaqEntry, QuizQuestion, Reminder
from bot.content_fields import Audience, Problems, usable_locales
from bot.errors import InputError
from bot.settings_section import SUPPORTED_LOCALES

_FRONT = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n?(.*)\Z", re.S)
_SECTION = re.compile(r"^:::[ \t]*([a-z]{2})[ \t]*$", re.M)
_BODY_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
#: What a body may use; sample values let `content check` catch a misspelt name.
BODY_VARIABLES = {
    "title": "Title",
    "kind": "product",
    "launch_local": "1 Mar 2027, 09:00",
    "expires_local": "30 Apr 2027, 20:00",
}


@dataclass(frozen=True)
class Briefing:
    id: str
    kind: str
    title: dict[str, str]
    summary: dict[str, str]
    body: dict[str, str]
    launch_at: datetime
    brief_at: datetime
    expires_at: datetime
    audience: Audience
    locales: tuple[str, ...]
    ack_required: bool
    quiz: tuple[QuizQuestion, ...] = ()
    faq: tuple[FaqEntry, ...] = ()
    reminders: tuple[Reminder, ...] = ()
    source: str = ""

    def text(self, values: dict[str, str], locale: str) -> str:
        """The text in ``locale``, else in the briefing's first locale."""
        return values.get(locale) or values[self.locales[0]]

    def locale_for(self, locale: str) -> str:
        return locale if locale in self.locales else self.locales[0]

    def reminder_times(self) -> list[tuple[int, datetime]]:
        """(index, when) for each reminder; 'after briefing' counts from the scheduled time."""
        out = []
        for index, reminder in enumerate(self.reminders):
            delta = timedelta(seconds=reminder.offset_s)
            when = self.brief_at + delta if reminder.anchor == "brief" else self.launch_at - delta
            out.append((index, when))
        return out

    def to_json(self) -> dict[str, Any]:
        """A snapshot stored with a scheduled campaign (what people receive is what was
        scheduled, even if the file changes later)."""
        data = asdict(self)
        for key in ("launch_at", "brief_at", "expires_at"):
            data[key] = getattr(self, key).isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Briefing:
        return cls(
            id=data["id"],
            kind=data["kind"],
            title=data["title"],
            summary=data["summary"],
            body=data["body"],
            launch_at=datetime.fromisoformat(data["launch_at"]),
            brief_at=datetime.fromisoformat(data["brief_at"]),
            expires_at=datetime.fromisoformat(data["expires_at"]),
            audience=Audience(
                everyone=bool(data["audience"]["everyone"]),
                teams=tuple(data["audience"]["teams"]),
                teams_only=tuple(data["audience"]["teams_only"]),
                roles=tuple(data["audience"]["roles"]),
                locations=tuple(data["audience"]["locations"]),
            ),
            locales=tuple(data["locales"]),
            ack_required=data["ack_required"],
            quiz=tuple(QuizQuestion(**q) for q in data["quiz"]),
            faq=tuple(FaqEntry(**f) for f in data["faq"]),
            reminders=tuple(Reminder(**r) for r in data["reminders"]),
            source=data.get("source", ""),
        )


@dataclass
class CheckResult:
    briefings: list[Briefing] = field(default_factory=list)
    problems: list[InputError] = field(default_factory=list)
    warnings: list[InputError] = field(default_factory=list)


def parse_briefing(
    text: str, source: str, default_zone: str = "Europe/Rome"
) -> tuple[Briefing | None, list[InputError]]:
    """Parse one file's text. Returns the briefing, or None and every problem found."""
    problems = Problems(source)
    match = _FRONT.match(text.replace("\r\n", "\n"))
    if not match:
        problems.add("(file)", "must start with YAML front matter between two '---' lines")
        return None, problems.items
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"front matter line {mark.line + 2}" if mark else "front matter"
        problems.add(where, f"YAML syntax error: {getattr(exc, 'problem', None) or exc}")
        return None, problems.items
    if not isinstance(meta, dict):
        problems.add("front matter", "must be a mapping of fields")
        return None, problems.items

    locales = usable_locales(meta.get("locales", list(SUPPORTED_LOCALES)))
    header: BriefingHeader | None = None
    try:
        header = BriefingHeader.model_validate(
            {str(key): value for key, value in meta.items()},
            context={"locales": locales, "default_zone": default_zone},
        )
    except ValidationError as exc:
        problems.add_validation_error(exc)
    body = _parse_body(match.group(2), locales, problems)

    if problems.items or header is None:
        return None, problems.items
    assert header.brief is not None and header.expires_at is not None  # launch_at is valid
    return (
        Briefing(
            id=header.id,
            kind=header.kind,
            title=header.title,
            summary=header.summary,
            body=body,
            launch_at=header.launch_at,
            brief_at=header.brief,
            expires_at=header.expires_at,
            audience=header.audience.audience(),
            locales=header.locales,
            ack_required=header.ack_required,
            quiz=tuple(question.question_of_quiz() for question in header.quiz),
            faq=tuple(FaqEntry(entry.q, entry.a, entry.keywords) for entry in header.faq),
            reminders=tuple(header.reminders),
            source=source,
        ),
        [],
    )


def file_parts(text: str) -> tuple[str, str] | None:
    """The front matter and the body of a briefing file's text, or None when it has no
    front matter (what :func:`parse_briefing` reports as a problem)."""
    match = _FRONT.match(text.replace("\r\n", "\n"))
    return (match.group(1), match.group(2)) if match else None


def body_sections(text: str) -> dict[str, str]:
    """The body's ``::: <locale>`` sections (the first of each locale), or the whole body
    under ``""`` when it has none: to show a body again in a form, not to check it."""
    markers = list(_SECTION.finditer(text))
    if not markers:
        return {"": text.strip()}
    sections: dict[str, str] = {}
    for i, marker in enumerate(markers):
        end = markers[i + 1].start() if i + 1 < len(markers) else len(text)
        sections.setdefault(marker.group(1), text[marker.end() : end].strip())
    return sections


def _parse_body(text: str, locales: tuple[str, ...], problems: Problems) -> dict[str, str]:
    markers = list(_SECTION.finditer(text))
    sections: dict[str, str] = {}
    if not markers:
        if len(locales) > 1 and text.strip():
            problems.add(
                "body", f"needs one '::: <locale>' section per locale ({', '.join(locales)})"
            )
            return {}
        sections = {locale: text.strip() for locale in locales}
    else:
        if text[: markers[0].start()].strip():
            problems.add("body", "text before the first '::: <locale>' line")
        for i, marker in enumerate(markers):
            end = markers[i + 1].start() if i + 1 < len(markers) else len(text)
            locale = marker.group(1)
            if locale not in locales:
                problems.add("body", f"section '::: {locale}' for a locale not in locales")
            elif locale in sections:
                problems.add("body", f"two '::: {locale}' sections")
            else:
                sections[locale] = text[marker.end() : end].strip()
    for locale in locales:
        body = sections.get(locale, "")
        if not body:
            problems.add(f"body.{locale}", "missing or empty")
            continue
        try:
            _BODY_ENV.from_string(body).render(BODY_VARIABLES)
        except TemplateSyntaxError as exc:
            problems.add(
                f"body.{locale}", f"template error on body line {exc.lineno}: {exc.message}"
            )
        except Exception as exc:  # undefined variable, bad filter use
            problems.add(
                f"body.{locale}",
                f"template error: {exc} (variables: {', '.join(sorted(BODY_VARIABLES))})",
            )
    return sections


def check_briefings(folder: Path, now: datetime, default_zone: str = "Europe/Rome") -> CheckResult:
    """Validate every ``*.md`` in ``folder``: problems stop scheduling, warnings inform."""
    result = CheckResult()
    seen: dict[str, str] = {}
    for path in sorted(folder.glob("*.md")):
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            result.problems.append(
                InputError(f"{source}: (file)", f"not UTF-8 text ({exc.reason})")
            )
            continue
        briefing, problems = parse_briefing(text, source, default_zone)
        result.problems.extend(problems)
        if briefing is None:
            continue
        if briefing.id in seen:
            result.problems.append(
                InputError(f"{source}: id", f"{briefing.id!r} is also used by {seen[briefing.id]}")
            )
            continue
        seen[briefing.id] = source
        result.briefings.append(briefing)
        result.warnings.extend(timing_warnings(briefing, now))
    return result


def timing_warnings(briefing: Briefing, now: datetime) -> list[InputError]:
    """A briefing whose lead time is already past cannot reach people before launch."""
    where = f"{briefing.source}: brief"
    if briefing.expires_at <= now:
        return [
            InputError(
                f"{briefing.source}: expires_at",
                "already expired: it will not be delivered",
                "briefing_expired",
                id=briefing.id,
            )
        ]
    if briefing.launch_at <= now:
        return [
            InputError(
                where,
                "launch is already past: deliveries will be labelled late, not pre-launch",
                "launch_past",
            )
        ]
    if briefing.brief_at < now:
        return [
            InputError(
                where,
                f"briefing time {briefing.brief_at.isoformat(timespec='minutes')} is already past: "
                f"sent at once, only {_human(briefing.launch_at - now)} before launch",
                "brief_past",
                brief_at=briefing.brief_at.isoformat(),
                # Seconds: the chat reply words it in the reader's language (``duration``).
                lead=(briefing.launch_at - now).total_seconds(),
            )
        ]
    return []


def _human(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} h" if hours >= 1 else f"{delta.total_seconds() / 60:.0f} min"


def load_briefing(folder: Path, briefing_id: str, default_zone: str = "Europe/Rome") -> Briefing:
    """The valid briefing with that id, or InputError saying what is wrong with its file."""
    if not briefing_id.strip():
        raise InputError("BRIEFING_ID", "give the id of a briefing file (content check lists them)")
    for path in sorted(folder.glob("*.md")):
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            continue
        briefing, problems = parse_briefing(text, str(path), default_zone)
        if briefing is not None:
            if briefing.id == briefing_id:
                return briefing
            continue
        if declared_id(text) == briefing_id:
            first = problems[0]
            more = (
                f" (and {len(problems) - 1} more; run fidelio content check)"
                if len(problems) > 1
                else ""
            )
            raise InputError(first.where, first.reason + more)
    raise InputError(
        briefing_id, f"no briefing with this id in {folder}", "no_briefing", id=briefing_id
    )


def declared_id(text: str) -> str | None:
    """The id a possibly broken file declares, to report its problems under the right name."""
    match = _FRONT.match(text.replace("\r\n", "\n"))
    if not match:
        return None
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        found = re.search(r"^id:\s*['\"]?([^'\"\s]+)", match.group(1), re.M)
        return found.group(1) if found else None
    return str(meta.get("id")) if isinstance(meta, dict) and meta.get("id") else None
