"""Benchmark the local recommender; prints JSON.

Measures catalog load time, index build time, and p50/p95 latency of `Recommender.recommend`
(and of `more_like_this`) on the shared 19k-row Spotify features table and on a larger table made
by resampling it with jitter (200k rows by default). Target: p95 below 10 ms per query at 200k.

    python benchmarks/recommend.py [--rows 200000] [--queries 300]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.labels import EMOTIONS
from core.music.catalog import AUDIO_FEATURES, load_catalog, spotify_features_path
from core.music.feedback import Preference
from core.music.recommender import Recommender
from core.music.targets import STRATEGIES

TARGET_P95_MS = 10.0
UNIT_FEATURES = ("danceability", "energy", "valence", "acousticness", "instrumentalness",
                 "liveness", "speechiness")  # fmt: skip


def resample_with_jitter(source: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """`rows` tracks drawn from the raw 19k table, features jittered, ids made unique."""
    rng = np.random.default_rng(seed)
    picked = source.iloc[rng.integers(0, len(source), rows)].reset_index(drop=True)
    for feature in AUDIO_FEATURES:
        if feature not in picked:
            continue
        spread = float(source[feature].std()) * 0.05
        jittered = picked[feature] + rng.normal(0.0, spread, rows)
        picked[feature] = jittered.clip(0.0, 1.0) if feature in UNIT_FEATURES else jittered
    copy_number = pd.Series(np.arange(rows)).astype(str)
    picked["track_id"] = picked["track_id"].astype(str) + "-" + copy_number
    picked["track_name"] = picked["track_name"].astype(str) + " #" + copy_number
    picked["popularity"] = (picked["popularity"] + rng.integers(-5, 6, rows)).clip(0, 100)
    return picked


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    values = np.array(seconds) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 3),
        "p95_ms": round(float(np.percentile(values, 95)), 3),
        "max_ms": round(float(values.max()), 3),
    }


def bench_catalog(path: Path, queries: int, seed: int) -> dict[str, object]:
    """Load, build and query one catalog file."""
    start = time.perf_counter()
    catalog = load_catalog(path)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    recommender = Recommender(catalog)
    build_s = time.perf_counter() - start

    rng = np.random.default_rng(seed)
    keys = recommender.recommend({"happy": 1.0}, k=50)
    feedback = Preference(
        tracks={keys[0].key: 1, keys[1].key: -1}, artists={keys[2].artist.lower(): 2}
    )
    recommender.recommend({"sad": 1.0}, "match", k=5)  # warm-up
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
        "catalog_load_s": round(load_s, 3),
        "index_build_s": round(build_s, 3),
        "queries": queries,
        "recommend": percentiles_ms(latencies),
        "clusters_build_s": round(cluster_s, 3),
        "clusters_k": clustering.k,
        "clusters_silhouette": clustering.silhouette,
        "more_like_this": percentiles_ms(similar),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the large table")
    parser.add_argument("--queries", type=int, default=300, help="queries per catalog")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    source_path = spotify_features_path()
    if not source_path.exists():
        print(json.dumps({"error": f"{source_path} is absent; it lives in ../shared/data"}))
        return 1
    import sklearn  # noqa: F401  (import cost is not part of the index build)

    result: dict[str, object] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        "target_p95_ms": TARGET_P95_MS,
    }
    result["spotify_features_19k"] = bench_catalog(source_path, args.queries, args.seed)
    raw = pd.read_csv(source_path, encoding="utf-8-sig")
    large = resample_with_jitter(raw, args.rows, args.seed)
    with tempfile.TemporaryDirectory() as folder:
        large_path = Path(folder) / f"resampled_{args.rows}.csv"
        large.to_csv(large_path, index=False)
        result["csv_mb"] = round(large_path.stat().st_size / 1e6, 1)
        result[f"resampled_{args.rows}"] = bench_catalog(large_path, args.queries, args.seed)
    large_p95 = result[f"resampled_{args.rows}"]["recommend"]["p95_ms"]  # type: ignore[index]
    result["meets_target"] = bool(large_p95 < TARGET_P95_MS)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    from core.training.guard import pause_training

    with pause_training():  # a running training would skew the figures (and be slowed)
        code = main()
    sys.exit(code)
