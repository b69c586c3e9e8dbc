"""Model cards: the one reading of `models/*.json`, and which shipped model the app offers first.

A card is written by `core.training.evaluate.write_card` (or is a peer card with
``"kind": "peer"``, such as the `fer` package's model, which may lack history, train metrics or a
model file). `load_cards` reads a models folder into a `CardSet` (unreadable files become
`problems`, never exceptions); `available_models` and `default_model_path` rank the shipped
`.npz` files by their card's accuracy on the validation split carved from Training (never
PublicTest, which only reports). No plotly, no TensorFlow here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.emotion.model import ModelLoadError
from core.labels import EMOTIONS
from core.paths import MODELS_DIR

MISSING = "—"
# Splits in the order the pages offer them, with the words they use for each.
SPLIT_LABELS: dict[str, str] = {
    "test": "FER2013 PublicTest (all images)",
    "test_unseen": "FER2013 PublicTest, images not in Training",
    "test_tta_flip": "FER2013 PublicTest (all), flip TTA",
    "test_unseen_tta_flip": "FER2013 PublicTest not in Training, flip TTA",
    "test_tta_tencrop": "FER2013 PublicTest (all), ten-crop TTA",
    "test_unseen_tta_tencrop": "FER2013 PublicTest not in Training, ten-crop TTA",
    "val": "validation split carved from Training",
    "val_tta_flip": "validation split carved from Training, flip TTA",
    "val_tta_tencrop": "validation split carved from Training, ten-crop TTA",
    "val_unseen": "validation split, faces not elsewhere in Training",
    "val_unseen_tta_flip": "validation split, faces not elsewhere in Training, flip TTA",
    "val_unseen_tta_tencrop": "validation split, faces not elsewhere in Training, ten-crop TTA",
    "train": "Training (minus validation)",
}
RANKING_SPLIT = "val"  # models are ranked on this split only


class CardError(ValueError):
    """A file that is not a readable model card; the message names the file."""


def split_label(split: str) -> str:
    """The words the pages use for a split (the split's key when unknown)."""
    return SPLIT_LABELS.get(split, split)


def as_number(value: Any) -> float:
    """A float, or NaN for anything missing or not numeric (booleans included)."""
    if isinstance(value, bool) or value is None:
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def dig(data: Mapping[str, Any], *keys: str) -> Any:
    """data[k1][k2]...; None when any level is missing."""
    current: Any = data
    for key in keys:
        if not isinstance(current, Mapping) or key not in current:
            return None
        current = current[key]
    return current


# --------------------------------------------------------------------------- one card


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

    def accuracy(self, split: str = RANKING_SPLIT) -> float | None:
        """Accuracy on `split`, or None when the card has no number for it."""
        value = as_number(dig(self.data, "metrics", split, "accuracy"))
        return None if np.isnan(value) else value

    def splits(self) -> list[str]:
        metrics = self.data.get("metrics")
        return [s for s in metrics if isinstance(metrics[s], Mapping)] if metrics else []

    def confusion(self, split: str) -> np.ndarray | None:
        """The 7x7 confusion matrix (rows: true emotion, columns: predicted), or None."""
        found = self.metrics(split)
        matrix = found.get("confusion_matrix") if found else None
        if matrix is None:
            return None
        try:
            array = np.asarray(matrix, dtype=float)
        except (TypeError, ValueError):  # ragged rows or text cells
            return None
        return array if array.shape == (len(EMOTIONS), len(EMOTIONS)) else None


def read_card(path: Path | str) -> ModelCard:
    """Parse one card file; raises CardError when it is unreadable or not a model card."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CardError(f"{path.name} could not be read as JSON ({error})") from error
    if not isinstance(data, Mapping) or not isinstance(data.get("metrics"), Mapping):
        raise CardError(f"{path.name} is not a model card (no 'metrics')")
    return ModelCard(path=path, data=data)


# --------------------------------------------------------------------------- a folder of cards


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


def _best_first(accuracy: float | None, name: str) -> tuple[float, str]:
    """Sort key: higher validation accuracy first, then by name; no accuracy goes last."""
    return (-accuracy if accuracy is not None else 1.0, name)


def _card_rank(card: ModelCard) -> tuple[int, float, str]:
    """Ours before peers, each best first on the Training-carved validation split."""
    return (int(card.is_peer), *_best_first(card.accuracy(RANKING_SPLIT), card.name))


def load_cards(models_dir: Path | str = MODELS_DIR) -> CardSet:
    """Every model card in `models_dir`: ours best first (validation accuracy), then peers."""
    folder = Path(models_dir)
    found = CardSet(folder=folder)
    if not folder.is_dir():
        found.problems.append(f"The models folder {folder} does not exist.")
        return found
    readable: list[ModelCard] = []
    for path in sorted(folder.glob("*.json")):
        try:
            readable.append(read_card(path))
        except CardError as error:
            found.problems.append(f"{error}; skipped.")
    by_name: dict[str, ModelCard] = {}
    # A card named after its own file first: a copy (cnn_backup.json saying "cnn") loses.
    for card in sorted(readable, key=lambda c: (c.path.stem != c.name, c.path.name)):
        if (twin := by_name.get(card.name)) is not None:
            found.problems.append(
                f"{card.path.name} has the name {card.name!r} of {twin.path.name}; skipped "
                "(give it a name of its own)."
            )
            continue
        by_name[card.name] = card
    found.cards = sorted(by_name.values(), key=_card_rank)
    return found


# --------------------------------------------------------------------------- shipped models


def card_accuracy(model_path: Path, split: str = RANKING_SPLIT) -> float | None:
    """A shipped model's accuracy on `split` from its card (the `.json` beside it), or None
    without a readable one."""
    try:
        return read_card(Path(model_path).with_suffix(".json")).accuracy(split)
    except CardError:
        return None


def available_models(models_dir: Path = MODELS_DIR, first: str | None = None) -> list[Path]:
    """Shipped model files, best first: by their card's accuracy on the validation split carved
    from Training (never PublicTest, which only reports); models without a card come last.
    The model named `first` (a file stem), if shipped, leads instead."""
    folder = Path(models_dir)
    accuracy = {card.path.stem: card.accuracy(RANKING_SPLIT) for card in load_cards(folder).cards}

    def rank(path: Path) -> tuple[bool, float, str]:
        return (path.stem != first, *_best_first(accuracy.get(path.stem), path.stem))

    return sorted(folder.glob("*.npz"), key=rank)


def default_model_path(models_dir: Path = MODELS_DIR, first: str | None = None) -> Path:
    """The model the app loads when the user picks none: `first` if shipped, else the best."""
    models = available_models(models_dir, first)
    if not models:
        raise ModelLoadError(
            f"No emotion model in {models_dir}. Restore models/ from the repository or train "
            "one: python -m core.train --model cnn --data ../shared/data/fer2013/fer2013.npz"
        )
    return models[0]
