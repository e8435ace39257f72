"""Charts: valid, deterministic PNGs for normal, empty and suppressed inputs."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from matplotlib.image import imread

from bot.loyalty.charts import TrendPoint, heatmap_chart, summary_chart

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LABELS_IT = {
    "index": "Indice di fedeltà",
    "enps": "eNPS",
    "trend": "Andamento",
    "segments": "Segmenti",
    "favorable": "Favorevoli %",
    "no_data": "Nessun dato",
    "suppressed": "Nascosto (poche risposte)",
    "apostle": "Apostoli",
}
TREND = [
    TrendPoint("Jan", 61.0, 12.0),
    TrendPoint("Feb", None, 20.0),
    TrendPoint("Mar", 68.5, -4.0),
]
SEGMENTS = {
    "apostle": 0.4,
    "mercenary": 0.2,
    "hostage": 0.25,
    "loose_cannon": 0.1,
    "quiet_defector": 0.05,
}
FAVORABLE = {"Trust": 81.0, "Pay": 42.0, "Growth": 63.0}


def size_of(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE)
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def pixels(png: bytes) -> np.ndarray:
    return imread(io.BytesIO(png), format="png")


def grey_share(png: bytes) -> float:
    """Share of pixels in the suppressed-cell grey (#d9d9d9)."""
    rgb = pixels(png)[..., :3]
    return float(np.mean(np.all(np.abs(rgb - 217 / 255) < 0.02, axis=-1)))


def test_summary_chart_is_a_valid_deterministic_png() -> None:
    png = summary_chart(TREND, SEGMENTS, FAVORABLE, title="Sales Roma", labels=LABELS_IT)
    assert size_of(png) == (800, 1000)
    assert 20_000 < len(png) < 1_000_000
    assert pixels(png).shape[:2] == (1000, 800)
    again = summary_chart(TREND, SEGMENTS, FAVORABLE, title="Sales Roma", labels=LABELS_IT)
    assert png == again
    other = summary_chart(TREND[:1], SEGMENTS, FAVORABLE, title="Sales Roma", labels=LABELS_IT)
    assert other != png


@pytest.mark.parametrize(
    ("trend", "segments", "favorable"),
    [([], {}, {}), ([TrendPoint("Jan", None, None)], {}, FAVORABLE), (TREND, SEGMENTS, {})],
)
def test_empty_inputs_draw_a_no_data_panel(
    trend: list[TrendPoint], segments: dict[str, float], favorable: dict[str, float]
) -> None:
    png = summary_chart(trend, segments, favorable, title="Empty", labels=LABELS_IT)
    assert size_of(png) == (800, 1000)
    assert len(png) > 5_000
    full = summary_chart(TREND, SEGMENTS, FAVORABLE, title="Empty", labels=LABELS_IT)
    assert png != full


def test_heatmap_draws_suppressed_cells_visibly() -> None:
    teams, dimensions = ["Sales Milano", "Sales Roma", "Marketing"], ["Trust", "Pay", "Growth"]
    full = [[80.0, 55.0, 60.0], [30.0, 50.0, 70.0], [45.0, 90.0, 65.0]]
    some_hidden = [[80.0, None, 60.0], [30.0, 50.0, None], [None, None, 65.0]]
    shown = heatmap_chart(teams, dimensions, full, title="Org", labels=LABELS_IT)
    hidden = heatmap_chart(teams, dimensions, some_hidden, title="Org", labels=LABELS_IT)
    for png in (shown, hidden):
        width, height = size_of(png)
        assert width >= 500 and height >= 300
        assert 10_000 < len(png) < 1_000_000
    # Four hatched grey cells (and the legend swatch) are plainly visible; none without None.
    assert grey_share(shown) < 0.005
    assert grey_share(hidden) > 0.05
    assert heatmap_chart(teams, dimensions, some_hidden, title="Org", labels=LABELS_IT) == hidden


def test_heatmap_without_teams_is_a_no_data_image_and_bad_shapes_are_refused() -> None:
    png = heatmap_chart([], [], [], title="Org", labels=LABELS_IT)
    assert size_of(png)[0] > 0 and len(png) > 2_000
    with pytest.raises(ValueError, match="one row per team"):
        heatmap_chart(["A"], ["Trust", "Pay"], [[1.0]], title="Org", labels={})


def test_no_pyplot_figures_are_left_open() -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    summary_chart(TREND, SEGMENTS, FAVORABLE, title="x", labels={})
    heatmap_chart(["A"], ["B"], [[None]], title="x", labels={})
    assert plt.get_fignums() == before
