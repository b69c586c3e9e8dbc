"""Music Explorer, the tracks in view: catalog facts, filters, search, the track table, groups.

Everything here takes a normalised catalog (core.music.catalog.load_catalog) and stays fast on
a million tracks. Groups are moods when the catalog has mood labels, else its most common
genres; their labels are categorical (one small code a track) and their colours come from
core.palette. Aggregates per group are in core.analytics.explorer_stats,
plotly figures in core.analytics.explorer_figures. No streamlit here; the page wires these to
widgets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.labels import MOODS
from core.music.catalog import (
    COMPOSED,
    CORE_FEATURES,
    feature_columns,
    has_audio_features,
    has_moods,
)
from core.palette import CATEGORY_COLORS, FALLBACK_COLOR, MOOD_COLORS, UNKNOWN_COLOR

NO_MOOD = "No mood"
NO_GENRE = "No genre"
NO_GENRE_COLOR = UNKNOWN_COLOR
OTHER = "Other"
ALL_TRACKS = "All tracks"
TABLE_ROWS = 1_000
MAX_GROUPS = 8
TABLE_COLUMNS: tuple[str, ...] = (
    "title", "artist", "album", "year", "genre", "mood", "popularity", "track_id",
)  # fmt: skip
SEARCH_COLUMNS: tuple[str, ...] = ("title", "artist", "album", "genre")


# --------------------------------------------------------------------------- summary


def catalog_fingerprint(df: pd.DataFrame, source: str | None = None) -> str:
    """A stable identity of a catalog's content, for cache keys.

    `source` is the loaded file's identity (the pages' ``catalog_key``: an upload's sha1, or
    path, mtime and size); with it, a cheap sample of rows is enough (~ms on 200k rows). Without
    it every row is hashed (~100 ms on 200k rows), so two catalogs that differ in any cell get
    different keys.
    """
    digest = hashlib.sha1()
    digest.update(repr((source, df.attrs.get("name"), df.shape, tuple(df.columns))).encode())
    if len(df):
        step = max(1, len(df) // 2_000) if source is not None else 1
        probe = df.iloc[::step]
        digest.update(pd.util.hash_pandas_object(probe, index=True).to_numpy().tobytes())
        numeric = df.select_dtypes("number")
        digest.update(np.nan_to_num(numeric.sum().to_numpy(dtype=float)).tobytes())
    return digest.hexdigest()


def summarise(df: pd.DataFrame) -> dict[str, object]:
    """Tracks, artists, moods, genres, years and features of a catalog (for the metric row).

    ``years`` is the range of release years; ``composed`` the range of composition years of the
    works without a release year (a ``composed`` column, e.g. classical pieces in the starter
    catalog), or None.
    """
    years = df["year"].dropna()
    composed = (
        df.loc[df["year"].isna(), COMPOSED].dropna() if COMPOSED in df.columns else years.iloc[:0]
    )
    return {
        "tracks": len(df),
        "artists": int(df["artist"].nunique()),
        "moods": int(df["mood"].nunique()),
        "mood_counts": {m: int(n) for m, n in df["mood"].value_counts().items()},
        "genres": int(df["genre"].nunique()),
        "years": (int(years.min()), int(years.max())) if len(years) else None,
        "tracks_with_year": len(years),
        "composed": (int(composed.min()), int(composed.max())) if len(composed) else None,
        "tracks_with_composed_only": len(composed),
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


def missing_moods_message(df: pd.DataFrame, grouping: Grouping | None = None) -> str | None:
    """How a catalog without mood labels is grouped instead, or None when it has moods.

    `grouping`: the catalog's `group_tracks(df)` when already at hand (saves recomputing it).
    """
    if has_moods(df):
        return None
    grouping = grouping if grouping is not None else group_tracks(df)
    if grouping.by == "genre":
        genres = [g for g in grouping.order if g not in (OTHER, NO_GENRE)]
        parts = (
            [f"the {len(genres)} most common, the rest as {OTHER}"]
            if OTHER in grouping.order
            else []
        )
        parts += [f"tracks without one as {NO_GENRE}"] if NO_GENRE in grouping.order else []
        how = "genre" + (f" ({'; '.join(parts)})" if parts else "")
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
    years: tuple[int, int] | None  # release years
    popularity: tuple[float, float] | None
    composed_only: int = 0  # tracks with a composition year but no release year


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
        composed_only=int((df["year"].isna() & df[COMPOSED].notna()).sum())
        if COMPOSED in df.columns
        else 0,
    )


def filter_positions(df: pd.DataFrame, filters: Filters) -> np.ndarray | None:
    """Row positions of the tracks that pass every filter; None when every track does."""
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
    return None if keep.all() else np.flatnonzero(keep)


def apply_filters(df: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """The tracks that pass every filter (the original index is kept)."""
    positions = filter_positions(df, filters)
    return df if positions is None else df.take(positions)  # take: ~2x a boolean mask


class Selection:
    """The tracks of a catalog that pass a filter selection, copied column by column on demand.

    A view asks `frame(columns)` for just the columns it aggregates, so a new filter on a
    million tracks copies (once) the few columns the open tab needs, not the whole catalog.
    """

    def __init__(self, catalog: pd.DataFrame, positions: np.ndarray | None) -> None:
        self.catalog = catalog
        self.positions = positions
        self.index = catalog.index if positions is None else catalog.index[positions]
        self._columns: dict[str, pd.api.extensions.ExtensionArray | np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.index)

    @property
    def empty(self) -> bool:
        return len(self) == 0

    def frame(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The selected tracks with `columns` (those the catalog has; default: all of them)."""
        wanted = list(columns) if columns is not None else list(self.catalog.columns)
        names = [c for c in dict.fromkeys(wanted) if c in self.catalog.columns]
        if self.positions is None:
            return self.catalog if columns is None else self.catalog[names]
        for name in names:
            if name not in self._columns:
                self._columns[name] = self.catalog[name].array.take(self.positions)
        frame = pd.DataFrame(
            {name: self._columns[name] for name in names}, index=self.index, copy=False
        )
        frame.attrs = dict(self.catalog.attrs)
        return frame


def select(df: pd.DataFrame, filters: Filters) -> Selection:
    """The tracks of `df` that pass `filters`, as a `Selection`."""
    return Selection(df, filter_positions(df, filters))


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
    """Each track's group (a mood, a genre or a cluster), the groups' order and colours.

    `labels` is categorical with the groups of `order` as categories (so a million labels cost a
    million small codes, not strings); `codes_for` gives them as integers for numpy aggregates.
    """

    by: str  # "mood", "genre", "cluster" or "all"
    labels: pd.Series  # indexed like the catalog
    order: tuple[str, ...]
    colors: dict[str, str]

    def labels_for(self, df: pd.DataFrame) -> pd.Series:
        """The labels of `df`'s tracks (df: the catalog or some of its rows)."""
        if self.labels.index.equals(df.index):
            return self.labels
        return self.labels.loc[df.index]

    def codes_for(self, df: pd.DataFrame) -> np.ndarray:
        """Each track's position in `order` (-1: none), aligned with `df`'s rows."""
        labels = self.labels_for(df)
        if isinstance(labels.dtype, pd.CategoricalDtype) and tuple(labels.cat.categories) == tuple(
            self.order
        ):
            return labels.cat.codes.to_numpy().astype(np.int64)
        return pd.Categorical(labels, categories=list(self.order)).codes.astype(np.int64)


def _categorical(codes: np.ndarray, order: Sequence[str], index: pd.Index) -> pd.Series:
    """Labels from codes into `order` (a unique tuple of names)."""
    return pd.Series(
        pd.Categorical.from_codes(codes, categories=list(order)), index=index, name="group"
    )


def category_colors(order: Sequence[str], by: str) -> dict[str, str]:
    """Mood colours from core.palette for moods; the qualitative scheme for anything else."""
    if by == "mood":
        return {g: MOOD_COLORS.get(g, FALLBACK_COLOR) for g in order}
    colors: dict[str, str] = {}
    others = [g for g in order if g not in (OTHER, NO_MOOD, NO_GENRE)]
    for i, group in enumerate(others):
        colors[group] = CATEGORY_COLORS[i % len(CATEGORY_COLORS)]
    if NO_GENRE in order:
        colors[NO_GENRE] = NO_GENRE_COLOR  # a darker grey than Other's
    for group in order:
        colors.setdefault(group, FALLBACK_COLOR)
    return colors


def group_tracks(df: pd.DataFrame, by: str = "auto", max_groups: int = MAX_GROUPS) -> Grouping:
    """Group tracks by mood (auto when labelled), else by their most common genres."""
    if by == "auto":
        by = "mood" if has_moods(df) else ("genre" if df["genre"].notna().any() else "all")
    if by == "mood":
        names = (*MOODS, NO_MOOD)
        codes = pd.Categorical(df["mood"], categories=list(MOODS)).codes.astype(np.int64)
        codes[codes < 0] = len(MOODS)  # no mood (or one outside MOODS)
        present = np.bincount(codes, minlength=len(names)) > 0
        order = tuple(name for name, seen in zip(names, present, strict=True) if seen)
        position = np.cumsum(present) - 1  # code in `names` -> code in `order`
        labels = _categorical(position[codes], order, df.index)
    elif by == "genre":
        counts = df["genre"].value_counts()
        unknown = df["genre"].isna().to_numpy()  # no genre: its own group, not a rare genre
        slots = max_groups - int(unknown.any())
        top = list(counts.index[: slots - 1]) if len(counts) > slots else list(counts.index)
        codes = pd.Categorical(df["genre"], categories=top).codes.astype(np.int64)
        other = (codes < 0) & ~unknown
        order = (
            tuple(top) + ((OTHER,) if other.any() else ()) + ((NO_GENRE,) if unknown.any() else ())
        )
        codes[other] = len(top)
        codes[unknown] = len(order) - 1
        labels = _categorical(codes, order, df.index)
    else:
        by = "all"
        order = (ALL_TRACKS,)
        labels = _categorical(np.zeros(len(df), dtype=np.int64), order, df.index)
    return Grouping(by=by, labels=labels, order=order, colors=category_colors(order, by))


def cluster_grouping(catalog: pd.DataFrame, clustering, index: pd.Index | None = None) -> Grouping:
    """Cluster labels of a `core.music.clusters.Clustering` computed on `catalog` (row order).

    `index` restricts the labels to some tracks (e.g. the filtered ones).
    """
    labels = _categorical(np.asarray(clustering.labels), clustering.names, catalog.index)
    if index is not None:
        labels = labels.loc[index]
    present = np.bincount(labels.cat.codes.to_numpy(), minlength=len(clustering.names)) > 0
    order = tuple(n for n, seen in zip(clustering.names, present, strict=True) if seen)
    if len(order) < len(clustering.names):
        labels = labels.cat.set_categories(list(order))
    return Grouping(by="cluster", labels=labels, order=order, colors=category_colors(order, "x"))
