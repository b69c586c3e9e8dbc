"""k-means clusters of a catalog's tracks in the recommender's feature space, named by mood mix.

`fit_clusters` picks k by silhouette on a sample, fits k-means (mini-batch beyond 5,000 tracks)
and names each cluster by its mood mix and standout features, e.g. 'Calm 80% · acoustic,
gentle'. Catalogs without mood labels get rough moods from `MOOD_PROTOTYPES`, and their cluster
names start with '~'. `Recommender.clusters` computes this once per catalog.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.labels import MOODS
from core.music.catalog import CatalogError
from core.music.targets import FEATURE_WEIGHTS, FEATURE_WORDS, MOOD_PROTOTYPES


@dataclass(frozen=True)
class Clustering:
    """k-means clusters of a catalog's tracks in the recommender's feature space."""

    k: int
    silhouette: float
    labels: np.ndarray
    names: tuple[str, ...]
    sizes: tuple[int, ...]
    mood_mix: pd.DataFrame  # rows: cluster names; columns: MOODS; shares summing to 1
    moods_estimated: bool  # True when moods came from features, not catalog labels

    def name_of(self, row: int) -> str:
        return self.names[int(self.labels[row])]


def heuristic_moods(scaled: pd.DataFrame) -> np.ndarray:
    """A rough mood per track: the nearest of MOOD_PROTOTYPES (for unlabelled catalogs)."""
    dims = [f for f in ("valence", "energy", "acousticness") if f in scaled.columns]
    points = scaled[dims].to_numpy()
    prototypes = np.array([[MOOD_PROTOTYPES[m][f] for f in dims] for m in MOODS])
    nearest = np.linalg.norm(points[:, None, :] - prototypes[None, :, :], axis=2).argmin(axis=1)
    return np.array(MOODS, dtype=object)[nearest]


def fit_clusters(
    space: np.ndarray,
    scaled: np.ndarray,
    features: Sequence[str],
    moods: np.ndarray,
    *,
    name: str = "catalog",
    k_range: range = range(3, 9),
    seed: int = 0,
) -> Clustering:
    """Cluster the tracks.

    `space` is the weighted feature space the recommender searches, `scaled` the same features
    on 0..1 (columns in `features` order), `moods` each track's mood label or None.
    """
    from threadpoolctl import threadpool_limits

    # One thread: k-means' OpenMP threads thrash when the CPU is busy (~30x slower).
    with threadpool_limits(limits=1):
        return _fit(space, scaled, list(features), moods, name, k_range, seed)


def _fit(
    space: np.ndarray,
    scaled_values: np.ndarray,
    features: list[str],
    labelled: np.ndarray,
    name: str,
    k_range: range,
    seed: int,
) -> Clustering:
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    n = len(space)
    sample = space[rng.choice(n, size=min(n, 2000), replace=False)]
    candidates = [k for k in k_range if 2 <= k < len(sample)]
    if not candidates:
        raise CatalogError(f"{name} has too few tracks to cluster.")
    best_k, best_score = candidates[0], -1.0
    for k in candidates:
        labels = KMeans(n_clusters=k, n_init=2, random_state=seed).fit_predict(sample)
        score = float(silhouette_score(sample, labels))
        if score > best_score:
            best_k, best_score = k, score
    if n > 5_000:
        model = MiniBatchKMeans(n_clusters=best_k, n_init=3, random_state=seed, batch_size=4096)
    else:
        model = KMeans(n_clusters=best_k, n_init=4, random_state=seed)
    labels = model.fit_predict(space)
    scaled = pd.DataFrame(scaled_values, columns=features)
    estimated = not any(mood is not None for mood in labelled)
    moods = heuristic_moods(scaled) if estimated else labelled
    mix = pd.crosstab(labels, pd.Series(moods, name="mood"), normalize="index")
    mix = mix.reindex(index=range(best_k), columns=list(MOODS), fill_value=0.0)
    centres = scaled.groupby(labels).mean().reindex(range(best_k))
    names = cluster_names(mix, centres, scaled_values, features, estimated)
    mix.index = pd.Index(names, name="cluster")
    sizes = np.bincount(labels, minlength=best_k)
    return Clustering(
        k=best_k,
        silhouette=round(best_score, 4),
        labels=labels,
        names=tuple(names),
        sizes=tuple(int(s) for s in sizes),
        mood_mix=mix,
        moods_estimated=estimated,
    )


def cluster_names(
    mix: pd.DataFrame,
    centres: pd.DataFrame,
    scaled: np.ndarray,
    features: Sequence[str],
    estimated: bool,
) -> list[str]:
    """Names such as 'Calm 80% · acoustic, gentle': mood mix, then standout features."""
    spread = scaled.std(axis=0) + 1e-9
    overall = scaled.mean(axis=0)
    names: list[str] = []
    for cluster in range(len(mix)):
        shares = mix.loc[cluster].sort_values(ascending=False)
        moods = [f"{m} {s:.0%}" for m, s in shares.items() if s >= 0.2][:2]
        mood_part = " / ".join(moods) or f"{shares.index[0]} {shares.iloc[0]:.0%}"
        z = (centres.loc[cluster].to_numpy() - overall) / spread
        standout = sorted(
            (i for i in range(len(features)) if abs(z[i]) > 0.5),
            key=lambda i: -FEATURE_WEIGHTS[features[i]] * abs(z[i]),
        )[:2]
        words = ", ".join(FEATURE_WORDS[features[i]][0 if z[i] < 0 else 2] for i in standout)
        name = f"{'~' if estimated else ''}{mood_part}" + (f" · {words}" if words else "")
        while name in names:
            name += "'"
        names.append(name)
    return names
