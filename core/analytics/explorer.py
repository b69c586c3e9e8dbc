"""Music Explorer: catalog summaries, filters, aggregates and plotly figures (no streamlit).

Everything here takes a normalised catalog (core.catalog.load_catalog) and stays fast on 200k
tracks: histograms are counted with numpy (one `np.bincount` per feature over every group) and
sent to plotly as bars; the 2-D map fits PCA on every filtered track but plots a seeded sample of
at most `MAP_SAMPLE` points. Groups are moods when the catalog has mood labels, else its most
common genres; mood colours come from core.palette, other categories from `CATEGORY_COLORS`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.labels import MOODS
from core.music.catalog import CORE_FEATURES, feature_columns, has_audio_features, has_moods
from core.palette import FALLBACK_COLOR, MOOD_COLORS

NO_MOOD = "No mood"
OTHER = "Other"
ALL_TRACKS = "All tracks"
MISSING_TEXT = "—"
HIST_BINS = 30
MAP_SAMPLE = 5_000
TABLE_ROWS = 1_000
MIN_TRACKS_PER_YEAR = 5
MAX_GROUPS = 8
# Categories that are neither moods nor emotions (genres, k-means clusters): Paul Tol's
# colour-blind-safe qualitative scheme (plotly's "Safe"), grey left for "Other".
CATEGORY_COLORS: tuple[str, ...] = (
    "#88CCEE", "#CC6677", "#DDCC77", "#117733", "#332288", "#AA4499", "#44AA99", "#999933",
    "#882255", "#661100",
)  # fmt: skip
LINE_COLOR = "#999933"  # Tol olive: mid-tone, readable on the light and the dark theme
BAND_COLOR = "rgba(153, 153, 51, 0.3)"
# Features in 0..1 share one axis; the rest have units.
FEATURE_UNITS: dict[str, str] = {"loudness": "dB", "tempo": "BPM"}
# Fixed ranges mapped onto 0..1 for the radar (as core.recommend.FEATURE_RANGES).
TABLE_COLUMNS: tuple[str, ...] = (
    "title", "artist", "album", "year", "genre", "mood", "popularity", "track_id",
)  # fmt: skip
SEARCH_COLUMNS: tuple[str, ...] = ("title", "artist", "album", "genre")


# --------------------------------------------------------------------------- summary


def catalog_fingerprint(df: pd.DataFrame) -> str:
    """A cheap, stable identity of a catalog's content (for cache keys; ~ms on 200k rows)."""
    digest = hashlib.sha1()
    digest.update(repr((df.attrs.get("name"), df.shape, tuple(df.columns))).encode())
    if len(df):
        step = max(1, len(df) // 2_000)
        probe = df.iloc[::step]
        digest.update(pd.util.hash_pandas_object(probe, index=True).to_numpy().tobytes())
        numeric = df.select_dtypes("number")
        digest.update(np.nan_to_num(numeric.sum().to_numpy(dtype=float)).tobytes())
    return digest.hexdigest()


def summarise(df: pd.DataFrame) -> dict[str, object]:
    """Tracks, artists, moods, genres, years and features of a catalog (for the metric row)."""
    years = df["year"].dropna()
    return {
        "tracks": len(df),
        "artists": int(df["artist"].nunique()),
        "moods": int(df["mood"].nunique()),
        "mood_counts": {m: int(n) for m, n in df["mood"].value_counts().items()},
        "genres": int(df["genre"].nunique()),
        "years": (int(years.min()), int(years.max())) if len(years) else None,
        "tracks_with_year": len(years),
        "features": feature_columns(df),
        "has_audio_features": has_audio_features(df),
        "has_moods": has_moods(df),
    }


def missing_features_message(df: pd.DataFrame) -> str | None:
    """What a catalog without audio features misses, or None when it has them."""
    if has_audio_features(df):
        return None
    name = df.attrs.get("name", "This catalog")
    return (
        f"{name} has no audio features ({', '.join(CORE_FEATURES)} ...), so this page shows "
        "what it does have: moods, genres, years and the track table. A full catalog (such as "
        "Kaggle's data_moods.csv or a Spotify audio-features export) adds feature histograms by "
        "mood, a correlation heatmap, features over the years, a 2-D map of the tracks with "
        "k-means clusters, and each mood's average profile."
    )


def missing_moods_message(df: pd.DataFrame) -> str | None:
    """How a catalog without mood labels is grouped instead, or None when it has moods."""
    if has_moods(df):
        return None
    grouping = group_tracks(df)
    if grouping.by == "genre":
        how = "genre" + (
            f" (the {len(grouping.order) - 1} most common, the rest as {OTHER})"
            if OTHER in grouping.order
            else ""
        )
    else:
        how = "nothing (one group)"
    return (
        f"{df.attrs.get('name', 'This catalog')} has no mood labels, so charts are split by "
        f"{how} instead. Give every track a mood with `python -m core.music.catalog label --in "
        "<catalog> --out <labelled.csv>` and load the labelled file to split by mood."
    )


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class FilterOptions:
    """What the filter widgets offer for a catalog (None: the catalog lacks the column)."""

    moods: tuple[str, ...]
    genres: tuple[str, ...]
    years: tuple[int, int] | None
    popularity: tuple[float, float] | None


@dataclass(frozen=True)
class Filters:
    """A filter selection; None (or an empty tuple of choices) keeps every track.

    Choosing a year or popularity range drops tracks without a year or popularity.
    """

    moods: tuple[str, ...] | None = None
    genres: tuple[str, ...] | None = None
    years: tuple[int, int] | None = None
    popularity: tuple[float, float] | None = None

    def key(self) -> str:
        """A short stable string for cache keys."""
        return repr((self.moods, self.genres, self.years, self.popularity))


def filter_options(df: pd.DataFrame) -> FilterOptions:
    """Mood, genre, year and popularity choices present in a catalog."""
    present = set(df["mood"].dropna().unique())
    moods = tuple(m for m in MOODS if m in present)
    if moods and df["mood"].isna().any():
        moods = (*moods, NO_MOOD)
    genres = tuple(sorted(str(g) for g in df["genre"].dropna().unique()))
    years = df["year"].dropna()
    popularity = df["popularity"].dropna()
    return FilterOptions(
        moods=moods,
        genres=genres,
        years=(int(years.min()), int(years.max())) if len(years) else None,
        popularity=(float(popularity.min()), float(popularity.max())) if len(popularity) else None,
    )


def apply_filters(df: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """The tracks that pass every filter (the original index is kept)."""
    keep = np.ones(len(df), dtype=bool)
    if filters.moods:
        wanted = [m for m in filters.moods if m != NO_MOOD]
        mask = df["mood"].isin(wanted).to_numpy(dtype=bool)
        if NO_MOOD in filters.moods:
            mask = mask | df["mood"].isna().to_numpy(dtype=bool)
        keep &= mask
    if filters.genres:
        keep &= df["genre"].isin(list(filters.genres)).to_numpy(dtype=bool)
    if filters.years is not None:
        low, high = filters.years
        years = df["year"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        keep &= (years >= low) & (years <= high)
    if filters.popularity is not None:
        low, high = filters.popularity
        popularity = df["popularity"].to_numpy(dtype=float)
        keep &= (popularity >= low) & (popularity <= high)
    return df if keep.all() else df[keep]


def search_tracks(df: pd.DataFrame, query: str) -> pd.DataFrame:
    """Tracks whose title, artist, album or genre contains `query` (any case)."""
    query = query.strip()
    if not query:
        return df
    hit = np.zeros(len(df), dtype=bool)
    for column in SEARCH_COLUMNS:
        found = df[column].str.contains(query, case=False, regex=False, na=False)
        hit |= found.to_numpy(dtype=bool)
    return df[hit]


def table_frame(df: pd.DataFrame, limit: int | None = TABLE_ROWS) -> pd.DataFrame:
    """The table's columns (metadata, then audio features), first `limit` rows."""
    columns = [c for c in TABLE_COLUMNS if c in df.columns] + feature_columns(df)
    rows = df if limit is None else df.head(limit)
    return rows[columns].reset_index(drop=True)


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    """UTF-8 CSV of a frame, without the index (what the download buttons serve)."""
    return df.to_csv(index=False).encode("utf-8")


# --------------------------------------------------------------------------- groups and colours


@dataclass(frozen=True)
class Grouping:
    """Each track's group (a mood, a genre or a cluster), the groups' order and colours."""

    by: str  # "mood", "genre", "cluster" or "all"
    labels: pd.Series  # indexed like the catalog
    order: tuple[str, ...]
    colors: dict[str, str]


def category_colors(order: Sequence[str], by: str) -> dict[str, str]:
    """Mood colours from core.palette for moods; the qualitative scheme for anything else."""
    if by == "mood":
        return {g: MOOD_COLORS.get(g, FALLBACK_COLOR) for g in order}
    colors: dict[str, str] = {}
    others = [g for g in order if g not in (OTHER, NO_MOOD)]
    for i, group in enumerate(others):
        colors[group] = CATEGORY_COLORS[i % len(CATEGORY_COLORS)]
    for group in order:
        colors.setdefault(group, FALLBACK_COLOR)
    return colors


def group_tracks(df: pd.DataFrame, by: str = "auto", max_groups: int = MAX_GROUPS) -> Grouping:
    """Group tracks by mood (auto when labelled), else by their most common genres."""
    if by == "auto":
        by = "mood" if has_moods(df) else ("genre" if df["genre"].notna().any() else "all")
    if by == "mood":
        labels = df["mood"].fillna(NO_MOOD).astype(str)
        present = set(labels.unique())
        order = tuple(m for m in (*MOODS, NO_MOOD) if m in present)
    elif by == "genre":
        counts = df["genre"].value_counts()
        top = (
            list(counts.index[: max_groups - 1]) if len(counts) > max_groups else list(counts.index)
        )
        labels = df["genre"].where(df["genre"].isin(top)).fillna(OTHER).astype(str)
        order = tuple(top) + ((OTHER,) if (labels == OTHER).any() else ())
    else:
        by = "all"
        labels = pd.Series(ALL_TRACKS, index=df.index, dtype=str)
        order = (ALL_TRACKS,)
    return Grouping(by=by, labels=labels, order=order, colors=category_colors(order, by))


def cluster_grouping(catalog: pd.DataFrame, clustering, index: pd.Index | None = None) -> Grouping:
    """Cluster labels of a `core.recommend.Clustering` computed on `catalog` (row order).

    `index` restricts the labels to some tracks (e.g. the filtered ones).
    """
    names = np.asarray(clustering.names, dtype=object)
    labels = pd.Series(names[np.asarray(clustering.labels)], index=catalog.index, dtype=str)
    if index is not None:
        labels = labels.loc[index]
    order = tuple(n for n in clustering.names if (labels == n).any())
    return Grouping(by="cluster", labels=labels, order=order, colors=category_colors(order, "x"))


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


def composition_figure(
    counts: pd.DataFrame, column: str, grouping: Grouping, title: str
) -> go.Figure:
    """Stacked bars of track counts per category, one colour per group."""
    fig = go.Figure()
    if column == "decade":
        categories = sorted(counts[column].unique())
    else:
        totals = counts.groupby(column)["tracks"].sum().sort_values(ascending=False)
        categories = list(totals.index)
    for group in grouping.order:
        part = counts[counts["group"] == group].set_index(column)["tracks"]
        part = part.reindex(categories, fill_value=0)
        fig.add_trace(
            go.Bar(
                x=categories,
                y=part.to_numpy(),
                name=group,
                marker_color=grouping.colors[group],
                hovertemplate=f"{group}<br>%{{x}}: %{{y}} tracks<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack", xaxis_title=column, yaxis_title="tracks")
    return _style(fig, title, legend_title=grouping.by)


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


def histogram_figure(hist: pd.DataFrame, grouping: Grouping, columns: int = 3) -> go.Figure:
    """One panel per feature; overlaid bars per group, as a share of the group's tracks."""
    features = list(dict.fromkeys(hist["feature"]))
    rows = max(1, math.ceil(len(features) / columns))
    fig = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[_feature_label(f) for f in features],
        horizontal_spacing=0.06,
        vertical_spacing=0.12 if rows > 1 else 0.1,
    )
    traces: list[go.Bar] = []
    positions: list[tuple[int, int]] = []
    shown: set[str] = set()
    for (feature, group), bars in hist.groupby(["feature", "group"], sort=False):
        tracks = bars["tracks"].to_numpy()
        if tracks.sum() == 0:
            continue
        left, right = bars["bin_left"].to_numpy(), bars["bin_right"].to_numpy()
        traces.append(
            go.Bar(
                x=(left + right) / 2,
                y=bars["share"].to_numpy() * 100,
                width=right - left,
                customdata=np.column_stack([left, right, tracks]),
                name=str(group),
                legendgroup=str(group),
                showlegend=group not in shown,
                marker_color=grouping.colors.get(str(group), FALLBACK_COLOR),
                opacity=0.55,
                hovertemplate=(
                    f"{group}<br>{feature} %{{customdata[0]:.3g}} to %{{customdata[1]:.3g}}"
                    "<br>%{y:.1f}% of the group (%{customdata[2]} tracks)<extra></extra>"
                ),
            )
        )
        index = features.index(feature)
        positions.append((index // columns + 1, index % columns + 1))
        shown.add(str(group))
    if traces:
        fig.add_traces(traces, rows=[r for r, _ in positions], cols=[c for _, c in positions])
    fig.update_layout(barmode="overlay", bargap=0, height=260 * rows + 80)
    fig.update_yaxes(ticksuffix="%")
    return _style(fig, "Audio features: share of each group's tracks", legend_title=grouping.by)


# --------------------------------------------------------------------------- correlations


def correlation_matrix(df: pd.DataFrame) -> pd.DataFrame:
    """Pearson correlations of the audio features (plus popularity and year when present)."""
    columns = list(feature_columns(df))
    for extra in ("popularity", "year"):
        if extra in df.columns and df[extra].notna().sum() > 2 and df[extra].nunique() > 1:
            columns.append(extra)
    values = df[columns].astype("float64")
    return values.corr()


def correlation_figure(corr: pd.DataFrame) -> go.Figure:
    """Heatmap of a correlation matrix on a diverging scale centred on 0."""
    fig = go.Figure(
        go.Heatmap(
            z=corr.to_numpy(),
            x=list(corr.columns),
            y=list(corr.index),
            zmin=-1,
            zmax=1,
            colorscale="RdBu_r",
            texttemplate="%{z:.2f}",
            hovertemplate="%{y} × %{x}: %{z:.3f}<extra></extra>",
            colorbar={"title": {"text": "r"}},
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=560)
    return _style(fig, "Correlation between audio features (Pearson r)")


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


def years_figure(yearly: pd.DataFrame, columns: int = 2) -> go.Figure:
    """One panel per feature: the yearly mean and a band from the 25th to 75th percentile."""
    features = list(dict.fromkeys(yearly["feature"]))
    rows = max(1, math.ceil(len(features) / columns))
    fig = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[_feature_label(f) for f in features],
        shared_xaxes=True,
        vertical_spacing=0.12 if rows > 1 else 0.1,
    )
    for i, feature in enumerate(features):
        part = yearly[yearly["feature"] == feature]
        position = {"row": i // columns + 1, "col": i % columns + 1}
        years = part["year"].to_numpy()
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([years, years[::-1]]),
                y=np.concatenate([part["q75"].to_numpy(), part["q25"].to_numpy()[::-1]]),
                fill="toself",
                fillcolor=BAND_COLOR,
                line={"width": 0},
                hoverinfo="skip",
                name="middle 50% of tracks",
                legendgroup="band",
                showlegend=i == 0,
            ),
            **position,
        )
        fig.add_trace(
            go.Scatter(
                x=years,
                y=part["mean"].to_numpy(),
                customdata=part[["tracks", "q25", "q75"]].to_numpy(),
                mode="lines+markers",
                marker={"size": 4},
                line={"color": LINE_COLOR, "width": 2},
                name="mean",
                legendgroup="mean",
                showlegend=i == 0,
                hovertemplate=(
                    f"%{{x}}: mean {feature} %{{y:.3g}}<br>middle 50%: %{{customdata[1]:.3g}} "
                    "to %{customdata[2]:.3g}<br>%{customdata[0]} tracks<extra></extra>"
                ),
            ),
            **position,
        )
    fig.update_layout(height=240 * rows + 100)
    return _style(fig, "Audio features over the years: mean and middle 50% of tracks")


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


def _hover_text(points: pd.DataFrame, labels: pd.Series, by: str) -> np.ndarray:
    """One hover string per sampled track, built with vectorised string operations."""

    def column(name: str) -> pd.Series:
        if name not in points:
            return pd.Series(MISSING_TEXT, index=points.index, dtype="string")
        values = points[name]
        if name == "popularity":
            values = values.round().astype("Int64")
        text = values.astype("string").str.replace("<", "&lt;", regex=False)
        return text.fillna(MISSING_TEXT)

    text = (
        "<b>" + column("title") + "</b><br>" + column("artist")
        + "<br>genre " + column("genre") + ", year " + column("year")
        + "<br>mood " + column("mood") + ", popularity " + column("popularity")
        + f"<br>{by}: " + labels.astype("string")
    )  # fmt: skip
    return text.to_numpy(dtype=object)


def map_figure(track_map_: TrackMap, grouping: Grouping) -> go.Figure:
    """Scatter of the sampled tracks on the first two principal components, one trace a group."""
    points = track_map_.points
    labels = grouping.labels.loc[points.index]
    text = _hover_text(points, labels, grouping.by)
    x, y = points["pc1"].to_numpy(), points["pc2"].to_numpy()
    fig = go.Figure()
    for group in grouping.order:
        mask = (labels == group).to_numpy()
        if not mask.any():
            continue
        fig.add_trace(
            go.Scattergl(
                x=x[mask],
                y=y[mask],
                mode="markers",
                name=group,
                marker={"color": grouping.colors[group], "size": 6, "opacity": 0.7},
                text=text[mask],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    pc1, pc2 = track_map_.explained
    fig.update_layout(
        xaxis_title=f"PC1 ({pc1:.0%} of variance) — {_top_loadings(track_map_.loadings, 'pc1')}",
        yaxis_title=f"PC2 ({pc2:.0%}) — {_top_loadings(track_map_.loadings, 'pc2')}",
        height=620,
    )
    title = "Map of the tracks: PCA of the standardised audio features"
    if track_map_.sampled:
        title += f" (random sample of {len(points):,} of {track_map_.n_tracks:,} tracks)"
    return _style(fig, title, legend_title=grouping.by)


def _top_loadings(loadings: pd.DataFrame, component: str, k: int = 2) -> str:
    """The features that weigh most on a component, with their sign ('+energy, -acousticness')."""
    order = loadings[component].abs().sort_values(ascending=False).index[:k]
    return ", ".join(f"{'+' if loadings.loc[f, component] >= 0 else '-'}{f}" for f in order)


# --------------------------------------------------------------------------- profiles


def scale_for_radar(values: np.ndarray, features: Sequence[str]) -> np.ndarray:
    """Features mapped onto 0..1 the way the recommender scales them (core.music.recommend)."""
    from core.music.recommend import scale_features

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


def radar_figure(profiles: pd.DataFrame, grouping: Grouping) -> go.Figure:
    """A radar of each group's average profile (0..1 scale; hover shows raw means)."""
    fig = go.Figure()
    for group in grouping.order:
        part = profiles[profiles["group"] == group]
        if part.empty:
            continue
        closed = pd.concat([part, part.head(1)])
        fig.add_trace(
            go.Scatterpolar(
                r=closed["scaled_mean"].to_numpy(),
                theta=closed["feature"].tolist(),
                customdata=closed[["mean", "tracks"]].to_numpy(),
                name=f"{group} ({int(part['tracks'].iloc[0]):,})",
                line={"color": grouping.colors[group], "width": 2},
                fill="toself",
                opacity=0.45,
                hovertemplate=(
                    f"{group}<br>%{{theta}}: mean %{{customdata[0]:.3g}} "
                    "(%{r:.2f} on the 0..1 scale)<extra></extra>"
                ),
            )
        )
    grid = "rgba(128, 128, 128, 0.45)"  # readable on the light and the dark theme
    fig.update_layout(
        polar={
            "bgcolor": "rgba(0, 0, 0, 0)",
            "radialaxis": {"range": [0, 1], "gridcolor": grid, "linecolor": grid, "angle": 90},
            "angularaxis": {"gridcolor": grid, "linecolor": grid, "direction": "clockwise"},
        },
        height=560,
    )
    return _style(
        fig, "Average profile of each group (tempo 60-180 BPM and loudness -30-0 dB → 0-1)"
    )


# --------------------------------------------------------------------------- shared styling


def _feature_label(feature: str) -> str:
    unit = FEATURE_UNITS.get(feature)
    return f"{feature} ({unit})" if unit else feature


def _style(fig: go.Figure, title: str, legend_title: str | None = None) -> go.Figure:
    """Common layout: title and compact margins (the page's theme supplies the template)."""
    fig.update_layout(
        title={"text": title},
        margin={"l": 60, "r": 30, "t": 80, "b": 50},
        legend_title_text=legend_title,
    )
    return fig


def figure_config(filename: str, scale: int = 2) -> Mapping[str, object]:
    """Plotly config for st.plotly_chart: the toolbar's camera saves a PNG named `filename`."""
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "filename": filename, "scale": scale},
    }
