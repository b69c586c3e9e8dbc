"""core.analytics.explorer{,_stats,_figures}: filters, histograms, yearly bands, PCA map,
profiles, on real catalogs."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from core.analytics import charts
from core.analytics import explorer as ex
from core.analytics import explorer_figures as figs
from core.analytics import explorer_stats as stats
from core.labels import MOODS
from core.music.catalog import (
    AUDIO_FEATURES,
    data_moods_path,
    feature_columns,
    load_catalog,
    spotify_features_path,
)
from core.palette import FALLBACK_COLOR, MOOD_COLORS
from core.paths import STARTER_CATALOG


def requires(path):
    if not path.exists():
        pytest.skip(f"shared data file {path} is absent (it lives in ../shared/data/music)")
    return path


@pytest.fixture(scope="module")
def moods() -> pd.DataFrame:
    """Kaggle data_moods.csv: 686 tracks with moods, years, popularity and features."""
    return load_catalog(requires(data_moods_path()))


@pytest.fixture(scope="module")
def spotify() -> pd.DataFrame:
    """The 19k Spotify features table: features and genres, no moods, no years."""
    return load_catalog(requires(spotify_features_path()))


@pytest.fixture(scope="module")
def starter() -> pd.DataFrame:
    return load_catalog(STARTER_CATALOG)


@pytest.fixture(scope="module")
def mixed() -> pd.DataFrame:
    """A small catalog with a track without mood, one without year, one without genre."""
    header = "title,artist,year,genre,mood,popularity," + ",".join(AUDIO_FEATURES)
    rows = [
        "A,a1,1990,pop,Happy,80,0.8,0.8,0.9,0.1,0.0,0.1,0.05,-5,120",
        "B,a2,1991,pop,Sad,20,0.3,0.2,0.1,0.9,0.0,0.1,0.04,-15,80",
        "C,a3,2005,rock,Energetic,50,0.5,0.95,0.5,0.01,0.1,0.3,0.06,-4,150",
        "D,a4,,rock,Calm,10,0.2,0.1,0.3,0.95,0.8,0.1,0.03,-20,70",
        "E,a5,2010,,Happy,95,0.7,0.7,0.8,0.2,0.0,0.1,0.05,-6,125",
        "F,a6,2012,jazz,,35,0.4,0.4,0.5,0.6,0.5,0.2,0.04,-10,100",
    ]
    return load_catalog(io.StringIO("\n".join([header, *rows]) + "\n"), name="mixed.csv")


# --------------------------------------------------------------------------- summary, filters


def test_summary_counts_the_real_catalog(moods: pd.DataFrame) -> None:
    summary = ex.summarise(moods)
    assert summary["tracks"] == 686
    assert summary["mood_counts"] == {"Sad": 197, "Calm": 195, "Energetic": 154, "Happy": 140}
    assert summary["moods"] == 4
    assert summary["years"][0] >= 1920 and summary["years"][1] <= 2021
    assert set(summary["features"]) == set(AUDIO_FEATURES)


def test_filters_reduce_rows_correctly(moods: pd.DataFrame) -> None:
    sad = ex.apply_filters(moods, ex.Filters(moods=("Sad",)))
    assert len(sad) == 197 and set(sad["mood"]) == {"Sad"}

    decade = ex.apply_filters(moods, ex.Filters(years=(2000, 2009)))
    expected = int(((moods["year"] >= 2000) & (moods["year"] <= 2009)).fillna(False).sum())
    assert len(decade) == expected > 0
    assert decade["year"].between(2000, 2009).all()

    popular = ex.apply_filters(moods, ex.Filters(popularity=(60.0, 100.0)))
    assert len(popular) == int((moods["popularity"] >= 60).sum())

    both = ex.apply_filters(moods, ex.Filters(moods=("Happy", "Calm"), popularity=(60.0, 100.0)))
    expected_both = moods["mood"].isin(["Happy", "Calm"]) & (moods["popularity"] >= 60)
    assert len(both) == int(expected_both.sum())
    assert both.index.isin(moods.index).all()  # original index kept for cluster lookups
    assert ex.apply_filters(moods, ex.Filters()) is moods  # nothing chosen: no copy


def test_filter_edge_cases(mixed: pd.DataFrame) -> None:
    options = ex.filter_options(mixed)
    assert options.moods == (*MOODS, ex.NO_MOOD)  # F has no mood
    assert options.genres == ("jazz", "pop", "rock")
    assert options.years == (1990, 2012)
    # A year range drops the track without a year; no filter keeps it.
    assert "D" not in set(ex.apply_filters(mixed, ex.Filters(years=(1900, 2100)))["title"])
    assert "D" in set(ex.apply_filters(mixed, ex.Filters())["title"])
    assert list(ex.apply_filters(mixed, ex.Filters(moods=(ex.NO_MOOD,)))["title"]) == ["F"]
    assert list(ex.apply_filters(mixed, ex.Filters(genres=("rock",)))["title"]) == ["C", "D"]
    nothing = ex.apply_filters(mixed, ex.Filters(moods=("Sad",), genres=("rock",)))
    assert nothing.empty


def test_search_is_case_insensitive_across_columns(moods: pd.DataFrame) -> None:
    hits = ex.search_tracks(moods, "PRINCE")
    assert len(hits) > 0
    columns = hits[list(ex.SEARCH_COLUMNS)].fillna("")
    found = columns.apply(lambda column: column.str.lower().str.contains("prince", regex=False))
    assert found.any(axis=1).all()
    assert ex.search_tracks(moods, "dream pop")["genre"].eq("dream pop").any()
    assert ex.search_tracks(moods, "   ") is moods
    assert ex.search_tracks(moods, "zzz-no-such-track-zzz").empty


def test_table_and_csv(moods: pd.DataFrame) -> None:
    table = ex.table_frame(moods, limit=10)
    assert len(table) == 10
    assert list(table.columns[:6]) == ["title", "artist", "album", "year", "genre", "mood"]
    assert "valence" in table.columns
    back = pd.read_csv(io.BytesIO(ex.to_csv_bytes(ex.table_frame(moods, limit=None))))
    assert len(back) == 686 and back["valence"].round(6).equals(moods["valence"].round(6))


def test_fingerprint_follows_content(mixed: pd.DataFrame) -> None:
    same = mixed.copy()
    assert ex.catalog_fingerprint(same) == ex.catalog_fingerprint(mixed)
    changed = mixed.copy()
    changed.loc[0, "energy"] = 0.123
    assert ex.catalog_fingerprint(changed) != ex.catalog_fingerprint(mixed)


def test_fingerprint_sees_rows_a_sample_would_skip() -> None:
    """5,000 tracks whose mood and genre change in 500 rows a 1-in-2 sample skips: new key."""
    n = 5_000
    base = pd.DataFrame(
        {
            "title": [f"t{i}" for i in range(n)],
            "artist": ["a"] * n,
            "genre": ["pop"] * n,
            "mood": ["Happy"] * n,
            "energy": np.linspace(0, 1, n),
        }
    )
    base.attrs["name"] = "same.csv"
    edited = base.copy()
    edited.attrs["name"] = "same.csv"
    rows = np.arange(1, 1_000, 2)  # odd rows: never in a every-2nd-row sample
    edited.loc[rows, "mood"] = "Sad"
    edited.loc[rows, "genre"] = "rock"
    assert ex.catalog_fingerprint(edited) != ex.catalog_fingerprint(base)
    # With the file's identity (the pages' catalog_key) the key follows the file.
    assert ex.catalog_fingerprint(base, "upload:aaa") != ex.catalog_fingerprint(base, "upload:bbb")
    assert ex.catalog_fingerprint(base, "upload:aaa") == ex.catalog_fingerprint(base, "upload:aaa")


# --------------------------------------------------------------------------- groups


def test_groups_use_the_mood_palette(moods: pd.DataFrame, mixed: pd.DataFrame) -> None:
    grouping = ex.group_tracks(moods)
    assert grouping.by == "mood" and grouping.order == MOODS
    assert grouping.colors == {m: MOOD_COLORS[m] for m in MOODS}
    partial = ex.group_tracks(mixed)
    assert partial.order == (*MOODS, ex.NO_MOOD)
    assert partial.colors[ex.NO_MOOD] == FALLBACK_COLOR


def test_unlabelled_catalog_groups_by_genre(spotify: pd.DataFrame) -> None:
    grouping = ex.group_tracks(spotify)
    assert grouping.by == "genre"
    top = list(spotify["genre"].value_counts().index)
    assert list(grouping.order) == top  # six genres: no "Other" needed
    message = ex.missing_moods_message(spotify)
    assert message and "genre" in message and "core.music.catalog label" in message
    assert ex.missing_features_message(spotify) is None


def test_many_genres_fold_into_other(moods: pd.DataFrame) -> None:
    grouping = ex.group_tracks(moods, "genre", max_groups=5)
    blank = moods["genre"].isna()
    assert blank.any()  # the dataset has tracks without a genre: a group of their own
    assert len(grouping.order) == 5 and grouping.order[-2:] == (ex.OTHER, ex.NO_GENRE)
    top3 = set(moods["genre"].value_counts().index[:3])
    others = grouping.labels[~moods["genre"].isin(top3) & ~blank]
    assert (others == ex.OTHER).all() and (grouping.labels[blank] == ex.NO_GENRE).all()
    assert grouping.colors[ex.OTHER] == FALLBACK_COLOR != grouping.colors[ex.NO_GENRE]


def test_tracks_without_a_genre_are_their_own_group_not_other() -> None:
    rows = ["title,artist,genre,valence,energy,danceability,acousticness,tempo"]
    rows += [f"T{i},A{i},{['pop', 'rock', ''][i % 3]},0.5,0.5,0.5,0.5,100" for i in range(30)]
    catalog = load_catalog(io.StringIO("\n".join(rows)))
    grouping = ex.group_tracks(catalog)
    assert grouping.by == "genre" and list(grouping.order) == ["pop", "rock", ex.NO_GENRE]
    assert (grouping.labels[catalog["genre"].isna()] == ex.NO_GENRE).all()
    assert grouping.colors[ex.NO_GENRE] == ex.NO_GENRE_COLOR
    message = ex.missing_moods_message(catalog, grouping)
    assert "without one as No genre" in message and "rest as Other" not in message


def test_featureless_catalog_explains_what_a_full_one_adds(starter: pd.DataFrame) -> None:
    message = ex.missing_features_message(starter)
    assert message and "no audio features" in message and "2-D map" in message
    assert feature_columns(starter) == []
    counts = stats.composition(starter, "mood", ex.group_tracks(starter))
    assert counts.set_index("mood")["tracks"].to_dict() == starter["mood"].value_counts().to_dict()


def test_decade_composition(moods: pd.DataFrame) -> None:
    grouping = ex.group_tracks(moods)
    counts = stats.composition(moods, "decade", grouping)
    assert counts["tracks"].sum() == int(moods["year"].notna().sum())
    sixties = moods[(moods["year"] >= 1960) & (moods["year"] < 1970)]
    assert counts[counts["decade"] == "1960s"]["tracks"].sum() == len(sixties)
    fig = figs.composition_figure(counts, "decade", grouping, "decades")
    assert [t.marker.color for t in fig.data] == [MOOD_COLORS[m] for m in MOODS]


# --------------------------------------------------------------------------- histograms


def test_histograms_match_numpy_per_mood(moods: pd.DataFrame) -> None:
    grouping = ex.group_tracks(moods)
    features = feature_columns(moods)
    hist = stats.feature_histograms(moods, features, grouping, bins=20)
    for feature in ("valence", "tempo", "loudness"):
        edges = np.histogram_bin_edges(moods[feature].to_numpy(), bins=20)
        for mood in MOODS:
            values = moods.loc[moods["mood"] == mood, feature].to_numpy()
            expected, _ = np.histogram(values, bins=edges)
            part = hist[(hist["feature"] == feature) & (hist["group"] == mood)]
            assert part["tracks"].tolist() == expected.tolist()
            assert part["share"].sum() == pytest.approx(1.0)
            assert np.allclose(part["bin_left"], edges[:-1])


def test_histogram_figure_draws_the_aggregates(moods: pd.DataFrame) -> None:
    grouping = ex.group_tracks(moods)
    hist = stats.feature_histograms(moods, ["energy", "valence"], grouping)
    fig = figs.histogram_figure(hist, grouping)
    assert len(fig.data) == 2 * len(MOODS)  # one bar trace per feature and mood, no raw points
    energy_sad = next(t for t in fig.data if t.name == "Sad" and t.xaxis == "x")
    expected = hist[(hist["feature"] == "energy") & (hist["group"] == "Sad")]["share"] * 100
    assert np.allclose(energy_sad.y, expected)
    assert energy_sad.marker.color == MOOD_COLORS["Sad"]
    assert sum(1 for t in fig.data if t.showlegend) == len(MOODS)


# --------------------------------------------------------------------------- correlations, years


def test_correlations_show_known_relations(moods: pd.DataFrame) -> None:
    corr = stats.correlation_matrix(moods)
    assert np.allclose(np.diag(corr), 1.0) and np.allclose(corr, corr.T)
    assert "popularity" in corr.columns and "year" in corr.columns
    assert corr.loc["energy", "loudness"] > 0.5  # louder tracks are more energetic
    assert corr.loc["energy", "acousticness"] < -0.5
    fig = figs.correlation_figure(corr)
    assert np.allclose(np.asarray(fig.data[0].z, dtype=float), corr.to_numpy())


def test_yearly_means_and_bands(moods: pd.DataFrame) -> None:
    yearly = stats.yearly_features(moods, ["energy", "valence"], min_tracks=5)
    counts = moods["year"].value_counts()
    assert set(yearly["year"]) == {int(y) for y in counts.index[counts >= 5]}
    row = yearly[(yearly["year"] == 2019) & (yearly["feature"] == "energy")].iloc[0]
    tracks = moods.loc[moods["year"] == 2019, "energy"]
    assert row["tracks"] == len(tracks)
    assert row["mean"] == pytest.approx(tracks.mean())
    assert row["q25"] == pytest.approx(tracks.quantile(0.25))
    assert row["q75"] == pytest.approx(tracks.quantile(0.75)) and row["q25"] <= row["q75"]
    fig = figs.years_figure(yearly)
    means = [t for t in fig.data if t.name == "mean"]
    assert len(means) == 2
    layout = fig.layout
    axes = [layout[name] for name in layout if name.startswith(("xaxis", "yaxis"))]
    titled = [a.title.text for a in axes if a.title.text]
    assert "release year" in titled and any("0 to 1" in t or "dB" in t for t in titled)


def test_years_absent(spotify: pd.DataFrame) -> None:
    assert stats.yearly_features(spotify, ["energy"]).empty


# --------------------------------------------------------------------------- map, profiles


def test_track_map_samples_and_is_seeded(spotify: pd.DataFrame) -> None:
    features = feature_columns(spotify)
    first = stats.track_map(spotify, features, sample=2_000)
    again = stats.track_map(spotify, features, sample=2_000)
    assert first.sampled and len(first.points) == 2_000 and first.n_tracks == len(spotify)
    assert first.points.index.equals(again.points.index)
    assert first.points.index.isin(spotify.index).all()
    assert first.explained[0] >= first.explained[1] > 0
    assert list(first.loadings.index) == features
    # PC1 of standardised data has unit-norm loadings and zero-mean scores over all tracks.
    assert np.linalg.norm(first.loadings["pc1"]) == pytest.approx(1.0)
    grouping = ex.group_tracks(spotify)
    fig = figs.map_figure(first, grouping)
    assert sum(len(t.x) for t in fig.data) == 2_000
    assert "sample of 2,000" in fig.layout.title.text


def test_map_data_keeps_the_real_genre_beside_the_colouring(moods: pd.DataFrame) -> None:
    """Colouring by the top genres puts rare ones in "Other": the map's CSV keeps each
    track's real genre and gives the colouring a column of its own."""
    track_map = stats.track_map(moods, feature_columns(moods), metadata=moods)
    colouring = ex.group_tracks(moods, "genre", max_groups=5)
    data = stats.map_data(track_map, colouring)
    real = moods.loc[data.index, "genre"]
    assert data["genre"].equals(real)
    assert (data["genre"] != ex.OTHER).all()
    assert (data["colour_by_genre"] == ex.OTHER).any()
    assert data["colour_by_genre"].astype(str).equals(colouring.labels.loc[data.index].astype(str))


def test_small_catalog_is_mapped_whole(moods: pd.DataFrame) -> None:
    track_map = stats.track_map(moods, feature_columns(moods))
    assert not track_map.sampled and len(track_map.points) == 686
    fig = figs.map_figure(track_map, ex.group_tracks(moods))
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == set(MOODS)
    assert len(by_name["Sad"].x) == 197 and by_name["Sad"].marker.color == MOOD_COLORS["Sad"]
    assert "mood Sad" in by_name["Sad"].text[0]
    assert len({t.marker.symbol for t in fig.data}) == len(fig.data)  # shape as well as colour


@pytest.mark.parametrize("rows", [1, 3])
def test_a_selection_without_variance_maps_with_zero_explained(moods: pd.DataFrame, rows) -> None:
    alike = pd.concat([moods.head(1)] * rows, ignore_index=True)  # one track, or copies of it
    track_map = stats.track_map(alike, feature_columns(moods))
    assert track_map.explained == (0.0, 0.0)
    fig = figs.map_figure(track_map, ex.group_tracks(alike))
    assert fig.layout.xaxis.title.text.startswith("PC1 (0% of variance)")


def test_cluster_colouring_reuses_the_recommender(moods: pd.DataFrame) -> None:
    from core.music.recommender import Recommender

    clustering = Recommender(moods).clusters()
    grouping = ex.cluster_grouping(moods, clustering)
    assert grouping.by == "cluster"
    sizes = grouping.labels.value_counts()
    assert {name: int(sizes[name]) for name in grouping.order} == dict(
        zip(clustering.names, clustering.sizes, strict=True)
    )
    subset = ex.apply_filters(moods, ex.Filters(moods=("Calm",)))
    assert len(ex.cluster_grouping(moods, clustering, subset.index).labels) == len(subset)


def test_profiles_are_mood_means_on_a_shared_scale(moods: pd.DataFrame) -> None:
    grouping = ex.group_tracks(moods)
    features = feature_columns(moods)
    profiles = stats.group_profiles(moods, features, grouping)
    calm = profiles[profiles["group"] == "Calm"].set_index("feature")
    calm_tracks = moods[moods["mood"] == "Calm"]
    assert calm.loc["acousticness", "mean"] == pytest.approx(calm_tracks["acousticness"].mean())
    assert calm.loc["tempo", "mean"] == pytest.approx(calm_tracks["tempo"].mean())
    assert profiles["scaled_mean"].between(0, 1).all()
    energetic = profiles[profiles["group"] == "Energetic"].set_index("feature")
    assert energetic.loc["energy", "scaled_mean"] > calm.loc["energy", "scaled_mean"]
    fig = figs.radar_figure(profiles, grouping)
    assert [t.line.color for t in fig.data] == [MOOD_COLORS[m] for m in MOODS]
    assert fig.data[0].r[0] == fig.data[0].r[-1]  # closed outline


def test_figure_config_names_the_png() -> None:
    config = charts.figure_config("moodlens-x")
    assert config["toImageButtonOptions"]["format"] == "png"
    assert config["toImageButtonOptions"]["filename"] == "moodlens-x"


def test_analytics_colours_come_from_the_palette() -> None:
    """No colour literal in core.analytics: core.palette owns every colour."""
    import re
    from pathlib import Path

    import core.analytics

    literal = re.compile(r"#[0-9A-Fa-f]{6}\b|rgba?\(")
    for path in Path(core.analytics.__file__).parent.glob("*.py"):
        found = literal.findall(path.read_text(encoding="utf-8"))
        assert not found, f"{path.name} defines colours {found}; move them to core.palette"


# --------------------------------------------------------------------------- large catalogs, years


def test_starter_years_are_release_years_and_composed_years_are_named(starter) -> None:
    summary = ex.summarise(starter)
    assert summary["years"][0] >= 1900 and summary["years"] == (1951, 2024)
    assert summary["composed"] == (1722, 1910) and summary["tracks_with_composed_only"] == 6
    assert ex.filter_options(starter).composed_only == 6
    decades = stats.composition(starter, "decade", ex.group_tracks(starter))
    assert decades["tracks"].sum() == int(starter["year"].notna().sum()) == len(starter) - 6
    assert decades["decade"].min() == "1950s"


def test_aggregates_equal_pandas_groupbys(moods: pd.DataFrame) -> None:
    grouping = ex.group_tracks(moods)
    assert isinstance(grouping.labels.dtype, pd.CategoricalDtype)
    for column in ("mood", "genre"):
        counts = stats.composition(moods, column, grouping, top=1_000)
        expected = moods.groupby([column, "mood"]).size()
        got = counts.set_index([column, "group"])["tracks"]
        assert got.sort_index().to_dict() == expected.sort_index().to_dict()
    corr = stats.correlation_matrix(moods)
    pd.testing.assert_frame_equal(corr, moods[list(corr.columns)].astype(float).corr(), atol=1e-9)
    profiles = stats.group_profiles(moods, ["energy", "tempo"], grouping)
    means = moods.groupby("mood")[["energy", "tempo"]].mean()
    for row in profiles.itertuples():
        assert row.mean == pytest.approx(means.loc[row.group, row.feature])


def test_correlations_use_each_pair_s_rows(mixed: pd.DataFrame) -> None:
    gappy = mixed.copy()
    gappy.loc[0, "popularity"] = np.nan  # gaps in two columns, in different rows
    corr = stats.correlation_matrix(gappy)
    expected = gappy[list(corr.columns)].astype(float).corr()
    pd.testing.assert_frame_equal(corr, expected, atol=1e-9)


def test_big_catalogs_fit_the_map_on_a_sample(spotify: pd.DataFrame) -> None:
    features = feature_columns(spotify)
    full = stats.track_map(spotify, features, sample=2_000)
    sampled = stats.track_map(spotify, features, sample=2_000, fit_sample=5_000)
    assert not full.fitted_on_sample and sampled.fitted_on_sample and sampled.n_fitted == 5_000
    assert sampled.points.index.equals(full.points.index)  # the same tracks are plotted
    loadings = (sampled.loadings["pc1"] * full.loadings["pc1"]).sum()
    assert abs(loadings) > 0.99  # a 5,000-track sample finds the same first component


def test_selection_copies_only_the_columns_asked_for(moods: pd.DataFrame) -> None:
    filters = ex.Filters(moods=("Sad",), popularity=(10.0, 90.0))
    selection = ex.select(moods, filters)
    expected = ex.apply_filters(moods, filters)
    assert len(selection) == len(expected) and selection.index.equals(expected.index)
    part = selection.frame(["energy", "mood", "nope"])
    assert list(part.columns) == ["energy", "mood"]
    assert set(selection._columns) == {"energy", "mood"}  # nothing else copied
    pd.testing.assert_frame_equal(part, expected[["energy", "mood"]])
    pd.testing.assert_frame_equal(selection.frame(), expected)
    everything = ex.select(moods, ex.Filters())
    assert everything.positions is None and everything.frame() is moods
