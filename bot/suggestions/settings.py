"""The ``suggestions`` section of config.yaml: categories, anonymity, the digest."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.settings_section import Section


class SuggestionCategory(BaseModel):
    """One category a suggestion is filed under."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="Used in commands and filters: up to 32 characters of `a-z`, `0-9` and `_`, "
        "starting with a letter.",
    )
    en: str = Field(description="The English label.")
    it: str = Field(description="The Italian label.")

    def label(self, locale: str) -> str:
        return self.it if locale == "it" else self.en


def _default_categories() -> tuple[SuggestionCategory, ...]:
    return tuple(
        SuggestionCategory(id=i, en=en, it=it)
        for i, en, it in (
            ("product", "Product", "Prodotto"),
            ("customer_service", "Customer service", "Servizio clienti"),
            ("processes", "Processes", "Processi"),
            ("workplace", "Workplace", "Ambiente di lavoro"),
            ("other", "Other", "Altro"),
        )
    )


class SuggestionSettings(Section):
    """The idea box (see [Suggestions](hr-guide.md#triaging-suggestions)): its categories, the
    anonymity of authors' teams, and the "You said, we did" digest."""

    categories: tuple[SuggestionCategory, ...] = Field(
        default_factory=_default_categories,
        min_length=1,
        description="The categories offered, in this order; ids must be unique.",
    )
    min_team: int = Field(
        default=5,
        ge=3,
        description="An anonymous suggestion keeps its author's team only when the team has at "
        "least this many active members; otherwise the nearest team above that has.",
    )
    max_length: int = Field(
        default=2000, ge=50, le=4000, description="Longest suggestion text, in characters."
    )
    digest_enabled: bool = Field(
        default=True,
        description='Send the "You said, we did" digest to everyone with a chat account.',
    )
    digest_cron: str = Field(
        default="0 9 * * mon",
        description="When the digest goes out: a five-field cron expression in the "
        "organisation's time zone, with the day of the week as a name (`mon` ... `sun`).",
    )
    digest_every_weeks: int = Field(
        default=1,
        ge=1,
        le=12,
        description="Send the digest in every n-th week only (1: every week `digest_cron` "
        "matches).",
    )

    @field_validator("categories")
    @classmethod
    def _unique_ids(cls, value: tuple[SuggestionCategory, ...]) -> tuple[SuggestionCategory, ...]:
        ids = [c.id for c in value]
        if len(ids) != len(set(ids)):
            raise ValueError("category ids must be unique")
        return value

    @field_validator("digest_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"not a cron expression ({exc})") from None
        fields = value.split()
        if len(fields) == 5 and any(ch.isdigit() for ch in fields[4]):
            # APScheduler counts days from Monday = 0, cron from Sunday = 0: names are unambiguous.
            raise ValueError("write the day of the week as a name (mon, tue, ... sun)")
        return value

    def category(self, category_id: str) -> SuggestionCategory | None:
        return next((c for c in self.categories if c.id == category_id), None)
