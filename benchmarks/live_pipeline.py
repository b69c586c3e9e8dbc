"""Benchmark the live page's exact frame callback on 640x480 video; prints one JSON object.

    python benchmarks/live_pipeline.py [--faces 1 3] [--frames 150] [--model models/cnn.npz]
                                       [--video some.y4m] [--detect-every 1 4]

Without --video, frames are generated from real FER2013 PublicTest faces (detectable ones)
pasted onto varied backgrounds, drifting a few pixels per frame. Reports processed frames per
second, p50/p95 ms per frame split into detection, preprocessing and inference, faces found vs
present, and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

import core  # noqa: F401
from core.emotion.cards import default_model_path
from core.emotion.model import EmotionModel
from core.paths import fer2013_npz
from core.training.fer_data import load_fer
from core.vision.faces import FaceBox, FaceDetector
from core.vision.live import LiveAnalyzer, make_frame_callback
from tests.support.scenes import detectable_faces, layout, scene


def generated_frames(count: int, faces: int, n_frames: int) -> list[np.ndarray]:
    x, _ = load_fer(fer2013_npz()).get("test")
    detector = FaceDetector()
    picks = detectable_faces(x[:300], detector, size=180, limit=faces)
    boxes = layout(faces, 200 if faces == 1 else 180)
    frames = []
    for i in range(n_frames):
        moved = [FaceBox(b.x + (i % 16) - 8, b.y + (i % 10) - 5, b.w, b.h) for b in boxes]
        frames.append(scene([x[j] for j in picks], moved, seed=i % 7 + 10 * count))
    return frames


def read_y4m(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def run(
    frames: list[np.ndarray], model: EmotionModel, faces_present: int | None, detect_every: int
) -> dict:
    import av

    analyzer = LiveAnalyzer(model, FaceDetector(), detect_every=detect_every)
    callback = make_frame_callback(analyzer)
    packets = [av.VideoFrame.from_ndarray(f, format="bgr24") for f in frames]
    callback(packets[0])  # warm-up
    totals, detect, prep, infer, found = [], [], [], [], []
    start = time.perf_counter()
    for packet in packets:
        t0 = time.perf_counter()
        callback(packet)
        totals.append((time.perf_counter() - t0) * 1000)
        times = analyzer.last_times
        detect.append(times.detect)
        prep.append(times.preprocess)
        infer.append(times.infer)
        found.append(len(analyzer.snapshot().faces))
    elapsed = time.perf_counter() - start

    def pct(values: list[float]) -> dict:
        return {
            "p50": round(float(np.percentile(values, 50)), 2),
            "p95": round(float(np.percentile(values, 95)), 2),
        }

    return {
        "detect_every": detect_every,
        "frames": len(frames),
        "processed_fps": round(len(frames) / elapsed, 1),
        "ms_per_frame": pct(totals),
        "ms_detect": pct(detect),
        "ms_preprocess": pct(prep),
        "ms_inference": pct(infer),
        "faces_present": faces_present,
        "faces_found_mean": round(float(np.mean(found)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--faces", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--video", type=Path)
    parser.add_argument(
        "--detect-every",
        type=int,
        nargs="+",
        default=[LiveAnalyzer.detect_every, 1],
        help="full-frame face search every N frames (first = the page's setting)",
    )
    args = parser.parse_args()
    model = EmotionModel.load(args.model or default_model_path())
    result: dict = {"model": model.name, "frame_size": "640x480"}
    for every in args.detect_every:
        suffix = "" if every == args.detect_every[0] else f"_detect_every_{every}"
        if args.video:
            result["video" + suffix] = run(read_y4m(args.video), model, None, every)
            continue
        for count in args.faces:
            frames = generated_frames(count, count, args.frames)
            result[f"faces_{count}{suffix}"] = run(frames, model, count, every)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    from core.training.guard import pause_training

    with pause_training():  # a running training would skew the figures (and be slowed)
        main()
