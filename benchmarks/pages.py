"""Benchmark the analyst pages (Music explorer, Model comparison) with AppTest; prints JSON.

Render times are wall-clock seconds of `AppTest.run()`, which executes the page script the way
the server does (widgets, caches, plotly figure serialisation; not the browser's drawing).
Catalogs: the shared 19k-row Spotify features table, the same resampled with jitter to 1M rows,
and data_moods.csv resampled to 1M rows (moods and years: every chart of the explorer). The
resampled tables are Parquet files cached under runs/catalogs/ (git-ignored; see
benchmarks/recommend.py), made on the first run.

For each catalog:
* ``catalog_load_s``: `load_catalog` alone (the sidebar's catalog cache pays it once per file);
* ``first_view_s``: a new session's first render (Overview tab), catalog load included;
* ``tab_first_render_s``: each tab's first render (its charts computed cold; the explorer's tabs
  are lazy: only the open tab runs);
* ``tab_rerender_s``: median of later renders of each tab (cached: what a widget change costs);
* ``tab_after_filter_change_s``: each tab's render right after a new popularity filter (charts
  recomputed for the new selection);
* ``cluster_colour_first_s``: the first map coloured by k-means cluster (the recommender's
  clustering of the whole catalog, computed once per catalog; the recommender is built then).

Targets at 1M rows: every tab's first render, re-render and render after a filter change
<= 1 s, and the first cluster colouring < 1 s.

    python benchmarks/pages.py [--rows 1000000] [--repeats 3] [--models-dir models]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# This file is named pages.py: drop its folder from the path so `pages.common` (imported by the
# page scripts) resolves to the repo's pages/ package, not to this script.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(REPO))

from benchmarks.recommend import CACHE_DIR, cached_table  # noqa: E402
from core.music.catalog import data_moods_path, load_catalog, spotify_features_path  # noqa: E402
from core.paths import MODELS_DIR  # noqa: E402

TARGET_S = 1.0
TARGET_CLUSTER_COLOUR_S = 1.0
EXPLORER = str(REPO / "pages" / "music_explorer.py")
COMPARISON = str(REPO / "pages" / "model_comparison.py")
TIMEOUT_S = 300


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
    start = time.perf_counter()
    rows = len(load_catalog(path))
    load_s = time.perf_counter() - start
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
    worst = max([*first_render.values(), *rerender.values(), *filter_change.values()], default=0.0)
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
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large catalogs")
    parser.add_argument("--repeats", type=int, default=3, help="timed renders per measure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models-dir", type=Path, default=None, help=f"default {MODELS_DIR}")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR, help="resampled tables")
    parser.add_argument("--skip-comparison", action="store_true", help="explorer only")
    args = parser.parse_args()

    source = spotify_features_path()
    if not source.exists():
        print(json.dumps({"error": f"{source} is absent; it lives in ../shared/data/music"}))
        return 1
    os.chdir(REPO)
    # Warm-up (not timed): Python imports of the pages' modules (scikit-learn's PCA and k-means,
    # scipy's KD-tree included), as a running server has them after its first visitor.
    import scipy.spatial  # noqa: F401
    import sklearn.cluster
    import sklearn.decomposition
    import sklearn.metrics  # noqa: F401
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
        "measure": "wall-clock seconds of AppTest.run() (server-side render)",
    }
    large = {"spotify_features": source}
    if data_moods_path().exists():
        large["data_moods"] = data_moods_path()
    tables = {
        f"{name}_resampled_{args.rows}": cached_table(
            path, args.rows, args.seed, ".parquet", args.cache_dir
        )
        for name, path in large.items()
    }
    explorer: dict[str, object] = {"spotify_features_19k": bench_explorer(source, args.repeats)}
    for name, path in tables.items():
        explorer[name] = bench_explorer(path, args.repeats)
    result["music_explorer"] = explorer
    if not args.skip_comparison:
        models_dir = args.models_dir or Path(os.environ.get("MOODLENS_MODELS_DIR") or MODELS_DIR)
        result["model_comparison"] = bench_comparison(models_dir, args.repeats)
    large_runs = [explorer[name] for name in tables]
    worst = max(float(r["worst_render_s"]) for r in large_runs)  # type: ignore[index]
    colour = max(float(r["cluster_colour_first_s"] or 0.0) for r in large_runs)  # type: ignore[index]
    result["targets"] = {"render_s": TARGET_S, "cluster_colour_first_s": TARGET_CLUSTER_COLOUR_S}
    result[f"worst_{args.rows}_render_s"] = worst
    result[f"worst_{args.rows}_cluster_colour_first_s"] = colour
    result["meets_target"] = bool(worst <= TARGET_S and colour < TARGET_CLUSTER_COLOUR_S)
    result["machine"]["load_average_1min_end"] = round(os.getloadavg()[0], 2)  # type: ignore[index]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    from core.training.guard import pause_training

    with pause_training():  # a running training would skew the figures (and be slowed)
        code = main()
    sys.exit(code)
