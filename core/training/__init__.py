"""Training and evaluating emotion models on FER2013, with honest splits.

    python -m core.train --model resnet50v2 --data ../shared/data/fer2013/fer2013.npz ...
    python -m core.train --resume runs/<name>          # exactly where it stopped
    python -m core.training.evaluate --model models/<name>.npz --data ... --split test --json

`recipe` (TrainConfig and its command line) -> `train` (data, epochs, checkpoints) -> `export`
(models/<name>.npz) -> `evaluate.write_card` (models/<name>.json). `guard.pause_training` keeps
tests and benchmarks from starving a running training.
"""

from core.lazy import lazy_exports

_WHERE = {
    "TrainConfig": "recipe",
    "train_command": "recipe",
    "export": "export",
    "export_interim": "export",
    "classification_metrics": "evaluate",
    "load_split": "evaluate",
    "write_card": "evaluate",
    "load_fer": "fer_data",
    "FerSplits": "fer_data",
    "carve_validation": "fer_data",
    "pause_training": "guard",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
