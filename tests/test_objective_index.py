"""The objective index: fixed bounds, clipping, weights from config, the worked check."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings
from bot.loyalty.objective import build_components, map_to_scale
from bot.loyalty.settings import IndicatorBounds, ObjectiveSettings

from .harness import REPO

ONLY_FOUR = {
    "turnover": {"worst": 30, "best": 5, "weight": 0.4},
    "absence_rate": {"worst": 8, "best": 1, "weight": 0.3},
    "mobility": {"worst": 0, "best": 15, "weight": 0.15},
    "pulse_participation": {"worst": 30, "best": 95, "weight": 0.15},
    "initiative_participation": {"worst": 0, "best": 80, "weight": 0},
    "briefing_reach": {"worst": 20, "best": 100, "weight": 0},
    "disciplinary_per_100": {"worst": 10, "best": 0, "weight": 0},
    "suggestion_rate": {"worst": 0, "best": 20, "weight": 0},
}


def test_worked_check_of_measurement_md_is_63_3() -> None:
    # Voluntary turnover 12 (30 -> 5), lost time 3.5 (8 -> 1), mobility 6 (0 -> 15),
    # participation 70 (30 -> 95), weights .4/.3/.15/.15 -> 63.3.
    settings = ObjectiveSettings(**ONLY_FOUR)
    raw = {"turnover": 12, "absence_rate": 3.5, "mobility": 6, "pulse_participation": 70}
    components, index, coverage = build_components(raw, settings)
    mapped = {c.name: c.mapped for c in components}
    assert mapped["turnover"] == pytest.approx(72.0)
    assert mapped["absence_rate"] == pytest.approx(450 / 7)
    assert mapped["mobility"] == pytest.approx(40.0)
    assert mapped["pulse_participation"] == pytest.approx(4000 / 65)
    assert index is not None and round(index, 1) == 63.3
    assert coverage == pytest.approx(1.0)
    # Components without data are shown, with their weight, but have no mapped value.
    assert {c.name: c.raw for c in components}["briefing_reach"] is None


def test_values_outside_the_bounds_are_clipped_and_orientation_follows_the_bounds() -> None:
    lower_is_better = IndicatorBounds(worst=30, best=5)
    assert map_to_scale(40, lower_is_better) == 0.0
    assert map_to_scale(2, lower_is_better) == 100.0
    assert map_to_scale(17.5, lower_is_better) == pytest.approx(50.0)
    higher_is_better = IndicatorBounds(worst=30, best=95)
    assert map_to_scale(95, higher_is_better) == 100.0
    assert map_to_scale(10, higher_is_better) == 0.0


def test_missing_components_are_left_out_and_the_rest_reweighted() -> None:
    settings = ObjectiveSettings(**ONLY_FOUR)
    components, index, coverage = build_components({"turnover": 12, "mobility": 6}, settings)
    # (0.4 * 72 + 0.15 * 40) / 0.55
    assert index == pytest.approx((0.4 * 72 + 0.15 * 40) / 0.55)
    assert coverage == pytest.approx(0.55)
    assert build_components({}, settings)[1:] == (None, 0.0)


def _config(tmp_path: Path, objective: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"content_dir: {REPO / 'content'}\nobjective:\n{objective}", encoding="utf-8")
    return path


def test_weights_not_summing_to_one_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    path = _config(tmp_path, "  turnover: {worst: 30, best: 5, weight: 0.5}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    [(key, reason)] = caught.value.problems
    assert key == "objective"
    assert "sum to 1" in reason and "turnover=0.5" in reason


def test_equal_bounds_and_unknown_indicators_are_config_errors(tmp_path: Path) -> None:
    path = _config(
        tmp_path, "  mobility: {worst: 5, best: 5, weight: 0.1}\n  morale: {worst: 0, best: 1}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    problems = dict(caught.value.problems)
    assert "worst and best must differ" in problems["objective.mobility"]
    assert "unknown key" in problems["objective.morale"]


def test_shipped_config_is_valid() -> None:
    settings = load_settings(REPO / "config.yaml", env={})
    weights = [b.weight for b in settings.objective.indicators().values()]
    assert sum(weights) == pytest.approx(1.0)
