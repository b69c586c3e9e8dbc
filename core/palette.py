"""The one colour palette of every chart in the app (plotly colour maps and sequences).

Colours come from the Okabe-Ito palette, designed to stay distinct under the common forms of
colour blindness; grey marks "neutral". A mood shares its colour with the emotion it matches
(happy/Happy, sad/Sad), so emotion and mood charts read alike.
"""

from __future__ import annotations

from collections.abc import Iterable

EMOTION_COLORS: dict[str, str] = {
    "angry": "#D55E00",  # vermillion
    "disgust": "#009E73",  # bluish green
    "fear": "#CC79A7",  # reddish purple
    "happy": "#E69F00",  # orange
    "sad": "#0072B2",  # blue
    "surprise": "#56B4E9",  # sky blue
    "neutral": "#999999",  # grey
}

MOOD_COLORS: dict[str, str] = {
    "Happy": "#E69F00",  # orange, as happy
    "Sad": "#0072B2",  # blue, as sad
    "Energetic": "#D55E00",  # vermillion
    "Calm": "#009E73",  # bluish green
}

FALLBACK_COLOR = "#BBBBBB"
UNKNOWN_COLOR = "#777777"  # tracks whose group is unknown (no genre), darker than the rest

# The app's background (Streamlit's dark theme, .streamlit/config.toml): every colour above and
# below keeps at least 3:1 contrast against it (WCAG's bar for chart marks; tests/test_palette.py).
DARK_BACKGROUND = "#0E1117"
# Analyst pages (core.analytics). Categories that are neither moods nor emotions (genres,
# k-means clusters, models): Paul Tol's colour-blind-safe muted scheme, its three darkest
# (indigo, wine, brown: 1.5-2.2:1 on the dark theme) swapped for Tol blue, orange and red;
# grey left for "Other".
CATEGORY_COLORS: tuple[str, ...] = (
    "#88CCEE", "#CC6677", "#DDCC77", "#117733", "#4477AA", "#AA4499", "#44AA99", "#999933",
    "#EE7733", "#CC3311",
)  # fmt: skip
MODEL_COLORS = CATEGORY_COLORS
LINE_COLOR = "#999933"  # Tol olive: mid-tone, readable on the light and the dark theme
BAND_COLOR = "rgba(153, 153, 51, 0.3)"  # LINE_COLOR, translucent (percentile bands)
ACCURACY_COLOR = "#88CCEE"  # Tol sky: readable on the light and the dark theme
MACRO_F1_COLOR = "#DDCC77"  # Tol sand
# Runs still training, drawn over the shipped models' colours: bright on both themes.
TRAINING_RUN_COLORS: tuple[str, ...] = ("#DDCC77", "#44AA99", "#88CCEE")
GRID_COLOR = "rgba(128, 128, 128, 0.45)"  # radar grid: readable on the light and the dark theme
TRANSPARENT = "rgba(0, 0, 0, 0)"
CONFUSION_COLORSCALE = "Blues"  # sequential: counts and row shares
CORRELATION_COLORSCALE = "RdBu_r"  # diverging, centred on 0


def color_of(label: str) -> str:
    """Colour of an emotion or mood name (any case); a light grey for anything else."""
    if label in MOOD_COLORS:
        return MOOD_COLORS[label]
    return EMOTION_COLORS.get(
        str(label).lower(), MOOD_COLORS.get(str(label).title(), FALLBACK_COLOR)
    )


def color_sequence(labels: Iterable[str]) -> list[str]:
    """Colours for labels in order (plotly's ``color_discrete_sequence``)."""
    return [color_of(label) for label in labels]


def bgr_of(label: str) -> tuple[int, int, int]:
    """`color_of(label)` as an OpenCV BGR triple, for boxes and labels drawn on frames."""
    hex_color = color_of(label).lstrip("#")
    red, green, blue = (int(hex_color[i : i + 2], 16) for i in (0, 2, 4))
    return blue, green, red


# A marker shape per group or model beside its colour, so no chart tells them apart by colour
# alone (colour-blind viewers, washed-out projectors). All of them draw in WebGL (Scattergl).
MARKER_SYMBOLS: tuple[str, ...] = (
    "circle", "square", "diamond", "triangle-up", "cross", "x", "triangle-down", "star",
)  # fmt: skip


def marker_symbol(position: int) -> str:
    """The marker shape of the group or model at `position` in its chart's order."""
    return MARKER_SYMBOLS[position % len(MARKER_SYMBOLS)]
