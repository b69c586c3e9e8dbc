"""Ship a run: rebuild its best checkpoint in float32, save `models/<name>.npz`, write its card.

python -m core.train --export-interim runs/<name>   # the best epoch of a run still going
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from core.training.recipe import TrainConfig


def _log(message: str) -> None:
    import time

    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


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
    from core.training.evaluate import write_json_atomically

    state = json.loads((run_dir / "state.json").read_text())
    changes = {"out": out, "export_format": export_format}
    config = TrainConfig(**{**state["config"], **{k: v for k, v in changes.items() if v}})
    spec = ArchSpec(config.model, config.image_size, config.channels, config.dropout)
    with tempfile.TemporaryDirectory() as tmp:
        # Copy first: a running trainer may rewrite best.weights.h5 at the end of an epoch.
        snapshot = Path(tmp)
        shutil.copy(run_dir / "best.weights.h5", snapshot / "best.weights.h5")
        # The snapshot carries the overridden recipe: the card's `recipe` and `reproduce`
        # lines are read from it (the run's own state.json is left as it is).
        (snapshot / "state.json").write_text(json.dumps({**state, "config": asdict(config)}))
        for pilot in ("pilot.json", "accuracy_pilot.json"):
            if (run_dir / pilot).exists():
                shutil.copy(run_dir / pilot, snapshot / pilot)
        from core.training.train import set_precision

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
    write_json_atomically(card_path, card)
    return model_path
