"""core.music.spotify_client and spotify_ranking against a local fake of the Spotify Web API
(spotipy's real HTTP client); credentials come from core.settings.Settings."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pytest

from core.music.catalog import load_catalog
from core.music.feedback import Preference
from core.music.recommender import Recommender
from core.music.spotify_client import SpotifyClient, SpotifyUnavailable
from core.music.spotify_ranking import (
    PLAYLIST_QUERIES,
    SPOTIFY_GENRE_NAMES,
    SpotifyRecommender,
    recommend_with_fallback,
)
from core.music.targets import GENRE_AFFINITY, genre_keywords
from core.settings import Settings
from tests.support.fake_spotify import CLIENT_ID, CLIENT_SECRET, GENRES, FakeSpotify, fake_id

RANKING_OPTIONS = ("genres_per_query", "pages_per_genre", "use_playlists")


@pytest.fixture()
def sleeps() -> list[float]:
    return []


def client(fake: FakeSpotify, sleeps: list[float] | None = None, **kwargs: Any):
    """A SpotifyRecommender on the fake; ranking options go to it, the rest to its client."""
    recorded = sleeps if sleeps is not None else []
    ranking = {name: kwargs.pop(name) for name in RANKING_OPTIONS if name in kwargs}
    http = SpotifyClient(
        kwargs.pop("client_id", CLIENT_ID),
        kwargs.pop("client_secret", CLIENT_SECRET),
        api_base=fake.api_base,
        token_url=fake.token_url,
        sleep=recorded.append,
        **kwargs,
    )
    return SpotifyRecommender(http, **ranking)


def spotify_genres(emotion: str, strategy: str) -> set[str]:
    names = (SPOTIFY_GENRE_NAMES.get(k, k) for k in genre_keywords(emotion, strategy))
    return {name for name in names if name}


@pytest.fixture(scope="module")
def local() -> Recommender:
    csv = "title,artist,genre,mood\n" + "".join(
        f"{m} {i},{m} artist {i},pop,{m}\n" for m in ("Happy", "Sad", "Energetic", "Calm")
        for i in range(5)
    )  # fmt: skip
    return Recommender(load_catalog(io.StringIO(csv), name="local.csv"))


# --------------------------------------------------------------------------- credentials


class SecretsWithoutFile:
    """Like st.secrets when there is no secrets.toml: any access raises."""

    def __contains__(self, key: object) -> bool:
        raise FileNotFoundError("No secrets found")

    def __getitem__(self, key: str) -> Any:
        raise FileNotFoundError("No secrets found")


def credentials(secrets: Any = None, **environ: str) -> tuple[str, str] | None:
    return Settings.from_env(secrets, environ=environ).spotify_credentials


def test_credentials_come_from_secrets_then_env() -> None:
    assert credentials() is None
    assert credentials(SecretsWithoutFile()) is None
    section = {"spotify": {"client_id": "a", "client_secret": "b"}}
    assert credentials(section) == ("a", "b")
    assert credentials({"SPOTIFY_CLIENT_ID": "c", "SPOTIFY_CLIENT_SECRET": "d"}) == ("c", "d")
    env = {"SPOTIFY_CLIENT_ID": "e"}
    assert credentials(None, **env) is None  # a secret is needed too
    env["SPOTIFY_CLIENT_SECRET"] = "f"
    assert credentials({"spotify": {"client_id": " "}}, **env) == ("e", "f")
    assert credentials(section, **env) == ("a", "b")  # st.secrets wins over env
    spotipy_names = {"SPOTIPY_CLIENT_ID": "g", "SPOTIPY_CLIENT_SECRET": "h"}
    assert credentials(None, **spotipy_names) == ("g", "h")


def test_settings_point_the_client_at_the_fake(fake: FakeSpotify) -> None:
    settings = Settings(
        spotify_client_id=CLIENT_ID,
        spotify_client_secret=CLIENT_SECRET,
        spotify_api_base=fake.api_base,
        spotify_token_url=fake.token_url,
    )
    recs = SpotifyRecommender.from_settings(settings).recommend({"happy": 1.0}, k=2)
    assert len(recs) == 2 and fake.token_requests == 1
    assert CLIENT_SECRET not in repr(settings)


def test_no_credentials_falls_back_to_local_with_a_note(local: Recommender) -> None:
    with pytest.raises(SpotifyUnavailable, match="not set up"):
        SpotifyRecommender.from_settings(Settings())
    recs, note = recommend_with_fallback(local, {"sad": 1.0}, "match", 3, spotify=None)
    assert note is not None and "not set up" in note and "local catalog" in note
    assert len(recs) == 3 and all(rec.source == "catalog" for rec in recs)


# --------------------------------------------------------------------------- success


@pytest.mark.parametrize("strategy", ["match", "uplift", "calm"])
def test_recommend_searches_the_strategys_genres(fake: FakeSpotify, strategy: str) -> None:
    recs = client(fake).recommend({"sad": 1.0}, strategy, k=5)
    assert len(recs) == 5
    assert len({rec.artist for rec in recs}) == 5
    allowed = spotify_genres("sad", strategy)
    searched = {
        call.query["q"].split('"')[1]
        for call in fake.calls("/v1/search")
        if "genre:" in call.query["q"]
    }
    assert searched and searched <= allowed
    for rec in recs:
        assert rec.source == "spotify" and rec.track_id
        assert rec.genre is None or rec.genre in allowed
        assert rec.image_url and rec.image_url.endswith("-300")  # the card-sized album art
        assert rec.url == f"https://open.spotify.com/track/{rec.track_id}"
        assert rec.embed == f"https://open.spotify.com/embed/track/{rec.track_id}"
        assert rec.reason.startswith(
            {"match": "Matches", "uplift": "Lifts", "calm": "Calms"}[strategy]
        )


def test_uplift_and_match_search_different_genres(fake: FakeSpotify) -> None:
    sp = client(fake, use_playlists=False)
    match = {rec.genre for rec in sp.recommend({"sad": 1.0}, "match", k=5)}
    uplift = {rec.genre for rec in sp.recommend({"sad": 1.0}, "uplift", k=5)}
    assert match <= set(GENRE_AFFINITY["sad"]) | {"soft rock"}
    assert uplift <= {"pop", "dance", "happy"}
    assert not match & uplift


def test_search_pages_by_ten_and_reuses_the_token(fake: FakeSpotify) -> None:
    sp = client(fake, pages_per_genre=2)
    sp.recommend({"happy": 1.0}, "match", k=5)
    sp.recommend({"angry": 1.0}, "match", k=5)
    searches = fake.calls("/v1/search")
    assert max(int(call.query["limit"]) for call in searches) <= 10
    assert {call.query.get("offset") for call in searches} >= {"0", "10"}
    assert fake.token_requests == 1


def test_results_are_cached_between_identical_queries(fake: FakeSpotify) -> None:
    sp = client(fake)
    first = sp.recommend({"fear": 1.0}, "calm", k=4)
    count = len(fake.calls("/v1/"))
    again = sp.recommend({"fear": 1.0}, "calm", k=4)
    assert [rec.key for rec in again] == [rec.key for rec in first]
    assert len(fake.calls("/v1/")) == count


def test_feedback_and_exclude_remove_tracks(fake: FakeSpotify) -> None:
    sp = client(fake)
    first = sp.recommend({"happy": 1.0}, "match", k=5)
    disliked = Preference(tracks={first[0].key: -1})
    assert first[0].key not in {r.key for r in sp.recommend({"happy": 1.0}, "match", 5,
                                                             feedback=disliked)}  # fmt: skip
    assert first[1].key not in {r.key for r in sp.recommend({"happy": 1.0}, "match", 5,
                                                             exclude=[first[1].key])}  # fmt: skip


def stub_track(track_id: str, *artists: str | None, popularity: int = 50) -> dict[str, Any]:
    return {
        "id": track_id,
        "name": f"Song {track_id}",
        "artists": [{"name": a} if a is not None else None for a in artists],
        "popularity": popularity,
    }


def serve_only(fake: FakeSpotify, tracks: Sequence[dict[str, Any]]) -> None:
    """Make the fake answer every genre's search and playlist with `tracks`, in this order."""
    fake.tracks = [{**track, "_genre": genre} for genre in GENRES for track in tracks]
    fake.by_id = {track["id"]: track for track in fake.tracks if track.get("id")}


def test_malformed_spotify_items_are_skipped_and_the_rest_ranked(
    fake: FakeSpotify, caplog: pytest.LogCaptureFixture
) -> None:
    serve_only(fake, [
        {"_null": True},
        {"name": "No id", "artists": [{"name": "X"}]},
        {"id": "noname", "artists": [{"name": "X"}]},
        {"id": "nullartists", "name": "Null artists", "artists": None},
        stub_track("nullartist", None),
        {"id": "nameless", "name": "Nameless artist", "artists": [{"name": None}]},
        stub_track("good1", "Good A"),
        stub_track("good2", None, "Good B"),
    ])  # fmt: skip
    query = PLAYLIST_QUERIES["match"]["happy"]
    listed = {"id": fake_id("listed"), "name": query, "genre": GENRES[0], "type": "playlist"}
    fake.playlists = [{"name": query, "genre": GENRES[0], "type": "playlist"}, listed]
    with caplog.at_level("DEBUG", logger="core.music.spotify_ranking"):
        recs = client(fake).recommend({"happy": 1.0}, "match", k=10)
    assert {rec.track_id: rec.artist for rec in recs} == {"good1": "Good A", "good2": "Good B"}
    assert fake.calls(f"/v1/playlists/{listed['id']}/")  # the first playlist with an id
    assert "Skipped Spotify track nullartists" in caplog.text
    assert "playlist result without an id" in caplog.text


def test_spotify_feedback_matches_each_artist_and_comma_names_stay_whole(
    fake: FakeSpotify,
) -> None:
    serve_only(fake, [stub_track("t0", "Tyler, The Creator", "Kali Uchis")]
               + [stub_track(f"t{i}", f"Solo {i}") for i in range(1, 10)])  # fmt: skip
    sp = client(fake, genres_per_query=1, use_playlists=False)
    first = sp.recommend({"happy": 1.0}, "match", k=3)
    assert [rec.track_id for rec in first][:2] == ["t0", "t1"]
    assert first[0].artist == "Tyler, The Creator; Kali Uchis"
    # A vote on the joined credit counts for each artist, and for no "Tyler" or "The Creator".
    assert Preference(artists={first[0].artist.lower(): 1}).artists == {
        "tyler, the creator": 1,
        "kali uchis": 1,
    }
    disliked = Preference(artists={"kali uchis": -2})  # -0.08: below t1, above t2
    ranked = sp.recommend({"happy": 1.0}, "match", k=3, feedback=disliked)
    assert [rec.track_id for rec in ranked][:2] == ["t1", "t0"]
    liked = sp.recommend({"happy": 1.0}, "match", k=1, feedback=Preference({}, {"kali uchis": 1}))
    assert liked[0].track_id == "t0" and "you liked Kali Uchis" in liked[0].reason


def test_no_tracks_asked_for_none_fetched(fake: FakeSpotify) -> None:
    assert client(fake).recommend({"happy": 1.0}, "match", k=0) == []
    assert not fake.calls("/v1/search")


def test_track_lookup(fake: FakeSpotify) -> None:
    track_id = fake.tracks[3]["id"]
    rec = client(fake).track(track_id)
    assert rec.track_id == track_id and rec.title == fake.tracks[3]["name"]
    assert rec.year == 2003 and rec.album


# --------------------------------------------------------------------------- errors


def test_wrong_credentials_are_reported(fake: FakeSpotify) -> None:
    sp = client(fake, client_secret="wrong")
    with pytest.raises(SpotifyUnavailable, match="did not accept this app's credentials") as err:
        sp.recommend({"sad": 1.0})
    assert err.value.status == 401
    assert "invalid_client" in str(err.value)


def test_expired_token_is_renewed_once(fake: FakeSpotify) -> None:
    sp = client(fake)
    sp.recommend({"sad": 1.0}, k=2)
    fake.revoke_tokens()
    assert len(sp.recommend({"happy": 1.0}, k=2)) == 2
    assert fake.token_requests == 2


def test_persistent_401_is_a_clear_error(fake: FakeSpotify) -> None:
    fake.fail("/v1/search", 401)
    with pytest.raises(SpotifyUnavailable, match=r"rejected this app's access token \(401\)"):
        client(fake).recommend({"sad": 1.0})


def test_closed_endpoints_are_reported_not_crashed(fake: FakeSpotify) -> None:
    report = client(fake).probe()
    assert report["token"] == report["search"] == report["track"] == "available"
    assert report["recommendations"] == "not available (403)"
    assert report["audio-features"] == "not available (403)"


def test_closed_playlist_items_still_recommend_from_search(fake: FakeSpotify) -> None:
    fake.fail("/v1/playlists", 404)
    recs = client(fake).recommend({"neutral": 1.0}, "match", k=5)
    assert len(recs) == 5 and all(rec.genre for rec in recs)
    assert fake.calls("/v1/playlists")  # it tried, got 404, moved on


def playlist_searches(fake: FakeSpotify) -> list[Any]:
    return [call for call in fake.calls("/v1/search") if call.query.get("type") == "playlist"]


def test_forbidden_playlist_items_are_not_asked_again(fake: FakeSpotify) -> None:
    # Since February 2026 a client-credentials app gets 403 on other people's playlist items.
    fake.fail("/v1/playlists", 403, body={"error": {"status": 403, "message": "Forbidden"}})
    sp = client(fake)
    assert len(sp.recommend({"happy": 1.0}, "match", k=5)) == 5
    assert len(fake.calls("/v1/playlists")) == 1 and len(playlist_searches(fake)) == 1
    for emotion in ("sad", "angry"):  # other mood playlists: nothing cached would save a call
        recs = sp.recommend({emotion: 1.0}, "match", k=5)
        assert len(recs) == 5 and all(rec.genre for rec in recs)
    assert len(fake.calls("/v1/playlists")) == 1 and len(playlist_searches(fake)) == 1
    assert sp.playlists_closed


def test_a_missing_playlist_does_not_close_the_playlist_step(fake: FakeSpotify) -> None:
    fake.fail("/v1/playlists", 404, times=1)  # one playlist gone, not the endpoint closed
    sp = client(fake)
    sp.recommend({"happy": 1.0}, "match", k=5)
    assert not sp.playlists_closed
    assert len(sp.recommend({"sad": 1.0}, "match", k=5)) == 5
    assert len(fake.calls("/v1/playlists")) == 2  # the next recommendation still tries one


def test_forbidden_search_is_an_error(fake: FakeSpotify) -> None:
    fake.fail("/v1/search", 403)
    with pytest.raises(SpotifyUnavailable, match=r"does not let this app use search \(403\)"):
        client(fake).recommend({"sad": 1.0})


def test_429_short_retry_after_is_honoured(fake: FakeSpotify, sleeps: list[float]) -> None:
    fake.fail("/v1/search", 429, times=1, headers={"Retry-After": "2"})
    recs = client(fake, sleeps, max_retry_after=3.0).recommend({"sad": 1.0}, k=3)
    assert len(recs) == 3
    assert sleeps == [2.0]


def test_429_long_retry_after_fails_fast(fake: FakeSpotify, sleeps: list[float]) -> None:
    fake.fail("/v1/search", 429, headers={"Retry-After": "120"})
    with pytest.raises(SpotifyUnavailable, match=r"rate-limiting.*about 2 minutes") as err:
        client(fake, sleeps, max_retry_after=3.0).recommend({"sad": 1.0})
    assert err.value.retry_after == 120 and err.value.status == 429
    assert sleeps == []
    assert len(fake.calls("/v1/search")) == 1  # no hammering while rate-limited


def test_a_long_rate_limit_is_waited_out_without_calling_spotify(
    fake: FakeSpotify, sleeps: list[float]
) -> None:
    now = [1000.0]
    sp = client(fake, sleeps, max_retry_after=3.0, clock=lambda: now[0])
    failure = fake.fail("/v1/search", 429, headers={"Retry-After": "120"})
    with pytest.raises(SpotifyUnavailable):
        sp.recommend({"sad": 1.0})
    fake.failures.remove(failure)  # Spotify would answer again, but only after 120 s
    calls = len(fake.calls("/v1/"))
    now[0] += 90
    with pytest.raises(SpotifyUnavailable, match="rate-limiting") as err:
        sp.recommend({"happy": 1.0})  # every session shares the client: nobody asks
    assert err.value.status == 429 and err.value.retry_after == pytest.approx(30)
    assert len(fake.calls("/v1/")) == calls and sleeps == []
    now[0] += 31
    assert len(sp.recommend({"happy": 1.0}, k=3)) == 3


def test_429_without_retry_after_is_not_retried_and_cools_down(
    fake: FakeSpotify, sleeps: list[float]
) -> None:
    # Development Mode's quota 429 may come without Retry-After: a retry only spends more.
    now = [1000.0]
    sp = client(fake, sleeps, max_retry_after=3.0, clock=lambda: now[0])
    failure = fake.fail("/v1/search", 429)
    with pytest.raises(SpotifyUnavailable, match=r"rate-limiting.*try again in 60 s") as err:
        sp.recommend({"sad": 1.0})
    assert err.value.status == 429 and err.value.retry_after == 60
    assert sleeps == [] and len(fake.calls("/v1/search")) == 1
    fake.failures.remove(failure)
    calls = len(fake.calls("/v1/"))
    now[0] += 45
    with pytest.raises(SpotifyUnavailable, match=r"try again in 15 s") as err:
        sp.recommend({"happy": 1.0})  # later page loads wait without asking Spotify
    assert err.value.retry_after == pytest.approx(15)
    assert len(fake.calls("/v1/")) == calls and sleeps == []
    now[0] += 16
    assert len(sp.recommend({"happy": 1.0}, k=3)) == 3


def test_a_token_429_without_retry_after_cools_down(fake: FakeSpotify, sleeps: list[float]) -> None:
    now = [1000.0]
    sp = client(fake, sleeps, clock=lambda: now[0])
    fake.fail("/api/token", 429, times=1)
    with pytest.raises(SpotifyUnavailable, match=r"rate-limiting.*in 60 s") as err:
        sp.recommend({"sad": 1.0})
    assert err.value.retry_after == 60 and fake.token_requests == 1
    now[0] += 10
    with pytest.raises(SpotifyUnavailable, match="rate-limiting"):
        sp.recommend({"sad": 1.0})
    assert fake.token_requests == 1 and sleeps == []  # not asked again during the cooldown


def test_a_failing_token_endpoint_is_not_called_bad_credentials(fake: FakeSpotify) -> None:
    fake.fail("/api/token", 503)
    with pytest.raises(SpotifyUnavailable, match=r"server error \(503\) on the token") as err:
        client(fake, backoff_factor=0.0).recommend({"sad": 1.0})
    assert "credentials" not in str(err.value) and "<html" not in str(err.value)


def test_a_proxys_page_from_the_token_endpoint_is_neither_shown_nor_blamed_on_the_credentials(
    fake: FakeSpotify,
) -> None:
    for status in (401, 403):
        fake.fail("/api/token", status, body="<html><body><h1>Forbidden</h1></body></html>")
        with pytest.raises(SpotifyUnavailable) as err:
            client(fake, backoff_factor=0.0).recommend({"sad": 1.0})
        assert "<html" not in str(err.value) and "Forbidden</h1>" not in str(err.value)
        assert "did not accept this app's credentials" not in str(err.value)
        fake.failures.clear()


def test_500_is_retried_once_then_reported(fake: FakeSpotify) -> None:
    fake.fail("/v1/search", 500)
    with pytest.raises(SpotifyUnavailable, match=r"server error \(500\)"):
        client(fake, retries=1, backoff_factor=0.0).recommend({"sad": 1.0}, k=3)
    first_query = fake.calls("/v1/search")[0].query["q"]
    assert [c.query["q"] for c in fake.calls("/v1/search")].count(first_query) == 2


def test_transient_503_is_absorbed_by_the_retry(fake: FakeSpotify) -> None:
    fake.fail("/v1/search", 503, times=1)
    assert len(client(fake, backoff_factor=0.0).recommend({"sad": 1.0}, k=3)) == 3


def test_timeout_is_reported(fake: FakeSpotify) -> None:
    fake.fail("/v1/search", 200, delay=1.0)
    with pytest.raises(SpotifyUnavailable, match=r"did not answer search within 0\.2 s"):
        client(fake, timeout=0.2).recommend({"sad": 1.0})
    assert len(fake.calls("/v1/search")) == 1  # a read timeout is not retried


def test_server_down_is_reported() -> None:
    with FakeSpotify() as server:
        api_base, token_url = server.api_base, server.token_url
    http = SpotifyClient(CLIENT_ID, CLIENT_SECRET, api_base=api_base, token_url=token_url,
                         timeout=0.5, backoff_factor=0.0)  # fmt: skip
    sp = SpotifyRecommender(http)
    with pytest.raises(SpotifyUnavailable, match="Cannot reach Spotify"):
        sp.recommend({"sad": 1.0})


def test_fallback_uses_local_catalog_on_errors(fake: FakeSpotify, local: Recommender) -> None:
    fake.fail("/v1/search", 500)
    sp = client(fake, backoff_factor=0.0)
    recs, note = recommend_with_fallback(local, {"sad": 1.0}, "match", 3, spotify=sp)
    assert note and "server error (500)" in note and "local catalog" in note
    assert [rec.mood for rec in recs] == ["Sad"] * 3


def test_fallback_returns_spotify_results_without_note(
    fake: FakeSpotify, local: Recommender
) -> None:
    recs, note = recommend_with_fallback(local, {"sad": 1.0}, "calm", 3, spotify=client(fake))
    assert note is None and all(rec.source == "spotify" for rec in recs)
