"""A training run's small progress record (no weights): per-epoch validation, img/s, busy cores.

    python benchmarks/run_progress.py runs/resnet50v2 > benchmarks/results/resnet50v2_progress.json

What a session commits while a long run is still going, so its curve survives the machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

KEEP = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "cpu_seconds",
        "wall_seconds", "img_per_s", "cores_busy", "loadavg_1min")  # fmt: skip


def progress(run_dir: Path) -> dict:
    """The run's recipe, where it stands, and its history without anything heavy."""
    state = json.loads((run_dir / "state.json").read_text())
    history = [{k: h[k] for k in KEEP if k in h} for h in state["history"]]
    return {
        "run": run_dir.name,
        "recipe": state["config"],
        "epochs_done": state["epoch"],
        "epochs_planned": state["config"]["epochs"],
        "finished": state.get("finished", False),
        "best_epoch": state["best_epoch"],
        "best_val_accuracy": state["best_val_accuracy"],
        "cpu_hours": state["cpu_seconds"] / 3600,
        "wall_hours": state["wall_seconds"] / 3600,
        "split": state["split"],
        "history": history,
        "resume": f"python -m core.train --resume {run_dir}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path)
    print(json.dumps(progress(parser.parse_args().run_dir), indent=1))


if __name__ == "__main__":
    main()
