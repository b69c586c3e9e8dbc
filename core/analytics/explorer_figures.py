"""Music Explorer, the plotly figures: one function per chart, drawn from the frames of
core.analytics.explorer_stats (never from raw tracks, except the sampled map points).

Group colours come with the Grouping (core.palette); the page's theme supplies the template.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.analytics.explorer import Grouping
from core.analytics.explorer_stats import TrackMap
from core.palette import (
    BAND_COLOR,
    CORRELATION_COLORSCALE,
    FALLBACK_COLOR,
    GRID_COLOR,
    LINE_COLOR,
    TRANSPARENT,
    marker_symbol,
)

MISSING_TEXT = "—"
# Features in 0..1 share one axis; the rest have units.
FEATURE_UNITS: dict[str, str] = {"loudness": "dB", "tempo": "BPM"}


# --------------------------------------------------------------------------- composition


def composition_figure(
    counts: pd.DataFrame, column: str, grouping: Grouping, title: str
) -> go.Figure:
    """Stacked bars of track counts per category, one colour per group."""
    fig = go.Figure()
    if column == "decade":
        categories = sorted(counts[column].unique())
    else:
        totals = counts.groupby(column)["tracks"].sum().sort_values(ascending=False)
        categories = list(totals.index)
    for group in grouping.order:
        part = counts[counts["group"] == group].set_index(column)["tracks"]
        part = part.reindex(categories, fill_value=0)
        fig.add_trace(
            go.Bar(
                x=categories,
                y=part.to_numpy(),
                name=group,
                marker_color=grouping.colors[group],
                hovertemplate=f"{group}<br>%{{x}}: %{{y}} tracks<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack", xaxis_title=column, yaxis_title="tracks")
    return _style(fig, title, legend_title=grouping.by)


# --------------------------------------------------------------------------- histograms


def histogram_figure(hist: pd.DataFrame, grouping: Grouping, columns: int = 3) -> go.Figure:
    """One panel per feature; overlaid bars per group, as a share of the group's tracks."""
    features = list(dict.fromkeys(hist["feature"]))
    rows = max(1, math.ceil(len(features) / columns))
    fig = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[_feature_label(f) for f in features],
        horizontal_spacing=0.06,
        vertical_spacing=0.12 if rows > 1 else 0.1,
    )
    traces: list[go.Bar] = []
    positions: list[tuple[int, int]] = []
    shown: set[str] = set()
    for (feature, group), bars in hist.groupby(["feature", "group"], sort=False):
        tracks = bars["tracks"].to_numpy()
        if tracks.sum() == 0:
            continue
        left, right = bars["bin_left"].to_numpy(), bars["bin_right"].to_numpy()
        traces.append(
            go.Bar(
                x=(left + right) / 2,
                y=bars["share"].to_numpy() * 100,
                width=right - left,
                customdata=np.column_stack([left, right, tracks]),
                name=str(group),
                legendgroup=str(group),
                showlegend=group not in shown,
                marker_color=grouping.colors.get(str(group), FALLBACK_COLOR),
                opacity=0.55,
                hovertemplate=(
                    f"{group}<br>{feature} %{{customdata[0]:.3g}} to %{{customdata[1]:.3g}}"
                    "<br>%{y:.1f}% of the group (%{customdata[2]} tracks)<extra></extra>"
                ),
            )
        )
        index = features.index(feature)
        positions.append((index // columns + 1, index % columns + 1))
        shown.add(str(group))
    if traces:
        fig.add_traces(traces, rows=[r for r, _ in positions], cols=[c for _, c in positions])
    fig.update_layout(barmode="overlay", bargap=0, height=260 * rows + 80)
    fig.update_yaxes(ticksuffix="%")
    return _style(fig, "Audio features: share of each group's tracks", legend_title=grouping.by)


# --------------------------------------------------------------------------- correlations


def correlation_figure(corr: pd.DataFrame) -> go.Figure:
    """Heatmap of a correlation matrix on a diverging scale centred on 0."""
    fig = go.Figure(
        go.Heatmap(
            z=corr.to_numpy(),
            x=list(corr.columns),
            y=list(corr.index),
            zmin=-1,
            zmax=1,
            colorscale=CORRELATION_COLORSCALE,
            texttemplate="%{z:.2f}",
            hovertemplate="%{y} × %{x}: %{z:.3f}<extra></extra>",
            colorbar={"title": {"text": "r"}},
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=560)
    return _style(fig, "Correlation between audio features (Pearson r)")


# --------------------------------------------------------------------------- years


def years_figure(yearly: pd.DataFrame, columns: int = 2) -> go.Figure:
    """One panel per feature: the yearly mean and a band from the 25th to 75th percentile."""
    features = list(dict.fromkeys(yearly["feature"]))
    rows = max(1, math.ceil(len(features) / columns))
    fig = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[_feature_label(f) for f in features],
        shared_xaxes=True,
        vertical_spacing=0.12 if rows > 1 else 0.1,
    )
    for i, feature in enumerate(features):
        part = yearly[yearly["feature"] == feature]
        position = {"row": i // columns + 1, "col": i % columns + 1}
        years = part["year"].to_numpy()
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([years, years[::-1]]),
                y=np.concatenate([part["q75"].to_numpy(), part["q25"].to_numpy()[::-1]]),
                fill="toself",
                fillcolor=BAND_COLOR,
                line={"width": 0},
                hoverinfo="skip",
                name="middle 50% of tracks",
                legendgroup="band",
                showlegend=i == 0,
            ),
            **position,
        )
        fig.add_trace(
            go.Scatter(
                x=years,
                y=part["mean"].to_numpy(),
                customdata=part[["tracks", "q25", "q75"]].to_numpy(),
                mode="lines+markers",
                marker={"size": 4},
                line={"color": LINE_COLOR, "width": 2},
                name="mean",
                legendgroup="mean",
                showlegend=i == 0,
                hovertemplate=(
                    f"%{{x}}: mean {feature} %{{y:.3g}}<br>middle 50%: %{{customdata[1]:.3g}} "
                    "to %{customdata[2]:.3g}<br>%{customdata[0]} tracks<extra></extra>"
                ),
            ),
            **position,
        )
    for i, feature in enumerate(features):
        position = {"row": i // columns + 1, "col": i % columns + 1}
        fig.update_yaxes(title_text=FEATURE_UNITS.get(feature, "score (0 to 1)"), **position)
        if i + columns >= len(features):  # the lowest panel of its column
            fig.update_xaxes(title_text="release year", **position)
    fig.update_layout(height=240 * rows + 100)
    return _style(fig, "Audio features over the years: mean and middle 50% of tracks")


# --------------------------------------------------------------------------- 2-D map


def _hover_text(points: pd.DataFrame, labels: pd.Series, by: str) -> np.ndarray:
    """One hover string per sampled track, built with vectorised string operations."""

    def column(name: str) -> pd.Series:
        if name not in points:
            return pd.Series(MISSING_TEXT, index=points.index, dtype="string")
        values = points[name]
        if name == "popularity":
            values = values.round().astype("Int64")
        text = values.astype("string").str.replace("<", "&lt;", regex=False)
        return text.fillna(MISSING_TEXT)

    text = (
        "<b>" + column("title") + "</b><br>" + column("artist")
        + "<br>genre " + column("genre") + ", year " + column("year")
        + "<br>mood " + column("mood") + ", popularity " + column("popularity")
        + f"<br>{by}: " + labels.astype("string")
    )  # fmt: skip
    return text.to_numpy(dtype=object)


def map_figure(track_map_: TrackMap, grouping: Grouping) -> go.Figure:
    """Scatter of the sampled tracks on the first two principal components, one trace a group."""
    points = track_map_.points
    labels = grouping.labels.loc[points.index]
    text = _hover_text(points, labels, grouping.by)
    x, y = points["pc1"].to_numpy(), points["pc2"].to_numpy()
    fig = go.Figure()
    for position, group in enumerate(grouping.order):
        mask = (labels == group).to_numpy()
        if not mask.any():
            continue
        fig.add_trace(
            go.Scattergl(
                x=x[mask],
                y=y[mask],
                mode="markers",
                name=group,
                marker={
                    "color": grouping.colors[group],
                    "size": 6,
                    "opacity": 0.7,
                    "symbol": marker_symbol(position),  # shape and colour, not colour alone
                },
                text=text[mask],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    pc1, pc2 = track_map_.explained
    fig.update_layout(
        xaxis_title=f"PC1 ({pc1:.0%} of variance) — {_top_loadings(track_map_.loadings, 'pc1')}",
        yaxis_title=f"PC2 ({pc2:.0%}) — {_top_loadings(track_map_.loadings, 'pc2')}",
        height=620,
    )
    title = "Map of the tracks: PCA of the standardised audio features"
    if track_map_.sampled:
        title += f" (random sample of {len(points):,} of {track_map_.n_tracks:,} tracks)"
    return _style(fig, title, legend_title=grouping.by)


def _top_loadings(loadings: pd.DataFrame, component: str, k: int = 2) -> str:
    """The features that weigh most on a component, with their sign ('+energy, -acousticness')."""
    order = loadings[component].abs().sort_values(ascending=False).index[:k]
    return ", ".join(f"{'+' if loadings.loc[f, component] >= 0 else '-'}{f}" for f in order)


# --------------------------------------------------------------------------- profiles


def radar_figure(profiles: pd.DataFrame, grouping: Grouping) -> go.Figure:
    """A radar of each group's average profile (0..1 scale; hover shows raw means)."""
    fig = go.Figure()
    for group in grouping.order:
        part = profiles[profiles["group"] == group]
        if part.empty:
            continue
        closed = pd.concat([part, part.head(1)])
        fig.add_trace(
            go.Scatterpolar(
                r=closed["scaled_mean"].to_numpy(),
                theta=closed["feature"].tolist(),
                customdata=closed[["mean", "tracks"]].to_numpy(),
                name=f"{group} ({int(part['tracks'].iloc[0]):,})",
                line={"color": grouping.colors[group], "width": 2},
                fill="toself",
                opacity=0.45,
                hovertemplate=(
                    f"{group}<br>%{{theta}}: mean %{{customdata[0]:.3g}} "
                    "(%{r:.2f} on the 0..1 scale)<extra></extra>"
                ),
            )
        )
    grid = GRID_COLOR
    fig.update_layout(
        polar={
            "bgcolor": TRANSPARENT,
            "radialaxis": {"range": [0, 1], "gridcolor": grid, "linecolor": grid, "angle": 90},
            "angularaxis": {"gridcolor": grid, "linecolor": grid, "direction": "clockwise"},
        },
        height=560,
    )
    return _style(
        fig, "Average profile of each group (tempo 60-180 BPM and loudness -30-0 dB → 0-1)"
    )


# --------------------------------------------------------------------------- shared styling


def _feature_label(feature: str) -> str:
    unit = FEATURE_UNITS.get(feature)
    return f"{feature} ({unit})" if unit else feature


def _style(fig: go.Figure, title: str, legend_title: str | None = None) -> go.Figure:
    """Common layout: title and compact margins (the page's theme supplies the template)."""
    fig.update_layout(
        title={"text": title},
        margin={"l": 60, "r": 30, "t": 80, "b": 50},
        legend_title_text=legend_title,
    )
    return fig
