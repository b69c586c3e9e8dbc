"""Evaluate an emotion model and write model cards.

    python -m core.training.evaluate --model models/cnn.npz \
        --data ../shared/data/fer2013/fer2013.npz \
        --split test --json [--tta flip]

Splits: `test` is FER2013 PublicTest (x_val in the shared npz, or x_test in an npz holding only
a test set); `test_unseen` is PublicTest minus the images that also appear in Training; `val` is
the validation split carved from Training (same seed as core.train); `val_unseen` is that split
minus the faces byte-identical to one in the rest of Training; `train` is the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from core.labels import EMOTIONS, FACE_SIZE, NUM_EMOTIONS
from core.paths import BENCHMARK_RESULTS_DIR
from core.training.recipe import train_command

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SPLIT_NAMES = {
    "train": "FER2013 Training minus the carved validation split",
    "val": "validation split carved from FER2013 Training (stratified, seeded)",
    "val_unseen": "the carved validation split without the faces that also appear in the rest "
    "of Training (FER2013 Training holds byte-identical duplicates)",
    "test": "FER2013 PublicTest (all images)",
    "test_unseen": "FER2013 PublicTest without the images that also appear in Training",
}


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix."""
    y_pred = probabilities.argmax(axis=1)
    confusion = np.zeros((NUM_EMOTIONS, NUM_EMOTIONS), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    true_pos = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = np.divide(true_pos, predicted, out=np.zeros_like(true_pos), where=predicted > 0)
    recall = np.divide(true_pos, support, out=np.zeros_like(true_pos), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    present = support > 0
    return {
        "n": len(y_true),
        "accuracy": float((y_pred == y_true).mean()) if len(y_true) else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(EMOTIONS)
        },
        "confusion_matrix": confusion.tolist(),
    }


def measure_latency(model, repeats: int = 30) -> dict:
    """Median wall-clock ms per face on this CPU at batch 1 and batch 32 (after warm-up)."""
    rng = np.random.default_rng(0)
    result = {}
    for batch in (1, 32):
        faces = rng.integers(0, 256, (batch, FACE_SIZE, FACE_SIZE), dtype=np.uint8)
        for _ in range(3):
            model.predict(faces)
        times = []
        for _ in range(repeats if batch == 1 else max(5, repeats // 3)):
            start = time.perf_counter()
            model.predict(faces)
            times.append(time.perf_counter() - start)
        result[f"ms_per_face_batch{batch}"] = float(np.median(times) * 1000 / batch)
    return result


def load_split(
    data: str | Path, split: str, seed: int = 1234, val_fraction: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Faces and labels of a named split (see module doc)."""
    from core.training.fer_data import carve_validation, load_fer, unseen_mask

    splits = load_fer(data)
    if split in ("test", "test_unseen"):
        x, y = splits.get("test")
        if split == "test_unseen":
            keep = unseen_mask(x, [splits.get("train")[0]])
            x, y = x[keep], y[keep]
        return x, y
    x, y = splits.get("train")
    train_idx, val_idx = carve_validation(y, val_fraction, seed)
    if split == "val_unseen":
        keep = unseen_mask(x[val_idx], [x[train_idx]])
        return x[val_idx][keep], y[val_idx][keep]
    idx = val_idx if split == "val" else train_idx
    return x[idx], y[idx]


TTA_MODES = ("none", "flip", "tencrop")
TENCROP_SIZE = 44  # of 48: the training augmentation shifts and zooms by up to 10%


def tencrop_views(faces: np.ndarray, crop: int = TENCROP_SIZE) -> list[np.ndarray]:
    """The ten-crop test-time views of (n, 48, 48) faces: the four corner crops and the centre
    crop, each resized back to 48x48, and their mirror images."""
    import cv2

    size = faces.shape[1]
    offsets = [(0, 0), (0, size - crop), (size - crop, 0), (size - crop, size - crop)]
    offsets.append(((size - crop) // 2, (size - crop) // 2))
    views = []
    for top, left in offsets:
        crops = faces[:, top : top + crop, left : left + crop]
        resized = np.stack(
            [cv2.resize(f, (size, size), interpolation=cv2.INTER_LINEAR) for f in crops]
        ) if len(crops) else faces[:, :size, :size]  # fmt: skip
        views += [resized, resized[:, :, ::-1]]
    return views


def predict_with_tta(model, faces: np.ndarray, tta: str = "none") -> np.ndarray:
    """Class probabilities for `faces`, averaged over the views of a test-time augmentation:
    "none", "flip" (the face and its mirror) or "tencrop" (`tencrop_views`)."""
    if tta not in TTA_MODES:
        raise ValueError(f"unknown TTA {tta!r}; choose from {', '.join(TTA_MODES)}")
    if tta == "tencrop":
        views = tencrop_views(faces)
        return np.mean([model.predict_batched(np.ascontiguousarray(v)) for v in views], axis=0)
    return model.predict_batched(faces, tta_flip=tta == "flip")


def evaluate(model, x: np.ndarray, y: np.ndarray, tta: str = "none") -> dict:
    """Accuracy, macro-F1, per-class metrics and confusion of `model` on (x, y)."""
    return classification_metrics(y, predict_with_tta(model, x, tta))


def split_metrics(
    model, name: str, x: np.ndarray, y: np.ndarray, unseen: np.ndarray | None = None
) -> dict:
    """Metrics of split `name` without TTA and with each TTA (`<name>_tta_<mode>`), and the
    same on its faces not seen in training (`<name>_unseen...`, from the same predictions)
    when an `unseen` mask is given."""
    metrics = {}
    for tta in TTA_MODES:
        suffix = "" if tta == "none" else f"_tta_{tta}"
        probabilities = predict_with_tta(model, x, tta)
        metrics[name + suffix] = classification_metrics(y, probabilities)
        if unseen is not None:
            metrics[f"{name}_unseen{suffix}"] = classification_metrics(
                y[unseen], probabilities[unseen]
            )
    return metrics


def write_json_atomically(path: Path, payload: object) -> None:
    """Write `payload` as JSON to `path` whole or not at all: a temp file in the same folder,
    then os.replace (a reader or a kill never sees a half-written card)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def warm_start_fields(state: dict) -> dict:
    """A warm restart's source run and the CPU-hours of both runs together (nothing else)."""
    source = state.get("initialised_from")
    if not source:
        return {}
    own = state["cpu_seconds"] / 3600
    return {"initialised_from": source, "cpu_hours_including_init": own + source["cpu_hours"]}


def lost_attempts_fields(state: dict, results_dir: Path | None = None) -> dict:
    """Earlier attempts at the same run whose checkpoints were lost (their committed progress
    records, `benchmarks/results/<name>_attempt*.json`) and the CPU-hours of all of them with
    this one: what the model really cost. Nothing when there were none."""
    results_dir = BENCHMARK_RESULTS_DIR if results_dir is None else results_dir
    name = state["config"]["name"]
    attempts = []
    for path in sorted(results_dir.glob(f"{name}_attempt*.json")):
        try:  # a damaged record must not fail the export at the end of a long run
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and isinstance(record.get("cpu_hours"), int | float):
            attempts.append(
                {
                    "record": f"benchmarks/results/{path.name}",
                    "epochs": record.get("epochs_done"),
                    "best_val_accuracy": record.get("best_val_accuracy"),
                    "cpu_hours": float(record["cpu_hours"]),
                }
            )
    if not attempts:
        return {}
    lost = sum(a["cpu_hours"] for a in attempts)
    return {
        "lost_attempts": attempts,
        "cpu_hours_including_lost": state["cpu_seconds"] / 3600 + lost,
    }


def _training_status(state: dict) -> str:
    done, planned = state["epoch"], state["config"]["epochs"]
    if not state.get("finished"):
        return f"interim: best of {done} of {planned} epochs so far; the run continues"
    if state.get("stopped_early"):
        best = state["best_epoch"]
        return f"stopped after {done} of {planned} epochs: no better validation since epoch {best}"
    if state.get("stopped_by_budget"):
        return f"stopped by its CPU budget after {done} of {planned} epochs"
    return "finished"


def _shown(path: Path) -> str:
    """A path as a command line in the repo would write it (relative when inside)."""
    from core.paths import REPO_ROOT

    path = Path(path).resolve()
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def write_card(model_path: Path, run_dir: Path, data: str) -> Path:
    """Evaluate an exported model on every split and write `<model>.json` beside it."""
    from core.emotion.model import EmotionModel, npz_weight_format
    from core.training.fer_data import load_fer, unseen_mask

    state = json.loads((run_dir / "state.json").read_text())
    config = state["config"]
    model = EmotionModel.load(model_path)
    splits = load_fer(data)
    metrics = {}
    x_train, y_train = load_split(data, "train", config["seed"], config["val_fraction"])
    x_val, y_val = load_split(data, "val", config["seed"], config["val_fraction"])
    # Validation faces byte-identical to a face of the carved training part (any label).
    val_unseen = unseen_mask(x_val, [x_train])
    if config.get("limit"):
        x_train, y_train = x_train[: config["limit"]], y_train[: config["limit"]]
        x_val, y_val = x_val[: config["limit"]], y_val[: config["limit"]]
        val_unseen = val_unseen[: config["limit"]]
    metrics["train"] = evaluate(model, x_train, y_train)
    metrics.update(split_metrics(model, "val", x_val, y_val, val_unseen))
    metrics["val_unseen"]["duplicates_of_training"] = int((~val_unseen).sum())
    if "test" in splits.arrays:
        x_test, y_test = splits.get("test")
        unseen = unseen_mask(x_test, [splits.get("train")[0]]) if "train" in splits.arrays else None
        metrics.update(split_metrics(model, "test", x_test, y_test, unseen))
        fp32_path = run_dir / "best_fp32.keras"
        if fp32_path.exists():
            fp32 = EmotionModel.load(fp32_path)
            export_cost = {
                "test_accuracy_fp32": evaluate(fp32, x_test, y_test)["accuracy"],
                "test_accuracy_shipped": metrics["test"]["accuracy"],
            }
        else:
            export_cost = {}
    else:
        export_cost = {}
    history = state["history"]
    card = {
        "name": model_path.stem,
        "file": model_path.name,
        "architecture": json.loads(str(np.load(model_path)["arch"])),
        "kind": "moodlens",
        "data": {
            "source": str(Path(data).name),
            "splits": SPLIT_NAMES,
            "counts": {k: v["n"] for k, v in metrics.items() if "_tta_" not in k},
            "validation_carving": state["split"],
        },
        "recipe": config,
        "class_weights": state.get("class_weights"),
        "epochs_trained": state["epoch"],
        "best_epoch": state["best_epoch"],
        "stopped_by_budget": state.get("stopped_by_budget", False),
        "training_status": _training_status(state),
        "cpu_hours": state["cpu_seconds"] / 3600,
        "wall_hours": state["wall_seconds"] / 3600,
        **warm_start_fields(state),
        **lost_attempts_fields(state),
        "code": state.get("code", []),  # the commit(s) that trained it, from which epoch
        "train_img_per_s": float(np.median([h["img_per_s"] for h in history])) if history else None,
        "metrics": metrics,
        "export": {
            "format": f"npz, {npz_weight_format(model_path)} weights, rebuilt in float32",
            **export_cost,
        },
        "history": history,
        "pilot": _read_json(run_dir / "pilot.json"),  # speed of each recipe
        "accuracy_pilot": _read_json(run_dir / "accuracy_pilot.json"),  # short runs, validation
        "parameters": model.parameters,
        "file_size_bytes": model_path.stat().st_size,
        "latency": measure_latency(model),
        "runtime": model.runtime,
        "reproduce": {
            "train": train_command(config),
            "evaluate": f"python -m core.training.evaluate --model {_shown(model_path)} "
            f"--data {data} "
            "--split test --json --tta flip",
            "card": f"python -m core.training.evaluate --model {_shown(model_path)} --data {data} "
            f"--card {_shown(run_dir)}",
        },
    }
    card_path = model_path.with_suffix(".json")
    write_json_atomically(card_path, keep_promotion(card, _read_json(card_path), run_dir.name))
    return card_path


def keep_promotion(card: dict, existing: dict | None, run_name: str) -> dict:
    """`card` rewritten over a card the run `run_name` was promoted into (the Model comparison
    page shows its `reproduce.card` command): what the promotion added stays, the runs it
    replaced (`previous_runs`), `trained_as` and the pilot that chose its recipe."""
    if not isinstance(existing, dict) or existing.get("trained_as") != run_name:
        return card
    kept = {k: existing[k] for k in ("trained_as", "previous_runs") if k in existing}
    pilots = {
        k: existing[k] for k in ("pilot", "accuracy_pilot") if not card.get(k) and existing.get(k)
    }
    return {**card, **pilots, **kept}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--model", required=True, type=Path, help=".npz, .keras or .h5 model")
    parser.add_argument("--data", required=True, help="npz / fer2013.csv / image folders")
    parser.add_argument("--split", default="test", choices=tuple(SPLIT_NAMES))
    parser.add_argument(
        "--tta", choices=TTA_MODES, default="none", help="test-time augmentation (flip, ten-crop)"
    )
    parser.add_argument(
        "--input-scale",
        choices=("0-255", "0-1", "-1-1"),
        help="override the model's expected pixel scale (e.g. -1-1 for fer)",
    )
    parser.add_argument("--seed", type=int, default=1234, help="validation carving seed")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--card",
        type=Path,
        metavar="RUN",
        help="(re)write the model's card from its training run directory and every split",
    )
    args = parser.parse_args(argv)
    if args.card:
        print(write_card(args.model, args.card, args.data))
        return

    from core.emotion.model import EmotionModel

    model = EmotionModel.load(args.model, input_scale=args.input_scale)
    x, y = load_split(args.data, args.split, args.seed)
    result = {
        "model": str(args.model),
        "split": args.split,
        "split_name": SPLIT_NAMES[args.split],
        "tta": args.tta,
        **evaluate(model, x, y, tta=args.tta),
        "latency": measure_latency(model),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{args.model} on {SPLIT_NAMES[args.split]} (n={result['n']}): accuracy "
            f"{result['accuracy']:.4f}, macro-F1 {result['macro_f1']:.4f}, "
            f"{result['latency']['ms_per_face_batch1']:.2f} ms/face at batch 1"
        )


if __name__ == "__main__":
    main()
