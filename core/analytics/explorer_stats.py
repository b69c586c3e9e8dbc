"""Music Explorer, the numbers: per-group counts, histograms, correlations, yearly bands, the
PCA track map and average profiles (pandas/numpy frames, no plotly).

Everything is an aggregate over every track given (counts, means and quartiles, computed with
`np.bincount` over group codes or one pandas groupby), so each view stays well under a second on
a million tracks, except the 2-D map: it plots a seeded sample of at most `MAP_SAMPLE` tracks,
and beyond `PCA_FIT_SAMPLE` tracks fits its PCA on a seeded sample of that size (`TrackMap`
says how many). Groups are a core.analytics.explorer.Grouping.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.analytics.explorer import Grouping
from core.music.catalog import feature_columns

HIST_BINS = 30
MAP_SAMPLE = 5_000
PCA_FIT_SAMPLE = 100_000
MIN_TRACKS_PER_YEAR = 5


# --------------------------------------------------------------------------- composition


def composition(df: pd.DataFrame, column: str, grouping: Grouping, top: int = 15) -> pd.DataFrame:
    """Track counts per value of `column` (top values; decades for years), split by group."""
    if column == "decade":
        years = df["year"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        decades = np.floor(years / 10) * 10
        value_codes, values = pd.factorize(decades)  # NaN: code -1
        names = np.array([f"{int(d)}s" for d in values], dtype=object)
    else:
        value_codes, values = pd.factorize(df[column])
        names = np.asarray(values, dtype=object)
    group_codes = grouping.codes_for(df)
    ok = (value_codes >= 0) & (group_codes >= 0)
    n_groups = len(grouping.order)
    if not ok.any():
        return pd.DataFrame(columns=[column, "group", "tracks"])
    counts = np.bincount(
        value_codes[ok] * n_groups + group_codes[ok], minlength=len(names) * n_groups
    ).reshape(len(names), n_groups)
    kept = np.flatnonzero(counts.sum(axis=1) > 0)
    if column != "decade":  # the `top` most common values (ties: first seen first)
        kept = kept[np.argsort(-counts[kept].sum(axis=1), kind="stable")][:top]
    kept = kept[np.argsort(names[kept].astype(str), kind="stable")]  # by value, as before
    value_rows, group_cols = np.nonzero(counts[kept])
    return pd.DataFrame(
        {
            column: names[kept][value_rows],
            "group": np.asarray(grouping.order, dtype=object)[group_cols],
            "tracks": counts[kept][value_rows, group_cols].astype(np.int64),
        }
    )


# --------------------------------------------------------------------------- histograms


def feature_histograms(
    df: pd.DataFrame, features: Sequence[str], grouping: Grouping, bins: int = HIST_BINS
) -> pd.DataFrame:
    """Per feature and group: bin edges, track counts and the share of the group's tracks.

    Edges are `np.histogram_bin_edges` over every track shown, shared by the groups; counts
    follow `np.histogram`'s rule (the last bin includes its right edge).
    """
    codes = grouping.codes_for(df)
    n_groups = len(grouping.order)
    rows: list[pd.DataFrame] = []
    grouped = codes >= 0
    for feature in features:
        values = df[feature].to_numpy(dtype=float)
        ok = np.isfinite(values) & grouped
        if not ok.any():
            continue
        kept, kept_codes = (values, codes) if ok.all() else (values[ok], codes[ok])
        edges = np.histogram_bin_edges(kept, bins=bins)
        n_bins = len(edges) - 1
        position = _bin_positions(kept, edges)
        counts = np.bincount(kept_codes * n_bins + position, minlength=n_groups * n_bins)
        counts = counts.reshape(n_groups, n_bins)
        totals = counts.sum(axis=1, keepdims=True)
        shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
        rows.append(
            pd.DataFrame(
                {
                    "feature": feature,
                    "group": np.repeat(np.array(grouping.order, dtype=object), n_bins),
                    "bin_left": np.tile(edges[:-1], n_groups),
                    "bin_right": np.tile(edges[1:], n_groups),
                    "tracks": counts.ravel(),
                    "share": shares.ravel(),
                }
            )
        )
    if not rows:
        return pd.DataFrame(
            columns=["feature", "group", "bin_left", "bin_right", "tracks", "share"]
        )
    return pd.concat(rows, ignore_index=True)


def _bin_positions(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin of each value among equal-width `edges`, exactly as `np.histogram` counts it
    (its own arithmetic and edge corrections: ~4x faster than a search over the edges)."""
    n_bins = len(edges) - 1
    first, last = edges[0], edges[-1]
    positions = ((values - first) * (n_bins / (last - first))).astype(np.intp)
    positions[positions == n_bins] -= 1
    positions[values < edges[positions]] -= 1
    positions[(values >= edges[positions + 1]) & (positions != n_bins - 1)] += 1
    return positions


# --------------------------------------------------------------------------- correlations


def correlation_matrix(df: pd.DataFrame) -> pd.DataFrame:
    """Pearson correlations of the audio features (plus popularity and year when present).

    Like `DataFrame.corr`: each pair over the tracks that have both values.
    """
    columns = list(feature_columns(df))
    for extra in ("popularity", "year"):
        if extra in df.columns and df[extra].notna().sum() > 2 and df[extra].nunique() > 1:
            columns.append(extra)
    from threadpoolctl import threadpool_limits

    values = [df[c].to_numpy(dtype=float, na_value=np.nan) for c in columns]
    with threadpool_limits(limits=1):  # BLAS threads spin and stall when the CPU is busy
        corr = _pairwise_pearson(values)
    return pd.DataFrame(corr, index=columns, columns=columns)


def _pearson_block(vectors: list[np.ndarray]) -> np.ndarray:
    """Pearson r between equal-length vectors (one dot product a pair: no n x k matrix)."""
    if len(vectors[0]) < 2:
        return np.full((len(vectors), len(vectors)), np.nan)
    centred = [v - v.mean() for v in vectors]
    cov = np.empty((len(vectors), len(vectors)))
    for i, a in enumerate(centred):
        for j in range(i, len(centred)):
            cov[i, j] = cov[j, i] = float(np.dot(a, centred[j]))
    scale = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(cov / np.outer(scale, scale), -1.0, 1.0)


def _pairwise_pearson(columns: list[np.ndarray]) -> np.ndarray:
    """Pearson r of every pair of columns over the rows where both are finite (NaN if < 2)."""
    k = len(columns)
    corr = np.full((k, k), np.nan)
    finite = [np.isfinite(c) for c in columns]
    complete = [bool(f.all()) for f in finite]
    full = [i for i in range(k) if complete[i]]
    if full:
        corr[np.ix_(full, full)] = _pearson_block([columns[i] for i in full])
    for i in (i for i in range(k) if not complete[i]):  # a column with gaps: over its rows
        rows = finite[i]
        others = [j for j in range(k) if j != i and bool(finite[j][rows].all())]
        result = _pearson_block([columns[j][rows] for j in (i, *others)])
        corr[i, [i, *others]] = corr[[i, *others], i] = result[0]
        for j in range(k):  # pairs of two columns with gaps (few): rows with both
            if j != i and j not in others:
                both = rows & finite[j]
                corr[i, j] = corr[j, i] = _pearson_block([columns[i][both], columns[j][both]])[0, 1]
    diagonal = np.arange(k)
    corr[diagonal, diagonal] = np.where(np.isnan(corr[diagonal, diagonal]), np.nan, 1.0)
    return corr


# --------------------------------------------------------------------------- years


def yearly_features(
    df: pd.DataFrame, features: Sequence[str], min_tracks: int = MIN_TRACKS_PER_YEAR
) -> pd.DataFrame:
    """Per year and feature: tracks, mean, 25th and 75th percentiles (years with enough tracks).

    Years are release years (``year``); works with only a composition date have none.
    """
    empty = pd.DataFrame(columns=["year", "feature", "tracks", "mean", "q25", "q75"])
    if not features or not df["year"].notna().any():
        return empty
    years = df["year"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    dated = np.isfinite(years)
    grouped = df.loc[dated, list(features)].groupby(years[dated].astype(np.int64))
    sizes = grouped.size()
    keep = sizes.index[sizes >= min_tracks]
    if not len(keep):
        return empty
    means = grouped.mean().loc[keep]
    quartiles = grouped.quantile([0.25, 0.75])  # one sort for both quartiles
    q25 = quartiles.xs(0.25, level=1).loc[keep]
    q75 = quartiles.xs(0.75, level=1).loc[keep]
    frames = [
        pd.DataFrame(
            {
                "year": keep.to_numpy(),
                "feature": feature,
                "tracks": sizes.loc[keep].to_numpy(),
                "mean": means[feature].to_numpy(),
                "q25": q25[feature].to_numpy(),
                "q75": q75[feature].to_numpy(),
            }
        )
        for feature in features
    ]
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- 2-D map


@dataclass(frozen=True)
class TrackMap:
    """PCA of the standardised audio features: sampled points, variance and loadings."""

    points: pd.DataFrame  # sampled tracks: pc1, pc2, metadata and features (catalog index)
    explained: tuple[float, float]
    loadings: pd.DataFrame  # rows: features; columns: pc1, pc2
    n_tracks: int
    n_fitted: int = 0  # tracks the PCA was fitted on (0: all of them)

    @property
    def sampled(self) -> bool:
        return len(self.points) < self.n_tracks

    @property
    def fitted_on_sample(self) -> bool:
        return 0 < self.n_fitted < self.n_tracks


MAP_COLOUR_PREFIX = "colour_by_"


def map_data(track_map_: TrackMap, colouring: Grouping) -> pd.DataFrame:
    """The data behind the track map: its sampled points with each one's colour group in a
    column of its own (``colour_by_genre``, ...), so the tracks' real genre and mood stay as
    they are (a genre colouring groups the rare genres into "Other")."""
    points = track_map_.points
    return points.assign(**{f"{MAP_COLOUR_PREFIX}{colouring.by}": colouring.labels_for(points)})


def track_map(
    df: pd.DataFrame,
    features: Sequence[str],
    sample: int = MAP_SAMPLE,
    seed: int = 0,
    fit_sample: int = PCA_FIT_SAMPLE,
    metadata: pd.DataFrame | None = None,
) -> TrackMap:
    """PCA (scikit-learn) of the standardised features; a seeded sample of `sample` tracks to plot.

    Fitted on every track up to `fit_sample` tracks, else on a seeded sample of that many (the
    components of 100,000 random tracks match a million's to a few decimals). The plotted
    tracks' title, artist, genre, year, mood and popularity come from `metadata` (a frame
    indexed like the catalog, e.g. the catalog itself) when `df` has only the features.
    """
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits

    features = list(features)
    rng = np.random.default_rng(seed)
    if len(df) > sample:
        rows = np.sort(rng.choice(len(df), size=sample, replace=False))
    else:
        rows = np.arange(len(df))
    if len(df) > fit_sample:
        fit_rows = np.sort(rng.choice(len(df), size=fit_sample, replace=False))
        values = df[features].take(fit_rows).to_numpy(dtype=float)
        shown = df[features].take(rows).to_numpy(dtype=float)
    else:
        values = df[features].to_numpy(dtype=float)
        shown = values[rows]
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    standardised = (values - mean) / std
    n_components = min(2, len(features), len(df))
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no variance: NaN ratios, fixed below
        pca = PCA(n_components=n_components, random_state=seed).fit(standardised)
        projected = pca.transform((shown - mean) / std)
    if projected.shape[1] < 2:
        projected = np.column_stack([projected, np.zeros(len(rows))])
    source = df if metadata is None else metadata
    meta = [c for c in ("title", "artist", "genre", "year", "mood", "popularity") if c in source]
    if metadata is None:
        points = df.iloc[rows][meta].copy()
    else:
        points = metadata.loc[df.index[rows], meta].copy()
    for i, feature in enumerate(features):
        points[feature] = shown[:, i]
    points.insert(0, "pc2", projected[:, 1])
    points.insert(0, "pc1", projected[:, 0])
    # One track, or tracks all alike: no variance to explain (scikit-learn says NaN).
    ratio = list(np.nan_to_num(pca.explained_variance_ratio_)) + [0.0] * (2 - n_components)
    components = np.vstack([pca.components_, np.zeros((2 - n_components, len(features)))])
    loadings = pd.DataFrame(components.T, index=pd.Index(features, name="feature"))
    loadings.columns = ["pc1", "pc2"]
    return TrackMap(
        points=points,
        explained=(float(ratio[0]), float(ratio[1])),
        loadings=loadings,
        n_tracks=len(df),
        n_fitted=min(len(df), fit_sample) if len(df) > fit_sample else 0,
    )


# --------------------------------------------------------------------------- profiles


def scale_for_radar(values: np.ndarray, features: Sequence[str]) -> np.ndarray:
    """Features mapped onto 0..1 the way the recommender scales them (core.music.targets)."""
    from core.music.targets import scale_features

    return scale_features(values, features)


def group_profiles(df: pd.DataFrame, features: Sequence[str], grouping: Grouping) -> pd.DataFrame:
    """Per group and feature: tracks, the mean raw value and the mean on the radar's 0..1 scale."""
    features = list(features)
    codes = grouping.codes_for(df)
    n_groups = len(grouping.order)
    known = codes >= 0
    sizes = np.bincount(codes[known], minlength=n_groups)
    rows = []
    means: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for feature in features:
        raw = df[feature].to_numpy(dtype=float)
        ok = known & np.isfinite(raw)
        if not ok.all():
            raw, feature_codes = raw[ok], codes[ok]
            counted = np.bincount(feature_codes, minlength=n_groups)
        else:
            feature_codes, counted = codes, sizes
        scaled = scale_for_radar(raw[:, None], [feature])[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            means[feature] = (
                np.bincount(feature_codes, weights=raw, minlength=n_groups) / counted,
                np.bincount(feature_codes, weights=scaled, minlength=n_groups) / counted,
            )
    for position, group in enumerate(grouping.order):
        if not sizes[position]:
            continue
        for feature in features:
            raw_mean, scaled_mean = means[feature]
            rows.append(
                {
                    "group": group,
                    "feature": feature,
                    "tracks": int(sizes[position]),
                    "mean": float(raw_mean[position]),
                    "scaled_mean": float(scaled_mean[position]),
                }
            )
    return pd.DataFrame(rows, columns=["group", "feature", "tracks", "mean", "scaled_mean"])
