"""The analyst pages under AppTest: Music explorer on real catalogs, Model comparison on real cards.

Every figure on the comparison page is checked against the card JSON read here with `json`, so a
chart that drifts from `models/*.json` fails. Cards come from `MOODLENS_MODELS_DIR` when set, else
the repo's models/; shared music data and FER2013 come from ../shared (tests skip when absent).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.analytics.comparison import still_training
from core.emotion.cards import load_cards
from core.labels import EMOTIONS, MOODS
from core.music.catalog import data_moods_path, load_catalog, spotify_features_path
from core.paths import MODELS_DIR, REPO_ROOT, STARTER_CATALOG, fer2013_npz
from core.training.progress import runs_in_progress
from tests.support.page_text import page_text

TIMEOUT = 180
EXPLORER = str(REPO_ROOT / "pages" / "music_explorer.py")
COMPARISON = str(REPO_ROOT / "pages" / "model_comparison.py")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MOODLENS_FEEDBACK_DB", str(tmp_path / "feedback.sqlite3"))
    monkeypatch.delenv("MOODLENS_CATALOG", raising=False)


def requires(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data file {path} is absent (it lives in ../shared/data)")
    return path


def run(app: AppTest) -> AppTest:
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def explorer(monkeypatch, catalog: Path) -> AppTest:
    monkeypatch.setenv("MOODLENS_CATALOG", str(catalog))
    return run(AppTest.from_file(EXPLORER, default_timeout=TIMEOUT))


def open_tab(app: AppTest, label: str, key: str = "mx_tab") -> AppTest:
    app.session_state[key] = label
    return run(app)


texts = page_text


def decode(value: Any) -> np.ndarray:
    """A plotly JSON array: a list, or a base64 typed array {"dtype", "bdata", "shape"}."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        if "shape" in value:
            array = array.reshape([int(n) for n in str(value["shape"]).split(",")])
        return array
    return np.asarray(value)


def charts(app: AppTest) -> dict[str, dict]:
    """Plotly figures on the page, by element key, as plotly JSON."""
    found = {chart.key: json.loads(chart.proto.spec) for chart in app.get("plotly_chart")}
    unnamed = [chart.key for chart in app.get("plotly_chart") if not chart.proto.alt.strip()]
    assert not unnamed, f"charts without an accessible name (alt): {unnamed}"
    return found


# --------------------------------------------------------------------------- music explorer


def test_explorer_opens_through_the_app_navigation(monkeypatch) -> None:
    monkeypatch.setenv("MOODLENS_CATALOG", str(STARTER_CATALOG))
    app = run(AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=TIMEOUT))
    app.switch_page("pages/music_explorer.py")
    run(app)
    assert app.title[0].value.endswith("Music explorer")


def test_explorer_every_tab_on_data_moods(monkeypatch) -> None:
    path = requires(data_moods_path())
    catalog = load_catalog(path)
    app = explorer(monkeypatch, path)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Tracks"] == "686" and metrics["Moods"] == "4"
    assert "Showing **686** of 686 tracks" in texts(app)
    labels = [tab.label for tab in app.tabs]
    assert labels == [
        "Overview", "Distributions", "Correlations", "Over the years", "Map", "Profiles", "Tracks",
    ]  # fmt: skip
    seen: set[str] = set()
    for label in labels:
        open_tab(app, label)
        seen |= set(charts(app))
        assert [b.label for b in app.get("download_button")], label  # data behind each chart
    assert {
        "mx_tracks-per-mood", "mx_feature-histograms", "mx_feature-correlations",
        "mx_features-over-years", "mx_track-map", "mx_group-profiles",
    } <= seen  # fmt: skip

    open_tab(app, "Distributions")
    hist = charts(app)["mx_feature-histograms"]
    n_features = len({trace["xaxis"] for trace in hist["data"]})
    mood_counts = catalog["mood"].value_counts()
    for mood in MOODS:
        traces = [t for t in hist["data"] if t["name"] == mood]
        counted = sum(decode(t["customdata"])[:, 2].sum() for t in traces)
        assert counted == mood_counts[mood] * n_features  # every track counted once a feature
        assert all(len(decode(t["x"])) <= 30 for t in traces)  # aggregated bins, not points


def test_explorer_filters_reduce_rows(monkeypatch) -> None:
    path = requires(data_moods_path())
    catalog = load_catalog(path)
    app = explorer(monkeypatch, path)
    mood = next(m for m in app.multiselect if m.label == "Mood")
    mood.set_value(["Sad"])
    run(app)
    assert "Showing **197** of 686 tracks" in texts(app)
    per_mood = charts(app)["mx_tracks-per-mood"]
    assert [t["name"] for t in per_mood["data"] if decode(t["y"]).sum() > 0] == ["Sad"]

    open_tab(app, "Tracks")
    app.text_input(key="mx_search").set_value("love")
    run(app)
    sad = catalog[catalog["mood"] == "Sad"]
    columns = sad[["title", "artist", "album", "genre"]].fillna("")
    expected = columns.apply(lambda c: c.str.lower().str.contains("love", regex=False)).any(axis=1)
    assert f"{int(expected.sum()):,} matching tracks" in texts(app)
    assert len(app.dataframe[0].value) == int(expected.sum())
    assert any("Download the" in b.label for b in app.get("download_button"))


def test_explorer_empty_selection_warns(monkeypatch, tmp_path) -> None:
    path = tmp_path / "tiny.csv"
    path.write_text(
        "title,artist,genre,mood\nA,a,pop,Sad\nB,b,rock,Happy\nC,c,rock,Calm\n", encoding="utf-8"
    )
    app = explorer(monkeypatch, path)
    next(m for m in app.multiselect if m.label == "Mood").set_value(["Sad"])
    next(m for m in app.multiselect if m.label == "Genre").set_value(["rock"])
    run(app)
    assert "No track passes these filters" in texts(app)


def test_explorer_warns_when_a_features_gaps_were_filled(monkeypatch, tmp_path) -> None:
    """A feature mostly missing is filled with its median for ranking: its charts would pile
    those tracks in one bin without a word; the page says which feature and how much."""
    rows = ["title,artist,genre,valence,energy,danceability,acousticness,tempo,liveness"]
    for i in range(40):
        liveness = f"{0.1 + i / 100:.2f}" if i % 10 == 0 else ""  # 36 of 40 missing
        rows.append(f"T{i},A{i},pop,{i / 40:.3f},{1 - i / 40:.3f},0.5,0.2,{90 + i},{liveness}")
    path = tmp_path / "gappy.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    app = explorer(monkeypatch, path)
    warning = "\n".join(w.value for w in app.warning)
    assert "**liveness** 90% of tracks" in warning and "valence" not in warning


def test_explorer_starter_catalog_explains_what_is_missing(monkeypatch) -> None:
    app = explorer(monkeypatch, STARTER_CATALOG)
    assert "no audio features" in texts(app) and "2-D map" in texts(app)
    assert [tab.label for tab in app.tabs] == ["Overview", "Tracks"]
    assert set(charts(app)) == {"mx_tracks-per-mood", "mx_tracks-per-genre", "mx_tracks-per-decade"}
    open_tab(app, "Tracks", key="mx_tab_basic")
    assert len(app.dataframe[0].value) == len(load_catalog(STARTER_CATALOG))


@pytest.mark.slow
def test_explorer_map_samples_19k_and_colours_by_cluster(monkeypatch) -> None:
    path = requires(spotify_features_path())
    app = explorer(monkeypatch, path)
    assert "no mood labels" in texts(app)
    open_tab(app, "Over the years")
    assert "no release years" in texts(app)
    open_tab(app, "Map")
    points = charts(app)["mx_track-map"]
    assert sum(len(decode(t["x"])) for t in points["data"]) == 5_000
    assert "random sample of 5,000" in texts(app)
    colour = next(c for c in app.get("segmented_control") if c.label == "Colour by")
    colour.set_value("cluster")
    run(app)
    assert "Clusters: k =" in texts(app)
    traces = charts(app)["mx_track-map"]["data"]
    assert len(traces) >= 3 and all(t["name"].startswith("~") for t in traces)  # estimated moods


# --------------------------------------------------------------------------- model comparison


def real_cards_folder() -> Path:
    folder = Path(os.environ.get("MOODLENS_MODELS_DIR") or MODELS_DIR)
    if not any("metrics" in json.loads(p.read_text()) for p in folder.glob("*.json")):
        pytest.skip(f"no model card in {folder} yet (train a model or set MOODLENS_MODELS_DIR)")
    return folder


def read_cards(folder: Path) -> dict[str, dict]:
    cards = {}
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and isinstance(data.get("metrics"), dict):
            cards[data.get("name") or path.stem] = data
    return cards


def comparison(monkeypatch, folder: Path) -> AppTest:
    monkeypatch.setenv("MOODLENS_MODELS_DIR", str(folder))
    return run(AppTest.from_file(COMPARISON, default_timeout=TIMEOUT))


def metric(card: dict, split: str, *keys: str) -> float:
    value: Any = card["metrics"].get(split, {})
    for key in keys:
        value = value.get(key, {}) if isinstance(value, dict) else {}
    return float(value) if not isinstance(value, dict) else float("nan")


CHART_KINDS = {
    "accuracy": "overview", "overview": "overview", "speed": "speed", "table": "table",
    "training-loss": "loss", "training_loss": "loss",
    "training-accuracy": "training_accuracy", "training_accuracy": "training_accuracy",
    "per-class-f1": "per_class", "per_class": "per_class",
    "training-progress": "progress", "training_progress": "progress",
}  # fmt: skip


def chart_kind(key: str) -> tuple[str | None, str | None]:
    """(kind, model) of a comparison chart key, from the page or from presenter mode."""
    name = key.removeprefix("cmp_slide_") if key.startswith("cmp_slide_") else key[4:]
    for kind in ("counts", "normalised"):
        for prefix in (f"confusion-{kind}-", f"confusion_{kind}_"):
            if name.startswith(prefix):
                return kind, name[len(prefix) :]
    return CHART_KINDS.get(name), None


def check_figure(key: str, figure: dict, cards: dict[str, dict], split: str) -> bool:
    """Assert a comparison figure equals the cards; False for a figure this test does not know."""
    kind, model = chart_kind(key)
    data = figure["data"]
    if kind == "overview":
        for trace in data:
            field = {"accuracy": "accuracy", "macro-F1": "macro_f1"}[trace["name"]]
            for name, value in zip(trace["x"], decode(trace["y"]), strict=True):
                assert value == pytest.approx(metric(cards[name], split, field), nan_ok=True)
    elif kind == "speed":
        for trace in data:
            card = cards[trace["name"]]
            assert decode(trace["x"])[0] == card["latency"]["ms_per_face_batch1"]
            assert decode(trace["y"])[0] == metric(card, split, "accuracy")
    elif kind in ("loss", "training_accuracy"):
        field = "loss" if kind == "loss" else "accuracy"
        for trace in data:
            name, phase = trace["name"].split(" · ")
            prefix = "val_" if phase == "validation" else ""
            expected = [h[f"{prefix}{field}"] for h in cards[name]["history"]]
            assert list(decode(trace["y"])) == pytest.approx(expected)
            assert list(decode(trace["x"])) == [h["epoch"] for h in cards[name]["history"]]
    elif kind == "progress":
        records = {r["run"]: r for r in runs_in_progress()}
        assert data, "a progress chart without a run"
        for trace in data:
            name, status = trace["name"].split(" · ")
            history = records[name]["history"] if status == "training" else cards[name]["history"]
            assert status == "training" or name not in records
            assert list(decode(trace["y"])) == pytest.approx([h["val_accuracy"] for h in history])
            assert list(decode(trace["x"])) == [h["epoch"] for h in history]
    elif kind in ("counts", "normalised"):
        matrix = np.asarray(cards[model]["metrics"][split]["confusion_matrix"], dtype=float)
        if kind == "normalised":
            support = matrix.sum(axis=1, keepdims=True)
            matrix = np.divide(matrix, support, out=np.zeros_like(matrix), where=support > 0)
        assert np.allclose(decode(data[0]["z"]).astype(float), matrix)
        assert data[0]["x"] == list(EMOTIONS) == data[0]["y"]
    elif kind == "per_class":
        assert [t["name"] for t in data] == list(EMOTIONS)
        for trace in data:
            for name, value in zip(trace["x"], decode(trace["y"]), strict=True):
                expected = metric(cards[name], split, "per_class", trace["name"], "f1")
                assert value == pytest.approx(expected, nan_ok=True)
    elif kind == "table":
        cells = data[0]["cells"]["values"]
        for name, accuracy in zip(cells[0], cells[1], strict=True):
            assert accuracy == f"{metric(cards[name], split, 'accuracy'):.1%}"
    return kind is not None


def test_comparison_every_figure_equals_the_cards(monkeypatch) -> None:
    folder = real_cards_folder()
    cards = read_cards(folder)
    app = comparison(monkeypatch, folder)
    source = next(c.value for c in app.caption if "read from the model cards" in c.value)
    assert str(REPO_ROOT) not in source  # the repository's folder, not the server's path
    figures = charts(app)
    expected_keys = {"cmp_accuracy", "cmp_speed", "cmp_per-class-f1"}
    expected_keys |= {f"cmp_confusion-counts-{name}" for name in cards}
    if any(card.get("history") for card in cards.values()):
        expected_keys |= {"cmp_training-loss", "cmp_training-accuracy"}
    if still_training(runs_in_progress(), load_cards(folder)):  # run 3's record, while it trains
        expected_keys.add("cmp_training-progress")
    assert expected_keys <= set(figures)
    unchecked = [
        key for key, figure in figures.items() if not check_figure(key, figure, cards, "test")
    ]
    assert not unchecked, f"figures without a check against the cards: {unchecked}"

    table = app.dataframe[0].value.set_index("model")
    for name, card in cards.items():
        assert table.loc[name, "accuracy"] == card["metrics"]["test"]["accuracy"]
        assert table.loc[name, "macro_f1"] == card["metrics"]["test"]["macro_f1"]
        assert table.loc[name, "parameters"] == card["parameters"]
        assert table.loc[name, "cpu_ms_per_face"] == card["latency"]["ms_per_face_batch1"]


def test_comparison_tells_the_story_of_models_trained_more_than_once(monkeypatch) -> None:
    """A card with earlier runs (ResNet50V2: run 1, then the shipped run 2) gets a table of its
    runs, read from the card; without such a card the table is not there."""
    folder = real_cards_folder()
    cards = read_cards(folder)
    retrained = {name: c["previous_runs"] for name, c in cards.items() if c.get("previous_runs")}
    app = comparison(monkeypatch, folder)
    tables = [t.value for t in app.dataframe if "run" in t.value.columns]
    if not retrained:
        assert not tables
        return
    (runs,) = tables
    for name, previous in retrained.items():
        mine = runs[runs["model"] == name]
        assert mine["run"].tolist() == list(range(1, len(previous) + 2))
        expected = [r["test_accuracy"] for r in previous] + [
            cards[name]["metrics"]["test"]["accuracy"]
        ]
        assert mine["test_accuracy"].tolist() == pytest.approx(expected)
        assert mine["epochs"].iloc[-1] == cards[name]["epochs_trained"]


def test_comparison_follows_the_chosen_split(monkeypatch) -> None:
    folder = real_cards_folder()
    cards = read_cards(folder)
    app = comparison(monkeypatch, folder)
    app.selectbox(key="cmp_split").set_value("test_unseen")
    run(app)
    figures = charts(app)
    for key in ("cmp_accuracy", "cmp_per-class-f1", *[f"cmp_confusion-counts-{n}" for n in cards]):
        assert check_figure(key, figures[key], cards, "test_unseen")
    assert "not in Training" in figures["cmp_accuracy"]["layout"]["title"]["text"]


def test_presenter_mode_steps_through_every_slide(monkeypatch) -> None:
    folder = real_cards_folder()
    cards = read_cards(folder)
    app = comparison(monkeypatch, folder)
    app.toggle(key="cmp_presenter").set_value(True)
    run(app)
    heading = app.markdown[0].value
    assert heading.startswith("### 1 of ")
    count = int(heading.split(" of ")[1].split(" ")[0])
    seen = []
    for _ in range(count):
        figures = charts(app)
        assert len(figures) == 1  # one chart per screen
        ((key, figure),) = figures.items()
        assert figure["layout"]["font"]["size"] == 22
        assert check_figure(key, figure, cards, "test"), key
        seen.append(key)
        app.button(key="cmp_next").click()
        run(app)
    assert app.markdown[0].value.startswith("### 1 of ")  # Next wraps around
    assert len(set(seen)) == count
    app.button(key="cmp_prev").click()
    run(app)
    assert app.markdown[0].value.startswith(f"### {count} of {count}")
    # On the last slide, a split with a shorter deck shows its last; Previous goes back one.
    for split in app.selectbox(key="cmp_split").options:
        app.selectbox(key="cmp_split").set_value(split)
        run(app)
        shown = app.markdown[0].value
        fewer = int(shown.split(" of ")[1].split(" ")[0])
        if fewer < count:
            break
    assert fewer < count and shown.startswith(f"### {fewer} of {fewer}")
    app.button(key="cmp_prev").click()
    run(app)
    assert app.markdown[0].value.startswith(f"### {fewer - 1} of {fewer}")


def test_comparison_without_cards_says_how_to_get_them(monkeypatch, tmp_path) -> None:
    app = comparison(monkeypatch, tmp_path)
    assert "No model card" in texts(app) and "core.train" in texts(app)
    assert not app.get("plotly_chart")


def test_comparison_shows_a_peer_and_skips_a_broken_card(monkeypatch, tmp_path) -> None:
    source = real_cards_folder()
    for path in source.glob("*.json"):
        shutil.copy(path, tmp_path / path.name)
    first = next(iter(read_cards(source).values()))
    peer = {"name": "fer", "kind": "peer", "metrics": {"test": first["metrics"]["test"]}}
    (tmp_path / "fer.json").write_text(json.dumps(peer))
    (tmp_path / "broken.json").write_text("{oops")
    app = comparison(monkeypatch, tmp_path)
    assert "broken.json" in texts(app)
    table = app.dataframe[0].value.set_index("model")
    assert table.loc["fer", "accuracy"] == first["metrics"]["test"]["accuracy"]
    assert np.isnan(table.loc["fer", "parameters"]) and np.isnan(table.loc["fer", "epochs"])
    assert "No training history in the card of: fer" in texts(app)
    cards = read_cards(tmp_path)
    for key, figure in charts(app).items():
        assert check_figure(key, figure, cards, "test"), key


@pytest.mark.slow
def test_same_face_runs_every_shipped_model(monkeypatch) -> None:
    folder = real_cards_folder()
    files = {path.stem: path for path in folder.glob("*.npz")}
    for card in read_cards(folder).values():  # peers whose model file is in the folder run too
        if card.get("file") and (folder / card["file"]).is_file():
            files.setdefault(card["name"], folder / card["file"])
    if not files:
        pytest.skip(f"no model file in {folder}")
    requires(fer2013_npz())
    from core.emotion.model import EmotionModel
    from core.training.fer_data import load_fer

    app = comparison(monkeypatch, folder)
    app.number_input(key="cmp_fer_index").set_value(7)
    app.button(key="cmp_run").click()
    run(app)
    figure = charts(app)["cmp_same-face"]
    x, y = load_fer(fer2013_npz()).get("test")
    assert f"label: {EMOTIONS[int(y[7])]}" in figure["layout"]["title"]["text"]
    by_emotion = {t["name"]: decode(t["x"]) for t in figure["data"]}
    names = figure["data"][0]["y"]
    assert sorted(names) == sorted(files)
    for i, name in enumerate(names):
        expected = EmotionModel.load(files[name]).predict(x[7:8])[0]
        shown = np.array([by_emotion[e][i] for e in EMOTIONS])
        assert np.allclose(shown, expected, atol=1e-5)
        assert shown.sum() == pytest.approx(1.0, abs=1e-4)
    top = app.dataframe[-1].value
    assert list(top["model"]) == names


def test_comparison_copes_with_odd_cards_and_labels_what_it_shows(monkeypatch, tmp_path) -> None:
    """A ragged confusion matrix and a recipe that is not a mapping crash no tab; the peer's
    data note is in the caption beside its results; the runs table says its macro-F1 is
    PublicTest's."""
    source = real_cards_folder()
    first = next(iter(read_cards(source).values()))
    square = first["metrics"]["test"]
    note = "Trained by its authors; PublicTest may overlap what it was trained on."
    ours = {"name": "odd", "recipe": "96px", "metrics": {"test": {**square}}}
    ours["metrics"]["test"]["confusion_matrix"] = [[1, 2, 3], [4, 5]]
    ours["previous_runs"] = [{"epochs": 2, "test_accuracy": 0.4, "test_macro_f1": 0.3}]
    peer = {"name": "fer", "kind": "peer", "metrics": {"test": square}, "data": {"note": note}}
    (tmp_path / "odd.json").write_text(json.dumps(ours))
    (tmp_path / "fer.json").write_text(json.dumps(peer))
    app = comparison(monkeypatch, tmp_path)
    shown = texts(app)
    assert "no confusion matrix for this split in odd.json" in shown
    assert f"fer: {note}" in shown
    (runs,) = [t for t in app.dataframe if "run" in t.value.columns]
    assert runs.value["run"].tolist() == [1, 2]
    assert "PublicTest macro-F1" in runs.proto.columns
    app.toggle(key="cmp_presenter").set_value(True)
    run(app)  # the deck skips the card without a usable matrix
