"""k-means clusters of a catalog's tracks in the recommender's feature space, named by mood mix.

`fit_clusters` picks k by silhouette on a sample, fits k-means (mini-batch beyond 5,000 tracks;
beyond `FIT_SAMPLE` tracks on a seeded sample of that size, every track then assigned to its
nearest centre, so a million tracks cluster in well under a second) and names each cluster by
its mood mix and standout features, e.g. 'Calm 80% · acoustic, gentle'. Catalogs without mood
labels get rough moods from `MOOD_PROTOTYPES`, and their cluster names start with '~'.
`Recommender.clusters` computes this once per catalog.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.labels import MOODS
from core.music.catalog import CatalogError
from core.music.targets import FEATURE_WEIGHTS, FEATURE_WORDS, MOOD_PROTOTYPES

SILHOUETTE_SAMPLE = 2_000
MINI_BATCH_FROM = 5_000
# Beyond this many tracks k-means is fitted on a seeded sample of this size and predicts the rest
# (at most 8 clusters in 9 dimensions: 20,000 tracks pin the centres down as well as a million).
FIT_SAMPLE = 20_000


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
    fitted_on: int = 0  # tracks k-means was fitted on when a sample (0: every track)

    def name_of(self, row: int) -> str:
        return self.names[int(self.labels[row])]


def heuristic_moods(scaled: pd.DataFrame) -> np.ndarray:
    """A rough mood per track: the nearest of MOOD_PROTOTYPES (for unlabelled catalogs)."""
    codes = _heuristic_codes(scaled.to_numpy(dtype=float), list(scaled.columns))
    return np.array(MOODS, dtype=object)[codes]


def _heuristic_codes(
    scaled: np.ndarray, features: Sequence[str], unit: np.ndarray | None = None
) -> np.ndarray:
    """Index in MOODS of each track's nearest mood prototype (valence, energy, acousticness).

    `unit`: per-column factors that bring `scaled` onto 0..1 (when it is the weighted space).
    """
    features = list(features)
    dims = [features.index(f) for f in ("valence", "energy", "acousticness") if f in features]
    prototypes = np.array([[MOOD_PROTOTYPES[m][features[i]] for i in dims] for m in MOODS])
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 is the same for every c: one matrix product.
    weights = np.zeros((scaled.shape[1], len(MOODS)))
    weights[dims, :] = prototypes.T
    if unit is not None:
        weights *= np.asarray(unit, dtype=float)[:, None]
    scores = scaled @ (-2.0 * weights)
    scores += (prototypes**2).sum(axis=1)
    return scores.argmin(axis=1).astype(np.int64)


def silhouette(distances: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Mean silhouette coefficient, as `sklearn.metrics.silhouette_score(distances, labels,
    metric="precomputed")` computes it, with one matrix product instead of its chunked loops."""
    members = np.zeros((len(labels), k))
    members[np.arange(len(labels)), labels] = 1.0
    sizes = members.sum(axis=0)
    totals = distances @ members  # each sample's summed distance to each cluster
    own = totals[np.arange(len(labels)), labels]
    own_size = sizes[labels]
    with np.errstate(invalid="ignore", divide="ignore"):
        intra = own / (own_size - 1)
        mean_to = totals / sizes
    mean_to[:, sizes == 0] = np.inf
    mean_to[np.arange(len(labels)), labels] = np.inf
    nearest = mean_to.min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = (nearest - intra) / np.maximum(intra, nearest)
    scores = np.where(own_size > 1, np.nan_to_num(scores), 0.0)  # singletons score 0
    return float(scores.mean())


def mood_codes(moods: np.ndarray) -> np.ndarray:
    """Index in MOODS of each track's mood, -1 for none (labels, or codes passed through)."""
    moods = np.asarray(moods)
    if moods.dtype.kind in "iu":
        return moods.astype(np.int64)
    return pd.Categorical(moods, categories=list(MOODS)).codes.astype(np.int64)


def fit_clusters(
    space: np.ndarray,
    scaled: np.ndarray | None,
    features: Sequence[str],
    moods: np.ndarray,
    *,
    name: str = "catalog",
    k_range: range = range(3, 9),
    seed: int = 0,
    weights: np.ndarray | None = None,
) -> Clustering:
    """Cluster the tracks.

    `space` is the weighted feature space the recommender searches, `scaled` the same features
    on 0..1 (columns in `features` order), `moods` each track's mood label or None (or its index
    in MOODS, -1 for none). With ``scaled=None`` pass the per-feature `weights` (space = scaled
    x weights): the 0..1 quantities are then derived from `space`, and no second n x features
    array is needed (a million tracks: 72 MB less to allocate).
    """
    from threadpoolctl import threadpool_limits

    if scaled is None:
        if weights is None:
            raise ValueError("fit_clusters needs `scaled` or the `weights` of `space`.")
        values, unit = space, 1.0 / np.asarray(weights, dtype=float)
    else:
        values, unit = scaled, np.ones(len(features))
    # One thread: k-means' OpenMP threads thrash when the CPU is busy (~30x slower).
    with threadpool_limits(limits=1):
        return _fit(space, values, unit, list(features), moods, name, k_range, seed)


def _fit(
    space: np.ndarray,
    values: np.ndarray,
    unit: np.ndarray,
    features: list[str],
    labelled: np.ndarray,
    name: str,
    k_range: range,
    seed: int,
) -> Clustering:
    """`values` x `unit` (per column) are the features on 0..1."""
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.metrics import pairwise_distances

    rng = np.random.default_rng(seed)
    n = len(space)
    sample = space[rng.choice(n, size=min(n, SILHOUETTE_SAMPLE), replace=False)]
    candidates = [k for k in k_range if 2 <= k < len(sample)]
    if not candidates:
        raise CatalogError(f"{name} has too few tracks to cluster.")
    best_k, best_score = candidates[0], -1.0
    distances = pairwise_distances(sample)  # once for every k
    for k in candidates:
        labels = KMeans(n_clusters=k, n_init=2, random_state=seed).fit_predict(sample)
        score = silhouette(distances, labels, k)
        if score > best_score:
            best_k, best_score = k, score
    if n > MINI_BATCH_FROM:
        model = MiniBatchKMeans(n_clusters=best_k, n_init=3, random_state=seed, batch_size=4096)
    else:
        model = KMeans(n_clusters=best_k, n_init=4, random_state=seed)
    if n > FIT_SAMPLE:
        fit_rows = np.sort(rng.choice(n, size=FIT_SAMPLE, replace=False))
        labels = model.fit(space[fit_rows]).predict(space)
    else:
        labels = model.fit_predict(space)
    labels = np.asarray(labels, dtype=np.int64)
    codes = mood_codes(labelled)
    estimated = not bool((codes >= 0).any())
    if estimated:
        codes = _heuristic_codes(values, features, unit)
    n_moods = len(MOODS)
    known = codes >= 0
    counts = np.bincount(labels[known] * n_moods + codes[known], minlength=best_k * n_moods)
    counts = counts.reshape(best_k, n_moods).astype(float)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    mix = pd.DataFrame(shares, index=range(best_k), columns=pd.Index(list(MOODS), name="mood"))
    sizes = np.bincount(labels, minlength=best_k)
    members = np.zeros((best_k, n))
    members[labels, np.arange(n)] = 1.0
    sums = (members @ values) * unit  # per-cluster sums in one matrix product (no n x d copy)
    with np.errstate(invalid="ignore", divide="ignore"):
        centres = pd.DataFrame(sums / sizes[:, None], columns=features)
    if n > FIT_SAMPLE:  # moments from the same sums; np.std's two passes are slow at 1M
        overall = sums.sum(axis=0) / n
        squares = np.einsum("ij,ij->j", values, values) / n * unit**2
        spread = np.sqrt(np.maximum(squares - overall**2, 0.0))
    else:
        overall, spread = values.mean(axis=0) * unit, values.std(axis=0) * unit
    names = cluster_names(mix, centres, None, features, estimated, overall, spread)
    mix.index = pd.Index(names, name="cluster")
    return Clustering(
        k=best_k,
        silhouette=round(best_score, 4),
        labels=labels,
        names=tuple(names),
        sizes=tuple(int(s) for s in sizes),
        mood_mix=mix,
        moods_estimated=estimated,
        fitted_on=FIT_SAMPLE if n > FIT_SAMPLE else 0,
    )


def cluster_names(
    mix: pd.DataFrame,
    centres: pd.DataFrame,
    scaled: np.ndarray | None,
    features: Sequence[str],
    estimated: bool,
    overall: np.ndarray | None = None,
    spread: np.ndarray | None = None,
) -> list[str]:
    """Names such as 'Calm 80% · acoustic, gentle': mood mix, then standout features.

    `overall` and `spread`: the features' mean and standard deviation over every track, when
    already computed (else from `scaled`).
    """
    if overall is None or spread is None:
        if scaled is None:
            raise ValueError("cluster_names needs `scaled` or both `overall` and `spread`.")
        overall, spread = scaled.mean(axis=0), scaled.std(axis=0)
    spread = spread + 1e-9
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
