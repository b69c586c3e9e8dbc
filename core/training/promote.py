"""Ship a finished run under a model's name, keeping the story of the runs it replaces.

    python -m core.training.promote resnet50v2_96px --into resnet50v2 [--note TEXT]

A run writes `models/<run name>.npz` and its card. Promoting it moves both to
`models/<into>.npz` / `.json`; the card it replaces becomes one line (`run_summary`) at the end
of the new card's `previous_runs`, after that card's own earlier runs, with the git commit it
can be read from. Only a run that has ended is promoted, and only when it beats the shipped one
on the validation split carved from Training (the app's ranking rule), unless `--even-if-worse`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.analytics.comparison import run_summary
from core.emotion.cards import RANKING_SPLIT, CardError, read_card
from core.paths import MODELS_DIR, RUNS_DIR
from core.training.evaluate import write_json_atomically


class PromoteError(RuntimeError):
    """A promotion that would lose or misstate a model; the message says why."""


def card_source(card_path: Path) -> str:
    """Where the card at `card_path` can be read later: a `git show` of the last commit that
    changed it, or the path itself when git does not track it."""
    try:
        commit = subprocess.run(
            ["git", "log", "-1", "--format=%h", "--", str(card_path)],
            cwd=card_path.parent, capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()  # fmt: skip
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=card_path.parent, capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        commit = top = ""
    if not commit:
        return f"{card_path.name} before a promotion (not in git)"
    relative = card_path.resolve().relative_to(Path(top).resolve()).as_posix()
    return f"git show {commit}:{relative}"


def promoted_card(new: dict[str, Any], old: dict[str, Any], into: str, source: str,
                  note: str | None = None) -> dict[str, Any]:  # fmt: skip
    """The card of run `new` shipped as `into`, with `old` (the card it replaces) appended to
    its `previous_runs`."""
    demoted = run_summary(old, source)
    if note:
        demoted["notes"] = note
    previous = [*(old.get("previous_runs") or []), demoted]
    run_name = str(new.get("name"))
    reproduce = {
        key: command.replace(f"models/{run_name}.npz", f"models/{into}.npz")
        for key, command in (new.get("reproduce") or {}).items()
    }
    # The pilot that chose the recipe stays with the model when the new run has none of its own.
    pilots = {
        key: old[key] for key in ("pilot", "accuracy_pilot") if not new.get(key) and old.get(key)
    }
    return {
        **new,
        **pilots,
        "name": into,
        "file": f"{into}.npz",
        "trained_as": run_name,
        "reproduce": reproduce,
        "previous_runs": previous,
    }


def _why_no_card(run_dir: Path) -> str | None:
    """Why a run without a card cannot ship yet, from its checkpoint folder: the epoch it has
    reached and how to resume it, or that it finished without exporting and how to export it;
    None when the folder says nothing."""
    try:
        state = json.loads((run_dir / "state.json").read_text(encoding="utf-8"))
        done, planned = int(state["epoch"]), int(state["config"]["epochs"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if state.get("finished"):
        return (
            f"{run_dir.name} finished (epoch {done} of {planned} in {run_dir}) but has no "
            f"model or card yet. Export it with `python -m core.train --resume {run_dir}`, "
            "then promote it."
        )
    return (
        f"{run_dir.name} has not ended: epoch {done} of {planned} in {run_dir}. Resume it with "
        f"`python -m core.train --resume {run_dir}` and promote it when it has written its card."
    )


def _shipped_as(card_path: Path) -> str | None:
    """The run a shipped card says it was promoted from (`trained_as`), if it can be read."""
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card.get("trained_as") if isinstance(card, dict) else None


def _same_run(run_card: Path, shipped_card: Path) -> bool:
    """Whether the run's card (if it is still there) is the run the shipped card was promoted
    from (the same history), not a later run trained again under the same name."""
    if not run_card.exists():
        return True
    try:
        run = json.loads(run_card.read_text(encoding="utf-8"))
        shipped = json.loads(shipped_card.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(run, dict)
        and isinstance(shipped, dict)
        and (run.get("history") == shipped.get("history"))
    )


def promote(run_name: str, into: str, models_dir: Path = MODELS_DIR, note: str | None = None,
            even_if_worse: bool = False, runs_dir: Path = RUNS_DIR) -> dict[str, Any]:  # fmt: skip
    """Move run `run_name`'s model and card to `into`; returns what changed. Raises PromoteError
    before touching any file when the run has not ended, a file is missing, or the run loses on
    validation."""
    models_dir = Path(models_dir)
    new_card, new_model = models_dir / f"{run_name}.json", models_dir / f"{run_name}.npz"
    old_card, old_model = models_dir / f"{into}.json", models_dir / f"{into}.npz"
    if run_name == into:
        raise PromoteError("The run already ships under that name.")
    if _shipped_as(old_card) == run_name and _same_run(new_card, old_card):
        # Promoted already, or a kill came between writing the shipped card and moving the
        # model (or removing the run's card): finish what is left; a rerun is no error.
        moved = new_model.is_file()
        if moved:
            os.replace(new_model, old_model)
        new_card.unlink(missing_ok=True)
        return {
            "promoted": run_name,
            "into": into,
            "model": str(old_model),
            "resumed": moved,
            "already_promoted": not moved,
        }
    if not new_card.exists() and (reason := _why_no_card(Path(runs_dir) / run_name)):
        raise PromoteError(reason)
    try:
        new, old = read_card(new_card), read_card(old_card)
    except CardError as error:
        raise PromoteError(str(error)) from error
    if not new_model.is_file():
        raise PromoteError(f"{new_model} is missing: the run has not exported its model.")
    status = str(new.data.get("training_status") or "")
    if not status or status.startswith("interim"):
        raise PromoteError(f"{run_name} has not ended ({status or 'no training_status'}).")
    new_val, old_val = new.accuracy(RANKING_SPLIT), old.accuracy(RANKING_SPLIT)
    if new_val is None or old_val is None:
        raise PromoteError(f"Both cards need a '{RANKING_SPLIT}' accuracy to compare.")
    if new_val <= old_val and not even_if_worse:
        raise PromoteError(
            f"{run_name} scores {new_val:.4f} on validation, {into} {old_val:.4f}: the shipped "
            "model stays (pass --even-if-worse to replace it anyway)."
        )
    card = promoted_card(dict(new.data), dict(old.data), into, card_source(old_card), note)
    write_json_atomically(old_card, card)
    os.replace(new_model, old_model)
    new_card.unlink()
    return {
        "promoted": run_name,
        "into": into,
        "val_accuracy": {"new": new_val, "replaced": old_val},
        "model": str(old_model),
        "previous_runs": len(card["previous_runs"]),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="the run's model name, e.g. resnet50v2_96px")
    parser.add_argument("--into", required=True, help="the shipped name it replaces")
    parser.add_argument("--models", type=Path, default=MODELS_DIR)
    parser.add_argument("--note", help="a line about the replaced run, kept with it")
    parser.add_argument("--even-if-worse", action="store_true")
    args = parser.parse_args(argv)
    try:
        result = promote(args.run, args.into, args.models, args.note, args.even_if_worse)
    except PromoteError as error:
        print(f"promote: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
