"""Music explorer: the active catalog's moods, genres, years and audio features, as charts.

Thin page: the tracks in view come from core.analytics.explorer, their aggregates from
core.analytics.explorer_stats and the figures from core.analytics.explorer_figures; heavy results
are cached per catalog fingerprint and filter selection, so reruns on a million-track catalog
stay fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.analytics import explorer as ex
from core.analytics import explorer_figures as figs
from core.analytics import explorer_stats as stats
from core.music.catalog import CORE_FEATURES, CatalogError, feature_columns
from pages.common import (
    active_catalog,
    active_recommender,
    chart_with_data,
    deferred_csv,
    route_through_app,
)

route_through_app()  # first, so a deep link on a fresh server runs through app.py

# --------------------------------------------------------------------------- cached work
# Keys are the catalog fingerprint plus the filter selection; frames and groupings are passed
# unhashed (leading underscore). Charts are cached as built (figure, data) pairs and never
# mutated, so a rerun that hits the cache costs only the figure's serialisation.

Chart = tuple[go.Figure, pd.DataFrame]


@st.cache_resource(max_entries=4, show_spinner=False)
def _catalog_facts(fingerprint: str, _catalog: pd.DataFrame) -> tuple[dict, ex.FilterOptions]:
    del fingerprint
    return ex.summarise(_catalog), ex.filter_options(_catalog)


@st.cache_resource(max_entries=2, show_spinner=False)
def _selection(key: str, _catalog: pd.DataFrame, _filters: ex.Filters) -> ex.Selection:
    """The tracks passing the filters; each tab copies only the columns it needs, once."""
    del key
    return ex.select(_catalog, _filters)


@st.cache_resource(max_entries=4, show_spinner=False)
def _grouping(fingerprint: str, by: str, _catalog: pd.DataFrame) -> ex.Grouping:
    del fingerprint
    return ex.group_tracks(_catalog, by)


@st.cache_resource(max_entries=48, show_spinner=False)
def _composition_chart(
    key: str, column: str, title: str, _df: pd.DataFrame, _grouping: ex.Grouping
) -> Chart:
    del key
    counts = stats.composition(_df, column, _grouping)
    return figs.composition_figure(counts, column, _grouping, title), counts


@st.cache_resource(max_entries=16, show_spinner="Counting feature histograms…")
def _histogram_chart(key: str, _df: pd.DataFrame, _grouping: ex.Grouping) -> Chart:
    del key
    hist = stats.feature_histograms(_df, feature_columns(_df), _grouping)
    return figs.histogram_figure(hist, _grouping), hist


@st.cache_resource(max_entries=16, show_spinner=False)
def _correlation_chart(key: str, _df: pd.DataFrame) -> Chart:
    del key
    corr = stats.correlation_matrix(_df)
    return figs.correlation_figure(corr), corr


@st.cache_resource(max_entries=16, show_spinner=False)
def _years_chart(key: str, features: tuple[str, ...], _df: pd.DataFrame) -> Chart:
    del key
    yearly = stats.yearly_features(_df, features)
    return (figs.years_figure(yearly) if not yearly.empty else go.Figure()), yearly


@st.cache_resource(max_entries=16, show_spinner="Projecting the tracks (PCA)…")
def _track_map(key: str, _df: pd.DataFrame, _catalog: pd.DataFrame) -> stats.TrackMap:
    del key
    return stats.track_map(_df, feature_columns(_df), metadata=_catalog)


@st.cache_resource(max_entries=16, show_spinner=False)
def _map_chart(key: str, colour: str, _map: stats.TrackMap, _colouring: ex.Grouping) -> Chart:
    del key, colour
    return figs.map_figure(_map, _colouring), stats.map_data(_map, _colouring)


@st.cache_resource(max_entries=16, show_spinner=False)
def _profile_chart(key: str, _df: pd.DataFrame, _grouping: ex.Grouping) -> Chart:
    del key
    profiles = stats.group_profiles(_df, feature_columns(_df), _grouping)
    return figs.radar_figure(profiles, _grouping), profiles


# --------------------------------------------------------------------------- helpers


def show_chart(
    fig: go.Figure, data: pd.DataFrame, name: str, caption: str | None = None, index: bool = False
) -> None:
    """A chart, an optional caption and its data as CSV (see pages.common.chart_with_data)."""
    chart_with_data(fig, data, name, "mx", caption=caption, index=index)


def filter_widgets(options: ex.FilterOptions, fingerprint: str) -> ex.Filters:
    """Mood, genre, year and popularity filters (keys tied to the catalog)."""
    tag = fingerprint[:8]
    with st.expander("Filters", expanded=True):
        left, right = st.columns(2)
        moods = left.multiselect(
            "Mood", options.moods, key=f"mx_moods_{tag}", placeholder="All moods",
            disabled=not options.moods,
        )  # fmt: skip
        genres = right.multiselect(
            "Genre", options.genres, key=f"mx_genres_{tag}", placeholder="All genres",
            disabled=not options.genres,
        )  # fmt: skip
        left, right = st.columns(2)
        years = None
        if options.years and options.years[0] < options.years[1]:
            chosen = left.slider(
                "Release year", *options.years, value=options.years, key=f"mx_years_{tag}"
            )
            years = None if tuple(chosen) == options.years else tuple(chosen)
        else:
            left.caption("Release year: " + ("not in this catalog" if not options.years else
                                             f"all tracks from {options.years[0]}"))  # fmt: skip
        if options.years and options.composed_only:
            left.caption(
                f"Release year of the recording: a range leaves out the "
                f"{options.composed_only:,} work(s) dated only by when they were composed."
            )
        popularity = None
        if options.popularity and options.popularity[0] < options.popularity[1]:
            low, high = math.floor(options.popularity[0]), math.ceil(options.popularity[1])
            chosen = right.slider(
                "Popularity (Spotify, 0-100)", low, high, value=(low, high), key=f"mx_pop_{tag}"
            )
            popularity = None if tuple(chosen) == (low, high) else tuple(map(float, chosen))
        else:
            right.caption("Popularity: not in this catalog")
    return ex.Filters(
        moods=tuple(moods) or None, genres=tuple(genres) or None, years=years,
        popularity=popularity,
    )  # fmt: skip


def summary_metrics(summary: dict) -> None:
    years = summary["years"]
    cells = st.columns(5)
    cells[0].metric("Tracks", f"{summary['tracks']:,}")
    cells[1].metric("Artists", f"{summary['artists']:,}")
    cells[2].metric("Moods", summary["moods"] or "—")
    cells[3].metric("Genres", f"{summary['genres']:,}" if summary["genres"] else "—")
    composed = summary.get("composed")
    cells[4].metric(
        "Release years",
        f"{years[0]}–{years[1]}" if years else "—",
        help=(
            f"{summary['tracks_with_composed_only']:,} work(s) have no release year, only the "
            f"year they were composed ({composed[0]}–{composed[1]}): they are left out of "
            "the decades and the features over the years."
            if composed
            else "Release year of each track's recording."
        ),
    )


# --------------------------------------------------------------------------- sections


def overview_section(selection: ex.Selection, key: str, grouping: ex.Grouping) -> None:
    """Track counts per mood, genre and decade (works on any catalog)."""
    rows = selection.frame(["mood", "genre", "year"])
    charts = [
        ("mood", "Tracks per mood", rows["mood"].notna().any()),
        ("genre", "Tracks per genre (15 most common)", rows["genre"].notna().any()),
        ("decade", "Tracks per decade of release", rows["year"].notna().any()),
    ]
    shown = False
    for column, title, present in charts:
        if not present:
            continue
        fig, counts = _composition_chart(key, column, f"{title}, by {grouping.by}", rows, grouping)
        show_chart(fig, counts, f"tracks-per-{column}")
        shown = True
    if not shown:
        st.info("This catalog has no moods, genres or years to count.")


def distributions_section(
    selection: ex.Selection, key: str, grouping: ex.Grouping, features: list[str]
) -> None:
    rows = selection.frame(features)
    fig, hist = _histogram_chart(key, rows, grouping)
    show_chart(
        fig,
        hist,
        "feature-histograms",
        f"Counted with numpy over all {len(rows):,} tracks ({stats.HIST_BINS} bins a feature) and "
        "drawn as bars; the height is the share of each group's tracks, so groups of different "
        "sizes compare.",
    )


def correlations_section(selection: ex.Selection, key: str, features: list[str]) -> None:
    rows = selection.frame([*features, "popularity", "year"])
    fig, corr = _correlation_chart(key, rows)
    show_chart(
        fig,
        corr,
        "feature-correlations",
        f"Pearson correlation over {len(rows):,} tracks.",
        index=True,
    )


def years_section(selection: ex.Selection, key: str, features: list[str]) -> None:
    rows = selection.frame(["year", *features])
    if not rows["year"].notna().any():
        st.info(
            "This catalog has no release years, so features cannot be followed over time. "
            "Catalogs with a year or release_date column (such as data_moods.csv) can."
        )
        return
    default = [f for f in CORE_FEATURES if f in features]
    chosen = st.multiselect("Features", features, default=default, key="mx_year_features")
    if not chosen:
        st.caption("Pick at least one feature.")
        return
    fig, yearly = _years_chart(key, tuple(chosen), rows)
    if yearly.empty:
        st.info(f"No year has {stats.MIN_TRACKS_PER_YEAR} or more tracks with these filters.")
        return
    show_chart(
        fig,
        yearly,
        "features-over-years",
        f"Release years with at least {stats.MIN_TRACKS_PER_YEAR} tracks; line: mean, band: 25th "
        f"to 75th percentile of the year's tracks; aggregated over all "
        f"{int(rows['year'].notna().sum()):,} tracks with a release year"
        + (
            f" ({undated:,} without one left out)."
            if (undated := int(rows["year"].isna().sum()))
            else "."
        ),
    )


def map_section(
    catalog: pd.DataFrame,
    selection: ex.Selection,
    key: str,
    grouping: ex.Grouping,
    fingerprint: str,
    features: list[str],
) -> None:
    choices = {"mood": "Mood", "genre": "Genre", "cluster": "k-means cluster"}
    if grouping.by != "mood":
        choices.pop("mood")
    colour = st.segmented_control(
        "Colour by", list(choices), format_func=choices.get, default=next(iter(choices)),
        key=f"mx_map_colour_{fingerprint[:8]}", required=True,
    )  # fmt: skip
    track_map = _track_map(key, selection.frame(features), catalog)
    clustering = None
    if colour == "cluster":
        try:
            with st.spinner("Clustering the catalog (k-means, k chosen by silhouette)…"):
                clustering = active_recommender(catalog).clusters()
        except CatalogError as error:
            st.info(f"{error} Colouring by {choices[next(iter(choices))].lower()} instead.")
            colour = next(iter(choices))
    if clustering is not None:
        colouring = ex.cluster_grouping(catalog, clustering)
        fitted = (
            f"fitted on a random {clustering.fitted_on:,} of the catalog's {len(catalog):,} "
            "tracks by the recommender, every track then assigned to its nearest centre."
            if clustering.fitted_on
            else "fitted on the whole catalog by the recommender."
        )
        note = f" Clusters: k = {clustering.k} (silhouette {clustering.silhouette:.2f}) {fitted}"
        if clustering.moods_estimated:
            note += " Cluster moods are estimated from features (~): no mood labels."
    else:
        colouring, note = _grouping(fingerprint, colour, catalog), ""
    fitted = (
        f"PCA fitted on a random {track_map.n_fitted:,} of the {track_map.n_tracks:,} tracks"
        if track_map.fitted_on_sample
        else f"PCA fitted on all {track_map.n_tracks:,} tracks"
    )
    sample_note = (
        f"{fitted}; the map shows a random sample of {len(track_map.points):,} of "
        f"{track_map.n_tracks:,} (seed 0) to stay fast."
        if track_map.sampled
        else f"{fitted}, all shown."
    )
    fig, data = _map_chart(f"{key}|{colour}", colour, track_map, colouring)
    show_chart(fig, data, "track-map", sample_note + note)
    with st.expander("What the axes mean (PCA loadings)"):
        st.dataframe(track_map.loadings.style.format("{:+.2f}"), key="mx_loadings")


def profiles_section(
    selection: ex.Selection, key: str, grouping: ex.Grouping, features: list[str]
) -> None:
    fig, profiles = _profile_chart(key, selection.frame(features), grouping)
    show_chart(
        fig,
        profiles,
        "group-profiles",
        "Mean of each feature per group; tempo and loudness are mapped onto 0-1 so every axis "
        "shares one scale (hover for the raw means).",
    )


def tracks_section(selection: ex.Selection) -> None:
    query = st.text_input("Search title, artist, album or genre", key="mx_search")
    found = ex.search_tracks(selection.frame(), query)
    shown = ex.table_frame(found)
    more = f"; showing the first {len(shown):,}" if len(found) > len(shown) else ""
    st.caption(f"{len(found):,} matching tracks{more}. The download has every matching track.")
    st.dataframe(shown, hide_index=True, key="mx_table")
    st.download_button(
        f"⬇️ Download the {len(found):,} tracks (CSV)",
        deferred_csv(found),
        file_name="moodlens-tracks.csv",
        mime="text/csv",
        key="mx_dl_tracks",
        on_click="ignore",
    )


# --------------------------------------------------------------------------- page

st.title(":material/library_music: Music explorer")
catalog = active_catalog()
if catalog is None:
    st.stop()

fingerprint = ex.catalog_fingerprint(catalog, st.session_state.get("catalog_key"))
summary, options = _catalog_facts(fingerprint, catalog)
st.caption(
    f"Catalog **{catalog.attrs.get('name', 'catalog')}** ({catalog.attrs.get('format', '?')} "
    "format). Every chart is computed from this file; each has its data as CSV below it and a "
    "PNG download in its toolbar (camera icon)."
)
summary_metrics(summary)
grouping = _grouping(fingerprint, "auto", catalog)
for message in (
    ex.missing_features_message(catalog),
    ex.missing_moods_message(catalog, grouping),
):
    if message:
        st.info(message)

filters = filter_widgets(options, fingerprint)
key = f"{fingerprint}|{filters.key()}"
selection = _selection(key, catalog, filters)
st.caption(f"Showing **{len(selection):,}** of {len(catalog):,} tracks.")
if selection.empty:
    st.warning("No track passes these filters. Widen the year or popularity range, or clear a "
               "mood or genre.")  # fmt: skip
    st.stop()

features = summary["features"] if summary["has_audio_features"] else []
if filled := {f: n for f, n in catalog.attrs.get("filled_features", {}).items() if f in features}:
    st.warning(
        "Gaps filled with the column's median (so every track can be ranked): "
        + ", ".join(f"**{f}** {n / len(catalog):.0%} of tracks" for f, n in filled.items())
        + ". The charts of these features count those tracks at the median, which piles them "
        "in one bin and weakens their correlations.",
        icon=":material/warning:",
    )

# Lazy tabs: only the open tab's charts are computed and sent (a tab switch is a cached rerun).
if features:
    sections: dict[str, Callable[[], None]] = {
        "Overview": lambda: overview_section(selection, key, grouping),
        "Distributions": lambda: distributions_section(selection, key, grouping, features),
        "Correlations": lambda: correlations_section(selection, key, features),
        "Over the years": lambda: years_section(selection, key, features),
        "Map": lambda: map_section(catalog, selection, key, grouping, fingerprint, features),
        "Profiles": lambda: profiles_section(selection, key, grouping, features),
        "Tracks": lambda: tracks_section(selection),
    }
    tab_key = "mx_tab"
else:
    sections = {
        "Overview": lambda: overview_section(selection, key, grouping),
        "Tracks": lambda: tracks_section(selection),
    }
    tab_key = "mx_tab_basic"
for tab, render in zip(
    st.tabs(list(sections), key=tab_key, on_change="rerun"), sections.values(), strict=True
):
    if tab.open:
        with tab:
            render()
