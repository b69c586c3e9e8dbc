"""A training recipe (`TrainConfig`), its command line, and the command line's parser.

The recipe is stored in each run's state.json and in the model card; `train_command` turns it
back into the `python -m core.train ...` line that reproduces it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from core.paths import MODELS_DIR

TRAIN_DOC = """Train an emotion model on FER2013: honest splits, checkpoints, exact resume.

    python -m core.train --model cnn --data ../shared/data/fer2013/fer2013.npz --out models/
    python -m core.train --resume runs/<name>
    python -m core.train --export-interim runs/<name> [--out DIR]  # best so far; run goes on
    python -m core.train ... --name <new> --init-from runs/<name>  # warm restart, fresh schedule
"""


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
    init_from: str | None = None  # a run folder whose best weights start this one (warm restart)
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
    patience: int = 0  # stop when validation has not improved for this many epochs (0: never)
    notes: list[str] = field(default_factory=list)

    @property
    def channels(self) -> int:
        return 3 if self.weights else 1


# What a warm restart's source run must share with it: the network it loads into, and the
# validation carve (another carve would validate on faces the source trained on).
_WARM_START_MATCH = ("model", "image_size", "channels", "seed", "val_fraction")


def warm_start_source(config: TrainConfig) -> dict:
    """The run `config.init_from` as a warm restart's starting point (its best checkpoint):
    epoch, validation and cost. Raises ValueError when it cannot start this recipe."""
    run_dir = Path(str(config.init_from))
    try:
        state = json.loads((run_dir / "state.json").read_text(encoding="utf-8"))
        source = TrainConfig(**state["config"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{run_dir} is not a training run (no readable state.json)") from error
    if not (run_dir / "best.weights.h5").is_file():
        raise ValueError(f"{run_dir} has no best checkpoint (best.weights.h5) yet")
    differences = [
        f"{key} {getattr(source, key)} there, {getattr(config, key)} here"
        for key in _WARM_START_MATCH
        if getattr(source, key) != getattr(config, key)
    ]
    if differences:
        raise ValueError(f"{run_dir} cannot start this run: " + "; ".join(differences))
    return {
        "run": str(run_dir),
        "epochs": state["epoch"],
        "best_epoch": state["best_epoch"],
        "best_val_accuracy": state["best_val_accuracy"],
        "cpu_hours": state["cpu_seconds"] / 3600,
        "wall_hours": state["wall_seconds"] / 3600,
    }


def train_command(config: dict) -> str:
    """The `python -m core.train` command line that reproduces a recipe (a TrainConfig dict)."""
    flags = [
        f"--model {config['model']}",
        f"--data {config['data']}",
        f"--name {config['name']}",
        f"--epochs {config['epochs']}",
        f"--image-size {config['image_size']}",
        f"--batch-size {config['batch_size']}",
        f"--seed {config['seed']}",
        f"--precision {config['precision']}",
        f"--optimizer {config['optimizer']}",
        f"--lr {config['lr']}",
        f"--weight-decay {config['weight_decay']}",
        f"--warmup-epochs {config['warmup_epochs']}",
        f"--label-smoothing {config['label_smoothing']}",
        f"--class-weight-power {config['class_weight_power']}",
        f"--erase-probability {config['erase_probability']}",
        f"--dropout {config['dropout']}",
    ]
    if config.get("budget_hours"):
        flags.append(f"--budget-hours {config['budget_hours']}")
    if config.get("init_from"):
        flags.append(f"--init-from {config['init_from']}")
    # Runs that predate batch-norm recalibration validated without it.
    recalibration = config.get("bn_recalibration_faces", 0)
    if recalibration != TrainConfig.bn_recalibration_faces:
        flags.append(f"--bn-recalibration-faces {recalibration}")
    if config.get("export_format", "float16") != "float16":
        flags.append(f"--export-format {config['export_format']}")
    if config.get("limit"):
        flags.append(f"--limit {config['limit']}")
    if config.get("patience"):
        flags.append(f"--patience {config['patience']}")
    if config.get("threads", "default") != "default":
        flags.append(f"--threads {config['threads']}")
    return "python -m core.train " + " ".join(flags)


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig | None, Path | None, dict]:
    """(config, None, {}) for a new run; (None, run_dir, overrides) to resume one."""
    from core.emotion.architectures import ARCHITECTURES

    p = argparse.ArgumentParser(
        description=TRAIN_DOC, formatter_class=argparse.RawTextHelpFormatter
    )
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
    p.add_argument(
        "--init-from", type=Path, metavar="RUN",
        help="start from another run's best weights (same model, image size and validation\n"
        "carve) on this run's own fresh schedule: a warm restart",
    )  # fmt: skip
    p.add_argument("--resume", type=Path, help="continue runs/<name> exactly where it stopped")
    p.add_argument(
        "--restart",
        action="store_true",
        help="start over when runs/<name> holds a run already (without it, that is refused:\n"
        "its checkpoints would be replaced)",
    )
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
    p.add_argument(
        "--patience",
        type=int,
        default=0,
        help="stop when validation accuracy has not improved for N epochs (0: run the schedule)",
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
        init_from=str(args.init_from) if args.init_from else None,
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
        patience=args.patience,
        limit=args.limit,
        export=not args.no_export,
        export_format=args.export_format or "float16",
    )
    if config.init_from:
        if config.weights:
            p.error("--init-from and --weights both give initial weights: choose one")
        try:
            warm_start_source(config)
        except ValueError as error:
            p.error(str(error))
    return config, None, {"restart": True} if args.restart else {}
