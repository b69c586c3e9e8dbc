"""core.music.recommender (with targets, tracks, clusters): strategies move mood and features the
way they promise; core.music.recommend is its CLI."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from core.labels import EMOTION_TO_MOOD, EMOTIONS
from core.music.catalog import data_moods_path, load_catalog
from core.music.recommender import Recommender
from core.music.targets import (
    STRATEGY_MOODS,
    blended_target,
    emotion_weights,
    normalise_probabilities,
)
from core.music.tracks import Recommendation, embed_url, spotify_url

MOOD_CSV = "title,artist,genre,mood,popularity\n" + "".join(
    f"{mood} song {i},{mood} artist {i % 3},pop,{mood},{10 * i}\n"
    for mood in ("Happy", "Sad", "Energetic", "Calm")
    for i in range(6)
)


@pytest.fixture(scope="module")
def mood_catalog() -> pd.DataFrame:
    return load_catalog(io.StringIO(MOOD_CSV), name="moods.csv")


@pytest.fixture(scope="module")
def data_moods() -> pd.DataFrame:
    if not data_moods_path().exists():
        pytest.skip("shared data_moods.csv is absent (../shared/data/music)")
    return load_catalog(data_moods_path())


def one_hot(emotion: str) -> dict[str, float]:
    return {emotion: 1.0}


# --------------------------------------------------------------------------- phase 1


def test_links() -> None:
    assert spotify_url("abc") == "https://open.spotify.com/track/abc"
    assert embed_url("abc") == "https://open.spotify.com/embed/track/abc"
    spotify_id = "4uLU6hMCjMI75M1A2tKUQC"
    song = Recommendation("T", "A", None, None, None, None, None, spotify_id, "catalog", 1.0)
    assert song.url == spotify_url(spotify_id) and song.embed == embed_url(spotify_id)
    for own_id in ("17", "row-17", "https://youtu.be/dQw4w9WgXcQ"):  # a catalog's own ids
        other = Recommendation("T", "A", None, None, None, None, None, own_id, "catalog", 1.0)
        assert other.url is None and other.embed is None and other.key == "a::t"
    assert song.key == spotify_id


def test_probabilities_accept_mapping_and_sequence() -> None:
    as_list = normalise_probabilities([0, 0, 0, 2, 2, 0, 0])
    assert as_list["happy"] == pytest.approx(0.5) and as_list["sad"] == pytest.approx(0.5)
    assert normalise_probabilities({"fear": 3.0})["fear"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="Unknown emotion"):
        normalise_probabilities({"bored": 1.0})
    with pytest.raises(ValueError, match="Expected 7"):
        normalise_probabilities([1.0, 0.0])
    with pytest.raises(ValueError, match="sum to zero"):
        normalise_probabilities([0.0] * 7)


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_match_on_mood_catalog_gives_the_mapped_mood(
    mood_catalog: pd.DataFrame, emotion: str
) -> None:
    recs = Recommender(mood_catalog).recommend(one_hot(emotion), "match", k=3)
    assert len(recs) == 3
    moods = STRATEGY_MOODS["match"][emotion]
    assert {rec.mood for rec in recs} == {max(moods, key=moods.__getitem__)}
    # match follows labels.EMOTION_TO_MOOD except that angry/disgust mirror the feeling.
    if emotion not in ("angry", "disgust"):
        assert recs[0].mood == EMOTION_TO_MOOD[emotion]
    assert len({rec.artist for rec in recs}) == 3
    assert all(isinstance(rec, Recommendation) and rec.reason for rec in recs)


def test_popularity_orders_mood_only_results(mood_catalog: pd.DataFrame) -> None:
    recs = Recommender(mood_catalog).recommend(one_hot("sad"), "match", k=3)
    popularity = [rec.popularity for rec in recs]
    assert popularity == sorted(popularity, reverse=True)


def test_exclude_skips_tracks(mood_catalog: pd.DataFrame) -> None:
    recommender = Recommender(mood_catalog)
    first = recommender.recommend(one_hot("happy"), k=3)
    again = recommender.recommend(one_hot("happy"), k=3, exclude=[first[0].key])
    assert first[0].key not in {rec.key for rec in again}


# --------------------------------------------------------------------------- phase 2: strategies


def mean_features(recs: list[Recommendation], *names: str) -> list[float]:
    return [sum(rec.features[n] for rec in recs) / len(recs) for n in names]


@pytest.fixture(scope="module")
def moods_recommender(data_moods: pd.DataFrame) -> Recommender:
    return Recommender(data_moods)


@pytest.mark.parametrize("emotion", ["sad", "fear", "angry", "disgust", "neutral"])
def test_uplift_raises_valence_and_energy(moods_recommender: Recommender, emotion: str) -> None:
    match = moods_recommender.recommend(one_hot(emotion), "match", k=10)
    uplift = moods_recommender.recommend(one_hot(emotion), "uplift", k=10)
    match_valence, match_energy = mean_features(match, "valence", "energy")
    uplift_valence, uplift_energy = mean_features(uplift, "valence", "energy")
    assert uplift_valence > match_valence + 0.1
    if emotion not in ("angry", "disgust"):  # their match is already high-energy
        assert uplift_energy > match_energy + 0.1
    assert sum(rec.mood in ("Happy", "Energetic") for rec in uplift) >= 6


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_calm_lowers_energy_and_raises_acousticness(
    moods_recommender: Recommender, emotion: str
) -> None:
    match = moods_recommender.recommend(one_hot(emotion), "match", k=10)
    calm = moods_recommender.recommend(one_hot(emotion), "calm", k=10)
    match_energy, match_acoustic = mean_features(match, "energy", "acousticness")
    calm_energy, calm_acoustic = mean_features(calm, "energy", "acousticness")
    assert calm_energy < 0.3 and calm_acoustic > 0.7
    if emotion != "fear":  # fear's match is already quiet and acoustic
        assert calm_energy < match_energy and calm_acoustic > match_acoustic
    assert sum(rec.mood == "Calm" for rec in calm) >= 8


def test_match_mirrors_the_feeling(moods_recommender: Recommender) -> None:
    sad = moods_recommender.recommend(one_hot("sad"), "match", k=10)
    happy = moods_recommender.recommend(one_hot("happy"), "match", k=10)
    angry = moods_recommender.recommend(one_hot("angry"), "match", k=10)
    assert mean_features(sad, "valence")[0] < mean_features(happy, "valence")[0] - 0.3
    assert mean_features(angry, "energy")[0] > 0.8
    assert sum(rec.mood == "Sad" for rec in sad) >= 8
    assert sum(rec.mood == "Happy" for rec in happy) >= 8
    # The research's genre table: angry -> rock/metal.
    assert sum("rock" in (rec.genre or "") or "metal" in (rec.genre or "") for rec in angry) >= 6


def test_ambiguous_face_blends_between_emotions(moods_recommender: Recommender) -> None:
    def valence(probs: dict[str, float]) -> float:
        return mean_features(moods_recommender.recommend(probs, "match", k=10), "valence")[0]

    sad, happy = valence({"sad": 1.0}), valence({"happy": 1.0})
    mixed = valence({"sad": 0.5, "happy": 0.45, "neutral": 0.05})
    assert sad < mixed < happy
    confident = moods_recommender.recommend({"sad": 0.7, "happy": 0.3}, "match", k=5)
    assert [r.key for r in confident] == [
        r.key for r in moods_recommender.recommend(one_hot("sad"), "match", k=5)
    ]
    blended = moods_recommender.recommend({"sad": 0.5, "happy": 0.45, "neutral": 0.05}, k=1)
    assert "mixed sad/happy face" in blended[0].reason


def test_target_moves_with_strategy(moods_recommender: Recommender) -> None:
    sad = emotion_weights(one_hot("sad"))
    match = blended_target(sad, "match")
    uplift = blended_target(sad, "uplift")
    calm = blended_target(sad, "calm")
    assert uplift["valence"] > match["valence"] and uplift["energy"] > match["energy"]
    assert calm["energy"] < match["energy"] and calm["acousticness"] > match["acousticness"]
    with pytest.raises(ValueError, match="Unknown strategy"):
        moods_recommender.recommend(one_hot("sad"), "party")


def test_no_artist_twice_and_reasons_quote_the_features(moods_recommender: Recommender) -> None:
    for strategy in ("match", "uplift", "calm"):
        recs = moods_recommender.recommend({"neutral": 0.5, "sad": 0.5}, strategy, k=10)
        assert len(recs) == 10
        assert len({rec.artist.lower() for rec in recs}) == 10
        for rec in recs:
            assert rec.reason.count("\n") == 0 and len(rec.reason) < 200
            # The reason quotes the track's own valence/energy/acousticness values.
            quoted = [f for f in ("valence", "energy", "acousticness") if f in rec.reason]
            assert quoted
            assert all(f"{f} {rec.features[f]:.2f}" in rec.reason for f in quoted)
        scores = [rec.score for rec in recs]
        assert scores == sorted(scores, reverse=True)


def test_popularity_breaks_ties(moods_recommender: Recommender) -> None:
    catalog = moods_recommender.catalog
    twin = catalog.iloc[[0]].assign(track_id="twin", artist="Someone Else", popularity=100.0)
    first = catalog.iloc[[0]].assign(popularity=0.0)
    twins = pd.concat([first, twin], ignore_index=True)
    twins.attrs = dict(catalog.attrs)
    recs = Recommender(twins).recommend(one_hot("happy"), k=2)
    assert [rec.track_id for rec in recs] == ["twin", catalog.loc[0, "track_id"]]


def test_exclusions_widen_the_search(moods_recommender: Recommender) -> None:
    first = moods_recommender.recommend(one_hot("sad"), "match", k=5, exclude=())
    seen = [rec.key for rec in first]
    for _ in range(30):  # page through 150 tracks, more than the neighbour pool
        recs = moods_recommender.recommend(one_hot("sad"), "match", k=5, exclude=seen)
        assert len(recs) == 5 and not set(seen) & {rec.key for rec in recs}
        seen += [rec.key for rec in recs]


def test_seed_shuffles_near_ties_only(mood_catalog: pd.DataFrame) -> None:
    recommender = Recommender(mood_catalog)
    shuffled = {
        tuple(r.key for r in recommender.recommend(one_hot("sad"), k=3, seed=s)) for s in range(6)
    }
    assert len(shuffled) > 1
    moods = {r.mood for s in range(6) for r in recommender.recommend(one_hot("sad"), k=3, seed=s)}
    assert moods == {"Sad"}


# --------------------------------------------------------------------------- mood-only catalogs


def test_starter_catalog_strategies_follow_moods_and_genres() -> None:
    from core.paths import STARTER_CATALOG

    if not STARTER_CATALOG.exists():
        pytest.skip("data/starter_catalog.csv has not been written yet")
    recommender = Recommender(load_catalog(STARTER_CATALOG))
    assert not recommender.uses_features
    sad = recommender.recommend(one_hot("sad"), "match", k=5)
    assert {rec.mood for rec in sad} == {"Sad"}
    assert {rec.mood for rec in recommender.recommend(one_hot("sad"), "uplift", k=5)} <= {
        "Happy",
        "Energetic",
    }
    calm = recommender.recommend(one_hot("angry"), "calm", k=5)
    assert {rec.mood for rec in calm} == {"Calm"}
    fear = recommender.recommend(one_hot("fear"), "match", k=5)
    fear_genres = ("ambient", "instrumental", "chill")
    assert any(any(g in (rec.genre or "") for g in fear_genres) for rec in fear)
    assert all(rec.features == {} and rec.reason for rec in sad)


def test_genre_affinity_ranks_fitting_genres_first() -> None:
    csv = "title,artist,genre,mood\n" + "".join(
        f"S{i},A{i},{genre},Sad\n" for i, genre in enumerate(["folk", "pop", "blues", "rock"])
    )
    recs = Recommender(load_catalog(io.StringIO(csv))).recommend(one_hot("sad"), k=4)
    assert recs[0].genre == "blues" and "blues suits it" in recs[0].reason


# --------------------------------------------------------------------------- clusters


def test_clusters_are_named_by_mood_mix(moods_recommender: Recommender) -> None:
    clustering = moods_recommender.clusters()
    assert 3 <= clustering.k <= 8 and len(set(clustering.names)) == clustering.k
    assert sum(clustering.sizes) == len(moods_recommender.catalog)
    assert not clustering.moods_estimated
    mix = clustering.mood_mix
    assert mix.sum(axis=1).round(6).eq(1.0).all()
    for name, shares in mix.iterrows():
        assert str(name).startswith(shares.idxmax())  # the dominant mood leads the name
    calm_share = mix["Calm"].max()
    assert calm_share > 0.7  # the ambient/classical tracks form their own cluster


def test_more_like_this_stays_in_the_cluster(moods_recommender: Recommender) -> None:
    seed = moods_recommender.recommend(one_hot("fear"), "calm", k=1)[0]
    cluster = moods_recommender.cluster_of(seed)
    similar = moods_recommender.more_like_this(seed, k=5)
    assert len(similar) == 5
    assert seed.key not in {rec.key for rec in similar}
    assert seed.artist not in {rec.artist for rec in similar}
    assert len({rec.artist for rec in similar}) == 5
    assert all(moods_recommender.cluster_of(rec) == cluster for rec in similar)
    assert all(cluster in rec.reason for rec in similar)
    with pytest.raises(KeyError):
        moods_recommender.more_like_this("no-such-track")


def test_more_like_this_for_outside_tracks(moods_recommender: Recommender) -> None:
    spotify_pick = Recommendation(
        "Elsewhere", "Nobody", None, None, "ambient", "Calm", None, "zzz", "spotify", 1.0
    )
    similar = moods_recommender.more_like_this(spotify_pick, k=3)
    assert [rec.mood for rec in similar] == ["Calm"] * 3
    with_features = Recommendation(
        "Loud", "Nobody", None, None, None, None, None, None, "x", 1.0,
        features=dict(moods_recommender.recommend(one_hot("angry"), k=1)[0].features),
    )  # fmt: skip
    loud = moods_recommender.more_like_this(with_features, k=3)
    assert mean_features(loud, "energy")[0] > 0.7


def test_a_disliked_track_never_comes_back_even_when_it_fits_best() -> None:
    from core.music.feedback import Preference

    rows = [f"H{i},HA{i},pop,Happy,{90 - i}" for i in range(3)]
    rows += [f"S{i},SA{i},pop,Sad,{80 - i}" for i in range(17)]
    catalog = load_catalog(io.StringIO("title,artist,genre,mood,popularity\n" + "\n".join(rows)))
    recommender = Recommender(catalog)
    first = recommender.recommend(one_hot("happy"), k=5)
    assert [rec.title for rec in first[:3]] == ["H0", "H1", "H2"]  # the only happy songs
    dislike = Preference(tracks={first[0].key: -1})
    assert dislike.disliked == {first[0].key}
    again = recommender.recommend(one_hot("happy"), k=5, feedback=dislike)
    assert len(again) == 5 and "H0" not in {rec.title for rec in again}
    similar = recommender.more_like_this(first[1], k=5, feedback=dislike)
    assert "H0" not in {rec.title for rec in similar}


def test_thumbs_on_a_catalogs_own_ids_stay_with_their_songs_in_another_catalog() -> None:
    """Two catalogs numbering their rows 1, 2, ...: a thumb on song 1 of one is not a thumb on
    song 1 of the other (it was: the id was the song's identity), and no link is made up."""
    from core.music.feedback import FeedbackStore

    def catalog(*titles: str) -> pd.DataFrame:
        rows = [
            f"{i + 1},{title},{title} Band,pop,Happy,{90 - i}" for i, title in enumerate(titles)
        ]
        header = "id,title,artist,genre,mood,popularity\n"
        return load_catalog(io.StringIO(header + "\n".join(rows)))

    store = FeedbackStore()
    first = Recommender(catalog("Alpha", "Beta", "Gamma")).recommend(one_hot("happy"), k=2)
    assert [rec.title for rec in first] == ["Alpha", "Beta"]
    store.record_vote("ana", first[0], -1)
    store.record_vote("ana", first[1], 1)
    other = Recommender(catalog("Delta", "Epsilon", "Zeta"))
    again = other.recommend(one_hot("happy"), k=3, feedback=store.preference("ana"))
    assert [rec.title for rec in again] == ["Delta", "Epsilon", "Zeta"]  # 1 not disliked here
    assert "you liked" not in " ".join(rec.reason or "" for rec in again).lower()
    same = Recommender(catalog("Alpha", "Beta", "Gamma"))
    back = same.recommend(one_hot("happy"), k=2, feedback=store.preference("ana"))
    assert "Alpha" not in [rec.title for rec in back]  # the disliked song itself stays out
    assert store.export_liked_csv("ana").splitlines()[1].split(",")[-2] == ""  # no made-up link


def credit_catalog() -> pd.DataFrame:
    """Happy pop tracks by artists whose names have commas, and by real two-artist credits."""
    import csv

    rows = [
        ("Earth 1", "Earth", 90),
        ("EWF 1", "Earth, Wind & Fire", 89),
        ("Tyler 1", "Tyler", 88),
        ("Tyler C 1", "Tyler, The Creator", 87),
        ("Ronson 1", "Mark Ronson", 86),
        ("Ronson 2", "Mark Ronson feat. Bruno Mars", 85),
        ("Harris 1", "Calvin Harris", 84),
        ("Harris 2", "Calvin Harris, Dua Lipa", 83),
        ("Punk 1", "Daft Punk", 82),
        ("Punk 2", "Daft Punk;Pharrell Williams", 81),
        ("Collab", "Zedd, Alessia Cara", 80),
    ] + [(f"Filler {i}", f"Filler artist {i}", 50 - i) for i in range(6)]
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["title", "artist", "genre", "mood", "popularity"])
    writer.writerows((title, artist, "pop", "Happy", pop) for title, artist, pop in rows)
    return load_catalog(io.StringIO(text.getvalue()), name="credits.csv")


def test_diversity_keeps_comma_band_names_apart_and_credits_together() -> None:
    recs = Recommender(credit_catalog()).recommend(one_hot("happy"), k=12)
    titles = {rec.title for rec in recs}
    # "Earth, Wind & Fire" is not Earth, "Tyler, The Creator" is not Tyler: both of each show.
    assert {"Earth 1", "EWF 1", "Tyler 1", "Tyler C 1"} <= titles
    # A feature, a comma or a ";" credit is its first artist's track: one of each artist.
    assert {"Ronson 1", "Harris 1", "Punk 1", "Collab"} <= titles
    assert not {"Ronson 2", "Harris 2", "Punk 2"} & titles


def test_more_like_this_bans_the_whole_comma_name_not_its_first_word() -> None:
    recommender = Recommender(credit_catalog())
    from_spotify = Recommendation(
        "Boogie Wonderland", "Earth, Wind & Fire; The Emotions", None, None, "pop", "Happy",
        None, "b" * 22, "spotify", 1.0,
    )  # fmt: skip
    titles = {rec.title for rec in recommender.more_like_this(from_spotify, k=8)}
    assert "EWF 1" not in titles and "Earth 1" in titles


def test_artist_feedback_reaches_tracks_credited_to_several_artists() -> None:
    from core.music.feedback import Preference

    recommender = Recommender(credit_catalog())
    plain = [rec.artist for rec in recommender.recommend(one_hot("happy"), k=14)]
    assert plain.index("Zedd, Alessia Cara") < plain.index("Filler artist 0")
    disliked = Preference(artists={"alessia cara": -3})
    after = [rec.artist for rec in recommender.recommend(one_hot("happy"), k=14,
                                                         feedback=disliked)]  # fmt: skip
    assert after.index("Zedd, Alessia Cara") > after.index("Filler artist 0")
    liked = Preference(artists={"zedd": 1})
    collab = next(
        rec
        for rec in recommender.recommend(one_hot("happy"), k=12, feedback=liked)
        if rec.title == "Collab"
    )
    assert "you liked Zedd" in collab.reason


def test_more_like_this_in_a_catalog_too_small_to_cluster(data_moods: pd.DataFrame) -> None:
    from core.music.catalog import CatalogError

    tiny = Recommender(data_moods.drop_duplicates("artist").head(3).reset_index(drop=True))
    with pytest.raises(CatalogError, match="too few tracks"):
        tiny.clusters()
    seed = tiny.recommend(one_hot("happy"), k=1)[0]
    similar = tiny.more_like_this(seed, k=5)
    assert [rec.key for rec in similar] != [] and seed.key not in {r.key for r in similar}
    assert all(rec.reason == f"Like '{seed.title}': closest sound" for rec in similar)


def test_more_like_this_for_a_spotify_track_skips_its_artist_in_the_catalog(
    moods_recommender: Recommender, data_moods: pd.DataFrame
) -> None:
    artist = data_moods["artist"].value_counts().index[0]  # an artist with several tracks
    own = data_moods[data_moods["artist"] == artist].iloc[0]
    features = {f: float(own[f]) for f in moods_recommender.features}
    from_spotify = Recommendation(
        "Elsewhere", f"{artist}, Guest", None, None, None, None, None, "zzz", "spotify", 1.0,
        features=features,
    )  # fmt: skip
    similar = moods_recommender.more_like_this(from_spotify, k=5)
    assert len(similar) == 5
    assert all(not rec.artist.lower().startswith(artist.lower()) for rec in similar)


def test_unlabelled_catalog_gets_estimated_cluster_moods() -> None:
    from core.music.catalog import spotify_features_path

    if not spotify_features_path().exists():
        pytest.skip("shared spotify_features_19k.csv.gz is absent (../shared/data/music)")
    catalog = load_catalog(spotify_features_path()).head(3000)
    recommender = Recommender(catalog)
    clustering = recommender.clusters()
    assert clustering.moods_estimated and all(n.startswith("~") for n in clustering.names)
    recs = recommender.recommend(one_hot("sad"), "uplift", k=5)
    assert all(rec.mood is None for rec in recs)
    assert len(recommender.more_like_this(recs[0], k=3)) == 3


def test_neighbour_search_is_exact(data_moods: pd.DataFrame) -> None:
    import numpy as np

    recommender = Recommender(data_moods)
    point = recommender._space[10] * 0.9
    distances, rows = recommender._nearest(point, 25)
    brute = np.linalg.norm(recommender._space - point, axis=1)
    assert np.allclose(distances, np.sort(brute)[:25])
    assert set(rows.tolist()) == set(np.argsort(brute, kind="stable")[:25].tolist())


def test_big_catalogs_cluster_on_a_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.music import clusters
    from core.music.catalog import spotify_features_path

    if not spotify_features_path().exists():
        pytest.skip("shared spotify_features_19k.csv.gz is absent (../shared/data/music)")
    catalog = load_catalog(spotify_features_path())
    whole = Recommender(catalog).clusters()
    monkeypatch.setattr(clusters, "FIT_SAMPLE", 6_000)
    sampled = Recommender(catalog).clusters()
    assert whole.fitted_on == 0 and sampled.fitted_on == 6_000
    assert len(sampled.labels) == len(catalog) and sum(sampled.sizes) == len(catalog)
    assert sampled.k == whole.k

    def inertia(clustering) -> float:  # over every track, each with its cluster's centre
        space = Recommender(catalog)._space
        return sum(
            float(
                ((space[clustering.labels == c] - space[clustering.labels == c].mean(0)) ** 2).sum()
            )
            for c in range(clustering.k)
        )

    # Fitted on a third of the tracks, the clusters fit all of them as tightly.
    assert inertia(sampled) <= 1.02 * inertia(whole)


# --------------------------------------------------------------------------- CLI and palette


@pytest.mark.parametrize("which", ["starter", "data_moods", "spotify_features"])
def test_cli_json(which: str, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from core.music.catalog import spotify_features_path
    from core.music.recommend import main
    from core.paths import STARTER_CATALOG

    path = {
        "starter": STARTER_CATALOG,
        "data_moods": data_moods_path(),
        "spotify_features": spotify_features_path(),
    }[which]
    if not path.exists():
        pytest.skip(f"{path} is absent")
    args = ["--emotion", "sad", "--strategy", "uplift", "--catalog", str(path), "-k", "5"]
    assert main([*args, "--json", "--more-like", "1"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["format"] == which and payload["strategy"] == "uplift"
    recs = payload["recommendations"]
    assert len(recs) == 5 and all(rec["reason"].startswith("Lifts a sad face") for rec in recs)
    assert bool(recs[0]["features"]) == (which != "starter")
    assert len(payload["more_like"]) == 5
    assert main(args) == 0 and "1. " in capsys.readouterr().out


def test_cli_reports_bad_catalog(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.music.recommend import main

    bad = tmp_path / "bad.csv"
    bad.write_text("title,mood\nx,Happy\n")
    assert main(["--emotion", "sad", "--catalog", str(bad)]) == 2
    assert "missing required column(s): artist" in capsys.readouterr().err


def test_palette_covers_every_label_with_distinct_colours() -> None:
    import re

    from core.labels import MOODS
    from core.palette import EMOTION_COLORS, MOOD_COLORS, color_of, color_sequence

    for colours, labels in ((EMOTION_COLORS, EMOTIONS), (MOOD_COLORS, MOODS)):
        assert set(colours) == set(labels)
        assert len(set(colours.values())) == len(labels)
        assert all(re.fullmatch(r"#[0-9A-F]{6}", c) for c in colours.values())
    assert MOOD_COLORS["Sad"] == EMOTION_COLORS["sad"]
    assert color_of("HAPPY") == EMOTION_COLORS["happy"] and color_of("Calm") == MOOD_COLORS["Calm"]
    assert color_sequence(["sad", "unknown"])[1] == "#BBBBBB"
