"""Loyalty measurement's sections of config.yaml: ``loyalty`` (items, cut-offs, digests) and
``objective`` (the objective indicators' bounds and weights; MEASUREMENT.md)."""

from __future__ import annotations

from pydantic import Field, model_validator

from bot.settings_section import Section


class LoyaltySettings(Section):
    """Which items feed the satisfaction x loyalty matrix and eNPS, and how summaries read (see
    [Loyalty measurement](measurement.md#loyalty-measurement))."""

    satisfied_from: int = Field(
        default=4,
        ge=4,
        le=5,
        description='Cut-off c for "satisfied" in the satisfaction x loyalty matrix: 4 = the top '
        'two boxes, 5 = the strict "completely satisfied".',
    )
    satisfaction_item: str = Field(
        default="sat_overall",
        description="Item of the bank giving overall satisfaction S (the matrix's rows).",
    )
    stay_item: str = Field(
        default="intent_stay",
        description="Item giving the intent to stay L (the matrix's columns).",
    )
    enps_item: str = Field(
        default="enps",
        description="Item giving the eNPS answer (recommend the company as a place to work); "
        "it also splits the disloyal segments.",
    )
    product_nps_item: str = Field(
        default="product_nps",
        description="Item giving the product NPS (recommend our products).",
    )
    default_rounds: int = Field(
        default=6,
        ge=1,
        le=104,
        description="Closed rounds a summary covers when the person does not say "
        "(`last N rounds`).",
    )
    precise_from: int = Field(
        default=30,
        ge=1,
        description='Below this many answers a figure carries its 95 % range and a "low '
        'precision" mark (`*` on charts).',
    )
    alpha_min_n: int = Field(
        default=30,
        ge=3,
        description="Cronbach's alpha is reported only from this many complete answer sets.",
    )
    digest: bool = Field(
        default=True,
        description="Managers and HR get the summary unasked after each round closes.",
    )


class IndicatorBounds(Section):
    """Fixed, published reference bounds of one indicator, and its weight in the index.

    ``worst`` maps to 0 and ``best`` to 100 (either may be the larger: a lower turnover is
    better, a higher participation is better); values outside are clipped.
    """

    worst: float = Field(description="The value that maps to 0.")
    best: float = Field(description="The value that maps to 100.")
    weight: float = Field(default=0.0, ge=0, le=1, description="Its weight in the index.")

    @model_validator(mode="after")
    def _distinct(self) -> IndicatorBounds:
        if self.worst == self.best:
            raise ValueError(f"worst and best must differ (both are {self.worst:g})")
        return self


class ObjectiveSettings(Section):
    """The objective index (MEASUREMENT.md; see [Objective indicators and
    charts](measurement.md#objective-indicators-and-charts)): each indicator maps to 0-100
    between fixed bounds, `worst` to 0 and `best` to 100 (either may be the larger; values
    outside are clipped), and the index is the weighted mean. `worst` and `best` must differ,
    and the weights must sum to 1. Counts of events are over the period asked; the default
    bounds are set for a year."""

    turnover: IndicatorBounds = Field(
        default=IndicatorBounds(worst=30, best=5, weight=0.25),
        description="Separations per 100 people (average headcount), from the directory.",
    )
    absence_rate: IndicatorBounds = Field(
        default=IndicatorBounds(worst=8, best=1, weight=0.2),
        description="Absence days per 100 available days (imported figures).",
    )
    absence_frequency: IndicatorBounds = Field(
        default=IndicatorBounds(worst=150, best=20, weight=0.0),
        description="Absence spells per 100 people (imported figures).",
    )
    disciplinary_per_100: IndicatorBounds = Field(
        default=IndicatorBounds(worst=10, best=0, weight=0.05),
        description="Disciplinary cases per 100 people (imported figures).",
    )
    mobility: IndicatorBounds = Field(
        default=IndicatorBounds(worst=0, best=15, weight=0.1),
        description="Internal moves per 100 people, from the directory's team history.",
    )
    pulse_participation: IndicatorBounds = Field(
        default=IndicatorBounds(worst=30, best=95, weight=0.15),
        description="Finished per 100 invited, in the pulse rounds closed in the period.",
    )
    initiative_participation: IndicatorBounds = Field(
        default=IndicatorBounds(worst=0, best=80, weight=0.05),
        description="Participants per 100 eligible (imported figures).",
    )
    suggestion_rate: IndicatorBounds = Field(
        default=IndicatorBounds(worst=0, best=20, weight=0.05),
        description="Suggestions sent per 100 people, from the idea box.",
    )
    briefing_reach: IndicatorBounds = Field(
        default=IndicatorBounds(worst=20, best=100, weight=0.15),
        description="Audience who acknowledged a briefing before its launch, %.",
    )
    quiz_score: IndicatorBounds = Field(
        default=IndicatorBounds(worst=40, best=100, weight=0.0),
        description="Mean knowledge-check score of those briefings' quizzes, %.",
    )

    @model_validator(mode="after")
    def _weights_sum_to_one(self) -> ObjectiveSettings:
        total = sum(bounds.weight for bounds in self.indicators().values())
        if abs(total - 1.0) > 1e-6:
            weights = ", ".join(f"{k}={v.weight:g}" for k, v in self.indicators().items())
            raise ValueError(f"the weights must sum to 1, they sum to {total:g} ({weights})")
        return self

    def indicators(self) -> dict[str, IndicatorBounds]:
        """Indicator name -> bounds, in the order reports show them."""
        return {name: getattr(self, name) for name in type(self).model_fields}
