"""Loyalty measurement's sections of config.yaml: ``loyalty`` (items, cut-offs, digests) and
``objective`` (the objective indicators' bounds and weights; MEASUREMENT.md)."""

from __future__ import annotations

from pydantic import Field, model_validator

from bot.settings_section import Section


class LoyaltySettings(Section):
    """Which items feed the satisfaction x loyalty matrix and eNPS, and how summaries read."""

    #: Cut-off c for "satisfied": 4 = top two boxes, 5 = the strict "completely satisfied".
    satisfied_from: int = Field(default=4, ge=4, le=5)
    satisfaction_item: str = "sat_overall"
    stay_item: str = "intent_stay"
    enps_item: str = "enps"
    product_nps_item: str = "product_nps"
    #: Rounds a summary covers when the person does not say (`last N rounds`).
    default_rounds: int = Field(default=6, ge=1, le=104)
    #: Below this many answers a figure carries its interval and a "low precision" mark.
    precise_from: int = Field(default=30, ge=1)
    #: Cronbach's alpha is reported only from this many complete answer sets.
    alpha_min_n: int = Field(default=30, ge=3)
    #: Managers and HR get the summary unasked after each round closes.
    digest: bool = True


class IndicatorBounds(Section):
    """Fixed, published reference bounds of one indicator, and its weight in the index.

    ``worst`` maps to 0 and ``best`` to 100 (either may be the larger: a lower turnover is
    better, a higher participation is better); values outside are clipped.
    """

    worst: float
    best: float
    weight: float = Field(default=0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _distinct(self) -> IndicatorBounds:
        if self.worst == self.best:
            raise ValueError(f"worst and best must differ (both are {self.worst:g})")
        return self


class ObjectiveSettings(Section):
    """The objective index: bounds and weights per indicator (MEASUREMENT.md). Weights sum to 1."""

    turnover: IndicatorBounds = IndicatorBounds(worst=30, best=5, weight=0.25)
    absence_rate: IndicatorBounds = IndicatorBounds(worst=8, best=1, weight=0.2)
    absence_frequency: IndicatorBounds = IndicatorBounds(worst=150, best=20, weight=0.0)
    disciplinary_per_100: IndicatorBounds = IndicatorBounds(worst=10, best=0, weight=0.05)
    mobility: IndicatorBounds = IndicatorBounds(worst=0, best=15, weight=0.1)
    pulse_participation: IndicatorBounds = IndicatorBounds(worst=30, best=95, weight=0.15)
    initiative_participation: IndicatorBounds = IndicatorBounds(worst=0, best=80, weight=0.05)
    suggestion_rate: IndicatorBounds = IndicatorBounds(worst=0, best=20, weight=0.05)
    briefing_reach: IndicatorBounds = IndicatorBounds(worst=20, best=100, weight=0.15)
    quiz_score: IndicatorBounds = IndicatorBounds(worst=40, best=100, weight=0.0)

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
