"""Pilot recipes for a long training run: measured speed of each, and short accuracy runs.

    python benchmarks/pilot.py --model resnet50v2 --sizes 48 64 80 --precisions bf16 fp32
    python benchmarks/pilot.py --model resnet50v2 --sizes 48 80 --accuracy-epochs 2 --limit 6000

Speed: each recipe trains `--steps` batches of real FER2013 Training faces through the exact
`core.train` model, optimizer and augmentation pipeline (after one warm-up batch), in its own
process; wall and process CPU time give img/s and CPU-hours per full epoch.
Accuracy (optional): a short `core.train` run per recipe on a subset, scored on the validation
split carved from Training. The table is printed as JSON and saved to runs/<model>/pilot.json
(speed) or runs/<model>/accuracy_pilot.json, where the card of the run named <model> picks it up;
`--out PATH` saves it elsewhere, so a speed-only check leaves the table a run's card reads alone.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.paths import RUNS_DIR, fer2013_npz  # noqa: E402
from core.training.guard import pause_training  # noqa: E402

TRAIN_FACES = 25_838  # FER2013 Training minus the 10% validation carve


def measure_speed(
    model: str, data: str, size: int, precision: str, steps: int, threads: str,
    feed: str = "pipeline",
) -> dict:  # fmt: skip
    """Train `steps` batches of the real recipe; this process only (call in a fresh one).

    `threads` is "default" (TensorFlow's choice) or "INTRAxINTER" (e.g. "2x1"), applied
    before TensorFlow starts, as `core.train --threads` does. `feed` "pipeline" is core.train's
    tf.data with augmentation through `fit`; "fixed" trains the same model on one fixed batch
    with `train_on_batch`, no tf.data and no augmentation: the floor the pipeline costs above."""
    import os

    import numpy as np

    from core.training.train import apply_threads

    apply_threads(threads)

    import core  # noqa: F401
    from core.training.fer_data import load_fer
    from core.training.train import TrainConfig, build_and_compile, make_dataset, set_precision

    config = TrainConfig(
        model=model, data=data, image_size=size, precision=precision, optimizer="sgd", lr=0.05
    )
    set_precision(precision)
    x, y = load_fer(data).get("train")
    n = config.batch_size * (steps + 1)
    x, y = x[:n], y[:n]
    net, _ = build_and_compile(config, steps + 1)
    weights = np.ones(len(y), np.float32)
    if feed == "fixed":
        import tensorflow as tf

        batch = config.batch_size
        faces_batch = tf.constant(x[:batch, ..., None].astype(np.float32))
        labels_batch, weights_batch = tf.one_hot(y[:batch], 7), tf.constant(weights[:batch])

        def train() -> None:
            for _ in range(steps):
                net.train_on_batch(faces_batch, labels_batch, sample_weight=weights_batch)

        net.train_on_batch(faces_batch, labels_batch, sample_weight=weights_batch)  # warm up
    else:
        batches = make_dataset(x, y, config, epoch=0, sample_weights=weights)
        net.fit(batches.take(1), verbose=0)  # trace and warm up

        def train() -> None:
            net.fit(batches.skip(1), verbose=0)

    load_before = os.getloadavg()[0]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    train()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    faces = steps * config.batch_size
    return {
        "feed": feed,
        "image_size": size,
        "precision": precision,
        "threads": threads,
        "batch_size": config.batch_size,
        "img_per_s": round(faces / wall, 1),
        "cores_busy": round(cpu / wall, 2),  # this process's CPU time over wall time
        "loadavg_1min_before": round(load_before, 2),
        "loadavg_1min_after": round(os.getloadavg()[0], 2),
        "cpu_seconds_per_1k_faces": round(cpu / faces * 1000, 1),
        "cpu_hours_per_epoch": round(cpu / faces * TRAIN_FACES / 3600, 3),
        "wall_minutes_per_epoch": round(wall / faces * TRAIN_FACES / 60, 1),
    }


# Accuracy pilot recipes (issue #15): each a core.train argument list, run for the same short
# schedule on the same Training subset and scored on the Training-carved validation split.
# fmt: off
_LIGHT = ["--lr", "0.1", "--weight-decay", "5e-4", "--erase-probability", "0.25",
          "--dropout", "0.2", "--label-smoothing", "0.1", "--class-weight-power", "0.3"]
RECIPES: dict[str, list[str]] = {
    # The shipped 50.6% run: lr 0.02 and every regulariser at full strength.
    "old-64px": ["--image-size", "64", "--lr", "0.02", "--weight-decay", "5e-4",
                 "--erase-probability", "0.5", "--dropout", "0.4"],
    # Published from-scratch ResNet settings: lr 0.1, light regularisation.
    "light-64px": ["--image-size", "64", *_LIGHT],
    # The same at 96 px: stages at 24/12/6/3 instead of 16/8/4/2, ~2x the cost.
    "light-96px": ["--image-size", "96", *_LIGHT],
    # The shipped recipe at 96 px: resolution alone, at the learning rate the pilot prefers.
    "old-96px": ["--image-size", "96", "--lr", "0.02", "--weight-decay", "5e-4",
                 "--erase-probability", "0.5", "--dropout", "0.4"],
    # Light regularisation at half the learning rate: brackets lr.
    "light-lr0.05-64px": ["--image-size", "64", *_LIGHT[2:], "--lr", "0.05"],
}
# fmt: on


def accuracy_run(args: argparse.Namespace, recipe: str) -> dict:
    """A short `core.train` run of `recipe` (no export); validation by epoch and CPU cost."""
    name = f"pilot-{args.model}-{recipe}"
    run_dir = RUNS_DIR / name
    state_path = run_dir / "state.json"
    if not (state_path.exists() and json.loads(state_path.read_text()).get("finished")):
        command = [
            sys.executable,
            "-m",
            "core.train",
            "--model",
            args.model,
            "--data",
            args.data,
            "--name",
            name,
            "--epochs",
            str(args.accuracy_epochs),
            "--limit",
            str(args.limit),
            "--precision",
            args.precisions[0],
            "--optimizer",
            "sgd",
            "--warmup-epochs",
            "1",
            "--no-export",
            *RECIPES[recipe],
        ]
        if state_path.exists():
            command = [sys.executable, "-m", "core.train", "--resume", str(run_dir)]
        with (run_dir.parent / f"{name}.log").open("a") as log:
            subprocess.run(command, cwd=REPO, check=True, stdout=log, stderr=subprocess.STDOUT)
    state = json.loads(state_path.read_text())
    cpu_hours = state["cpu_seconds"] / 3600
    return {
        "recipe": recipe,
        "args": " ".join(RECIPES[recipe]),
        "train_faces": state["split"]["train"],
        "val_faces": state["split"]["val"],
        "epochs": state["epoch"],
        "best_val_accuracy": round(state["best_val_accuracy"], 4),
        "val_accuracy_by_epoch": [round(h["val_accuracy"], 4) for h in state["history"]],
        "train_accuracy_by_epoch": [round(h["accuracy"], 4) for h in state["history"]],
        "img_per_s_by_epoch": [round(h["img_per_s"], 1) for h in state["history"]],
        "cpu_hours": round(cpu_hours, 3),
        "wall_hours": round(state["wall_seconds"] / 3600, 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="resnet50v2")
    p.add_argument("--data", default=str(fer2013_npz()))
    p.add_argument("--sizes", type=int, nargs="+", default=[48, 64, 80])
    p.add_argument("--precisions", nargs="+", default=["bf16", "fp32"])
    p.add_argument("--steps", type=int, default=6, help="timed batches per recipe")
    p.add_argument(
        "--threads", nargs="+", default=["2x1"], help='"default" or INTRAxINTER, e.g. 2x1'
    )
    p.add_argument(
        "--feeds", nargs="+", choices=("pipeline", "fixed"), default=["pipeline"],
        help="pipeline: core.train's tf.data + augmentation; fixed: one batch, train_on_batch",
    )  # fmt: skip
    p.add_argument("--accuracy-epochs", type=int, default=0, help="0 = speed only")
    p.add_argument("--limit", type=int, default=6000, help="training faces for accuracy runs")
    p.add_argument(
        "--recipes", nargs="+", choices=RECIPES, help="accuracy pilot: these recipes only"
    )
    p.add_argument(
        "--out", type=Path,
        help="save the table here instead of runs/<model>/pilot.json (or accuracy_pilot.json)",
    )  # fmt: skip
    p.add_argument(
        "--one", nargs=4, metavar=("SIZE", "PRECISION", "THREADS", "FEED"), help=argparse.SUPPRESS
    )
    args = p.parse_args()
    if args.one:
        size, precision, *rest = args.one
        print(
            json.dumps(
                measure_speed(args.model, args.data, int(size), precision, args.steps, *rest)
            )
        )
        return
    if args.recipes:
        with pause_training():
            pilot = [accuracy_run(args, recipe) for recipe in args.recipes]
        table = {
            "what": f"accuracy pilot: {args.accuracy_epochs} epochs per recipe (warm-up 1, cosine "
            f"to 0), {args.limit} Training faces, {args.precisions[0]}, batch 128, SGD Nesterov",
            "split": "validation carved from FER2013 Training (seed 1234, 10%; a subset of "
            "limit/5 faces); PublicTest untouched",
            "command": "python benchmarks/pilot.py " + " ".join(sys.argv[1:]),
            "recipes": pilot,
        }
        out_path = args.out or RUNS_DIR / args.model / "accuracy_pilot.json"
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(table, indent=1))
        print(json.dumps(table, indent=1))
        return
    rows = []
    with pause_training():
        for precision in args.precisions:
            for size in args.sizes:
                for threads, feed in itertools.product(args.threads, args.feeds):
                    out = subprocess.run(
                        [sys.executable, __file__, "--model", args.model, "--data", args.data,
                         "--steps", str(args.steps), "--one", str(size), precision, threads,
                         feed],
                        cwd=REPO, check=True, capture_output=True, text=True,
                    ).stdout  # fmt: skip
                    row = json.loads(out.strip().splitlines()[-1])
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    table = {
        "what": "training speed of each recipe on real FER2013 Training faces through the "
        "core.train pipeline (SGD, augmentation, class weights), this 2-core CPU",
        "split": "FER2013 Training (validation carved with seed 1234, 10%) for accuracy runs",
        "command": "python benchmarks/pilot.py " + " ".join(sys.argv[1:]),
        "recipes": rows,
    }
    out_path = args.out or RUNS_DIR / args.model / "pilot.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(table, indent=1))
    print(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
