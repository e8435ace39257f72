"""Pulse survey content: the item bank (content/surveys/items.yaml) and survey definitions
(content/surveys/*.yaml), checked by the pydantic models of :mod:`bot.pulse.fields`. Every problem names the file, the field and the reason.

A survey definition::

    id: pulse-fortnightly
    title: {en: ..., it: ...}
    cadence:
      cron: "0 10 * * mon"      # five-field crontab, evaluated in `timezone`
      every_weeks: 2            # optional: only every n-th matching week
      timezone: Europe/Rome
      start: 2027-01-04         # optional: no round before this date (anchors every_weeks;
                                # without it, the first round's week, fixed when scheduled)
    open_for: 4d                # how long a round stays open
    audience: {everyone: true}  # or teams / teams_only / roles / locations
    core: [sat_overall, intent_stay, enps]         # asked every round
    rotating: {items: [...], per_round: 4}         # taken in turn, round after round
    comment: true               # the open comment item at the end
    reminders: [halfway, 24h before close]         # also "<duration> after open"
    skip_weekends: true         # a reminder due on a weekend moves to Monday, same time
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from apscheduler.triggers.cron import CronTrigger
from pydantic import ValidationError

from bot.content_fields import Audience, Problems
from bot.errors import InputError
from bot.pulse.fields import ID_PATTERN, ItemFields, ReminderRule, SurveyFields

COMMENT_ITEM = "comment"


@dataclass(frozen=True)
class Item:
    id: str
    dimension: str
    kind: str
    text: dict[str, str]
    reverse: bool = False
    options: dict[str, list[str]] = field(default_factory=dict)

    def choices(self, locale: str) -> list[str]:
        """Button labels for the answer, in ``locale``."""
        if self.kind == "likert5":
            return [str(v) for v in range(1, 6)]
        if self.kind == "scale0_10":
            return [str(v) for v in range(0, 11)]
        if self.kind == "choice":
            return self.options.get(locale) or next(iter(self.options.values()))
        return []

    def accepts(self, value: int) -> bool:
        if self.kind == "likert5":
            return 1 <= value <= 5
        if self.kind == "scale0_10":
            return 0 <= value <= 10
        if self.kind == "choice":
            return 0 <= value < len(next(iter(self.options.values())))
        return False


@dataclass(frozen=True)
class Cadence:
    cron: str
    timezone: str
    every_weeks: int = 1
    start: str | None = None  # ISO date

    def trigger(self) -> CronTrigger:
        return CronTrigger.from_crontab(self.cron, timezone=ZoneInfo(self.timezone))

    def occurrences(self, after: datetime, until: datetime) -> list[datetime]:
        """Round openings in (after, until], honouring ``start`` and ``every_weeks``."""
        trigger = self.trigger()
        zone = ZoneInfo(self.timezone)
        start = date.fromisoformat(self.start) if self.start else None
        anchor: date | None = start
        out: list[datetime] = []
        previous: datetime | None = None
        now = after
        for _ in range(10_000):
            fire = trigger.get_next_fire_time(previous, now)
            if fire is None or fire > until:
                break
            previous, now = fire, fire + timedelta(seconds=1)
            if fire <= after:
                continue
            local = fire.astimezone(zone)
            if start and local.date() < start:
                continue
            if self.every_weeks > 1:
                anchor = anchor or local.date()
                week_gap = (_monday(local.date()) - _monday(anchor)).days // 7
                if week_gap % self.every_weeks:
                    continue
            out.append(fire)
        return out

    def pinned(self, after: datetime) -> Cadence:
        """This cadence with ``start`` fixed: ``every_weeks`` counts weeks from ``start``, so a
        cadence without one is anchored on the week of its first opening after ``after`` (what
        scheduling does). Unchanged when ``start`` is set or every week is used."""
        if self.start or self.every_weeks == 1:
            return self
        fire = self.trigger().get_next_fire_time(None, after + timedelta(seconds=1))
        if fire is None:
            return self
        local = fire.astimezone(ZoneInfo(self.timezone))
        return replace(self, start=local.date().isoformat())

    def latest(self, now: datetime, window: timedelta) -> datetime | None:
        """The most recent opening within ``window`` before ``now`` (None if none)."""
        found = self.occurrences(now - window, now)
        return found[-1] if found else None


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True)
class Survey:
    id: str
    title: dict[str, str]
    cadence: Cadence
    open_for_s: int
    audience: Audience
    core: tuple[str, ...]
    rotating: tuple[str, ...]
    per_round: int
    comment: bool
    reminders: tuple[ReminderRule, ...]
    skip_weekends: bool
    source: str = ""

    def items_for_round(self, number: int) -> list[str]:
        """Core items, this round's share of the rotating items, then the comment."""
        chosen = list(self.core)
        if self.rotating and self.per_round:
            start = (number * self.per_round) % len(self.rotating)
            for offset in range(self.per_round):
                chosen.append(self.rotating[(start + offset) % len(self.rotating)])
        if self.comment:
            chosen.append(COMMENT_ITEM)
        return chosen

    def reminder_times(self, opens: datetime, closes: datetime) -> list[tuple[int, datetime]]:
        """(index, when) for each reminder, moved off weekends when configured; only those
        that still fall inside the round."""
        zone = ZoneInfo(self.cadence.timezone)
        out = []
        for index, rule in enumerate(self.reminders):
            when = rule.at(opens, closes)
            if self.skip_weekends:
                local = when.astimezone(zone)
                while local.weekday() >= 5:
                    local += timedelta(days=1)
                when = local
            if opens < when < closes:
                out.append((index, when))
        return out

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Survey:
        audience = data["audience"]
        return cls(
            id=data["id"],
            title=data["title"],
            cadence=Cadence(**data["cadence"]),
            open_for_s=data["open_for_s"],
            audience=Audience(
                everyone=bool(audience["everyone"]),
                teams=tuple(audience["teams"]),
                teams_only=tuple(audience["teams_only"]),
                roles=tuple(audience["roles"]),
                locations=tuple(audience["locations"]),
            ),
            core=tuple(data["core"]),
            rotating=tuple(data["rotating"]),
            per_round=data["per_round"],
            comment=data["comment"],
            reminders=tuple(ReminderRule(**r) for r in data["reminders"]),
            skip_weekends=data["skip_weekends"],
            source=data.get("source", ""),
        )


@dataclass
class SurveyContent:
    items: dict[str, Item] = field(default_factory=dict)
    surveys: list[Survey] = field(default_factory=list)
    problems: list[InputError] = field(default_factory=list)


class _Loader(yaml.SafeLoader):
    """YAML without implicit timestamps: ``start: 2027-13-04`` stays text, so the field's own
    check names it (PyYAML would raise a bare ValueError while loading the file)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass


def _yaml_problem(exc: yaml.YAMLError, problems: Problems) -> None:
    mark = getattr(exc, "problem_mark", None)
    problems.add(f"line {mark.line + 1}" if mark else "(file)", f"YAML syntax error: {exc}")


def parse_items(text: str, source: str) -> tuple[dict[str, Item], list[InputError]]:
    """The item bank; every problem is reported, no item is returned when any is wrong."""
    problems = Problems(source)
    try:
        data = _load_yaml(text) or {}
    except yaml.YAMLError as exc:
        _yaml_problem(exc, problems)
        return {}, problems.items
    raw = data.get("items") if isinstance(data, dict) else None
    if not isinstance(raw, list) or not raw:
        problems.add("items", "must be a non-empty list of items")
        return {}, problems.items
    items: dict[str, Item] = {}
    seen: set[str] = set()
    for index, entry in enumerate(raw, 1):
        item_id = entry.get("id") if isinstance(entry, dict) else None
        named = isinstance(item_id, str) and ID_PATTERN.fullmatch(item_id) is not None
        path = f"items[{index}] ({item_id})" if named else f"items[{index}]"
        try:
            fields = ItemFields.model_validate(entry)
        except ValidationError as exc:
            problems.add_validation_error(exc, path)
        else:
            items[fields.id] = Item(
                fields.id,
                fields.dimension,
                fields.kind,
                fields.text,
                fields.reverse,
                fields.options,
            )
        if named:
            if item_id in seen:
                problems.add(f"{path}.id", "used twice")
            seen.add(str(item_id))
    if COMMENT_ITEM not in items or items[COMMENT_ITEM].kind != "text":
        problems.add("items", f"needs a text item with id {COMMENT_ITEM!r} (the open comment)")
    return ({} if problems.items else items), problems.items


def parse_survey(
    text: str, source: str, items: dict[str, Item]
) -> tuple[Survey | None, list[InputError]]:
    """One survey definition, checked against the item bank ``items``."""
    problems = Problems(source)
    try:
        data = _load_yaml(text) or {}
    except yaml.YAMLError as exc:
        _yaml_problem(exc, problems)
        return None, problems.items
    if not isinstance(data, dict):
        problems.add("(file)", "must be a mapping of fields")
        return None, problems.items
    try:
        fields = SurveyFields.model_validate(
            {str(key): value for key, value in data.items()}, context={"items": items}
        )
    except ValidationError as exc:
        problems.add_validation_error(exc)
        return None, problems.items
    cadence = fields.cadence
    survey = Survey(
        id=fields.id,
        title=fields.title,
        cadence=Cadence(cadence.cron, cadence.timezone, cadence.every_weeks, cadence.start),
        open_for_s=fields.open_for,
        audience=fields.audience.audience(),
        core=fields.core,
        rotating=fields.rotating.items,
        per_round=fields.rotating.per_round,
        comment=fields.comment,
        reminders=tuple(fields.reminders),
        skip_weekends=fields.skip_weekends,
        source=source,
    )
    return survey, []


def load_survey_content(folder: Path) -> SurveyContent:
    """The item bank and every survey definition in ``folder`` (content/surveys)."""
    content = SurveyContent()
    bank = folder / "items.yaml"
    if not bank.exists():
        content.problems.append(InputError(f"{bank}: (file)", "missing: the item bank is required"))
        return content
    try:
        bank_text = bank.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        # Reported like any other problem: `content check` must never end in a traceback.
        content.problems.append(InputError(f"{bank}: (file)", f"not UTF-8 text ({exc.reason})"))
        return content
    content.items, problems = parse_items(bank_text, str(bank))
    content.problems.extend(problems)
    seen: dict[str, str] = {}
    for path in sorted(folder.glob("*.yaml")):
        if path.name == "items.yaml":
            continue
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            content.problems.append(InputError(f"{path}: (file)", f"not UTF-8 text ({exc.reason})"))
            continue
        survey, found = parse_survey(text, str(path), content.items)
        content.problems.extend(found)
        if survey is None:
            continue
        if survey.id in seen:
            content.problems.append(
                InputError(f"{path}: id", f"{survey.id!r} is also used by {seen[survey.id]}")
            )
            continue
        seen[survey.id] = str(path)
        content.surveys.append(survey)
    return content


def load_survey(folder: Path, survey_id: str) -> tuple[Survey, dict[str, Item]]:
    """One valid survey and the item bank, or InputError saying what is wrong."""
    if not survey_id.strip():
        raise InputError("SURVEY_ID", "give the id of a survey file (content check lists them)")
    content = load_survey_content(folder)
    for survey in content.surveys:
        if survey.id == survey_id:
            bank_problems = [
                p for p in content.problems if p.where.startswith(str(folder / "items.yaml"))
            ]
            if bank_problems:
                raise InputError(bank_problems[0].where, bank_problems[0].reason)
            return survey, content.items
    for problem in content.problems:
        if survey_id in problem.where or f"id: {survey_id}" in problem.reason:
            raise InputError(problem.where, problem.reason)
    raise InputError(
        survey_id,
        f"no valid survey with this id in {folder} (run fidelio content check)",
        "no_survey",
        id=survey_id,
    )
