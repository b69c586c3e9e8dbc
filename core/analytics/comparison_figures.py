"""Model Comparison, the figures: plotly charts of the comparison tables and presenter mode.

Charts are drawn from the frames of core.analytics.comparison (so each shows exactly what its
CSV holds). Emotion and model colours come from core.palette. `slides` lays every chart out one
per screen for presenting; `presenter_layout` enlarges a figure for a projector.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.analytics.comparison import (
    TRAINING_X,
    confusion_frame,
    format_value,
    history_frame,
    per_class_frame,
    progress_frame,
    summary_table,
)
from core.emotion.cards import MISSING, CardSet, ModelCard, split_label
from core.labels import EMOTIONS
from core.palette import (
    ACCURACY_COLOR,
    CONFUSION_COLORSCALE,
    EMOTION_COLORS,
    MACRO_F1_COLOR,
    MODEL_COLORS,
    TRAINING_RUN_COLORS,
    marker_symbol,
)

PRESENTER_FONT = 22
PHASE_DASH = {"train": "dash", "validation": "solid"}


def model_colors(names: Sequence[str]) -> dict[str, str]:
    """A colour per model name, stable for a given list."""
    return {name: MODEL_COLORS[i % len(MODEL_COLORS)] for i, name in enumerate(names)}


# --------------------------------------------------------------------------- figures


def _style(fig: go.Figure, title: str, height: int = 460) -> go.Figure:
    fig.update_layout(
        title={"text": title}, height=height, margin={"l": 60, "r": 30, "t": 80, "b": 50}
    )
    return fig


def _emotion_ticks() -> dict[str, Any]:
    """Axis ticks with each emotion's name in its palette colour."""
    return {
        "tickmode": "array",
        "tickvals": list(EMOTIONS),
        "ticktext": [f'<span style="color:{EMOTION_COLORS[e]}">{e}</span>' for e in EMOTIONS],
    }


def overview_figure(table: pd.DataFrame, split: str) -> go.Figure:
    """Accuracy and macro-F1 of every model on one split (grouped bars)."""
    fig = go.Figure()
    for column, label, color in (
        ("accuracy", "accuracy", ACCURACY_COLOR),
        ("macro_f1", "macro-F1", MACRO_F1_COLOR),
    ):
        values = table[column].to_numpy(dtype=float)
        fig.add_trace(
            go.Bar(
                x=table["model"].tolist(),
                y=values,
                name=label,
                marker_color=color,
                text=[MISSING if np.isnan(v) else f"{v:.1%}" for v in values],
                textposition="outside",
                hovertemplate=f"%{{x}}: {label} %{{y:.2%}}<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="group",
        xaxis_title="model",
        yaxis={"title": "accuracy / macro-F1", "tickformat": ".0%", "range": [0, 1]},
    )
    return _style(fig, f"Accuracy and macro-F1 on {split_label(split)}")


def speed_figure(table: pd.DataFrame, split: str) -> go.Figure:
    """CPU milliseconds per face (batch 1) against accuracy; one marker per model."""
    fig = go.Figure()
    colors = model_colors(table["model"].tolist())
    for _, row in table.iterrows():
        if np.isnan(row["cpu_ms_per_face"]) or np.isnan(row["accuracy"]):
            continue
        params = row["parameters"]
        fig.add_trace(
            go.Scatter(
                x=[row["cpu_ms_per_face"]],
                y=[row["accuracy"]],
                mode="markers+text",
                text=[row["model"]],
                textposition="top center",
                name=row["model"],
                marker={"size": 16, "color": colors[row["model"]]},
                customdata=[[MISSING if np.isnan(params) else f"{params:,.0f}"]],
                hovertemplate=(
                    "%{text}: %{x:.2f} ms/face, accuracy %{y:.2%}<br>"
                    "%{customdata[0]} parameters<extra></extra>"
                ),
            )
        )
    fig.update_layout(
        xaxis_title="CPU ms per face (batch 1, from the card)",
        yaxis={"title": "accuracy", "tickformat": ".0%", "range": [0, 1]},
        showlegend=False,
    )
    return _style(fig, f"Speed against accuracy ({split_label(split)})")


def training_figure(
    history: pd.DataFrame, metric: str, colors: Mapping[str, str], x: str = "epoch"
) -> go.Figure:
    """`metric` (loss or accuracy) against `x` (epoch or cpu_hours): a colour per model,
    dashed train, solid validation. Against CPU-hours, equal budgets line up side by side."""
    fig = go.Figure()
    models = list(dict.fromkeys([*colors, *history["model"].astype(str)]))
    for (model, phase), part in history.groupby(["model", "phase"], sort=False):
        values = part[metric].to_numpy(dtype=float)
        if np.isnan(values).all() or np.isnan(part[x].to_numpy(dtype=float)).all():
            continue
        fig.add_trace(
            go.Scatter(
                x=part[x].to_numpy(),
                y=values,
                mode="lines+markers",
                name=f"{model} · {phase}",
                legendgroup=str(model),
                line={"color": colors.get(str(model), MODEL_COLORS[0]), "dash": PHASE_DASH[phase]},
                marker={"size": 6, "symbol": marker_symbol(models.index(str(model)))},
                hovertemplate=(
                    f"{model} {phase}<br>{TRAINING_X[x]} %{{x:.3g}}: {metric} %{{y:.4f}}"
                    "<extra></extra>"
                ),
            )
        )
    yaxis: dict[str, Any] = {"title": metric}
    if metric == "accuracy":
        yaxis["tickformat"] = ".0%"
    fig.update_layout(xaxis_title=TRAINING_X[x], yaxis=yaxis)
    return _style(fig, f"Training {metric} by {TRAINING_X[x]} (dashed: train, solid: validation)")


def progress_figure(
    progress: pd.DataFrame, colors: Mapping[str, str], x: str = "epoch"
) -> go.Figure:
    """Validation accuracy of runs still training (bright, solid) against the shipped run of
    the same model (dotted, in its colour from `colors`), by epoch or CPU-hours."""
    fig = go.Figure()
    runs = itertools.cycle(TRAINING_RUN_COLORS)
    for series, part in progress.groupby("series", sort=False):
        training = part["status"].iloc[0] == "training"
        color = next(runs) if training else colors.get(str(part["run"].iloc[0]), MODEL_COLORS[0])
        fig.add_trace(
            go.Scatter(
                x=part[x].to_numpy(),
                y=part["val_accuracy"].to_numpy(dtype=float),
                mode="lines+markers",
                name=str(series),
                line={"color": color, "dash": "solid" if training else "dot",
                      "width": 3 if training else 2},
                marker={"size": 7 if training else 4},
                hovertemplate=(
                    f"{series}<br>{TRAINING_X[x]} %{{x:.3g}}: validation %{{y:.4f}}<extra></extra>"
                ),
            )
        )  # fmt: skip
    fig.update_layout(xaxis_title=TRAINING_X[x], yaxis={"title": "accuracy", "tickformat": ".0%"})
    return _style(fig, f"Runs still training: validation accuracy by {TRAINING_X[x]}")


def confusion_figure(card: ModelCard, split: str, normalise: bool = False) -> go.Figure:
    """Heatmap of a card's confusion matrix: counts, or shares of each true emotion's row."""
    frame = confusion_frame(card, split, normalise)
    values = frame.to_numpy()
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=list(EMOTIONS),
            y=list(EMOTIONS),
            colorscale=CONFUSION_COLORSCALE,
            zmin=0,
            zmax=1 if normalise else None,
            texttemplate="%{z:.0%}" if normalise else "%{z:.0f}",
            hovertemplate=(
                "true %{y}, predicted %{x}: "
                + ("%{z:.1%} of the true row" if normalise else "%{z:.0f} images")
                + "<extra></extra>"
            ),
            colorbar={"tickformat": ".0%"} if normalise else None,
        )
    )
    fig.update_xaxes(title="predicted", **_emotion_ticks())
    fig.update_yaxes(title="true", autorange="reversed", **_emotion_ticks())
    what = "row-normalised" if normalise else "counts"
    title = f"{card.name}: confusion matrix, {what}<br><sup>{split_label(split)}</sup>"
    return _style(fig, title, 500)


def per_class_figure(per_class: pd.DataFrame, split: str) -> go.Figure:
    """F1 per emotion for every model: groups of seven bars, coloured by emotion."""
    fig = go.Figure()
    for emotion in EMOTIONS:
        part = per_class[per_class["emotion"] == emotion]
        fig.add_trace(
            go.Bar(
                x=part["model"].tolist(),
                y=part["f1"].to_numpy(dtype=float),
                name=emotion,
                marker_color=EMOTION_COLORS[emotion],
                customdata=part[["precision", "recall", "support"]].to_numpy(dtype=float),
                hovertemplate=(
                    f"%{{x}} · {emotion}<br>F1 %{{y:.3f}}<br>precision %{{customdata[0]:.3f}}, "
                    "recall %{customdata[1]:.3f}<br>%{customdata[2]:.0f} images<extra></extra>"
                ),
            )
        )
    fig.update_layout(barmode="group", xaxis_title="model", yaxis={"title": "F1", "range": [0, 1]})
    return _style(fig, f"F1 per emotion ({split_label(split)})")


def table_figure(table: pd.DataFrame) -> go.Figure:
    """The summary table as a plotly table (for presenter mode and PNG export)."""
    shown = {
        "model": table["model"],
        "accuracy": table["accuracy"].map(_percent),
        "macro-F1": table["macro_f1"].map(_percent),
        "parameters": table["parameters"].map(lambda v: format_value(v, "{:,.0f}")),
        "size (MB)": table["file_size_mb"].map(lambda v: format_value(v, "{:.1f}")),
        "CPU ms/face": table["cpu_ms_per_face"].map(lambda v: format_value(v, "{:.2f}")),
        "card": table["card"],
    }
    fig = go.Figure(
        go.Table(
            header={"values": list(shown), "align": "left"},
            cells={"values": [list(v) for v in shown.values()], "align": "left", "height": 30},
        )
    )
    return _style(fig, "The models, from their cards", 420)


def _percent(value: float) -> str:
    return format_value(value, "{:.1%}")


def presenter_layout(fig: go.Figure, font_size: int = PRESENTER_FONT) -> go.Figure:
    """A copy of `fig` with large fonts and a tall canvas, for presenting on a projector."""
    big = go.Figure(fig)
    big.update_layout(
        font={"size": font_size},
        title={"font": {"size": round(font_size * 1.3)}},
        legend={"font": {"size": font_size}},
        height=720,
        margin={"l": 90, "r": 40, "t": 110, "b": 80},
    )
    big.update_annotations(font_size=font_size)
    for trace in big.data:
        if trace.type == "table":
            trace.header.font = {"size": font_size}
            trace.cells.font = {"size": font_size}
            trace.cells.height = font_size * 2
        elif trace.type == "heatmap":
            trace.textfont = {"size": font_size}
    return big


# --------------------------------------------------------------------------- presenter mode


@dataclass(frozen=True)
class Slide:
    """One screen of presenter mode: a title, and the figure and data behind it, built the
    first time the slide is shown (a click draws one chart, not the whole deck)."""

    key: str
    title: str
    build: Callable[[], tuple[go.Figure, pd.DataFrame]] = field(repr=False, compare=False)

    @cached_property
    def _built(self) -> tuple[go.Figure, pd.DataFrame]:
        return self.build()

    @property
    def figure(self) -> go.Figure:
        return self._built[0]

    @property
    def data(self) -> pd.DataFrame:
        return self._built[1]


def slides(
    cards: CardSet, split: str, in_progress: Sequence[Mapping[str, Any]] = ()
) -> list[Slide]:
    """Every chart of the comparison, one per screen, in presenting order; `in_progress`: the
    progress records of runs still training (comparison.still_training), after the curves.
    Only the titles are made here; each slide draws its chart when it is shown."""
    table = summary_table(cards, split)
    colors = model_colors(cards.names)
    history = history_frame(cards)
    deck = [
        Slide("table", "The models", lambda: (table_figure(table), table)),
        Slide("overview", "Accuracy and macro-F1", lambda: (overview_figure(table, split), table)),
        Slide("speed", "Speed against accuracy", lambda: (speed_figure(table, split), table)),
    ]
    if not history.empty:
        for metric in ("loss", "accuracy"):
            deck.append(
                Slide(
                    f"training_{metric}",
                    f"Training {metric}",
                    lambda metric=metric: (training_figure(history, metric, colors), history),
                )
            )
    if in_progress:

        def progress_slide() -> tuple[go.Figure, pd.DataFrame]:
            progress = progress_frame(in_progress, cards)
            return progress_figure(progress, colors), progress

        deck.append(Slide("training_progress", "Runs still training", progress_slide))
    for card in cards.cards:
        if card.confusion(split) is None:
            continue
        for normalise in (False, True):
            suffix = "normalised" if normalise else "counts"
            deck.append(
                Slide(
                    f"confusion_{suffix}_{card.name}",
                    f"{card.name}: confusion ({suffix})",
                    lambda card=card, normalise=normalise: (
                        confusion_figure(card, split, normalise),
                        confusion_frame(card, split, normalise).reset_index(),
                    ),
                )
            )

    def per_class_slide() -> tuple[go.Figure, pd.DataFrame]:
        per_class = per_class_frame(cards, split)
        return per_class_figure(per_class, split), per_class

    deck.append(Slide("per_class", "F1 per emotion", per_class_slide))
    return deck


# --------------------------------------------------------------------------- same face


def predictions_figure(predictions: pd.DataFrame, true_label: str | None = None) -> go.Figure:
    """Each model's probabilities for the same face: one stacked bar a model, emotion colours."""
    fig = go.Figure()
    models = list(dict.fromkeys(predictions["model"]))
    for emotion in EMOTIONS:
        part = predictions[predictions["emotion"] == emotion].set_index("model").reindex(models)
        values = part["probability"].to_numpy(dtype=float)
        fig.add_trace(
            go.Bar(
                y=models,
                x=values,
                orientation="h",
                name=emotion,
                marker_color=EMOTION_COLORS[emotion],
                text=[f"{emotion} {v:.0%}" if v >= 0.12 else "" for v in values],
                textposition="inside",
                hovertemplate=f"%{{y}}: {emotion} %{{x:.1%}}<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="stack",
        xaxis={"range": [0, 1], "tickformat": ".0%", "title": "probability"},
        yaxis={"autorange": "reversed"},
        height=160 + 70 * len(models),
    )
    title = "Same face, every model"
    if true_label:
        title += f" (FER2013 label: {true_label})"
    return _style(fig, title, height=160 + 70 * len(models))
