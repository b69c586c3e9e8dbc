"""Where a training run stands, without its weights: the small progress record.

    python benchmarks/run_progress.py runs/NAME > benchmarks/results/NAME_progress.json

A long run spans sessions; what each session commits is this record (recipe, epochs done,
per-epoch validation, img/s, busy cores), so its curve survives the machine. `runs_in_progress`
gathers the unfinished ones for the Model comparison page: the committed records, each replaced
by its live `runs/<name>/state.json` where this machine has a newer one. JSON only (no
TensorFlow), so pages can read it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.paths import BENCHMARK_RESULTS_DIR, REPO_ROOT, RUNS_DIR

KEEP = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "cpu_seconds",
        "wall_seconds", "paused_seconds", "img_per_s", "cores_busy", "loadavg_1min")  # fmt: skip
RECORD_SUFFIX = "_progress.json"


def progress(run_dir: Path, state: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run's recipe, where it stands, and its history without anything heavy (`state`:
    its state.json, read from `run_dir` when not given)."""
    run_dir = Path(run_dir)
    if state is None:
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
        "code": state.get("code", []),  # which commit trained which epochs
        "resume": f"python -m core.train --resume {run_dir}",
    }


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _live_record(run_dir: Path) -> dict[str, Any] | None:
    state = _read_json(run_dir / "state.json")
    if state is None:
        return None
    shown = run_dir.relative_to(REPO_ROOT) if run_dir.is_relative_to(REPO_ROOT) else run_dir
    try:
        return progress(shown, state) | {"source": f"{shown}/state.json (this machine)"}
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def _is_record(data: dict[str, Any] | None) -> bool:
    """A progress record: a run name and a history whose every entry is an epoch (a dict)."""
    if not data or not isinstance(data.get("run"), str):
        return False
    history = data.get("history")
    return isinstance(history, list) and all(isinstance(h, dict) for h in history)


def runs_in_progress(
    results_dir: Path = BENCHMARK_RESULTS_DIR, runs_dir: Path = RUNS_DIR
) -> list[dict[str, Any]]:
    """Every run that has not finished, by name: from its committed progress record
    (`results_dir/*_progress.json`) or its live checkpoint folder (`runs_dir/*/state.json`),
    whichever has more epochs; unreadable files are skipped. Each record says its `source`."""
    found: dict[str, dict[str, Any]] = {}
    committed = sorted(Path(results_dir).glob(f"*{RECORD_SUFFIX}"))
    candidates = [
        *((_read_json(p), p) for p in committed),
        *((_live_record(s.parent), s.parent) for s in sorted(Path(runs_dir).glob("*/state.json"))),
    ]
    for record, path in candidates:
        if not _is_record(record):
            continue
        record.setdefault("source", str(path.name))
        name = record["run"]
        if name not in found or record.get("epochs_done", 0) > found[name].get("epochs_done", 0):
            found[name] = record
    return [r for r in found.values() if not r.get("finished")]


def _val_by_epoch(history: list[dict[str, Any]]) -> dict[int, float]:
    return {
        int(h["epoch"]): float(h["val_accuracy"])
        for h in history
        if isinstance(h.get("epoch"), int) and isinstance(h.get("val_accuracy"), (int, float))
    }


def _cell(value: float | None, bold: bool) -> str:
    if value is None:
        return ""
    text = f"{value:.3f}".removeprefix("0")
    return f"**{text}**" if bold else text


def validation_table(curves: dict[str, list[dict[str, Any]]], per_row: int = 10) -> str:
    """Markdown tables of validation accuracy by epoch, one row per run (`curves`: label ->
    history as state.json or a card holds it), `per_row` epochs to a table so a 60-epoch run
    stays readable. Each run's best epoch is bold; epochs a run has not reached are blank."""
    by_run = {label: _val_by_epoch(history) for label, history in curves.items()}
    best = {label: max(v, key=v.__getitem__) for label, v in by_run.items() if v}
    last = max((max(v, default=0) for v in by_run.values()), default=0)
    tables = []
    for start in range(1, last + 1, per_row):
        epochs = range(start, min(start + per_row, last + 1))
        rows = [
            "| epoch | " + " | ".join(str(e) for e in epochs) + " |",
            "|---|" + "---|" * len(epochs),
        ]
        for label, values in by_run.items():
            cells = [_cell(values.get(e), bold=e == best.get(label)) for e in epochs]
            rows.append(f"| {label} | " + " | ".join(cells) + " |")
        tables.append("\n".join(rows))
    return "\n\n".join(tables)
