"""Runs still training (core/training/progress.py) and how the Model comparison page draws
them beside the shipped run of the same model (core.analytics.comparison.progress_frame)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.analytics import comparison as cmp
from core.analytics import comparison_figures as figs
from core.emotion.cards import CardSet, ModelCard
from core.training.progress import progress, runs_in_progress, validation_table


def _state(epochs_done: int, planned: int = 60, model: str = "resnet50v2") -> dict:
    """A state.json as core.train writes it after `epochs_done` epochs."""
    history = [
        {"epoch": e, "val_accuracy": 0.3 + 0.01 * e, "cpu_seconds": 1200.0, "img_per_s": 38.0,
         "loss": 2.0 - 0.01 * e, "accuracy": 0.2 + 0.01 * e, "weights_path": "heavy"}
        for e in range(1, epochs_done + 1)
    ]  # fmt: skip
    return {
        "config": {"model": model, "epochs": planned, "image_size": 96},
        "epoch": epochs_done,
        "finished": epochs_done >= planned,
        "best_epoch": epochs_done,
        "best_val_accuracy": history[-1]["val_accuracy"] if history else 0.0,
        "cpu_seconds": 1200.0 * epochs_done,
        "wall_seconds": 660.0 * epochs_done,
        "split": {"train": 25837, "val": 2872},
        "history": history,
    }


def _live(runs: Path, name: str, state: dict) -> None:
    (runs / name).mkdir(parents=True)
    (runs / name / "state.json").write_text(json.dumps(state))


def _committed(results: Path, name: str, state: dict) -> None:
    results.mkdir(exist_ok=True)
    (results / f"{name}_progress.json").write_text(json.dumps(progress(Path(name), state)))


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    results, runs = tmp_path / "results", tmp_path / "runs"
    results.mkdir()
    runs.mkdir()
    return results, runs


def test_a_progress_record_keeps_the_curve_and_drops_the_heavy_parts() -> None:
    record = progress(Path("runs/r3"), _state(3))
    assert (record["run"], record["epochs_done"], record["epochs_planned"]) == ("r3", 3, 60)
    assert record["cpu_hours"] == pytest.approx(1.0)
    assert [h["val_accuracy"] for h in record["history"]] == pytest.approx([0.31, 0.32, 0.33])
    assert all("weights_path" not in h for h in record["history"])
    assert record["resume"] == "python -m core.train --resume runs/r3"


def test_validation_tables_split_long_runs_and_leave_unreached_epochs_blank() -> None:
    running = [{"epoch": e, "val_accuracy": v} for e, v in [(1, 0.3), (2, 0.52), (3, 0.5)]]
    shipped = [{"epoch": e, "val_accuracy": 0.25 + 0.01 * e} for e in range(1, 13)]
    tables = validation_table({"run 3": running, "run 2": shipped}, per_row=5).split("\n\n")
    assert len(tables) == 3  # epochs 1-5, 6-10, 11-12: the longest run sets the width
    first = tables[0].splitlines()
    assert first[0] == "| epoch | 1 | 2 | 3 | 4 | 5 |"
    assert first[2] == "| run 3 | .300 | **.520** | .500 |  |  |"
    assert first[3] == "| run 2 | .260 | .270 | .280 | .290 | .300 |"
    assert tables[2].splitlines()[2] == "| run 3 |  |  |"
    assert tables[2].splitlines()[3] == "| run 2 | .360 | **.370** |"


def test_the_newer_of_record_and_live_state_wins_and_finished_runs_drop_out(dirs) -> None:
    results, runs = dirs
    _committed(results, "r3", _state(8))
    _live(runs, "r3", _state(10))  # this machine trained two more epochs
    _committed(results, "r4", _state(5))  # committed only (a fresh clone)
    _committed(results, "done", _state(4))
    _live(runs, "done", _state(60))  # finished here since its record was committed
    _live(runs, "pilot", _state(6, planned=6))  # a finished pilot
    (results / "broken_progress.json").write_text("{oops")
    (results / "notes_progress.json").write_text(json.dumps({"run": "no history"}))

    found = {r["run"]: r for r in runs_in_progress(results, runs)}
    assert sorted(found) == ["r3", "r4"]
    assert found["r3"]["epochs_done"] == 10 and "this machine" in found["r3"]["source"]
    assert found["r4"]["epochs_done"] == 5 and found["r4"]["source"] == "r4_progress.json"


def _card(name: str, history: list[dict], status: str = "finished", **extra) -> ModelCard:
    data = {"name": name, "metrics": {}, "history": history, "training_status": status, **extra}
    return ModelCard(path=Path(f"{name}.json"), data=data)


def test_a_run_whose_card_ships_finished_is_no_longer_training() -> None:
    records = [progress(Path(n), _state(8)) for n in ("r3", "r4", "r5")]
    cards = CardSet(
        folder=Path("models"),
        cards=[
            _card("resnet50v2", [], trained_as="r3"),  # promoted
            _card("r4", [], status="interim: best of 8 of 60 epochs so far; the run continues"),
        ],
    )
    assert [r["run"] for r in cmp.still_training(records, cards)] == ["r4", "r5"]


def test_the_progress_chart_puts_a_run_beside_the_shipped_run_of_its_model() -> None:
    shipped_history = _state(12)["history"]
    cards = CardSet(folder=Path("models"), cards=[_card("resnet50v2", shipped_history)])
    records = [progress(Path("r3"), _state(3)), progress(Path("other"), _state(2, model="cnn"))]
    frame = cmp.progress_frame(records, cards)

    assert frame["series"].unique().tolist() == [
        "r3 · training",
        "resnet50v2 · shipped",
        "other · training",
    ]  # fmt: skip  (no shipped cnn card: no reference for `other`)
    shipped = frame[frame["status"] == "shipped"]
    assert shipped["epoch"].tolist() == list(range(1, 13))
    assert shipped["cpu_hours"].iloc[-1] == pytest.approx(12 * 1200 / 3600)
    colors = figs.model_colors(["cnn", "resnet50v2"])
    fig = figs.progress_figure(frame, colors, "epoch")
    traces = {t.name: t for t in fig.data}
    assert list(traces["r3 · training"].y) == pytest.approx([0.31, 0.32, 0.33])
    shipped_line, run_line = traces["resnet50v2 · shipped"].line, traces["r3 · training"].line
    assert shipped_line.dash == "dot" and shipped_line.color == colors["resnet50v2"]
    assert run_line.dash == "solid" and run_line.color not in colors.values()
    assert traces["other · training"].line.color not in (run_line.color, *colors.values())
    summary = cmp.progress_summary(records[0])
    assert "r3: epoch 3 of 60" in summary and "best validation 0.330 at epoch 3" in summary
    assert "about 19.0 CPU-hours to go" in summary  # 57 epochs left at 1200 CPU-s each


def test_cpu_hours_to_go_uses_the_median_epoch() -> None:
    record = progress(Path("r3"), _state(3, planned=10))
    record["history"][1]["cpu_seconds"] = 9000.0  # an epoch that shared the machine with CI
    assert cmp.cpu_hours_to_go(record) == pytest.approx(7 * 1200 / 3600)
    record["history"] = []
    assert np.isnan(cmp.cpu_hours_to_go(record))
    assert "to go" not in cmp.progress_summary(record)


def test_presenter_mode_has_a_slide_for_runs_still_training() -> None:
    cards = CardSet(folder=Path("models"), cards=[_card("resnet50v2", _state(12)["history"])])
    assert "training_progress" not in [s.key for s in figs.slides(cards, "test")]
    deck = figs.slides(cards, "test", [progress(Path("r3"), _state(3))])
    slide = next(s for s in deck if s.key == "training_progress")
    assert slide.data["series"].unique().tolist() == ["r3 · training", "resnet50v2 · shipped"]
    assert [t.name for t in slide.figure.data] == ["r3 · training", "resnet50v2 · shipped"]


def test_a_record_whose_history_is_not_epochs_is_skipped(dirs) -> None:
    """`history: [1, 2]` or `[null]` is no progress record: skipped, so the page's progress
    frame and CPU-hours estimate never see it."""
    results, runs = dirs
    _committed(results, "good", _state(3))
    for name, history in (("numbers", [1, 2]), ("nulls", [None]), ("mixed", [{"epoch": 1}, 7])):
        record = progress(Path(name), _state(3)) | {"history": history}
        (results / f"{name}_progress.json").write_text(json.dumps(record))
    _live(runs, "live_numbers", _state(3) | {"history": [1, 2]})

    found = runs_in_progress(results, runs)
    assert [r["run"] for r in found] == ["good"]
    assert not cmp.progress_frame(found, CardSet(folder=Path("."))).empty
    assert cmp.cpu_hours_to_go(found[0]) > 0
