"""Train an emotion model on FER2013 with honest splits, per-epoch checkpoints and exact resume.

    python -m core.train --model cnn --data ../shared/data/fer2013/fer2013.npz --out models/
    python -m core.train --resume runs/<name>
    python -m core.train --export-interim runs/<name> [--out DIR]  # best so far; run goes on

A stratified validation split carved from Training (fixed seed) picks the checkpoint and drives
the schedule; FER2013 PublicTest is touched only by the final report
(core.training.evaluate). Every epoch
writes runs/<name>/last.keras (model + optimizer state) and state.json (epoch, history, CPU
time, config); randomness of epoch e is a function of (seed, e), so a resumed run continues
exactly. `--budget-hours` stops cleanly at a CPU-time budget (process CPU time, all threads).

Before each validation the batch-norm moving statistics are re-estimated on clean (unaugmented)
Training faces: the statistics a training step leaves behind come from augmented batches under
fast-moving weights, and with them ResNet50V2 validated at 16% where its recalibrated self
scored 40% (epoch 5 of the shipped run).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.labels import NUM_EMOTIONS
from core.paths import MODELS_DIR, RUNS_DIR

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass
class TrainConfig:
    """A training recipe; stored in the run's state.json and the model card."""

    model: str
    data: str
    out: str = str(MODELS_DIR)
    name: str = ""
    epochs: int = 30
    image_size: int = 48
    batch_size: int = 128
    seed: int = 1234
    precision: str = "fp32"
    weights: str | None = None
    budget_hours: float | None = None
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    class_weight_power: float = 0.5
    val_fraction: float = 0.1
    erase_probability: float = 0.5
    limit: int | None = None
    dropout: float = 0.4
    export: bool = True
    export_format: str = "float16"
    bn_recalibration_faces: int = 2048
    threads: str = "default"
    notes: list[str] = field(default_factory=list)

    @property
    def channels(self) -> int:
        return 3 if self.weights else 1


def apply_threads(threads: str) -> None:
    """Set TensorFlow's thread pools: "default", or "INTRAxINTER" such as "2x1" (measured
    fastest for ResNet50V2 on this 2-core CPU, see benchmarks/pilot.py). Call before the
    first TensorFlow op runs."""
    if threads == "default":
        return
    intra, inter = (int(n) for n in threads.lower().split("x"))
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(intra)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(inter)
    import sys

    if "tensorflow" in sys.modules:  # already imported: set the pools directly if still possible
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
            tf.config.threading.set_inter_op_parallelism_threads(inter)
        except RuntimeError:
            pass  # the runtime has started; the environment applies to child processes only


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def set_precision(precision: str) -> None:
    import keras

    policy = {"fp32": "float32", "bf16": "mixed_bfloat16"}[precision]
    keras.mixed_precision.set_global_policy(policy)


def prepare_splits(config: TrainConfig) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Training minus a carved validation split, and that split; PublicTest is not loaded."""
    from core.training.fer_data import carve_validation, load_fer

    x, y = load_fer(config.data).get("train")
    train_idx, val_idx = carve_validation(y, config.val_fraction, config.seed)
    if config.limit:  # smoke runs: a stratified-enough random subset of each split
        rng = np.random.default_rng(config.seed)
        train_idx = np.sort(rng.choice(train_idx, min(config.limit, len(train_idx)), replace=False))
        n_val = max(NUM_EMOTIONS, config.limit // 5)
        val_idx = np.sort(rng.choice(val_idx, min(n_val, len(val_idx)), replace=False))
    return {"train": (x[train_idx], y[train_idx]), "val": (x[val_idx], y[val_idx])}


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    config: TrainConfig,
    epoch: int | None,
    sample_weights: np.ndarray | None = None,
):
    """tf.data over in-memory uint8 faces; augmented and shuffled when `epoch` is given."""
    import tensorflow as tf

    from core.training.augment import augment_batch

    labels = tf.one_hot(y, NUM_EMOTIONS)
    parts = (
        (x[..., None], labels) if sample_weights is None else (x[..., None], labels, sample_weights)
    )
    ds = tf.data.Dataset.from_tensor_slices(parts)
    if epoch is not None:
        ds = ds.shuffle(len(x), seed=config.seed * 1000 + epoch, reshuffle_each_iteration=False)
    ds = ds.batch(config.batch_size, drop_remainder=epoch is not None)
    to_float = lambda faces: tf.cast(faces, tf.float32)  # noqa: E731
    if epoch is None:
        ds = ds.map(lambda f, *rest: (to_float(f), *rest))
    else:
        base_seed = tf.constant([config.seed, epoch * 100003], tf.int64)
        ds = ds.enumerate().map(
            lambda i, batch: (
                augment_batch(
                    to_float(batch[0]),
                    base_seed + tf.stack([tf.constant(0, tf.int64), i * 7]),
                    erase_probability=config.erase_probability,
                ),
                *batch[1:],
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return ds.prefetch(tf.data.AUTOTUNE)


def _all_layers(layer):
    """`layer` and every layer inside it, nested models (Keras backbones) included."""
    yield layer
    for inner in getattr(layer, "layers", ()):
        yield from _all_layers(inner)


def reseed_layers(model, seed: int) -> None:
    """Reset the random state of every layer that draws randomness (dropout) to a function of
    `seed`: the masks of epoch e then depend on (seed, e) alone, so a resumed run repeats them."""
    count = 0
    for layer in _all_layers(model):
        for generator in getattr(layer, "_seed_generators", ()):
            # Far-apart first words: each draw bumps the second word, so adjacent values
            # would make two layers' masks collide a step apart.
            start = np.array([seed + count * 1_000_003, 0], dtype=generator.state.dtype)
            generator.state.assign(start)
            count += 1


def recalibrate_batch_norm(model, faces: np.ndarray, batch_size: int) -> int:
    """Set every BatchNormalization layer's moving mean/variance to the average over `faces`
    (uint8, (n, h, w)) of its batch statistics, in training mode without touching weights.

    Returns how many BN layers were reset; 0 (a no-op) for models without batch norm.
    """
    import keras

    layers = [
        layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)
    ]
    if not layers or len(faces) == 0:
        return 0
    momenta = [layer.momentum for layer in layers]
    try:
        for step, start in enumerate(range(0, len(faces), batch_size)):
            # new = momentum * old + (1 - momentum) * batch: with momentum step/(step+1)
            # the moving value is the running mean over the batches seen so far.
            for layer in layers:
                layer.momentum = step / (step + 1)
            batch = faces[start : start + batch_size][..., None].astype(np.float32)
            model(batch, training=True)
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
    return len(layers)


def _learning_rate(config: TrainConfig, steps_per_epoch: int):
    import keras

    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(int(config.warmup_epochs * steps_per_epoch), total - 1)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.lr * 0.01 if warmup else config.lr,
        decay_steps=max(1, total - warmup),
        alpha=0.0,
        warmup_target=config.lr if warmup else None,
        warmup_steps=warmup,
    )


def build_and_compile(config: TrainConfig, steps_per_epoch: int):
    """A fresh model compiled with the recipe's optimizer, schedule and loss."""
    import keras

    from core.emotion.architectures import ArchSpec, build_model

    spec = ArchSpec(config.model, config.image_size, config.channels, config.dropout)
    keras.utils.set_random_seed(config.seed)  # the initial weights follow from the seed too
    model = build_model(spec)
    if config.weights:
        model.load_weights(config.weights, skip_mismatch=True)
        _log(f"loaded initial weights from {config.weights}")
    schedule = _learning_rate(config, steps_per_epoch)
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(
            schedule, momentum=0.9, nesterov=True, weight_decay=config.weight_decay
        )
    else:
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )
    return model, spec


class _Progress:
    """Keras callback printing throughput every `every` batches."""

    def __new__(cls, every: int, epoch: int, epochs: int, batch_size: int):
        import keras

        class Progress(keras.callbacks.Callback):
            def on_epoch_begin(self, _epoch, logs=None):
                self.start, self.cpu_start = time.perf_counter(), time.process_time()

            def on_train_batch_end(self, batch, logs=None):
                if (batch + 1) % every == 0:
                    wall = time.perf_counter() - self.start
                    rate = (batch + 1) * batch_size / wall
                    busy = (time.process_time() - self.cpu_start) / wall
                    _log(
                        f"epoch {epoch + 1}/{epochs} batch {batch + 1}: "
                        f"loss {logs['loss']:.4f} acc {logs['accuracy']:.4f} {rate:.0f} img/s, "
                        f"{busy:.2f} cores busy"
                    )

        return Progress()


def run_dir_for(config: TrainConfig) -> Path:
    return RUNS_DIR / config.name


def train(
    config: TrainConfig | None = None, resume: Path | None = None, overrides: dict | None = None
) -> Path:
    """Train `config` from scratch, or resume the run in `resume` (with `overrides` of
    epochs/budget_hours/out); exports the model and its card when done. Returns the run dir."""
    import keras

    if resume is None and config is None:
        raise ValueError("give a config to train or a run directory to resume")
    run_dir = resume or run_dir_for(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path = run_dir / "state.json"
    state = json.loads(state_path.read_text()) if resume else {}
    if state:
        config = TrainConfig(**{**state["config"], **(overrides or {})})
        if config.epochs != state["config"]["epochs"]:
            config.notes.append(
                f"Length changed from {state['config']['epochs']} to {config.epochs} epochs "
                f"after epoch {state['epoch']}: the schedule was re-timed from there on."
            )
        state["config"] = asdict(config)  # fields added since the run began show their defaults
    apply_threads(config.threads)
    set_precision(config.precision)
    splits = prepare_splits(config)
    x_train, y_train = splits["train"]
    x_val, y_val = splits["val"]
    from core.training.fer_data import class_weights

    weights_by_class = class_weights(y_train, config.class_weight_power)
    sample_weights = np.array([weights_by_class[c] for c in y_train], dtype=np.float32)
    steps_per_epoch = len(x_train) // config.batch_size
    if steps_per_epoch < 1:
        raise SystemExit(
            f"batch size {config.batch_size} exceeds the {len(x_train)} training faces"
        )
    val_ds = make_dataset(x_val, y_val, config, epoch=None)
    # A fixed random subset of clean Training faces (never validation) for BN re-estimation.
    bn_pick = np.random.default_rng(config.seed).permutation(len(x_train))
    bn_faces = x_train[np.sort(bn_pick[: config.bn_recalibration_faces])]

    if state:
        model = keras.models.load_model(run_dir / "last.keras")
        # The warm-up/cosine schedule follows the run's length: unchanged, it equals the saved
        # one; after `--epochs N` the learning rate moves onto the curve that ends at epoch N
        # (the saved schedule would sit at 0 past its old end, or stop before annealing).
        model.optimizer.learning_rate = _learning_rate(config, steps_per_epoch)
        from core.emotion.architectures import ArchSpec

        spec = ArchSpec(config.model, config.image_size, config.channels, config.dropout)
        _log(f"resumed {run_dir} after epoch {state['epoch']}")
    else:
        model, spec = build_and_compile(config, steps_per_epoch)
        state = {
            "config": asdict(config),
            "epoch": 0,
            "history": [],
            "cpu_seconds": 0.0,
            "wall_seconds": 0.0,
            "best_val_accuracy": -1.0,
            "best_epoch": 0,
            "class_weights": weights_by_class,
            "finished": False,
            "split": {
                "train": len(x_train),
                "val": len(x_val),
                "val_fraction": config.val_fraction,
                "seed": config.seed,
            },
        }
        _log(
            f"{config.name}: {model.count_params():,} parameters, {len(x_train)} train / "
            f"{len(x_val)} val faces, {steps_per_epoch} steps/epoch, {config.precision}"
        )

    budget = config.budget_hours * 3600 if config.budget_hours else math.inf
    stopped_by_budget = False
    for epoch in range(state["epoch"], config.epochs):
        epoch_cpu = state["history"][-1]["cpu_seconds"] if state["history"] else 0.0
        if state["cpu_seconds"] + epoch_cpu > budget:
            _log(
                f"budget: {state['cpu_seconds'] / 3600:.2f} CPU-h spent, the next epoch "
                f"(~{epoch_cpu / 3600:.2f}) would pass {config.budget_hours} CPU-h: stopping"
            )
            stopped_by_budget = True
            break
        keras.utils.set_random_seed(config.seed * 1000 + epoch)
        reseed_layers(model, config.seed * 1000 + epoch)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = model.fit(
            make_dataset(x_train, y_train, config, epoch, sample_weights),
            initial_epoch=epoch,
            epochs=epoch + 1,
            verbose=0,
            callbacks=[
                _Progress(max(1, steps_per_epoch // 4), epoch, config.epochs, config.batch_size)
            ],
        )
        if config.bn_recalibration_faces:
            recalibrate_batch_norm(model, bn_faces, config.batch_size)
        val_loss, val_accuracy = model.evaluate(val_ds, verbose=0)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        logs = {k: float(v[-1]) for k, v in result.history.items()}
        logs.update(val_loss=float(val_loss), val_accuracy=float(val_accuracy))
        lr = float(
            keras.ops.convert_to_numpy(
                model.optimizer.learning_rate
                if not callable(model.optimizer.learning_rate)
                else model.optimizer.learning_rate(model.optimizer.iterations)
            )
        )
        record = {
            "epoch": epoch + 1,
            "bn_recalibrated": bool(config.bn_recalibration_faces),
            **logs,
            "lr": lr,
            "cpu_seconds": cpu,
            "wall_seconds": wall,
            "img_per_s": steps_per_epoch * config.batch_size / wall,
            # This process's CPU time over wall time: ~1.9 on an idle 2-core machine; lower
            # means something else took the CPU (a starved run shows itself here).
            "cores_busy": cpu / wall,
            "loadavg_1min": os.getloadavg()[0],
        }
        state["history"].append(record)
        state["epoch"] = epoch + 1
        state["cpu_seconds"] += cpu
        state["wall_seconds"] += wall
        model.save(run_dir / "last.keras")
        if logs["val_accuracy"] > state["best_val_accuracy"]:
            state["best_val_accuracy"], state["best_epoch"] = logs["val_accuracy"], epoch + 1
            model.save_weights(run_dir / "best.weights.h5")
        _atomic_write_json(state_path, state)
        _log(
            f"epoch {epoch + 1}/{config.epochs}: loss {logs['loss']:.4f} "
            f"acc {logs['accuracy']:.4f} val_acc {logs['val_accuracy']:.4f} "
            f"({wall:.0f}s, {record['img_per_s']:.0f} img/s, {record['cores_busy']:.2f} cores "
            f"busy, load {record['loadavg_1min']:.2f}, "
            f"{state['cpu_seconds'] / 3600:.2f} CPU-h total)"
        )

    state["finished"] = state["epoch"] >= config.epochs or stopped_by_budget
    state["stopped_by_budget"] = stopped_by_budget
    _atomic_write_json(state_path, state)
    if state["finished"] and config.export:
        export(run_dir, model, spec, config)
    return run_dir


def export(run_dir: Path, trained, spec, config: TrainConfig) -> Path:
    """Rebuild in float32, load the best weights, save `<out>/<name>.npz` and the model card."""
    import keras

    from core.emotion.architectures import build_model
    from core.emotion.model import save_npz_model

    trained.load_weights(run_dir / "best.weights.h5")
    keras.mixed_precision.set_global_policy("float32")
    inference = build_model(spec)
    inference.set_weights([np.asarray(w, dtype=np.float32) for w in trained.get_weights()])
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    model_path = save_npz_model(
        inference, spec.to_dict(), out / f"{config.name}.npz", config.export_format
    )
    # The float32 model too (in the run, not shipped) so the card can price the export.
    inference.save(run_dir / "best_fp32.keras")
    _log(f"exported {model_path} ({model_path.stat().st_size / 1e6:.1f} MB)")
    from core.training.evaluate import write_card

    card = write_card(model_path, run_dir, config.data)
    _log(f"card {card}")
    return model_path


def export_interim(run_dir: Path, out: str | None = None, export_format: str | None = None) -> Path:
    """Export the best checkpoint of an unfinished (possibly still running) run, with its card.

    The card says it is interim; the run itself is left untouched and can go on or resume.
    """
    import shutil
    import tempfile

    from core.emotion.architectures import ArchSpec, build_model

    state = json.loads((run_dir / "state.json").read_text())
    changes = {"out": out, "export_format": export_format}
    config = TrainConfig(**{**state["config"], **{k: v for k, v in changes.items() if v}})
    spec = ArchSpec(config.model, config.image_size, config.channels, config.dropout)
    with tempfile.TemporaryDirectory() as tmp:
        # Copy first: a running trainer may rewrite best.weights.h5 at the end of an epoch.
        snapshot = Path(tmp)
        shutil.copy(run_dir / "best.weights.h5", snapshot / "best.weights.h5")
        (snapshot / "state.json").write_text(json.dumps(state))
        if (run_dir / "pilot.json").exists():
            shutil.copy(run_dir / "pilot.json", snapshot / "pilot.json")
        set_precision(config.precision)
        model = build_model(spec)
        _log(f"exporting the best of {state['epoch']} epochs (epoch {state['best_epoch']})")
        model_path = export(snapshot, model, spec, config)
    # The card was written from the snapshot; point its reproduce line at the real run.
    card_path = model_path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    command = f"python -m core.train --export-interim {run_dir}"
    if export_format:
        command += f" --export-format {export_format}"
    card["reproduce"]["card"] = command
    card_path.write_text(json.dumps(card, indent=1))
    return model_path


def _atomic_write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(path)


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig | None, Path | None, dict]:
    """(config, None, {}) for a new run; (None, run_dir, overrides) to resume one."""
    from core.emotion.architectures import ARCHITECTURES

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", choices=ARCHITECTURES)
    p.add_argument("--data", help="fer2013.npz, Kaggle fer2013.csv, or <split>/<class>/ folders")
    p.add_argument("--out", help=f"where the model and its card go (default {MODELS_DIR})")
    p.add_argument("--name", help="run and model name (default: the model)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--image-size", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--weights", help="local initial weights file (e.g. ImageNet; 3 channels)")
    p.add_argument("--resume", type=Path, help="continue runs/<name> exactly where it stopped")
    p.add_argument(
        "--export-interim",
        type=Path,
        metavar="RUN",
        help="export the best checkpoint of an unfinished run (it may keep running)",
    )
    p.add_argument("--budget-hours", type=float, help="stop cleanly after this many CPU-hours")
    p.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument(
        "--class-weight-power",
        type=float,
        default=0.5,
        help="0 = no class weighting, 1 = full inverse frequency",
    )
    p.add_argument("--erase-probability", type=float, default=0.5)
    p.add_argument(
        "--bn-recalibration-faces",
        type=int,
        default=TrainConfig.bn_recalibration_faces,
        help="clean Training faces used to re-estimate batch-norm statistics before each "
        "validation (0: keep the statistics training left)",
    )
    p.add_argument("--dropout", type=float, default=0.4)
    p.add_argument(
        "--threads",
        default="default",
        help='TensorFlow thread pools: "default" (fastest here, benchmarks/pilot.py) or '
        "INTRAxINTER such as 2x1",
    )
    p.add_argument("--limit", type=int, help="train on this many faces only (smoke tests)")
    p.add_argument(
        "--export-format",
        choices=("float16", "int8"),
        help="shipped weights: float16 (default), or int8 per channel (half the size; the "
        "card prices it)",
    )
    p.add_argument(
        "--no-export", action="store_true", help="keep the run only (pilots): no model, no card"
    )
    args = p.parse_args(argv)
    if args.export_interim:
        if not (args.export_interim / "best.weights.h5").exists():
            p.error(f"{args.export_interim} has no best checkpoint yet")
        overrides = {"export_interim": True, "out": args.out, "format": args.export_format}
        return None, args.export_interim, overrides
    if args.resume:
        if not (args.resume / "state.json").exists():
            p.error(f"{args.resume} has no state.json: nothing to resume")
        overrides = {
            k: getattr(args, k)
            for k in ("epochs", "budget_hours", "out", "export_format")
            if getattr(args, k) is not None
        }
        return None, args.resume, overrides
    if not args.model or not args.data:
        p.error("--model and --data are required (or --resume runs/<name>)")
    config = TrainConfig(
        model=args.model,
        data=args.data,
        out=args.out or str(MODELS_DIR),
        name=args.name or args.model,
        epochs=args.epochs or 30,
        image_size=args.image_size,
        batch_size=args.batch_size,
        seed=args.seed,
        precision=args.precision,
        weights=args.weights,
        budget_hours=args.budget_hours,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs,
        label_smoothing=args.label_smoothing,
        class_weight_power=args.class_weight_power,
        erase_probability=args.erase_probability,
        bn_recalibration_faces=args.bn_recalibration_faces,
        dropout=args.dropout,
        threads=args.threads,
        limit=args.limit,
        export=not args.no_export,
        export_format=args.export_format or "float16",
    )
    return config, None, {}


def main(argv: list[str] | None = None) -> None:
    config, resume, overrides = parse_args(argv)
    if overrides.pop("export_interim", False):
        export_interim(resume, overrides.get("out"), overrides.get("format"))
    else:
        train(config, resume, overrides)


if __name__ == "__main__":
    main()
