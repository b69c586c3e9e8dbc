"""Promoting a finished run to the shipped name (core/training/promote.py), on copies of the
repo's real cards."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from core.emotion.cards import available_models, load_cards
from core.paths import MODELS_DIR
from core.training.promote import PromoteError, card_source, main, promote

SHIPPED = "resnet50v2"
RUN = "resnet50v2_96px"


def _run_card(old: dict, val_accuracy: float, status: str = "finished") -> dict:
    """A card as run 3 would write it: the shipped card's layout under the run's name."""
    card = json.loads(json.dumps(old))
    card.pop("previous_runs", None)
    card.update(name=RUN, file=f"{RUN}.npz", training_status=status, epochs_trained=60)
    card["pilot"] = None  # a run folder without pilot.json
    card["metrics"]["val"]["accuracy"] = val_accuracy
    card["reproduce"] = {
        "train": f"python -m core.train --name {RUN} --image-size 96",
        "evaluate": f"python -m core.training.evaluate --model models/{RUN}.npz --split test",
    }
    return card


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """A models folder holding the shipped ResNet50V2 card and a smaller CNN's."""
    folder = tmp_path / "models"
    folder.mkdir()
    for name in (SHIPPED, "cnn"):
        shutil.copy(MODELS_DIR / f"{name}.json", folder / f"{name}.json")
        (folder / f"{name}.npz").write_bytes(f"{name} weights".encode())
    return folder


def _add_run(models: Path, val_accuracy: float, status: str = "finished") -> dict:
    old = json.loads((models / f"{SHIPPED}.json").read_text())
    card = _run_card(old, val_accuracy, status)
    (models / f"{RUN}.json").write_text(json.dumps(card))
    (models / f"{RUN}.npz").write_bytes(b"run 3 weights")
    return old


def test_a_better_run_replaces_the_shipped_model_and_keeps_its_story(models: Path) -> None:
    old = _add_run(models, val_accuracy=0.65)
    result = promote(RUN, SHIPPED, models, note="64 px")

    assert result["val_accuracy"]["new"] == 0.65
    assert not (models / f"{RUN}.json").exists() and not (models / f"{RUN}.npz").exists()
    assert (models / f"{SHIPPED}.npz").read_bytes() == b"run 3 weights"
    card = json.loads((models / f"{SHIPPED}.json").read_text())
    assert (card["name"], card["file"], card["trained_as"]) == (SHIPPED, f"{SHIPPED}.npz", RUN)
    assert card["reproduce"]["evaluate"].startswith(
        f"python -m core.training.evaluate --model models/{SHIPPED}.npz"
    )
    assert f"--name {RUN}" in card["reproduce"]["train"]  # how the run was made, unchanged
    assert card["pilot"] == old["pilot"]  # the run had no pilot table of its own
    runs = card["previous_runs"]
    assert runs[:-1] == old["previous_runs"]  # run 1 stays first
    replaced = runs[-1]
    assert replaced["val_accuracy"] == old["metrics"]["val"]["accuracy"]
    assert replaced["epochs"] == old["epochs_trained"] and replaced["notes"] == "64 px"
    assert replaced["source"] == f"{SHIPPED}.json before a promotion (not in git)"
    # the app sees one ResNet50V2, the promoted one, ranked by its validation accuracy
    assert load_cards(models).names.count(SHIPPED) == 1 and RUN not in load_cards(models).names
    assert available_models(models)[0].name == f"{SHIPPED}.npz"


@pytest.mark.parametrize(
    ("val_accuracy", "status", "reason"),
    [
        (0.70, "interim: best of 20 of 60 epochs so far; the run continues", "has not ended"),
        (0.60, "finished", "the shipped model stays"),
    ],
)
def test_a_run_that_has_not_ended_or_loses_changes_nothing(
    models: Path, val_accuracy: float, status: str, reason: str
) -> None:
    _add_run(models, val_accuracy, status)
    before = {p.name: p.read_bytes() for p in models.iterdir()}
    with pytest.raises(PromoteError, match=reason):
        promote(RUN, SHIPPED, models)
    assert {p.name: p.read_bytes() for p in models.iterdir()} == before


def test_a_losing_run_ships_only_when_asked(models: Path, capsys) -> None:
    _add_run(models, val_accuracy=0.60)
    assert main([RUN, "--into", SHIPPED, "--models", str(models)]) == 1
    assert "0.6000 on validation" in capsys.readouterr().err
    args = [RUN, "--into", SHIPPED, "--models", str(models), "--even-if-worse"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["promoted"] == RUN
    assert json.loads((models / f"{SHIPPED}.json").read_text())["trained_as"] == RUN


def test_a_run_without_its_model_file_is_refused(models: Path) -> None:
    _add_run(models, val_accuracy=0.65)
    (models / f"{RUN}.npz").unlink()
    with pytest.raises(PromoteError, match="has not exported its model"):
        promote(RUN, SHIPPED, models)


def test_a_run_still_training_says_its_epoch_and_how_to_resume(models: Path, tmp_path: Path):
    run_dir = tmp_path / "runs" / RUN
    run_dir.mkdir(parents=True)
    state = {"epoch": 22, "config": {"epochs": 60}, "finished": False}
    (run_dir / "state.json").write_text(json.dumps(state))
    before = {p.name: p.read_bytes() for p in models.iterdir()}
    with pytest.raises(PromoteError, match="epoch 22 of 60") as refused:
        promote(RUN, SHIPPED, models, runs_dir=tmp_path / "runs")
    assert f"python -m core.train --resume {run_dir}" in str(refused.value)
    assert {p.name: p.read_bytes() for p in models.iterdir()} == before
    # with no checkpoint folder either, the missing card is the reason
    with pytest.raises(PromoteError, match="could not be read"):
        promote(RUN, SHIPPED, models, runs_dir=tmp_path / "elsewhere")


def test_the_source_of_a_tracked_card_is_a_git_show_that_reads_it() -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    source = card_source(MODELS_DIR / f"{SHIPPED}.json")
    if "not in git" in source:
        pytest.skip("this checkout is not a git repository")
    assert source.startswith("git show ") and source.endswith(f":models/{SHIPPED}.json")
    shown = subprocess.run(
        source.split(), cwd=MODELS_DIR, capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(shown)["name"] == SHIPPED


def test_a_finished_run_without_a_card_says_how_to_export_it(models: Path, tmp_path: Path):
    run_dir = tmp_path / "runs" / RUN
    run_dir.mkdir(parents=True)
    state = {"epoch": 60, "config": {"epochs": 60}, "finished": True}
    (run_dir / "state.json").write_text(json.dumps(state))
    with pytest.raises(PromoteError, match=r"finished .* no model or card yet") as refused:
        promote(RUN, SHIPPED, models, runs_dir=tmp_path / "runs")
    assert f"python -m core.train --resume {run_dir}" in str(refused.value)
    assert "could not be read" not in str(refused.value)


def test_a_kill_while_the_card_is_written_leaves_the_shipped_card_whole(
    models: Path, monkeypatch
) -> None:
    _add_run(models, val_accuracy=0.65)
    before = {p.name: p.read_bytes() for p in models.iterdir()}
    write_text = Path.write_text

    def killed_halfway(path: Path, text: str, *args, **kwargs) -> int:
        write_text(path, text[: len(text) // 2], *args, **kwargs)
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(Path, "write_text", killed_halfway)
    with pytest.raises(KeyboardInterrupt):
        promote(RUN, SHIPPED, models)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in models.iterdir()} == before
    assert json.loads((models / f"{SHIPPED}.json").read_text())["name"] == SHIPPED


def test_a_kill_after_the_card_and_before_the_model_moved_is_finished_by_promoting_again(
    models: Path, monkeypatch
) -> None:
    import core.training.promote as promote_module

    _add_run(models, val_accuracy=0.65)
    replace = promote_module.os.replace

    def killed(source, target):  # the card is moved into place with os.replace too
        if str(source).endswith(".npz"):
            raise KeyboardInterrupt("killed before the model moved")
        replace(source, target)

    monkeypatch.setattr(promote_module.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        promote(RUN, SHIPPED, models)
    monkeypatch.setattr(promote_module.os, "replace", replace)
    assert json.loads((models / f"{SHIPPED}.json").read_text())["trained_as"] == RUN
    assert (models / f"{SHIPPED}.npz").read_bytes() == b"resnet50v2 weights"  # not yet moved
    # The card already says run 3, so comparing it with itself would refuse: finish the move.
    result = promote(RUN, SHIPPED, models)
    assert result["resumed"] is True
    assert (models / f"{SHIPPED}.npz").read_bytes() == b"run 3 weights"
    assert not (models / f"{RUN}.npz").exists() and not (models / f"{RUN}.json").exists()
    assert load_cards(models).names.count(SHIPPED) == 1


def test_promoting_again_after_it_shipped_is_no_error_and_a_new_run_is_compared(
    models: Path, tmp_path: Path
) -> None:
    _add_run(models, val_accuracy=0.65)
    promote(RUN, SHIPPED, models, runs_dir=tmp_path / "runs")
    shipped = (models / f"{SHIPPED}.json").read_text()
    # `make ship-resnet` run again (its latency step was killed): nothing to do, exit 0.
    again = promote(RUN, SHIPPED, models, runs_dir=tmp_path / "runs")
    assert again["already_promoted"] is True and again["resumed"] is False
    assert main([RUN, "--into", SHIPPED, "--models", str(models)]) == 0
    assert (models / f"{SHIPPED}.json").read_text() == shipped
    assert (models / f"{SHIPPED}.npz").read_bytes() == b"run 3 weights"
    # A later run trained under the same name is a new run: compared, not waved through.
    card = json.loads(shipped)
    card.pop("previous_runs")
    card.update(name=RUN, file=f"{RUN}.npz", history=[{"epoch": 1, "val_accuracy": 0.3}])
    card["metrics"]["val"]["accuracy"] = 0.30
    (models / f"{RUN}.json").write_text(json.dumps(card))
    (models / f"{RUN}.npz").write_bytes(b"attempt 5 weights")
    with pytest.raises(PromoteError, match="the shipped model stays"):
        promote(RUN, SHIPPED, models, runs_dir=tmp_path / "runs")
    assert (models / f"{SHIPPED}.npz").read_bytes() == b"run 3 weights"
