"""Plotly helpers every page shares: the chart toolbar's config, and the live and photo pages'
emotion charts (no Streamlit here)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from core.labels import EMOTIONS
from core.palette import EMOTION_COLORS


def figure_config(filename: str, scale: int = 2) -> Mapping[str, object]:
    """Plotly config for st.plotly_chart: the toolbar's camera saves a PNG named `filename`."""
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "filename": filename, "scale": scale},
    }


def figure_alt(figure: go.Figure, fallback: str) -> str:
    """A chart's accessible name (for `st.plotly_chart(alt=...)`): its title as plain text, else
    `fallback`."""
    title = figure.layout.title.text or ""
    text = " ".join(re.sub(r"<[^>]*>", " ", str(title)).split())
    return text or fallback


def emotion_alt(probabilities: Sequence[float] | np.ndarray | None, who: str = "") -> str:
    """What the emotion bars show, in words, most likely first (screen readers read it)."""
    lead = f"{who}: " if who else ""
    if probabilities is None:
        return f"{lead}emotion probabilities, no face read yet"
    values = np.asarray(probabilities, dtype=float)
    order = np.argsort(-values, kind="stable")
    return (
        lead
        + "emotion probabilities: "
        + ", ".join(f"{EMOTIONS[i]} {values[i]:.0%}" for i in order)
    )


def emotion_bars(
    probabilities: Sequence[float] | np.ndarray | None, title: str = "", height: int = 280
) -> go.Figure:
    """Horizontal bars of the seven emotion probabilities (empty bars when None)."""
    values = np.zeros(len(EMOTIONS)) if probabilities is None else np.asarray(probabilities)
    figure = go.Figure(
        go.Bar(
            x=values * 100,
            y=list(EMOTIONS),
            orientation="h",
            marker_color=[EMOTION_COLORS[e] for e in EMOTIONS],
            text=[f"{v:.0%}" for v in values],
            textposition="outside",
            cliponaxis=False,  # "100%" beside a full bar draws into the right margin
            hovertemplate="%{y}: %{x:.1f}%<extra></extra>",
        )
    )
    figure.update_layout(
        title=title or None,
        height=height,
        margin={"l": 10, "r": 44, "t": 30 if title else 10, "b": 10},
        xaxis={"range": [0, 110], "ticksuffix": "%", "showgrid": False},
        yaxis={"autorange": "reversed"},
        showlegend=False,
    )
    return figure


def emotion_timeline(timeline: Sequence[tuple[float, np.ndarray]], height: int = 280) -> go.Figure:
    """One line per emotion: probability over the session's seconds."""
    figure = go.Figure()
    if timeline:
        start = timeline[0][0]
        seconds = [t - start for t, _ in timeline]
        values = np.stack([p for _, p in timeline])
        for i, emotion in enumerate(EMOTIONS):
            figure.add_trace(
                go.Scatter(
                    x=seconds,
                    y=values[:, i] * 100,
                    name=emotion,
                    mode="lines",
                    line={"color": EMOTION_COLORS[emotion], "width": 2},
                    hovertemplate=f"{emotion} %{{y:.0f}}% at %{{x:.0f}} s<extra></extra>",
                )
            )
    figure.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"title": "seconds"},
        yaxis={"title": "probability", "range": [0, 100], "ticksuffix": "%"},
        legend={"orientation": "h", "y": -0.3},
    )
    return figure
