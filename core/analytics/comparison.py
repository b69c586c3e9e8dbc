"""Model Comparison: read model cards (`models/*.json`), build tables and plotly figures.

Every number shown comes from a card written by `core.evaluate.write_card` (or a peer card with
``"kind": "peer"``, such as the `fer` package's model, which may lack history, train metrics or a
model file): nothing is typed by hand. Missing values stay NaN in the tables (shown as "—").
Emotion colours come from core.palette; models get the qualitative `MODEL_COLORS`.
No streamlit here; the page wires these to widgets.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.analytics.explorer import CATEGORY_COLORS
from core.labels import EMOTIONS
from core.palette import EMOTION_COLORS
from core.paths import MODELS_DIR

MISSING = "—"
MODEL_COLORS = CATEGORY_COLORS
# Splits in the order the page offers them, with the words it uses for each.
SPLIT_LABELS: dict[str, str] = {
    "test": "FER2013 PublicTest (all images)",
    "test_unseen": "FER2013 PublicTest, images not in Training",
    "test_tta_flip": "FER2013 PublicTest (all), flip TTA",
    "test_unseen_tta_flip": "FER2013 PublicTest not in Training, flip TTA",
    "val": "validation split carved from Training",
    "train": "Training (minus validation)",
}
PRESENTER_FONT = 22
ACCURACY_COLOR = "#88CCEE"  # Tol sky: readable on the light and the dark theme
MACRO_F1_COLOR = "#DDCC77"  # Tol sand
PHASE_DASH = {"train": "dash", "validation": "solid"}


# --------------------------------------------------------------------------- cards


@dataclass(frozen=True)
class ModelCard:
    """One model card: the parsed JSON and where it came from."""

    path: Path
    data: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.data.get("name") or self.path.stem)

    @property
    def kind(self) -> str:
        return str(self.data.get("kind") or "moodlens")

    @property
    def is_peer(self) -> bool:
        return self.kind == "peer"

    @property
    def model_file(self) -> Path | None:
        """The model file beside the card, when the repo has it."""
        name = self.data.get("file")
        if not name:
            return None
        path = self.path.parent / str(name)
        return path if path.is_file() else None

    @property
    def architecture(self) -> str:
        arch = self.data.get("architecture")
        if isinstance(arch, Mapping):
            return str(arch.get("model") or arch.get("name") or MISSING)
        return str(arch) if arch else MISSING

    @property
    def history(self) -> list[Mapping[str, Any]]:
        history = self.data.get("history")
        return [h for h in history if isinstance(h, Mapping)] if isinstance(history, list) else []

    def metrics(self, split: str) -> Mapping[str, Any] | None:
        """The card's metrics on one split, or None."""
        metrics = self.data.get("metrics")
        if not isinstance(metrics, Mapping):
            return None
        found = metrics.get(split)
        return found if isinstance(found, Mapping) else None

    def splits(self) -> list[str]:
        metrics = self.data.get("metrics")
        return [s for s in metrics if isinstance(metrics[s], Mapping)] if metrics else []

    def confusion(self, split: str) -> np.ndarray | None:
        """The 7x7 confusion matrix (rows: true emotion, columns: predicted), or None."""
        found = self.metrics(split)
        matrix = found.get("confusion_matrix") if found else None
        if matrix is None:
            return None
        array = np.asarray(matrix, dtype=float)
        return array if array.shape == (len(EMOTIONS), len(EMOTIONS)) else None


@dataclass
class CardSet:
    """The cards of a models folder and the files that could not be read."""

    folder: Path
    cards: list[ModelCard] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cards]

    def get(self, name: str) -> ModelCard:
        return next(c for c in self.cards if c.name == name)

    def splits(self) -> list[str]:
        """Splits any card has metrics for, in SPLIT_LABELS order (unknown ones last)."""
        present = {s for c in self.cards for s in c.splits()}
        known = [s for s in SPLIT_LABELS if s in present]
        return known + sorted(present - set(known))


def _card_rank(card: ModelCard) -> tuple[int, float, str]:
    """Ours before peers, each best first on the Training-carved validation split."""
    accuracy = _number(_dig(card.data, "metrics", "val", "accuracy"))
    return (int(card.is_peer), -accuracy if not np.isnan(accuracy) else 1.0, card.name)


def load_cards(models_dir: Path | str = MODELS_DIR) -> CardSet:
    """Every model card in `models_dir`: ours best first (validation accuracy), then peers."""
    folder = Path(models_dir)
    found = CardSet(folder=folder)
    if not folder.is_dir():
        found.problems.append(f"The models folder {folder} does not exist.")
        return found
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            found.problems.append(f"{path.name} could not be read as JSON ({error}); skipped.")
            continue
        if not isinstance(data, Mapping) or not isinstance(data.get("metrics"), Mapping):
            found.problems.append(f"{path.name} is not a model card (no 'metrics'); skipped.")
            continue
        found.cards.append(ModelCard(path=path, data=data))
    found.cards.sort(key=_card_rank)
    return found


def split_label(split: str) -> str:
    return SPLIT_LABELS.get(split, split)


def model_colors(names: Sequence[str]) -> dict[str, str]:
    """A colour per model name, stable for a given list."""
    return {name: MODEL_COLORS[i % len(MODEL_COLORS)] for i, name in enumerate(names)}


# --------------------------------------------------------------------------- tables


def _number(value: Any) -> float:
    """A float, or NaN for anything missing or not numeric."""
    if isinstance(value, bool) or value is None:
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _dig(data: Mapping[str, Any], *keys: str) -> Any:
    """data[k1][k2]...; None when any level is missing."""
    current: Any = data
    for key in keys:
        if not isinstance(current, Mapping) or key not in current:
            return None
        current = current[key]
    return current


def summary_table(cards: CardSet, split: str = "test") -> pd.DataFrame:
    """One row per model: accuracy, macro-F1, per-class F1, size and speed (NaN if unknown)."""
    rows = []
    for card in cards.cards:
        metrics = card.metrics(split) or {}
        per_class = metrics.get("per_class") if isinstance(metrics, Mapping) else None
        size = _number(card.data.get("file_size_bytes"))
        row: dict[str, Any] = {
            "model": card.name,
            "kind": card.kind,
            "architecture": card.architecture,
            "accuracy": _number(metrics.get("accuracy")),
            "macro_f1": _number(metrics.get("macro_f1")),
        }
        for emotion in EMOTIONS:
            row[f"f1_{emotion}"] = _number(_dig(per_class or {}, emotion, "f1"))
        row.update(
            {
                "n_images": _number(metrics.get("n")),
                "parameters": _number(card.data.get("parameters")),
                "file_size_mb": size / 1e6,
                "cpu_ms_per_face": _number(_dig(card.data, "latency", "ms_per_face_batch1")),
                "cpu_ms_per_face_batch32": _number(
                    _dig(card.data, "latency", "ms_per_face_batch32")
                ),
                "epochs": _number(card.data.get("epochs_trained")),
                "best_epoch": _number(card.data.get("best_epoch")),
                "cpu_hours": _number(card.data.get("cpu_hours")),
                "card": card.path.name,
            }
        )
        rows.append(row)
    columns = [
        "model", "kind", "architecture", "accuracy", "macro_f1",
        *[f"f1_{e}" for e in EMOTIONS],
        "n_images", "parameters", "file_size_mb", "cpu_ms_per_face", "cpu_ms_per_face_batch32",
        "epochs", "best_epoch", "cpu_hours", "card",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def history_frame(cards: CardSet) -> pd.DataFrame:
    """Training curves in long form: model, epoch, cpu_hours (spent by the end of that epoch,
    NaN when the card did not time its epochs), phase (train/validation), loss, accuracy."""
    rows = []
    for card in cards.cards:
        cpu_seconds = 0.0
        for i, entry in enumerate(card.history):
            epoch = _number(entry.get("epoch"))
            epoch = float(i + 1) if np.isnan(epoch) else epoch
            cpu_seconds += _number(entry.get("cpu_seconds"))
            for phase, prefix in (("train", ""), ("validation", "val_")):
                loss = _number(entry.get(f"{prefix}loss"))
                accuracy = _number(entry.get(f"{prefix}accuracy"))
                if np.isnan(loss) and np.isnan(accuracy):
                    continue
                rows.append(
                    {
                        "model": card.name,
                        "epoch": epoch,
                        "cpu_hours": cpu_seconds / 3600.0,
                        "phase": phase,
                        "loss": loss,
                        "accuracy": accuracy,
                    }
                )
    columns = ["model", "epoch", "cpu_hours", "phase", "loss", "accuracy"]
    return pd.DataFrame(rows, columns=columns)


TRAINING_X = {"epoch": "epoch", "cpu_hours": "CPU-hours spent"}


def confusion_frame(card: ModelCard, split: str, normalise: bool = False) -> pd.DataFrame:
    """The confusion matrix as a frame (rows: true, columns: predicted); row shares if asked."""
    matrix = card.confusion(split)
    if matrix is None:
        matrix = np.full((len(EMOTIONS), len(EMOTIONS)), np.nan)
    if normalise:
        totals = matrix.sum(axis=1, keepdims=True)
        matrix = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    frame = pd.DataFrame(matrix, index=list(EMOTIONS), columns=list(EMOTIONS))
    frame.index.name = "true \\ predicted"
    return frame


def per_class_frame(cards: CardSet, split: str = "test") -> pd.DataFrame:
    """Per model and emotion: precision, recall, F1 and support (NaN when absent)."""
    rows = []
    for card in cards.cards:
        per_class = (card.metrics(split) or {}).get("per_class") or {}
        for emotion in EMOTIONS:
            stats = per_class.get(emotion) if isinstance(per_class, Mapping) else None
            stats = stats if isinstance(stats, Mapping) else {}
            rows.append(
                {
                    "model": card.name,
                    "emotion": emotion,
                    "precision": _number(stats.get("precision")),
                    "recall": _number(stats.get("recall")),
                    "f1": _number(stats.get("f1")),
                    "support": _number(stats.get("support")),
                }
            )
    return pd.DataFrame(rows, columns=["model", "emotion", "precision", "recall", "f1", "support"])


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
    fig.update_layout(barmode="group", yaxis={"tickformat": ".0%", "range": [0, 1]})
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
                marker={"size": 5},
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


def confusion_figure(card: ModelCard, split: str, normalise: bool = False) -> go.Figure:
    """Heatmap of a card's confusion matrix: counts, or shares of each true emotion's row."""
    frame = confusion_frame(card, split, normalise)
    values = frame.to_numpy()
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=list(EMOTIONS),
            y=list(EMOTIONS),
            colorscale="Blues",
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
    fig.update_layout(barmode="group", yaxis={"title": "F1", "range": [0, 1]})
    return _style(fig, f"F1 per emotion ({split_label(split)})")


def table_figure(table: pd.DataFrame) -> go.Figure:
    """The summary table as a plotly table (for presenter mode and PNG export)."""
    shown = {
        "model": table["model"],
        "accuracy": table["accuracy"].map(_percent),
        "macro-F1": table["macro_f1"].map(_percent),
        "parameters": table["parameters"].map(lambda v: _fmt(v, "{:,.0f}")),
        "size (MB)": table["file_size_mb"].map(lambda v: _fmt(v, "{:.1f}")),
        "CPU ms/face": table["cpu_ms_per_face"].map(lambda v: _fmt(v, "{:.2f}")),
        "card": table["card"],
    }
    fig = go.Figure(
        go.Table(
            header={"values": list(shown), "align": "left"},
            cells={"values": [list(v) for v in shown.values()], "align": "left", "height": 30},
        )
    )
    return _style(fig, "The models, from their cards", 420)


def _fmt(value: float, pattern: str) -> str:
    return MISSING if value is None or np.isnan(value) else pattern.format(value)


def _percent(value: float) -> str:
    return _fmt(value, "{:.1%}")


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
    """One screen of presenter mode: a title, a figure and the data behind it."""

    key: str
    title: str
    figure: go.Figure
    data: pd.DataFrame


def slides(cards: CardSet, split: str) -> list[Slide]:
    """Every chart of the comparison, one per screen, in presenting order."""
    table = summary_table(cards, split)
    colors = model_colors(cards.names)
    history = history_frame(cards)
    per_class = per_class_frame(cards, split)
    deck = [
        Slide("table", "The models", table_figure(table), table),
        Slide("overview", "Accuracy and macro-F1", overview_figure(table, split), table),
        Slide("speed", "Speed against accuracy", speed_figure(table, split), table),
    ]
    if not history.empty:
        for metric in ("loss", "accuracy"):
            deck.append(
                Slide(
                    f"training_{metric}",
                    f"Training {metric}",
                    training_figure(history, metric, colors),
                    history,
                )
            )
    for card in cards.cards:
        if card.confusion(split) is None:
            continue
        for normalise in (False, True):
            suffix = "normalised" if normalise else "counts"
            deck.append(
                Slide(
                    f"confusion_{suffix}_{card.name}",
                    f"{card.name}: confusion ({suffix})",
                    confusion_figure(card, split, normalise),
                    confusion_frame(card, split, normalise).reset_index(),
                )
            )
    deck.append(Slide("per_class", "F1 per emotion", per_class_figure(per_class, split), per_class))
    return deck


# --------------------------------------------------------------------------- same face


def predict_every_model(face: np.ndarray, models: Mapping[str, Any]) -> pd.DataFrame:
    """Run each model on one 48x48 face: model, emotion, probability, rank and CPU ms."""
    rows = []
    batch = np.asarray(face, dtype=np.uint8)[None]
    for name, model in models.items():
        start = time.perf_counter()
        probabilities = np.asarray(model.predict(batch))[0]
        ms = (time.perf_counter() - start) * 1000
        order = np.argsort(-probabilities)
        rank = np.empty(len(order), dtype=int)
        rank[order] = np.arange(1, len(order) + 1)
        for i, emotion in enumerate(EMOTIONS):
            rows.append(
                {
                    "model": name,
                    "emotion": emotion,
                    "probability": float(probabilities[i]),
                    "rank": int(rank[i]),
                    "ms": ms,
                }
            )
    return pd.DataFrame(rows, columns=["model", "emotion", "probability", "rank", "ms"])


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


def top_predictions(predictions: pd.DataFrame) -> pd.DataFrame:
    """Each model's most likely emotion, its probability and its run time."""
    top = predictions[predictions["rank"] == 1]
    return top[["model", "emotion", "probability", "ms"]].reset_index(drop=True)


def face_from_photo(image: np.ndarray, detector: Any) -> tuple[np.ndarray, bool]:
    """The largest detected face as a 48x48 crop, and whether a face was found.

    Without a face the centre square of the photo is used, so the panel still answers.
    """
    import cv2

    from core.vision.faces import FACE_SIZE, fit_width, prepare_face, to_gray

    image = fit_width(image)
    gray = to_gray(image)
    boxes = detector.detect(image)
    if boxes:
        return prepare_face(gray, boxes[0]), True
    height, width = gray.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = gray[top : top + side, left : left + side]
    return cv2.resize(square, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA), False


def models_to_run(cards: CardSet, model_paths: Iterable[Path]) -> dict[str, Path]:
    """Model name -> file for every shipped model file (cards' peers only if their file exists)."""
    chosen = {path.stem: path for path in model_paths}
    for card in cards.cards:
        if card.name not in chosen and card.model_file is not None:
            chosen[card.name] = card.model_file
    return chosen


def markdown_table(cards: CardSet) -> str:
    """The README's comparison table: PublicTest accuracy (plain and flip TTA), macro-F1,
    training CPU-hours and epochs, CPU ms per face and file size, straight from the cards."""
    plain = summary_table(cards, "test").set_index("model")
    tta = summary_table(cards, "test_tta_flip").set_index("model")
    lines = [
        "| model | PublicTest acc. | with flip TTA | macro-F1 | CPU-hours | epochs "
        "| CPU ms/face | file MB |",
        "|---|---|---|---|---|---|---|---|",
    ]

    for name, row in plain.iterrows():
        lines.append(
            f"| {name} | {_fmt(row['accuracy'], '{:.1%}')} "
            f"| {_fmt(tta.loc[name, 'accuracy'], '{:.1%}')} | {_fmt(row['macro_f1'], '{:.3f}')} "
            f"| {_fmt(row['cpu_hours'], '{:.2f}')} | {_fmt(row['epochs'], '{:.0f}')} "
            f"| {_fmt(row['cpu_ms_per_face'], '{:.2f}')} | {_fmt(row['file_size_mb'], '{:.1f}')} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Print the model cards as a markdown table.")
    parser.add_argument("--models", type=Path, default=MODELS_DIR)
    print(markdown_table(load_cards(parser.parse_args().models)))
