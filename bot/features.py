"""The features of Fidelio. The app, the command line, the scheduler, privacy and retention
loop over this list: adding a feature is one line here."""

from __future__ import annotations

from bot.briefings.feature import FEATURE as BRIEFINGS
from bot.feature import Feature
from bot.handling import Registry
from bot.home.feature import FEATURE as HOME
from bot.loyalty.feature import FEATURE as LOYALTY
from bot.operations.feature import FEATURE as OPERATIONS
from bot.people.feature import FEATURE as PEOPLE
from bot.privacy.parts import PrivacyRegistry, build_privacy_registry
from bot.privacy.retention import RetentionRule
from bot.pulse.feature import FEATURE as PULSE
from bot.suggestions.feature import FEATURE as SUGGESTIONS
from bot.web.feature import FEATURE as WEB

FEATURES: tuple[Feature, ...] = (
    PEOPLE,
    BRIEFINGS,
    PULSE,
    SUGGESTIONS,
    LOYALTY,
    HOME,
    OPERATIONS,
    WEB,
)


def build_registry(features: tuple[Feature, ...] = FEATURES) -> Registry:
    """Every feature's chat commands and buttons, registered explicitly (no import side
    effects)."""
    registry = Registry()
    for feature in features:
        feature.chat(registry)
    return registry


def privacy_registry(features: tuple[Feature, ...] = FEATURES) -> PrivacyRegistry:
    """Every feature's personal-data parts, the directory last."""
    return build_privacy_registry(part for f in features for part in f.personal_data())


def retention_rules(features: tuple[Feature, ...] = FEATURES) -> list[RetentionRule]:
    """Every feature's retention rules."""
    return [rule for feature in features for rule in feature.retention()]
