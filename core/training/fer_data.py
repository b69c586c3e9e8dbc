"""FER2013 readers (npz, Kaggle CSV, image folders), honest splits, and duplicate finding.

Every reader returns a `FerSplits` of uint8 arrays shaped (n, 48, 48) with labels in FER2013's
order (core.labels.EMOTIONS). Training choices use `carve_validation`, a stratified split of
Training; FER2013 PublicTest is kept for the final report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.labels import EMOTIONS, FACE_SIZE, NUM_EMOTIONS

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
# Folder/CSV split names mapped to our split names.
_SPLIT_ALIASES = {
    "training": "train",
    "train": "train",
    "publictest": "test",
    "test": "test",
    "val": "test",
    "validation": "test",
    "privatetest": "private",
}


class FerDataError(ValueError):
    """The data file or folder is not a FER2013-style dataset we can read."""


@dataclass
class FerSplits:
    """Named splits of 48x48 grayscale faces; any split may be absent."""

    arrays: dict[str, tuple[np.ndarray, np.ndarray]]
    source: str

    def get(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Faces and labels of one split, or a clear error naming the splits we do have."""
        if split not in self.arrays:
            raise FerDataError(
                f"{self.source} has no '{split}' split (it has: {', '.join(self.arrays) or 'none'})"
            )
        return self.arrays[split]


def _check(x: np.ndarray, y: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    y = np.asarray(y).astype(np.int64).reshape(-1)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or x.shape[1:] != (FACE_SIZE, FACE_SIZE):
        raise FerDataError(f"{what}: expected faces shaped (n, 48, 48), got {x.shape}")
    if len(x) != len(y):
        raise FerDataError(f"{what}: {len(x)} faces but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= NUM_EMOTIONS):
        raise FerDataError(f"{what}: labels must be 0..{NUM_EMOTIONS - 1} (FER2013 order)")
    if x.dtype != np.uint8:
        x = np.clip(x, 0, 255).astype(np.uint8)
    return x, y


def load_npz(path: Path) -> FerSplits:
    """Read x_train/y_train, x_val/y_val (PublicTest) and x_test/y_test, whichever exist."""
    with np.load(path) as npz:
        keys = set(npz.files)
        arrays = {}
        for split, (xk, yk) in {
            "train": ("x_train", "y_train"),
            "test": ("x_val", "y_val"),
        }.items():
            if xk in keys and yk in keys:
                arrays[split] = _check(npz[xk], npz[yk], f"{path.name}:{xk}")
        # A file holding only x_test/y_test is a test set (evaluate accepts it).
        if "x_test" in keys and "y_test" in keys:
            name = "test" if "test" not in arrays else "private"
            arrays[name] = _check(npz["x_test"], npz["y_test"], f"{path.name}:x_test")
    if not arrays:
        raise FerDataError(f"{path} holds none of x_train/y_train, x_val/y_val, x_test/y_test")
    return FerSplits(arrays, str(path))


def load_csv(path: Path) -> FerSplits:
    """Read Kaggle's fer2013.csv (emotion, pixels, Usage)."""
    import pandas as pd

    frame = pd.read_csv(path)
    missing = {"emotion", "pixels"} - set(frame.columns)
    if missing:
        raise FerDataError(f"{path} lacks column(s) {sorted(missing)}: not a FER2013 CSV")
    pixels = np.stack(
        [np.asarray(row.split(), dtype=np.uint8) for row in frame["pixels"].astype(str)]
    )
    if pixels.shape[1] != FACE_SIZE * FACE_SIZE:
        raise FerDataError(f"{path}: each 'pixels' row must hold 2304 values")
    faces = pixels.reshape(-1, FACE_SIZE, FACE_SIZE)
    usage = frame["Usage"] if "Usage" in frame.columns else pd.Series(["Training"] * len(frame))
    arrays = {}
    for raw, split in _SPLIT_ALIASES.items():
        mask = usage.str.lower().str.replace(" ", "").to_numpy() == raw
        if mask.any() and split not in arrays:
            arrays[split] = _check(faces[mask], frame["emotion"].to_numpy()[mask], str(path))
    return FerSplits(arrays, str(path))


def load_folders(root: Path) -> FerSplits:
    """Read `<root>/<split>/<class>/*.jpg` (class folder names are FER2013 emotion names)."""
    import cv2

    arrays = {}
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        split = _SPLIT_ALIASES.get(split_dir.name.lower())
        if split is None:
            continue
        faces, labels = [], []
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            name = class_dir.name.lower()
            if name not in EMOTIONS:
                raise FerDataError(f"{class_dir}: folder name must be one of {EMOTIONS}")
            for image_path in sorted(class_dir.iterdir()):
                if image_path.suffix.lower() not in _IMAGE_SUFFIXES:
                    continue
                image = cv2.imread(str(image_path), cv2.IMREAD_GRAYSCALE)
                if image is None:
                    raise FerDataError(f"{image_path} is not a readable image")
                faces.append(cv2.resize(image, (FACE_SIZE, FACE_SIZE)))
                labels.append(EMOTIONS.index(name))
        if faces:
            arrays[split] = _check(np.stack(faces), np.asarray(labels), str(split_dir))
    if not arrays:
        raise FerDataError(f"{root} has no <split>/<emotion>/ image folders")
    return FerSplits(arrays, str(root))


def load_fer(path: str | Path) -> FerSplits:
    """Read a FER2013-style dataset from an .npz, a Kaggle .csv or a folder tree."""
    path = Path(path)
    if not path.exists():
        raise FerDataError(f"{path} does not exist")
    if path.is_dir():
        return load_folders(path)
    if path.suffix == ".npz":
        return load_npz(path)
    if path.suffix == ".csv":
        return load_csv(path)
    raise FerDataError(f"{path}: expected an .npz, a fer2013 .csv or a folder of images")


def carve_validation(
    labels: np.ndarray, fraction: float = 0.1, seed: int = 1234
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train_idx, val_idx) split of Training indices; same seed, same split."""
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for cls in range(NUM_EMOTIONS):
        members = np.flatnonzero(labels == cls)
        rng.shuffle(members)
        n_val = round(len(members) * fraction)
        val_idx.append(members[:n_val])
        train_idx.append(members[n_val:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))


def face_hashes(faces: np.ndarray) -> list[str]:
    """A content hash per 48x48 face, to find byte-identical duplicates across splits."""
    return [hashlib.sha1(face.tobytes()).hexdigest() for face in faces]


def unseen_mask(faces: np.ndarray, reference: Iterable[np.ndarray]) -> np.ndarray:
    """True for each face whose exact pixels appear in none of the reference arrays."""
    seen: set[str] = set()
    for array in reference:
        seen.update(face_hashes(array))
    return np.array([h not in seen for h in face_hashes(faces)], dtype=bool)


def class_weights(labels: np.ndarray, power: float = 0.5) -> dict[int, float]:
    """Inverse-frequency class weights softened by `power` (0 = none, 1 = full), mean 1."""
    counts = np.bincount(labels, minlength=NUM_EMOTIONS).astype(np.float64)
    weights = (counts.sum() / np.maximum(counts, 1)) ** power
    weights *= len(labels) / float((weights[labels]).sum())
    return {i: float(w) for i, w in enumerate(weights)}
