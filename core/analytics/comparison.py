"""Model Comparison, the tables: model cards in, pandas frames and the README's table out.

Every number comes from a card (core.emotion.cards, read from `models/*.json`): nothing is typed
by hand. Missing values stay NaN in the frames (shown as "—"). Also here: running every model on
the same face. Plotly figures and presenter slides are in core.analytics.comparison_figures.
No streamlit here; the page wires these to widgets.

    python -m core.analytics.comparison [--models models]   # prints the README's table
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.emotion.cards import MISSING, CardSet, ModelCard, as_number, dig, load_cards
from core.labels import EMOTIONS
from core.paths import MODELS_DIR

# --------------------------------------------------------------------------- tables


def summary_table(cards: CardSet, split: str = "test") -> pd.DataFrame:
    """One row per model: accuracy, macro-F1, per-class F1, size and speed (NaN if unknown)."""
    rows = []
    for card in cards.cards:
        metrics = card.metrics(split) or {}
        per_class = metrics.get("per_class") if isinstance(metrics, Mapping) else None
        size = as_number(card.data.get("file_size_bytes"))
        row: dict[str, Any] = {
            "model": card.name,
            "kind": card.kind,
            "architecture": card.architecture,
            "accuracy": as_number(metrics.get("accuracy")),
            "macro_f1": as_number(metrics.get("macro_f1")),
        }
        for emotion in EMOTIONS:
            row[f"f1_{emotion}"] = as_number(dig(per_class or {}, emotion, "f1"))
        row.update(
            {
                "n_images": as_number(metrics.get("n")),
                "parameters": as_number(card.data.get("parameters")),
                "file_size_mb": size / 1e6,
                "cpu_ms_per_face": as_number(dig(card.data, "latency", "ms_per_face_batch1")),
                "cpu_ms_per_face_batch32": as_number(
                    dig(card.data, "latency", "ms_per_face_batch32")
                ),
                "epochs": as_number(card.data.get("epochs_trained")),
                "best_epoch": as_number(card.data.get("best_epoch")),
                "cpu_hours": as_number(card.data.get("cpu_hours")),
                # with the attempts of the same run lost before it (their records summed in)
                "cpu_hours_including_lost": as_number(
                    card.data.get("cpu_hours_including_lost", card.data.get("cpu_hours"))
                ),
                "card": card.path.name,
            }
        )
        rows.append(row)
    columns = [
        "model", "kind", "architecture", "accuracy", "macro_f1",
        *[f"f1_{e}" for e in EMOTIONS],
        "n_images", "parameters", "file_size_mb", "cpu_ms_per_face", "cpu_ms_per_face_batch32",
        "epochs", "best_epoch", "cpu_hours", "cpu_hours_including_lost", "card",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def peer_caption(cards: CardSet) -> str | None:
    """The caption beside results that include peer models (None without peers): how they were
    evaluated, and each peer card's data note (e.g. PublicTest may overlap its training data)."""
    peers = [card for card in cards.cards if card.is_peer]
    if not peers:
        return None
    notes = [
        f"{card.name}: {str(note).strip()}"
        for card in peers
        if isinstance(note := dig(card.data, "data", "note"), str) and note.strip()
    ]
    return " ".join(
        [
            f"Peer model(s) {', '.join(card.name for card in peers)}: evaluated by this repo on "
            "the same split but not trained here; fields their card lacks show as —.",
            *notes,
        ]
    )


def cpu_hours_cell(cpu_hours: float, including_lost: float) -> str:
    """The CPU-hours of a model's run, and with its lost attempts when they cost more."""
    cell = format_value(cpu_hours, "{:.2f}")
    if np.isfinite(including_lost) and np.isfinite(cpu_hours) and including_lost > cpu_hours + 5e-3:
        cell += f" ({including_lost:.2f} with lost attempts)"
    return cell


RUN_COLUMNS = [
    "model", "run", "status", "epochs", "best_epoch", "image_size", "precision", "cpu_hours",
    "cpu_hours_including_lost", "wall_hours", "train_img_per_s", "val_accuracy", "test_accuracy",
    "test_accuracy_flip", "test_macro_f1", "source",
]  # fmt: skip
RUN_TEXT_COLUMNS = ("model", "run", "status", "precision", "source")


def run_summary(card_data: Mapping[str, Any], source: str) -> dict[str, Any]:
    """One training run in a line, from its card: what a later run's card keeps of it in
    `previous_runs` (`source` says where the card was read, e.g. a git commit)."""
    recipe = card_data.get("recipe")
    recipe = recipe if isinstance(recipe, Mapping) else {}
    return {
        "status": card_data.get("training_status"),
        "epochs": card_data.get("epochs_trained"),
        "best_epoch": card_data.get("best_epoch"),
        "image_size": recipe.get("image_size"),
        "precision": recipe.get("precision"),
        "cpu_hours": card_data.get("cpu_hours"),
        "cpu_hours_including_lost": card_data.get(
            "cpu_hours_including_lost", card_data.get("cpu_hours")
        ),
        "wall_hours": card_data.get("wall_hours"),
        "train_img_per_s": card_data.get("train_img_per_s"),
        "val_accuracy": dig(card_data, "metrics", "val", "accuracy"),
        "test_accuracy": dig(card_data, "metrics", "test", "accuracy"),
        "test_accuracy_flip": dig(card_data, "metrics", "test_tta_flip", "accuracy"),
        "test_macro_f1": dig(card_data, "metrics", "test", "macro_f1"),
        "source": source,
    }


def runs_frame(cards: CardSet) -> pd.DataFrame:
    """Every training run behind the cards that record earlier runs (`previous_runs`), oldest
    first, the shipped one last: the story of a model trained more than once."""
    rows = []
    for card in cards.cards:
        previous = card.data.get("previous_runs")
        if not isinstance(previous, list) or not previous:
            continue
        runs = [*(r for r in previous if isinstance(r, Mapping)), run_summary(card.data, "shipped")]
        for number, run in enumerate(runs, start=1):
            numbers = {k: as_number(run.get(k)) for k in RUN_COLUMNS if k not in RUN_TEXT_COLUMNS}
            texts = {k: run.get(k) for k in RUN_TEXT_COLUMNS}
            rows.append({**numbers, **texts, "model": card.name, "run": number})
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def history_frame(cards: CardSet) -> pd.DataFrame:
    """Training curves in long form: model, epoch, cpu_hours (spent by the end of that epoch,
    NaN when the card did not time its epochs), phase (train/validation), loss, accuracy."""
    rows = []
    for card in cards.cards:
        cpu_seconds = 0.0
        for i, entry in enumerate(card.history):
            epoch = as_number(entry.get("epoch"))
            epoch = float(i + 1) if np.isnan(epoch) else epoch
            cpu_seconds += as_number(entry.get("cpu_seconds"))
            for phase, prefix in (("train", ""), ("validation", "val_")):
                loss = as_number(entry.get(f"{prefix}loss"))
                accuracy = as_number(entry.get(f"{prefix}accuracy"))
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
PROGRESS_COLUMNS = ["series", "run", "status", "epoch", "cpu_hours", "val_accuracy", "img_per_s"]


def _has_shipped(run: str, cards: CardSet) -> bool:
    """True when a card ships run `run` finished (under its own name or promoted)."""
    return any(
        run in (card.name, card.data.get("trained_as"))
        and not str(card.data.get("training_status") or "interim").startswith("interim")
        for card in cards.cards
    )


def still_training(records: Iterable[Mapping[str, Any]], cards: CardSet) -> list[Mapping[str, Any]]:
    """The progress records (core.training.progress) of runs no card ships finished yet."""
    return [r for r in records if not _has_shipped(str(r.get("run")), cards)]


def progress_frame(records: Iterable[Mapping[str, Any]], cards: CardSet) -> pd.DataFrame:
    """Validation accuracy per epoch of each run still training, beside the shipped card of
    the same model (its recipe's `model`) when there is one: is the new run ahead?"""
    rows = []

    def add(series: str, run: str, status: str, history: Iterable[Mapping[str, Any]]) -> None:
        cpu_seconds = 0.0
        for entry in history:
            cpu_seconds += as_number(entry.get("cpu_seconds"))
            rows.append({
                "series": series, "run": run, "status": status,
                "epoch": as_number(entry.get("epoch")), "cpu_hours": cpu_seconds / 3600.0,
                "val_accuracy": as_number(entry.get("val_accuracy")),
                "img_per_s": as_number(entry.get("img_per_s")),
            })  # fmt: skip

    shipped: set[str] = set()
    for record in records:
        run = str(record.get("run"))
        add(f"{run} · training", run, "training", record.get("history") or [])
        model = str(dig(record, "recipe", "model") or "")
        reference = next((c for c in cards.cards if c.name == model), None)
        if reference is not None and model not in shipped:
            shipped.add(model)
            add(f"{model} · shipped", model, "shipped", reference.history)
    return pd.DataFrame(rows, columns=PROGRESS_COLUMNS)


def cpu_hours_to_go(record: Mapping[str, Any]) -> float:
    """CPU-hours the run still needs: epochs left times the median CPU time of its epochs so
    far (CPU time, unlike wall time, barely changes when other work shares the machine); NaN
    when no epoch was timed."""
    left = as_number(record.get("epochs_planned")) - as_number(record.get("epochs_done"))
    per_epoch = [as_number(h.get("cpu_seconds")) for h in record.get("history") or []]
    per_epoch = [s for s in per_epoch if not np.isnan(s)]
    if not per_epoch or np.isnan(left):
        return float("nan")
    return max(left, 0.0) * float(np.median(per_epoch)) / 3600.0


def progress_summary(record: Mapping[str, Any]) -> str:
    """One line on where a run stands, for a caption."""
    done, planned = record.get("epochs_done"), record.get("epochs_planned")
    to_go = cpu_hours_to_go(record)
    estimate = "" if np.isnan(to_go) else f"; about {to_go:.1f} CPU-hours to go"
    return (
        f"{record.get('run')}: epoch {done} of {planned}, "
        f"best validation {as_number(record.get('best_val_accuracy')):.3f} at epoch "
        f"{record.get('best_epoch')}, {as_number(record.get('cpu_hours')):.2f} CPU-hours so far"
        f"{estimate} (read from {record.get('source', 'its progress record')}; resume: "
        f"`{record.get('resume', 'python -m core.train --resume runs/<name>')}`)"
    )


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
                    "precision": as_number(stats.get("precision")),
                    "recall": as_number(stats.get("recall")),
                    "f1": as_number(stats.get("f1")),
                    "support": as_number(stats.get("support")),
                }
            )
    return pd.DataFrame(rows, columns=["model", "emotion", "precision", "recall", "f1", "support"])


def format_value(value: float, pattern: str) -> str:
    """`pattern.format(value)`, or "—" for a missing (None or NaN) value."""
    return MISSING if value is None or np.isnan(value) else pattern.format(value)


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
        cells = [
            str(name),
            format_value(row["accuracy"], "{:.1%}"),
            format_value(tta.loc[name, "accuracy"], "{:.1%}"),
            format_value(row["macro_f1"], "{:.3f}"),
            cpu_hours_cell(row["cpu_hours"], row["cpu_hours_including_lost"]),
            format_value(row["epochs"], "{:.0f}"),
            format_value(row["cpu_ms_per_face"], "{:.2f}"),
            format_value(row["file_size_mb"], "{:.1f}"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


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


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Print the model cards as a markdown table.")
    parser.add_argument("--models", type=Path, default=MODELS_DIR)
    print(markdown_table(load_cards(parser.parse_args().models)))
