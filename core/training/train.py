"""Train an emotion model on FER2013 with honest splits, per-epoch checkpoints and exact resume.

    python -m core.train --model cnn --data ../shared/data/fer2013/fer2013.npz --out models/
    python -m core.train --resume runs/<name>
    python -m core.train --export-interim runs/<name> [--out DIR]  # best so far; run goes on

The steps: `load_training_data` -> `build_and_compile` or `load_checkpoint` -> per epoch
`train_one_epoch` and `save_epoch` -> `core.training.export.export` (model + card).

A stratified validation split carved from Training (fixed seed) picks the checkpoint and drives
the schedule; FER2013 PublicTest is touched only by the final report (core.training.evaluate).
Every epoch writes runs/<name>/last.keras (model + optimizer state) and state.json (epoch,
history, CPU time, config); randomness of epoch e is a function of (seed, e), so a resumed run
continues exactly. `--budget-hours` stops cleanly at a CPU-time budget (process CPU time).

Before each validation the batch-norm moving statistics are re-estimated on clean (unaugmented)
Training faces: the statistics a training step leaves behind come from augmented batches under
fast-moving weights, and with them ResNet50V2 validated at 16% where its recalibrated self
scored 40% (epoch 5 of the shipped run).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.labels import NUM_EMOTIONS
from core.paths import MODELS_DIR, REPO_ROOT, RUNS_DIR
from core.training.batch_norm import recalibrate_batch_norm, reseed_layers
from core.training.evaluate import write_json_atomically
from core.training.guard import stopped_seconds
from core.training.recipe import TrainConfig, parse_args, warm_start_source

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
    if config.init_from:  # every layer must match (warm_start_source checked the recipe)
        model.load_weights(Path(config.init_from) / "best.weights.h5")
        _log(f"warm restart from the best checkpoint of {config.init_from}")
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
                self.stopped_start = stopped_seconds()

            def on_train_batch_end(self, batch, logs=None):
                if (batch + 1) % every == 0:
                    wall = time.perf_counter() - self.start
                    wall = max(wall - (stopped_seconds() - self.stopped_start), 1e-9)
                    rate = (batch + 1) * batch_size / wall
                    busy = (time.process_time() - self.cpu_start) / wall
                    _log(
                        f"epoch {epoch + 1}/{epochs} batch {batch + 1}: "
                        f"loss {logs['loss']:.4f} acc {logs['accuracy']:.4f} {rate:.0f} img/s, "
                        f"{busy:.2f} cores busy"
                    )

        return Progress()


# The tracked files that make the code a run trains with (results, cards and docs do not).
CODE_PATHS = (
    "core", "pages", "app.py", "benchmarks", "deploy", ":(glob)*.py", "pyproject.toml",
    ":(glob)requirements*.txt",
)  # fmt: skip


def code_version() -> str | None:
    """The repo's commit, with "+changes" when tracked code (`CODE_PATHS`) differs from it;
    None outside git."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        changed = bool(git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS))
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+changes" if changed else "")


def note_code_version(state: dict) -> None:
    """Add to state["code"] the code this process trains with, from the epoch it starts at,
    when it differs from the last entry: a run that spans sessions says which code trained
    which epochs."""
    versions = state.setdefault("code", [])
    version = code_version()
    if version and (not versions or versions[-1]["version"] != version):
        versions.append({"from_epoch": state["epoch"] + 1, "version": version})


def run_dir_for(config: TrainConfig) -> Path:
    return RUNS_DIR / config.name


@dataclass
class TrainingData:
    """A run's faces: Training minus validation (augmented each epoch), validation, and the
    clean Training faces that re-estimate batch-norm statistics."""

    x_train: np.ndarray
    y_train: np.ndarray
    sample_weights: np.ndarray
    weights_by_class: dict[int, float]
    val_ds: object  # tf.data.Dataset
    val_faces: int
    bn_faces: np.ndarray
    steps_per_epoch: int


def load_training_data(config: TrainConfig) -> TrainingData:
    """Carve the splits, weigh the classes and pick the BN-recalibration faces."""
    from core.training.fer_data import class_weights

    splits = prepare_splits(config)
    x_train, y_train = splits["train"]
    x_val, y_val = splits["val"]
    weights_by_class = class_weights(y_train, config.class_weight_power)
    steps_per_epoch = len(x_train) // config.batch_size
    if steps_per_epoch < 1:
        raise SystemExit(
            f"batch size {config.batch_size} exceeds the {len(x_train)} training faces"
        )
    # A fixed random subset of clean Training faces (never validation) for BN re-estimation.
    bn_pick = np.random.default_rng(config.seed).permutation(len(x_train))
    return TrainingData(
        x_train=x_train,
        y_train=y_train,
        sample_weights=np.array([weights_by_class[c] for c in y_train], dtype=np.float32),
        weights_by_class=weights_by_class,
        val_ds=make_dataset(x_val, y_val, config, epoch=None),
        val_faces=len(x_val),
        bn_faces=x_train[np.sort(bn_pick[: config.bn_recalibration_faces])],
        steps_per_epoch=steps_per_epoch,
    )


def resume_config(state: dict, overrides: dict | None) -> TrainConfig:
    """The saved recipe with `overrides` applied; a length change is noted in the recipe."""
    config = TrainConfig(**{**state["config"], **(overrides or {})})
    out = Path(config.out)
    if "out" not in (overrides or {}) and out.name == "models" and not out.is_dir():
        config.out = str(MODELS_DIR)  # begun in a checkout that has moved: export to this one
    if config.epochs != state["config"]["epochs"]:
        config.notes.append(
            f"Length changed from {state['config']['epochs']} to {config.epochs} epochs "
            f"after epoch {state['epoch']}: the schedule was re-timed from there on."
        )
    state["config"] = asdict(config)  # fields added since the run began show their defaults
    return config


def new_state(config: TrainConfig, data: TrainingData) -> dict:
    """The state.json of a run that has not trained an epoch yet."""
    return {
        "config": asdict(config),
        "epoch": 0,
        "history": [],
        "cpu_seconds": 0.0,
        "wall_seconds": 0.0,
        "best_val_accuracy": -1.0,
        "best_epoch": 0,
        "class_weights": data.weights_by_class,
        "finished": False,
        "split": {
            "train": len(data.x_train),
            "val": data.val_faces,
            "val_fraction": config.val_fraction,
            "seed": config.seed,
        },
    }


def load_checkpoint(run_dir: Path, config: TrainConfig, steps_per_epoch: int):
    """The last epoch's model with its optimizer state, on the schedule of the run's length.

    Unchanged length: the saved schedule. After `--epochs N` the learning rate moves onto the
    curve that ends at epoch N (the saved one would sit at 0 past its old end, or stop before
    annealing)."""
    import keras

    model = keras.models.load_model(run_dir / "last.keras")
    model.optimizer.learning_rate = _learning_rate(config, steps_per_epoch)
    return model


def check_step_count(model, state: dict, steps_per_epoch: int) -> str | None:
    """A note when the checkpoint's optimizer has not taken the steps of state.json's epochs
    (a checkpoint written before its state, by code older than `finish_checkpoint`), else
    None. The run goes on; the note says so in its recipe and card."""
    steps = int(model.optimizer.iterations)
    expected = state["epoch"] * steps_per_epoch
    if steps == expected:
        return None
    return (
        f"On resume after epoch {state['epoch']} the checkpoint had taken {steps} optimizer "
        f"steps, not {expected} ({(steps - expected) / steps_per_epoch:+g} epochs): it was "
        "saved without its state; the run went on from it."
    )


def _current_lr(model) -> float:
    import keras

    rate = model.optimizer.learning_rate
    value = rate(model.optimizer.iterations) if callable(rate) else rate
    return float(keras.ops.convert_to_numpy(value))


def train_one_epoch(model, config: TrainConfig, data: TrainingData, epoch: int) -> dict:
    """Train epoch `epoch` (0-based, reseeded from (seed, epoch)), re-estimate BN, validate;
    returns the epoch's history record with its speed (img/s, cores busy, load)."""
    import keras

    keras.utils.set_random_seed(config.seed * 1000 + epoch)
    reseed_layers(model, config.seed * 1000 + epoch)
    cpu0, wall0, stopped0 = time.process_time(), time.perf_counter(), stopped_seconds()
    result = model.fit(
        make_dataset(data.x_train, data.y_train, config, epoch, data.sample_weights),
        initial_epoch=epoch,
        epochs=epoch + 1,
        verbose=0,
        callbacks=[
            _Progress(max(1, data.steps_per_epoch // 4), epoch, config.epochs, config.batch_size)
        ],
    )
    fit_wall = time.perf_counter() - wall0
    fit_running = max(fit_wall - min(stopped_seconds() - stopped0, fit_wall), 1e-9)
    if config.bn_recalibration_faces:
        recalibrate_batch_norm(model, data.bn_faces, config.batch_size)
    val_loss, val_accuracy = model.evaluate(data.val_ds, verbose=0)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    paused = min(stopped_seconds() - stopped0, wall)
    running = max(wall - paused, 1e-9)  # speed is measured while it ran, not while paused
    images = data.steps_per_epoch * config.batch_size
    logs = {k: float(v[-1]) for k, v in result.history.items()}
    logs.update(val_loss=float(val_loss), val_accuracy=float(val_accuracy))
    return {
        "epoch": epoch + 1,
        "bn_recalibrated": bool(config.bn_recalibration_faces),
        **logs,
        "lr": _current_lr(model),
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "paused_seconds": paused,  # stopped by tests/benchmarks (core.training.guard)
        # The epoch's images over its whole time (BN recalibration and validation included),
        # and over the training steps alone.
        "img_per_s": images / running,
        "fit_img_per_s": images / fit_running,
        # This process's CPU time over its running wall time: ~1.9 on an idle 2-core
        # machine; lower means something else took the CPU (a starved run shows itself here).
        "cores_busy": cpu / running,
        "loadavg_1min": os.getloadavg()[0],
    }


def save_epoch(run_dir: Path, model, state: dict, record: dict) -> None:
    """Checkpoint after an epoch, so a run killed at any moment resumes from a consistent
    epoch: last.keras always and best.weights.h5 on a new best are written complete beside
    the old ones (the old ones stay whole while a kill cuts a write short), state.json then
    names them as pending (its atomic replace is the commit), then they replace the old ones
    (`finish_checkpoint`, redone on resume when a kill came in between)."""
    state["history"].append(record)
    state["epoch"] = record["epoch"]
    state["cpu_seconds"] += record["cpu_seconds"]
    state["wall_seconds"] += record["wall_seconds"]
    pending = {"last.keras": "last.pending.keras"}
    model.save(run_dir / pending["last.keras"])
    if record["val_accuracy"] > state["best_val_accuracy"]:
        state["best_val_accuracy"], state["best_epoch"] = record["val_accuracy"], record["epoch"]
        pending["best.weights.h5"] = "best.pending.weights.h5"
        model.save_weights(run_dir / pending["best.weights.h5"])
    state["pending"] = pending
    write_json_atomically(run_dir / "state.json", state)
    finish_checkpoint(run_dir, state)


def finish_checkpoint(run_dir: Path, state: dict) -> None:
    """Move the checkpoint files state.json names as pending onto their names (those already
    moved are skipped: a kill may have come between two), then drop the pending list."""
    pending = state.pop("pending", None)
    if not pending:
        return
    for final, written in pending.items():
        if (run_dir / written).exists():
            os.replace(run_dir / written, run_dir / final)
    write_json_atomically(run_dir / "state.json", state)


def _over_budget(config: TrainConfig, state: dict) -> bool:
    """Whether one more epoch (priced as the last one) would pass `--budget-hours`."""
    budget = config.budget_hours * 3600 if config.budget_hours else math.inf
    epoch_cpu = state["history"][-1]["cpu_seconds"] if state["history"] else 0.0
    if state["cpu_seconds"] + epoch_cpu <= budget:
        return False
    _log(
        f"budget: {state['cpu_seconds'] / 3600:.2f} CPU-h spent, the next epoch "
        f"(~{epoch_cpu / 3600:.2f}) would pass {config.budget_hours} CPU-h: stopping"
    )
    return True


class RunExistsError(ValueError):
    """A new run was asked for under a name whose folder holds a run already."""


def refuse_to_overwrite(run_dir: Path) -> None:
    """Raise RunExistsError when `run_dir` holds a run: a fresh start would overwrite its
    checkpoints (hours of CPU) with epoch 1. `--resume` continues it; `--restart` means it."""
    try:
        state = json.loads((run_dir / "state.json").read_text(encoding="utf-8"))
        where = f"epoch {state['epoch']} of {state['config']['epochs']}"
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError):
        where = "an unreadable state.json"
    raise RunExistsError(
        f"{run_dir} holds a run already ({where}). Continue it with `python -m core.train "
        f"--resume {run_dir}`, train under another --name, or add --restart to start it over "
        "(its checkpoints are replaced)."
    )


def train(
    config: TrainConfig | None = None,
    resume: Path | None = None,
    overrides: dict | None = None,
    restart: bool = False,
) -> Path:
    """Train `config` from scratch, or resume the run in `resume` (with `overrides` of
    epochs/budget_hours/out); exports the model and its card when done. Returns the run dir.
    A new run never replaces one of the same name unless `restart` (RunExistsError)."""
    from core.emotion.architectures import ArchSpec
    from core.training.export import export

    if resume is None and config is None:
        raise ValueError("give a config to train or a run directory to resume")
    run_dir = resume or run_dir_for(config)
    if resume is None and not restart:
        refuse_to_overwrite(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state = json.loads((run_dir / "state.json").read_text()) if resume else {}
    if state:
        finish_checkpoint(run_dir, state)  # a kill between commit and move: finish the move
        config = resume_config(state, overrides)
    apply_threads(config.threads)
    set_precision(config.precision)
    data = load_training_data(config)
    if state:
        model = load_checkpoint(run_dir, config, data.steps_per_epoch)
        if note := check_step_count(model, state, data.steps_per_epoch):
            _log(note)
            config.notes.append(note)
            state["config"] = asdict(config)
        _log(f"resumed {run_dir} after epoch {state['epoch']}")
    else:
        source = warm_start_source(config) if config.init_from else None
        if source:
            config.notes.append(
                f"Warm restart from {source['run']}'s best checkpoint (epoch {source['best_epoch']}"
                f" of {source['epochs']}, validation {source['best_val_accuracy']:.4f}, "
                f"{source['cpu_hours']:.2f} CPU-hours), on this run's own schedule."
            )
        model, _ = build_and_compile(config, data.steps_per_epoch)
        state = new_state(config, data) | ({"initialised_from": source} if source else {})
        _log(
            f"{config.name}: {model.count_params():,} parameters, {len(data.x_train)} train / "
            f"{data.val_faces} val faces, {data.steps_per_epoch} steps/epoch, {config.precision}"
        )

    if state["epoch"] < config.epochs:  # a run resumed at its end (to export) trains no epoch
        note_code_version(state)
    was_finished, epochs_before = bool(state.get("finished")), state["epoch"]
    stopped_by_budget = stopped_early = False
    for epoch in range(state["epoch"], config.epochs):
        if _over_budget(config, state):
            stopped_by_budget = True
            break
        if config.patience and epoch - state["best_epoch"] >= config.patience:
            _log(f"no better validation for {config.patience} epochs: stopping")
            stopped_early = True
            break
        record = train_one_epoch(model, config, data, epoch)
        save_epoch(run_dir, model, state, record)
        _log(
            f"epoch {epoch + 1}/{config.epochs}: loss {record['loss']:.4f} "
            f"acc {record['accuracy']:.4f} val_acc {record['val_accuracy']:.4f} "
            f"({record['wall_seconds']:.0f}s, {record['img_per_s']:.0f} img/s, "
            f"{record['fit_img_per_s']:.0f} training, "
            f"{record['cores_busy']:.2f} cores busy, load {record['loadavg_1min']:.2f}, "
            f"{state['cpu_seconds'] / 3600:.2f} CPU-h total)"
        )

    state["finished"] = state["epoch"] >= config.epochs or stopped_by_budget or stopped_early
    state["stopped_by_budget"] = stopped_by_budget
    state["stopped_early"] = stopped_early
    write_json_atomically(run_dir / "state.json", state)
    if state["finished"] and config.export:
        trained_now = state["epoch"] > epochs_before
        shipped = exported_card(config) if was_finished and not trained_now else None
        if shipped:  # resumed after it ended, nothing more to train: its export stands
            _log(f"{config.name} had ended and is exported ({shipped}): nothing to do")
        else:
            spec = ArchSpec(config.model, config.image_size, config.channels, config.dropout)
            export(run_dir, model, spec, config)
    return run_dir


def exported_card(config: TrainConfig) -> Path | None:
    """The card of a finished run's export in `config.out`: its own final card beside its
    model, or the card of the model it was promoted into (`trained_as`); None if neither."""
    out = Path(config.out)
    for path in sorted(out.glob("*.json")):
        try:
            card = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(card, dict):
            continue
        own = path.stem == config.name and (out / f"{config.name}.npz").is_file()
        final = not str(card.get("training_status") or "interim").startswith("interim")
        if (own and final) or card.get("trained_as") == config.name:
            return path
    return None


def main(argv: list[str] | None = None) -> None:
    """`python -m core.train`: train, resume, or export the best epoch of a run so far."""
    from core.training.export import export_interim

    config, resume, overrides = parse_args(argv)
    restart = overrides.pop("restart", False)
    if overrides.pop("export_interim", False):
        export_interim(resume, overrides.get("out"), overrides.get("format"))
        return
    try:
        train(config, resume, overrides, restart=restart)
    except RunExistsError as error:
        raise SystemExit(f"core.train: {error}") from None


if __name__ == "__main__":
    main()
