"""Benchmark the analyst pages (Music explorer, Model comparison) with AppTest; prints JSON.

Render times are wall-clock seconds of `AppTest.run()`, which executes the page script the way
the server does (widgets, caches, plotly figure serialisation; not the browser's drawing).
Catalogs: the shared 19k-row Spotify features table, the same resampled with jitter to 200k rows,
and data_moods.csv resampled to 200k rows (moods and years: every chart of the explorer). The
resampled tables live in a temporary folder and are deleted afterwards.

For each catalog:
* ``catalog_load_s``: `load_catalog` alone (the sidebar's catalog cache pays it once per file);
* ``first_view_s``: a new session's first render (Overview tab), catalog load included;
* ``tab_first_render_s``: each tab's first render (its charts computed cold; the explorer's tabs
  are lazy: only the open tab runs);
* ``tab_rerender_s``: median of later renders of each tab (cached: what a widget change costs);
* ``tab_after_filter_change_s``: each tab's render right after a new popularity filter (charts
  recomputed for the new selection);
* ``cluster_colour_first_s``: the first map coloured by k-means cluster (the recommender's
  clustering of the whole catalog, computed once per catalog).

Target: every ``tab_rerender_s`` and ``tab_after_filter_change_s`` under 2 s at 200k rows.

    python benchmarks/pages.py [--rows 200000] [--repeats 3] [--models-dir models]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
# This file is named pages.py: drop its folder from the path so `pages.common` (imported by the
# page scripts) resolves to the repo's pages/ package, not to this script.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(REPO))

from core.music.catalog import (  # noqa: E402
    AUDIO_FEATURES,
    data_moods_path,
    load_catalog,
    spotify_features_path,
)
from core.paths import MODELS_DIR  # noqa: E402

TARGET_S = 2.0
EXPLORER = str(REPO / "pages" / "music_explorer.py")
COMPARISON = str(REPO / "pages" / "model_comparison.py")
UNIT_FEATURES = ("danceability", "energy", "valence", "acousticness", "instrumentalness",
                 "liveness", "speechiness")  # fmt: skip
TIMEOUT_S = 300


def resample(source: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """`rows` tracks drawn from a raw catalog table, features jittered, ids and titles unique."""
    rng = np.random.default_rng(seed)
    picked = source.iloc[rng.integers(0, len(source), rows)].reset_index(drop=True)
    for feature in AUDIO_FEATURES:
        if feature in picked:
            jittered = picked[feature] + rng.normal(0.0, float(source[feature].std()) * 0.05, rows)
            picked[feature] = jittered.clip(0.0, 1.0) if feature in UNIT_FEATURES else jittered
    copy = pd.Series(np.arange(rows)).astype(str)
    id_column = "track_id" if "track_id" in picked else "id"
    title_column = "track_name" if "track_name" in picked else "name"
    picked[id_column] = picked[id_column].astype(str) + "-" + copy
    picked[title_column] = picked[title_column].astype(str) + " #" + copy
    picked["popularity"] = (picked["popularity"] + rng.integers(-5, 6, rows)).clip(0, 100)
    return picked


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def checked_run(at) -> None:
    """Run the page and fail loudly if it raised."""
    at.run(timeout=TIMEOUT_S)
    if at.exception:
        raise RuntimeError(f"page raised: {at.exception[0].value}")


def _tab_labels(at) -> list[str]:
    return [tab.label for tab in at.tabs]


def bench_explorer(path: Path, repeats: int) -> dict[str, object]:
    """Render times of the Music explorer on one catalog file, tab by tab."""
    from streamlit.testing.v1 import AppTest

    os.environ["MOODLENS_CATALOG"] = str(path)
    load_s = timed(lambda: load_catalog(path))
    rows = len(load_catalog(path))
    at = AppTest.from_file(EXPLORER, default_timeout=TIMEOUT_S)
    first = timed(lambda: checked_run(at))
    tabs = _tab_labels(at)
    first_render: dict[str, float] = {}
    rerender: dict[str, float] = {}
    for tab in tabs:
        at.session_state["mx_tab"] = tab
        first_render[tab] = round(timed(lambda: checked_run(at)), 3)
        rerender[tab] = round(
            statistics.median(timed(lambda: checked_run(at)) for _ in range(repeats)), 3
        )
    filter_change: dict[str, float] = {}
    sliders = [s for s in at.slider if s.label.startswith("Popularity")]
    if sliders:
        low, high = sliders[0].min, sliders[0].max
        for tab in tabs:
            # A new selection for each tab, so every tab computes its charts afresh.
            at.session_state["mx_tab"] = tab
            sliders = [s for s in at.slider if s.label.startswith("Popularity")]
            sliders[0].set_value((low + 1 + len(filter_change), high - 1))
            filter_change[tab] = round(timed(lambda: checked_run(at)), 3)
    at.session_state["mx_tab"] = "Map"
    checked_run(at)
    colour = [c for c in at.get("segmented_control") if c.label == "Colour by"]
    cluster_s = None
    if colour:
        colour[0].set_value("cluster")
        cluster_s = round(timed(lambda: checked_run(at)), 3)
    worst = max([*rerender.values(), *filter_change.values()], default=0.0)
    return {
        "rows": rows,
        "catalog_load_s": round(load_s, 3),
        "first_view_s": round(first, 3),
        "tab_first_render_s": first_render,
        "tab_rerender_s": rerender,
        "tab_after_filter_change_s": filter_change,
        "cluster_colour_first_s": cluster_s,
        "worst_render_s": round(worst, 3),
    }


def bench_comparison(models_dir: Path, repeats: int) -> dict[str, object]:
    """Render times of the Model comparison page (normal, then presenter mode)."""
    from streamlit.testing.v1 import AppTest

    os.environ["MOODLENS_MODELS_DIR"] = str(models_dir)
    at = AppTest.from_file(COMPARISON, default_timeout=TIMEOUT_S)
    first = timed(lambda: checked_run(at))
    rerender = [timed(lambda: checked_run(at)) for _ in range(repeats)]
    cards = len(list(models_dir.glob("*.json")))
    charts = len(at.get("plotly_chart"))
    presenter = None
    toggles = [t for t in at.toggle if t.label == "Presenter mode"]
    if toggles:
        toggles[0].set_value(True)
        presenter = round(timed(lambda: checked_run(at)), 3)
    return {
        "models_dir": str(models_dir),
        "cards": cards,
        "first_view_s": round(first, 3),
        "rerender_s": round(statistics.median(rerender), 3),
        "presenter_s": presenter,
        "charts": charts,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the large catalogs")
    parser.add_argument("--repeats", type=int, default=3, help="timed renders per measure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models-dir", type=Path, default=None, help=f"default {MODELS_DIR}")
    args = parser.parse_args()

    source = spotify_features_path()
    if not source.exists():
        print(json.dumps({"error": f"{source} is absent; it lives in ../shared/data/music"}))
        return 1
    os.chdir(REPO)
    # Warm-up (not timed): Python imports of the pages' modules (scikit-learn's PCA included),
    # as a running server has them after its first visitor.
    import sklearn.decomposition  # noqa: F401
    import threadpoolctl  # noqa: F401
    from streamlit.testing.v1 import AppTest

    os.environ["MOODLENS_CATALOG"] = str(REPO / "data" / "starter_catalog.csv")
    AppTest.from_file(EXPLORER, default_timeout=TIMEOUT_S).run(timeout=TIMEOUT_S)

    result: dict[str, object] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1min": round(os.getloadavg()[0], 2),
        },
        "target_s": TARGET_S,
        "measure": "wall-clock seconds of AppTest.run() (server-side render)",
    }
    explorer: dict[str, object] = {"spotify_features_19k": bench_explorer(source, args.repeats)}
    with tempfile.TemporaryDirectory() as folder:
        large = resample(pd.read_csv(source, encoding="utf-8-sig"), args.rows, args.seed)
        large_path = Path(folder) / f"spotify_features_resampled_{args.rows}.csv"
        large.to_csv(large_path, index=False)
        explorer[f"spotify_features_resampled_{args.rows}"] = bench_explorer(
            large_path, args.repeats
        )
        if data_moods_path().exists():
            moods = resample(pd.read_csv(data_moods_path()), args.rows, args.seed)
            moods_path = Path(folder) / f"data_moods_resampled_{args.rows}.csv"
            moods.to_csv(moods_path, index=False)
            explorer[f"data_moods_resampled_{args.rows}"] = bench_explorer(moods_path, args.repeats)
    result["music_explorer"] = explorer
    models_dir = args.models_dir or Path(os.environ.get("MOODLENS_MODELS_DIR") or MODELS_DIR)
    result["model_comparison"] = bench_comparison(models_dir, args.repeats)
    large_runs = [v for k, v in explorer.items() if k.endswith(str(args.rows))]
    worst = max(float(r["worst_render_s"]) for r in large_runs)  # type: ignore[arg-type]
    result["worst_200k_render_s"] = worst
    result["meets_target"] = bool(worst < TARGET_S)
    result["machine"]["load_average_1min_end"] = round(os.getloadavg()[0], 2)  # type: ignore[index]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    from core.training.guard import pause_training

    with pause_training():  # a running training would skew the figures (and be slowed)
        code = main()
    sys.exit(code)
