"""CPU latency of every shipped emotion model as the app runs it; prints one JSON object.

    python benchmarks/emotion_latency.py [--repeats 50]
    python benchmarks/emotion_latency.py --architecture resnet50v2 --image-size 64

`--architecture` times an untrained build of an architecture (speed does not depend on the
weights), for models still in training.

Median and p95 wall-clock ms per face at batch 1 and batch 8, after warm-up, through
`EmotionModel.predict` in the runtime the app uses (ONNX Runtime when it reproduces Keras,
see core.emotion.onnx_runtime), and through the Keras graph for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

import core  # noqa: F401
from core.emotion.cards import available_models
from core.emotion.model import EmotionModel


def measure(model: EmotionModel, batch: int, repeats: int) -> dict:
    faces = np.random.default_rng(0).integers(0, 256, (batch, 48, 48), dtype=np.uint8)
    for _ in range(5):
        model.predict(faces)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(faces)
        times.append((time.perf_counter() - start) * 1000 / batch)
    return {
        "median": round(float(np.median(times)), 3),
        "p95": round(float(np.percentile(times, 95)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--architecture", help="time an untrained build instead")
    parser.add_argument("--image-size", type=int, default=48)
    args = parser.parse_args()
    result = {"cpu_count": os.cpu_count(), "models": {}}
    if args.architecture:
        from core.emotion.architectures import ArchSpec, build_model

        spec = ArchSpec(args.architecture, args.image_size, 1, 0.4)
        name = f"{args.architecture}_{args.image_size}px_untrained"
        pairs = [(EmotionModel(build_model(spec), name), EmotionModel(build_model(spec), name))]
    else:
        pairs = [(EmotionModel.load(p), EmotionModel.load(p)) for p in available_models()]
    for model, keras_model in pairs:
        keras_model.runtime = "keras"
        app = {"batch1": measure(model, 1, args.repeats), "batch8": measure(model, 8, args.repeats)}
        result["models"][model.name] = {
            "parameters": model.parameters,
            "runtime": model.runtime,
            "ms_per_face_batch1": app["batch1"],
            "ms_per_face_batch8": app["batch8"],
            "keras_ms_per_face_batch1": measure(keras_model, 1, args.repeats),
            "keras_ms_per_face_batch8": measure(keras_model, 8, args.repeats),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    from core.training.guard import pause_training

    with pause_training():  # a running training would skew the figures (and be slowed)
        main()
