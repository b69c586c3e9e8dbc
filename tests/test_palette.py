"""core/palette.py: every chart colour stays readable on the app's dark theme and distinct."""

from __future__ import annotations

import itertools
import tomllib

import pytest

from core import palette
from core.paths import REPO_ROOT


def _luminance(color: str) -> float:
    """WCAG 2 relative luminance of '#RRGGBB'."""
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


CHART_COLORS = {
    **{f"emotion {k}": v for k, v in palette.EMOTION_COLORS.items()},
    **{f"mood {k}": v for k, v in palette.MOOD_COLORS.items()},
    **{f"category {i}": v for i, v in enumerate(palette.CATEGORY_COLORS)},
    **{f"training run {i}": v for i, v in enumerate(palette.TRAINING_RUN_COLORS)},
    "line": palette.LINE_COLOR,
    "accuracy": palette.ACCURACY_COLOR,
    "macro-F1": palette.MACRO_F1_COLOR,
    "fallback": palette.FALLBACK_COLOR,
}


def test_the_dark_background_is_the_themes() -> None:
    theme = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())["theme"]
    assert theme["base"] == "dark"  # a light default theme needs its own contrast check
    assert theme.get("backgroundColor", palette.DARK_BACKGROUND) == palette.DARK_BACKGROUND


@pytest.mark.parametrize("name", sorted(CHART_COLORS))
def test_every_chart_colour_has_3_to_1_contrast_on_the_dark_theme(name: str) -> None:
    ratio = contrast(CHART_COLORS[name], palette.DARK_BACKGROUND)
    assert ratio >= 3.0, f"{name} {CHART_COLORS[name]}: {ratio:.2f}:1 on the dark theme"


def _lab(color: str) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of '#RRGGBB'."""
    rgb = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    xyz = (
        (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047,
        0.2126 * r + 0.7152 * g + 0.0722 * b,
        (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883,
    )
    fx, fy, fz = [t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in xyz]
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def test_no_two_categories_look_alike() -> None:
    """CIE76 colour difference of at least 20 between any two category colours (Tol's own
    closest pair, sand and olive, is 22.8; a near-duplicate added later is 10 or less)."""
    for a, b in itertools.combinations(palette.CATEGORY_COLORS, 2):
        distance = sum((p - q) ** 2 for p, q in zip(_lab(a), _lab(b), strict=True)) ** 0.5
        assert distance >= 20, f"{a} and {b} differ by only {distance:.1f}"


def test_charts_are_named_in_words_for_screen_readers() -> None:
    import numpy as np
    import plotly.graph_objects as go

    from core.analytics.charts import emotion_alt, figure_alt

    titled = go.Figure(layout={"title": {"text": "Accuracy <b>and</b><br>macro-F1"}})
    assert figure_alt(titled, "fallback") == "Accuracy and macro-F1"
    assert figure_alt(go.Figure(), "feature histograms") == "feature histograms"
    happy = np.array([0.01, 0.0, 0.02, 0.87, 0.03, 0.01, 0.06])
    text = emotion_alt(happy, "Face #2")
    assert text.startswith("Face #2: emotion probabilities: happy 87%, neutral 6%, sad 3%")
    assert emotion_alt(None) == "emotion probabilities, no face read yet"
