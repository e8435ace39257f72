"""Charts: valid, deterministic PNGs for normal, empty and suppressed inputs; what they say
(scales, n, precision, legends) read from the matplotlib figures, in both languages."""

from __future__ import annotations

import dataclasses
import io
import struct

import numpy as np
import pytest
from matplotlib.image import imread

from bot.loyalty.charts import (
    LOW_PRECISION_MARK,
    TrendPoint,
    figure_png,
    heatmap_chart,
    heatmap_figure,
    row_label,
    segment_legend,
    summary_chart,
    summary_figure,
)
from bot.loyalty.metrics import SEGMENTS as SEGMENT_NAMES
from bot.loyalty.present import chart_labels, labels

from .harness import REPO

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
    assert size_of(png) == (800, 1400)
    assert 20_000 < len(png) < 1_000_000
    assert pixels(png).shape[:2] == (1400, 800)
    # Drawn afresh (not from the charts already drawn), the same figure gives the same bytes.
    figure = summary_figure(TREND, SEGMENTS, FAVORABLE, title="Sales Roma", labels=LABELS_IT)
    assert figure_png(figure) == png
    again = summary_chart(TREND, SEGMENTS, FAVORABLE, title="Sales Roma", labels=LABELS_IT)
    assert png == again
    other = summary_chart(TREND[:1], SEGMENTS, FAVORABLE, title="Sales Roma", labels=LABELS_IT)
    assert other != png
    # A figure changed by a hair is drawn anew, never taken for the one already drawn.
    moved = [dataclasses.replace(TREND[0], index=61.001), *TREND[1:]]
    closer = summary_chart(moved, SEGMENTS, FAVORABLE, title="Sales Roma", labels=LABELS_IT)
    assert closer == figure_png(
        summary_figure(moved, SEGMENTS, FAVORABLE, title="Sales Roma", labels=LABELS_IT)
    )


@pytest.mark.parametrize(
    ("trend", "segments", "favorable"),
    [([], {}, {}), ([TrendPoint("Jan", None, None)], {}, FAVORABLE), (TREND, SEGMENTS, {})],
)
def test_empty_inputs_draw_a_no_data_panel(
    trend: list[TrendPoint], segments: dict[str, float], favorable: dict[str, float]
) -> None:
    png = summary_chart(trend, segments, favorable, title="Empty", labels=LABELS_IT)
    assert size_of(png) == (800, 1400)
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


def texts_of(locale: str) -> dict[str, str]:
    return chart_labels(labels(REPO / "content" / "templates", locale))


def panels(figure: object) -> dict[str, object]:
    return {ax.get_gid(): ax for ax in figure.axes}  # type: ignore[attr-defined]


def test_index_and_enps_have_separate_axes_and_scales() -> None:
    """An eNPS of −27 is drawn at −27 on an eNPS axis (−100…+100), not on the index's."""
    trend = [TrendPoint("Jan", 55.0, -27.0, 40, 40), TrendPoint("Feb", 58.0, -10.0, 42, 41)]
    figure = summary_figure(trend, SEGMENTS, FAVORABLE, title="x", labels=texts_of("en"))
    shown = panels(figure)
    assert list(shown) == ["index", "enps", "segments", "favorable"]  # no twin axis
    assert shown["index"].get_ylim() == (0.0, 100.0)
    assert shown["enps"].get_ylim() == (-100.0, 100.0)
    points = [line for line in shown["enps"].get_lines() if line.get_gid() == "point"]
    assert [line.get_ydata()[0] for line in points] == [-27.0, -10.0]
    written = [t.get_text() for t in shown["enps"].texts]
    assert written == ["−27", "−10"]


@pytest.mark.parametrize("locale", ["en", "it"])
def test_n_and_low_precision_are_shown(locale: str) -> None:
    trend = [
        TrendPoint("Jan", 61.0, 12.0, 42, 40, (55.0, 67.0), (-5.0, 29.0)),
        TrendPoint("Feb", None, None),
        TrendPoint("Mar", 68.5, -4.0, 18, 17, (58.0, 79.0), (-40.0, 33.0)),
    ]
    favorable_n = {"Trust": 84, "Pay": 12, "Growth": 40}
    figure = summary_figure(
        trend,
        SEGMENTS,
        FAVORABLE,
        title="x",
        labels=texts_of(locale),
        segment_n=18,
        favorable_n=favorable_n,
        precise_from=30,
    )
    shown = panels(figure)
    for gid, (first, last) in (("index", (42, 18)), ("enps", (40, 17))):
        ticks = [t.get_text() for t in shown[gid].get_xticklabels()]
        assert ticks == [f"Jan\nn={first}", "Feb", f"Mar\nn={last}{LOW_PRECISION_MARK}"]
        kinds = [line.get_gid() for line in shown[gid].get_lines() if line.get_gid()]
        assert kinds == ["point", "low_precision"]
        values = [t.get_text() for t in shown[gid].texts]
        assert values[0][-1] != LOW_PRECISION_MARK and values[1][-1] == LOW_PRECISION_MARK
    assert shown["segments"].get_title().endswith(f"n=18{LOW_PRECISION_MARK}")
    bar_texts = [t.get_text() for t in shown["favorable"].texts]
    assert "81%  n=84" in bar_texts and f"42%  n=12{LOW_PRECISION_MARK}" in bar_texts
    note = figure.get_supxlabel()
    assert note.startswith(LOW_PRECISION_MARK) and "30" in note
    assert ("fewer than 30" if locale == "en" else "meno di 30") in note
    # With more answers than precise_from nothing is marked.
    precise = summary_figure(
        trend, SEGMENTS, FAVORABLE, title="x", labels=texts_of(locale), precise_from=10
    )
    assert not any(
        line.get_gid() == "low_precision" for ax in precise.axes for line in ax.get_lines()
    )


@pytest.mark.parametrize("locale", ["en", "it"])
def test_every_segment_has_a_one_line_legend(locale: str) -> None:
    texts = texts_of(locale)
    segments = dict.fromkeys(SEGMENT_NAMES, 1 / len(SEGMENT_NAMES))
    figure = summary_figure(TREND, segments, FAVORABLE, title="x", labels=texts, segment_n=60)
    legend = panels(figure)["segments"].get_legend()
    lines = [t.get_text() for t in legend.get_texts()]
    assert lines == segment_legend(texts, list(SEGMENT_NAMES))
    assert len(lines) == len(SEGMENT_NAMES) == 6 and all("\n" not in line for line in lines)
    raw = labels(REPO / "content" / "templates", locale)
    for name, line in zip(SEGMENT_NAMES, lines, strict=True):
        assert line == f"{raw[f'seg.{name}']}: {raw[f'seg.about.{name}']}"
    english = labels(REPO / "content" / "templates", "en")
    if locale == "it":
        assert all(raw[f"seg.about.{n}"] != english[f"seg.about.{n}"] for n in SEGMENT_NAMES)
        assert lines[-1].startswith("non fedeli, passaparola non noto: ")
    else:
        assert lines[-1] == (
            "disloyal, advocacy unknown: not satisfied, may leave, skipped the eNPS question"
        )


@pytest.mark.parametrize("locale", ["en", "it"])
def test_heatmap_legend_gives_the_reason_and_parent_rows_say_what_they_cover(
    locale: str,
) -> None:
    texts = texts_of(locale)
    rows = [
        row_label("Headquarters", "organisation", texts),
        row_label("Sales", "subtree", texts),
        row_label("Sales Roma", "team", texts),
        row_label("HR & People", "team", texts),
    ]
    assert rows[2:] == ["Sales Roma", "HR & People"]
    if locale == "en":
        assert rows[:2] == ["Headquarters (whole organisation)", "Sales (with its sub-teams)"]
    else:
        assert rows[:2] == [
            "Headquarters (tutta l'organizzazione)",
            "Sales (con i team sottostanti)",
        ]
    values = [[50.0, 60.0], [40.0, None], [30.0, 20.0], [None, None]]
    figure = heatmap_figure(rows, ["Trust", "Pay"], values, title="Org", labels=texts)
    [legend] = figure.legends
    [reason] = [t.get_text() for t in legend.get_texts()]
    assert reason == texts["suppressed"]
    assert ("without identifying" if locale == "en" else "senza identificare") in reason
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == rows
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == 3  # one per None cell
    written = sorted(t.get_text() for t in ax.texts)
    assert written == sorted(["50", "60", "40", "30", "20"])
    # Nothing hidden: no legend.
    full = heatmap_figure(rows[:1], ["Trust"], [[50.0]], title="Org", labels=texts)
    assert not full.legends
