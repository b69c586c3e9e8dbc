"""A training run's small progress record (no weights): per-epoch validation, img/s, busy cores.

    python benchmarks/run_progress.py runs/resnet50v2 > benchmarks/results/resnet50v2_progress.json
    python benchmarks/run_progress.py runs/resnet50v2_96px --markdown "run 3, 96 px" \
        --against <(git show ad486c7:models/resnet50v2.json) "run 2, 64 px"

`--markdown LABEL` prints the README's validation-by-epoch tables instead (10 epochs a table),
with one more row per `--against CARD LABEL` (a shipped run's card).

What a session commits while a long run is still going, so its curve survives the machine
(core/training/progress.py; the Model comparison page draws the unfinished ones).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.training.progress import progress, validation_table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--markdown", metavar="LABEL", help="print validation tables instead")
    parser.add_argument(
        "--against", nargs=2, action="append", default=[], metavar=("CARD", "LABEL"),
        help="a model card whose history is a row of the tables (repeatable)",
    )  # fmt: skip
    args = parser.parse_args()
    record = progress(args.run_dir)
    if not args.markdown:
        print(json.dumps(record, indent=1))
        return
    curves = {args.markdown: record["history"]}
    for card, label in args.against:
        curves[label] = json.loads(Path(card).read_text())["history"]
    print(validation_table(curves))


if __name__ == "__main__":
    main()
