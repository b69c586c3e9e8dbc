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
