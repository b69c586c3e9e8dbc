"""A training run's small progress record (no weights): per-epoch validation, img/s, busy cores.

    python benchmarks/run_progress.py runs/resnet50v2 > benchmarks/results/resnet50v2_progress.json

What a session commits while a long run is still going, so its curve survives the machine
(core/training/progress.py; the Model comparison page draws the unfinished ones).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.training.progress import progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path)
    print(json.dumps(progress(parser.parse_args().run_dir), indent=1))


if __name__ == "__main__":
    main()
