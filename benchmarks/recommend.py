"""Benchmark catalog loading and the local recommender; prints JSON.

For the shared 19k-row Spotify features table and for larger tables made by resampling it with
jitter (200k and 1M rows by default), measures:

* ``catalog_load_s``: `load_catalog` of the CSV and of the same table as Parquet, and where the
  time goes (``read_parse_s``: pyarrow's reader; ``normalise_s``: typing and cleaning columns);
* ``index_build_s``: `Recommender(catalog)`; ``first_query_s``: the first query, which builds
  the search tree and the track keys;
* p50/p95 latency of `Recommender.recommend` (with exclusions and feedback) and of
  `more_like_this`; ``clusters_build_s``: the k-means clustering behind "more like this".

Targets: load <= 6 s and recommend p95 <= 10 ms at 1M rows. The resampled tables are cached under
runs/catalogs/ (git-ignored; ``--cache-dir``), so only the first run pays for writing them.

    python benchmarks/recommend.py [--rows 200000,1000000] [--queries 300]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import core.music.catalog as catalog_module
from core.labels import EMOTIONS
from core.music.catalog import AUDIO_FEATURES, load_catalog, spotify_features_path
from core.music.feedback import Preference
from core.music.recommender import Recommender
from core.music.targets import STRATEGIES

REPO = Path(__file__).resolve().parent.parent
TARGET_P95_MS = 10.0
TARGET_LOAD_S = 6.0
CACHE_DIR = REPO / "runs" / "catalogs"
UNIT_FEATURES = ("danceability", "energy", "valence", "acousticness", "instrumentalness",
                 "liveness", "speechiness")  # fmt: skip


def resample(source: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """`rows` tracks drawn from a raw catalog table, features jittered, ids and titles unique.

    Works on the Spotify features layout (track_id, track_name) and on data_moods.csv (id, name).
    """
    rng = np.random.default_rng(seed)
    picked = source.iloc[rng.integers(0, len(source), rows)].reset_index(drop=True)
    for feature in AUDIO_FEATURES:
        if feature not in picked:
            continue
        spread = float(source[feature].std()) * 0.05
        jittered = picked[feature] + rng.normal(0.0, spread, rows)
        picked[feature] = jittered.clip(0.0, 1.0) if feature in UNIT_FEATURES else jittered
    copy_number = pd.Series(np.arange(rows)).astype(str)
    id_column = "track_id" if "track_id" in picked else "id"
    title_column = "track_name" if "track_name" in picked else "name"
    picked[id_column] = picked[id_column].astype(str) + "-" + copy_number
    picked[title_column] = picked[title_column].astype(str) + " #" + copy_number
    picked["popularity"] = (picked["popularity"] + rng.integers(-5, 6, rows)).clip(0, 100)
    return picked


resample_with_jitter = resample  # the name earlier versions of this script used


def read_raw(path: Path) -> pd.DataFrame:
    """A raw (not normalised) catalog table, BOM stripped from the first header."""
    return pd.read_csv(path, encoding="utf-8-sig")


def cached_table(
    source: Path, rows: int, seed: int, suffix: str, cache_dir: Path = CACHE_DIR
) -> Path:
    """`source` resampled to `rows` rows as .csv or .parquet under `cache_dir` (made once)."""
    stem = source.name.split(".")[0]
    path = cache_dir / f"{stem}_resampled_{rows}_seed{seed}{suffix}"
    if path.exists():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    table = resample(read_raw(source), rows, seed)
    partial = path.with_name(path.name + ".partial")
    if suffix == ".parquet":
        table.to_parquet(partial, index=False)
    else:
        table.to_csv(partial, index=False)
    partial.replace(path)  # atomic: a killed run leaves no half-written table behind
    return path


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    values = np.array(seconds) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 3),
        "p95_ms": round(float(np.percentile(values, 95)), 3),
        "max_ms": round(float(values.max()), 3),
    }


def timed_load(path: Path) -> tuple[pd.DataFrame, dict[str, float]]:
    """`load_catalog(path)` and its time, split into reading/parsing and normalising."""
    spent: dict[str, float] = {}
    read_frame, normalise = catalog_module._read_frame, catalog_module._normalise

    def timed(name: str, function):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] = round(time.perf_counter() - start, 3)

        return wrapper

    catalog_module._read_frame = timed("read_parse_s", read_frame)
    catalog_module._normalise = timed("normalise_s", normalise)
    try:
        start = time.perf_counter()
        catalog = load_catalog(path)
        total = time.perf_counter() - start
    finally:
        catalog_module._read_frame, catalog_module._normalise = read_frame, normalise
    return catalog, {"total_s": round(total, 3), **spent}


def bench_catalog(csv_path: Path, parquet_path: Path | None, queries: int, seed: int) -> dict:
    """Load (CSV, then Parquet), build and query one catalog."""
    loads: dict[str, object] = {}
    catalog, loads["csv"] = timed_load(csv_path)
    loads["csv_mb"] = round(csv_path.stat().st_size / 1e6, 1)
    if parquet_path is not None:
        del catalog
        catalog, loads["parquet"] = timed_load(parquet_path)
        loads["parquet_mb"] = round(parquet_path.stat().st_size / 1e6, 1)
    start = time.perf_counter()
    recommender = Recommender(catalog)
    build_s = time.perf_counter() - start

    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    keys = recommender.recommend({"happy": 1.0}, k=50)
    first_s = time.perf_counter() - start
    feedback = Preference(
        tracks={keys[0].key: 1, keys[1].key: -1}, artists={keys[2].artist.lower(): 2}
    )
    recommender.recommend({"sad": 1.0}, "match", k=5, feedback=feedback)  # warm-up
    latencies: list[float] = []
    for i in range(queries):
        # Dirichlet draws: mostly ambiguous faces, so blending is exercised too.
        probs = dict(zip(EMOTIONS, rng.dirichlet(np.full(len(EMOTIONS), 0.4)), strict=True))
        strategy = STRATEGIES[i % len(STRATEGIES)]
        exclude = [k.key for k in keys[:5]] if i % 2 else ()
        start = time.perf_counter()
        recommender.recommend(probs, strategy, k=5, exclude=exclude, feedback=feedback)
        latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    clustering = recommender.clusters()
    cluster_s = time.perf_counter() - start
    similar: list[float] = []
    for rec in keys[: min(50, len(keys))]:
        start = time.perf_counter()
        recommender.more_like_this(rec, k=5)
        similar.append(time.perf_counter() - start)
    return {
        "rows": len(catalog),
        "catalog_load_s": loads,
        "index_build_s": round(build_s, 3),
        "first_query_s": round(first_s, 3),
        "queries": queries,
        "recommend": percentiles_ms(latencies),
        "clusters_build_s": round(cluster_s, 3),
        "clusters_k": clustering.k,
        "clusters_silhouette": clustering.silhouette,
        "more_like_this": percentiles_ms(similar),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rows", default="200000,1000000", help="rows of the large tables, comma-separated"
    )
    parser.add_argument("--queries", type=int, default=300, help="queries per catalog")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR, help="resampled tables")
    args = parser.parse_args()
    sizes = [int(n) for n in str(args.rows).split(",") if n.strip()]

    source_path = spotify_features_path()
    if not source_path.exists():
        print(json.dumps({"error": f"{source_path} is absent; it lives in ../shared/data"}))
        return 1
    start = time.perf_counter()
    tables = {
        rows: tuple(
            cached_table(source_path, rows, args.seed, suffix, args.cache_dir)
            for suffix in (".csv", ".parquet")
        )
        for rows in sizes
    }
    prepare_s = time.perf_counter() - start
    import pyarrow  # (import costs are not part of a load or an index build)
    import scipy.spatial  # noqa: F401
    import sklearn.cluster  # noqa: F401

    result: dict[str, object] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "pyarrow": pyarrow.__version__,
            "load_average_1min": round(os.getloadavg()[0], 2),
        },
        "targets": {"recommend_p95_ms": TARGET_P95_MS, "catalog_load_s": TARGET_LOAD_S},
        "tables_prepared_s": round(prepare_s, 3),
    }
    result["spotify_features_19k"] = bench_catalog(source_path, None, args.queries, args.seed)
    for rows, (csv_path, parquet_path) in tables.items():
        result[f"resampled_{rows}"] = bench_catalog(csv_path, parquet_path, args.queries, args.seed)
    largest = result[f"resampled_{max(sizes)}"] if sizes else result["spotify_features_19k"]
    loads = largest["catalog_load_s"]  # type: ignore[index]
    worst_load = max(v["total_s"] for v in loads.values() if isinstance(v, dict))
    result["meets_target"] = bool(
        largest["recommend"]["p95_ms"] <= TARGET_P95_MS  # type: ignore[index]
        and worst_load <= TARGET_LOAD_S
    )
    result["machine"]["load_average_1min_end"] = round(os.getloadavg()[0], 2)  # type: ignore[index]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    from core.training.guard import pause_training

    with pause_training():  # a running training would skew the figures (and be slowed)
        code = main()
    sys.exit(code)
