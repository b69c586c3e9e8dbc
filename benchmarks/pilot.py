"""Pilot training recipes for a long run and rank them by validation accuracy per CPU-hour.

    python benchmarks/pilot.py --model resnet50v2 --sizes 48 80 --precisions bf16 fp32 \
        --epochs 2 --limit 8000

Each recipe is a short `core.train` run (same seed, same Training-carved validation split, no
export); the table (val accuracy, img/s, CPU-hours, accuracy per CPU-hour) is printed as JSON
and saved to runs/<model>/pilot.json, where the model card picks it up.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.paths import RUNS_DIR, fer2013_npz  # noqa: E402


def run_recipe(args: argparse.Namespace, size: int, precision: str) -> dict:
    """Train one recipe in its own process (a clean TF graph and precision policy)."""
    name = f"pilot-{args.model}-{size}px-{precision}"
    run_dir = RUNS_DIR / name
    state_path = run_dir / "state.json"
    if not (state_path.exists() and json.loads(state_path.read_text()).get("finished")):
        command = [
            sys.executable, "-m", "core.train", "--model", args.model, "--data", args.data,
            "--name", name, "--epochs", str(args.epochs), "--image-size", str(size),
            "--precision", precision, "--limit", str(args.limit), "--optimizer", "sgd",
            "--lr", str(args.lr), "--weight-decay", str(args.weight_decay),
            "--warmup-epochs", "0.5", "--batch-size", str(args.batch_size), "--no-export",
        ]  # fmt: skip
        if state_path.exists():
            command = [sys.executable, "-m", "core.train", "--resume", str(run_dir)]
        subprocess.run(command, cwd=REPO, check=True)
    state = json.loads(state_path.read_text())
    history = state["history"]
    cpu_hours = state["cpu_seconds"] / 3600
    return {
        "recipe": name,
        "image_size": size,
        "precision": precision,
        "epochs": state["epoch"],
        "train_faces": state["split"]["train"],
        "val_faces": state["split"]["val"],
        "val_accuracy": state["best_val_accuracy"],
        "val_accuracy_by_epoch": [round(h["val_accuracy"], 4) for h in history],
        "img_per_s": round(max(h["img_per_s"] for h in history), 1),
        "cpu_hours": round(cpu_hours, 4),
        "val_accuracy_per_cpu_hour": round(state["best_val_accuracy"] / cpu_hours, 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="resnet50v2")
    p.add_argument("--data", default=str(fer2013_npz()))
    p.add_argument("--sizes", type=int, nargs="+", default=[48, 80])
    p.add_argument("--precisions", nargs="+", default=["bf16", "fp32"])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--limit", type=int, default=8000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    args = p.parse_args()
    rows = [run_recipe(args, s, prec) for prec in args.precisions for s in args.sizes]
    table = {
        "split": "validation carved from FER2013 Training (seed 1234, 10%), subset by --limit",
        "command": "python " + " ".join(sys.argv),
        "recipes": rows,
    }
    out = RUNS_DIR / args.model / "pilot.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=1))
    print(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
