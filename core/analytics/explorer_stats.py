"""Music Explorer, the numbers: per-group counts, histograms, correlations, yearly bands, the
PCA track map and average profiles (pandas/numpy frames, no plotly).

Histograms are counted with numpy (one `np.bincount` per feature over every group), so they stay
fast on 200k tracks; the 2-D map fits PCA on every track given but keeps a seeded sample of at
most `MAP_SAMPLE` points to plot. Groups are a core.analytics.explorer.Grouping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.analytics.explorer import Grouping
from core.music.catalog import feature_columns

HIST_BINS = 30
MAP_SAMPLE = 5_000
MIN_TRACKS_PER_YEAR = 5


# --------------------------------------------------------------------------- composition


def composition(df: pd.DataFrame, column: str, grouping: Grouping, top: int = 15) -> pd.DataFrame:
    """Track counts per value of `column` (top values; decades for years), split by group."""
    if column == "decade":
        decades = (df["year"] // 10 * 10).astype("Int64")
        values = decades.astype("string") + "s"
    else:
        values = df[column]
    frame = pd.DataFrame({column: values, "group": grouping.labels.loc[df.index]}).dropna()
    if frame.empty:
        return pd.DataFrame(columns=[column, "group", "tracks"])
    if column != "decade":
        keep = frame[column].value_counts().index[:top]
        frame = frame[frame[column].isin(keep)]
    counts = frame.groupby([column, "group"], observed=True).size().rename("tracks").reset_index()
    return counts.sort_values(column, kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- histograms


def feature_histograms(
    df: pd.DataFrame, features: Sequence[str], grouping: Grouping, bins: int = HIST_BINS
) -> pd.DataFrame:
    """Per feature and group: bin edges, track counts and the share of the group's tracks.

    Edges are `np.histogram_bin_edges` over every track shown, shared by the groups; counts
    follow `np.histogram`'s rule (the last bin includes its right edge).
    """
    labels = grouping.labels.loc[df.index]
    codes = pd.Categorical(labels, categories=list(grouping.order)).codes.astype(np.int64)
    n_groups = len(grouping.order)
    rows: list[pd.DataFrame] = []
    for feature in features:
        values = df[feature].to_numpy(dtype=float)
        ok = np.isfinite(values) & (codes >= 0)
        if not ok.any():
            continue
        edges = np.histogram_bin_edges(values[ok], bins=bins)
        n_bins = len(edges) - 1
        position = np.clip(np.searchsorted(edges, values[ok], side="right") - 1, 0, n_bins - 1)
        counts = np.bincount(codes[ok] * n_bins + position, minlength=n_groups * n_bins)
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


# --------------------------------------------------------------------------- correlations


def correlation_matrix(df: pd.DataFrame) -> pd.DataFrame:
    """Pearson correlations of the audio features (plus popularity and year when present)."""
    columns = list(feature_columns(df))
    for extra in ("popularity", "year"):
        if extra in df.columns and df[extra].notna().sum() > 2 and df[extra].nunique() > 1:
            columns.append(extra)
    values = df[columns].astype("float64")
    return values.corr()


# --------------------------------------------------------------------------- years


def yearly_features(
    df: pd.DataFrame, features: Sequence[str], min_tracks: int = MIN_TRACKS_PER_YEAR
) -> pd.DataFrame:
    """Per year and feature: tracks, mean, 25th and 75th percentiles (years with enough tracks)."""
    dated = df[df["year"].notna()]
    if dated.empty or not features:
        return pd.DataFrame(columns=["year", "feature", "tracks", "mean", "q25", "q75"])
    years = dated["year"].astype("int64")
    grouped = dated[list(features)].groupby(years)
    sizes = grouped.size()
    keep = sizes.index[sizes >= min_tracks]
    means = grouped.mean().loc[keep]
    q25 = grouped.quantile(0.25).loc[keep]
    q75 = grouped.quantile(0.75).loc[keep]
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

    @property
    def sampled(self) -> bool:
        return len(self.points) < self.n_tracks


def track_map(
    df: pd.DataFrame, features: Sequence[str], sample: int = MAP_SAMPLE, seed: int = 0
) -> TrackMap:
    """PCA (scikit-learn) fitted on every track; a seeded sample of `sample` tracks to plot."""
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits

    features = list(features)
    values = df[features].to_numpy(dtype=float)
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    standardised = (values - mean) / np.where(std > 0, std, 1.0)
    n_components = min(2, len(features), len(df))
    with threadpool_limits(limits=1):
        pca = PCA(n_components=n_components, random_state=seed).fit(standardised)
    if len(df) > sample:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(df), size=sample, replace=False))
    else:
        rows = np.arange(len(df))
    projected = pca.transform(standardised[rows])
    if projected.shape[1] < 2:
        projected = np.column_stack([projected, np.zeros(len(rows))])
    meta = [c for c in ("title", "artist", "genre", "year", "mood", "popularity") if c in df]
    points = df.iloc[rows][meta + features].copy()
    points.insert(0, "pc2", projected[:, 1])
    points.insert(0, "pc1", projected[:, 0])
    ratio = list(pca.explained_variance_ratio_) + [0.0] * (2 - n_components)
    components = np.vstack([pca.components_, np.zeros((2 - n_components, len(features)))])
    loadings = pd.DataFrame(components.T, index=pd.Index(features, name="feature"))
    loadings.columns = ["pc1", "pc2"]
    return TrackMap(
        points=points,
        explained=(float(ratio[0]), float(ratio[1])),
        loadings=loadings,
        n_tracks=len(df),
    )


# --------------------------------------------------------------------------- profiles


def scale_for_radar(values: np.ndarray, features: Sequence[str]) -> np.ndarray:
    """Features mapped onto 0..1 the way the recommender scales them (core.music.targets)."""
    from core.music.targets import scale_features

    return scale_features(values, features)


def group_profiles(df: pd.DataFrame, features: Sequence[str], grouping: Grouping) -> pd.DataFrame:
    """Per group and feature: tracks, the mean raw value and the mean on the radar's 0..1 scale."""
    features = list(features)
    labels = grouping.labels.loc[df.index].to_numpy()
    raw = df[features].to_numpy(dtype=float)
    scaled = scale_for_radar(raw, features)
    raw_means = pd.DataFrame(raw, columns=features).groupby(labels).mean()
    scaled_means = pd.DataFrame(scaled, columns=features).groupby(labels).mean()
    sizes = pd.Series(labels).value_counts()
    rows = [
        {
            "group": group,
            "feature": feature,
            "tracks": int(sizes[group]),
            "mean": float(raw_means.loc[group, feature]),
            "scaled_mean": float(scaled_means.loc[group, feature]),
        }
        for group in grouping.order
        if group in raw_means.index
        for feature in features
    ]
    return pd.DataFrame(rows, columns=["group", "feature", "tracks", "mean", "scaled_mean"])
