"""core.music.songs: one service per process, one Spotify client (one token, one result cache),
the local catalog with a note when Spotify is not set up or fails, the mood history recorded.

Spotify is the local fake in tests.support.fake_spotify: real HTTP against 127.0.0.1 only.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from core.labels import EMOTIONS
from core.music.catalog import load_catalog
from core.music.feedback import FeedbackStore
from core.music.recommender import Recommender
from core.music.songs import Songs, SongsService
from core.settings import Settings
from tests.support.fake_spotify import CLIENT_ID, CLIENT_SECRET, FakeSpotify

LOCAL_CSV = "title,artist,genre,mood,popularity\n" + "".join(
    f"{mood} {i},{mood} artist {i},pop,{mood},{10 * i}\n"
    for mood in ("Happy", "Sad", "Energetic", "Calm")
    for i in range(5)
)


@pytest.fixture(scope="module")
def local() -> Recommender:
    return Recommender(load_catalog(io.StringIO(LOCAL_CSV), name="local.csv"))


@pytest.fixture()
def store(tmp_path: Path) -> FeedbackStore:
    return FeedbackStore(tmp_path / "feedback.sqlite3")


def settings_for(fake: FakeSpotify) -> Settings:
    """What Settings.from_env reads when SPOTIFY_* and MOODLENS_SPOTIFY_* point at the fake."""
    return Settings.from_env(
        {},
        environ={
            "SPOTIFY_CLIENT_ID": CLIENT_ID,
            "SPOTIFY_CLIENT_SECRET": CLIENT_SECRET,
            "MOODLENS_SPOTIFY_API_BASE": fake.api_base,
            "MOODLENS_SPOTIFY_TOKEN_URL": fake.token_url,
        },
    )


def test_two_recommendations_in_a_row_make_one_token_request(
    fake: FakeSpotify, local: Recommender, store: FeedbackStore
) -> None:
    service = SongsService(settings_for(fake), local, store)
    assert service.spotify_configured and fake.token_requests == 0  # built lazily
    first = service.recommend({"sad": 1.0}, "match", use_spotify=True, profile="ana")
    searches = len(fake.calls("/v1/search"))
    assert first.note is None and len(first.recommendations) == 5
    assert all(rec.source == "spotify" for rec in first.recommendations)
    assert fake.token_requests == 1 and searches > 0

    again = service.recommend({"sad": 1.0}, "match", use_spotify=True, profile="ana")
    assert fake.token_requests == 1  # the same client and token
    assert len(fake.calls("/v1/search")) == searches  # served from the result cache
    assert [r.key for r in again.recommendations] == [r.key for r in first.recommendations]

    other = service.recommend({"happy": 1.0}, "uplift", use_spotify=True, profile="ana")
    assert other.note is None and len(fake.calls("/v1/search")) > searches  # a new query...
    assert fake.token_requests == 1  # ...with the same token
    assert service.spotify is service.spotify


def test_songs_for_mood_records_the_mood_and_reuses_the_client(
    fake: FakeSpotify, local: Recommender, store: FeedbackStore
) -> None:
    service = SongsService(settings_for(fake), local, store)
    window = np.array([0.0, 0.0, 0.1, 0.0, 0.8, 0.0, 0.1])  # sad, in EMOTIONS order
    for strategy in ("match", "calm", "match"):
        songs = service.songs_for_mood("ana", window, strategy, use_spotify=True)
        assert isinstance(songs, Songs) and songs.note is None
    assert fake.token_requests == 1
    history = store.history("ana")
    assert history["emotion"].tolist() == ["sad"] * 3
    assert history["strategy"].tolist() == ["match", "calm", "match"]
    recorded = json.loads(history["probabilities"].iloc[0])
    assert recorded == {e: float(p) for e, p in zip(EMOTIONS, window, strict=True)}
    service.songs_for_mood("ana", window, emotion="neutral")  # the page's label wins
    assert store.history("ana")["emotion"].iloc[-1] == "neutral"


def test_without_credentials_the_local_catalog_answers_with_a_note(
    local: Recommender, store: FeedbackStore
) -> None:
    service = SongsService(Settings.from_env({}, environ={}), local, store)
    assert not service.spotify_configured and service.spotify is None
    songs, note = service.recommend({"sad": 1.0}, "match", use_spotify=True, k=3)
    assert note is not None and "not set up" in note and "local catalog" in note
    assert [rec.mood for rec in songs] == ["Sad"] * 3
    assert all(rec.source == "catalog" for rec in songs)
    assert service.recommend({"sad": 1.0}, "match", use_spotify=False, k=3).note is None


def test_a_spotify_error_falls_back_to_the_local_catalog_with_the_note(
    fake: FakeSpotify, local: Recommender, store: FeedbackStore
) -> None:
    fake.fail("/v1/search", 500)
    service = SongsService(
        settings_for(fake), local, store, spotify_options={"backoff_factor": 0.0}
    )
    songs, note = service.songs_for_mood("ana", {"sad": 1.0}, "match", use_spotify=True, k=3)
    assert note and "server error (500)" in note and "local catalog" in note
    assert [rec.mood for rec in songs] == ["Sad"] * 3
    assert all(rec.source == "catalog" for rec in songs)
    assert store.history("ana")["emotion"].tolist() == ["sad"]  # recorded all the same


def test_local_songs_skip_what_the_profile_disliked(
    local: Recommender, store: FeedbackStore
) -> None:
    service = SongsService(Settings(), local, store)
    first = service.recommend({"happy": 1.0}, k=3, profile="ana").recommendations
    store.record_vote("ana", first[0], -1)
    again = service.recommend({"happy": 1.0}, k=3, profile="ana").recommendations
    assert first[0].key not in {rec.key for rec in again}
    assert first[0].key in {
        rec.key for rec in service.recommend({"happy": 1.0}, k=3).recommendations
    }


PAGE = """
import numpy as np
import streamlit as st

from core.music.catalog import load_catalog
from core.paths import STARTER_CATALOG
from pages.common import mood_songs

run = st.session_state.get("run", 0)
st.session_state["run"] = run + 1
sad = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0])
(recs, note), shown = mood_songs(
    "test", (run,), sad, "sad", strategy="match", use_spotify=True,
    catalog=load_catalog(STARTER_CATALOG), profile="default",
)
st.write(f"{len(recs)} songs from {recs[0].source} for {shown}; note: {note}")
"""


def test_pages_share_one_service_across_runs_and_sessions(
    fake: FakeSpotify, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The defect this service fixed: every page run built a new Spotify client (a new token,
    an empty cache). Now runs and sessions of the app share one, through pages.common."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SPOTIFY_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("MOODLENS_SPOTIFY_API_BASE", fake.api_base)
    monkeypatch.setenv("MOODLENS_SPOTIFY_TOKEN_URL", fake.token_url)
    monkeypatch.setenv("MOODLENS_FEEDBACK_DB", str(tmp_path / "feedback.sqlite3"))
    first = AppTest.from_string(PAGE, default_timeout=60)
    first.run()
    assert not first.exception, first.exception
    assert "5 songs from spotify for sad; note: None" in first.markdown[0].value
    searches = len(fake.calls("/v1/search"))
    first.run()  # the inputs changed (another run): songs chosen again ...
    AppTest.from_string(PAGE, default_timeout=60).run()  # ... and in another session
    assert fake.token_requests == 1  # ... with the one client's token
    assert len(fake.calls("/v1/search")) == searches  # ... and its result cache
    assert len(FeedbackStore(tmp_path / "feedback.sqlite3").history("default")) == 3


def test_songs_come_without_the_feedback_database_and_it_is_used_again_once_back(
    local: Recommender, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database's folder should be")
    store = FeedbackStore(blocker / "feedback.sqlite3")  # nothing opened yet: no error here
    service = SongsService(Settings(), local, store)
    songs, note = service.songs_for_mood("ana", {"sad": 1.0}, "match", k=3)
    assert [rec.mood for rec in songs] == ["Sad"] * 3
    assert note and "feedback database cannot be used" in note and "writable" in note
    blocker.unlink()  # the folder can be made now: the same store opens on its next use
    songs, note = service.songs_for_mood("ana", {"sad": 1.0}, "match", k=3)
    assert note is None and store.history("ana")["emotion"].tolist() == ["sad"]


def test_a_feedback_server_that_is_down_costs_the_note_not_the_songs(local: Recommender) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = FeedbackStore(url=f"postgresql://moodlens:s3cret-pw@127.0.0.1:{port}/moodlens")
    songs, note = SongsService(Settings(), local, store).songs_for_mood("ana", {"happy": 1.0}, k=3)
    assert [rec.mood for rec in songs] == ["Happy"] * 3
    assert note and "cannot be used right now" in note and "s3cret-pw" not in note


STRATEGY_PAGE = """
import numpy as np
import streamlit as st

from core.music.catalog import load_catalog
from core.paths import STARTER_CATALOG
from pages.common import mood_songs

face, strategy, profile = st.session_state.get("reading", (0, "match", "default"))
sad = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0])
(recs, note), shown = mood_songs(
    "test", (face,), sad, "sad", strategy=strategy, use_spotify=False,
    catalog=load_catalog(STARTER_CATALOG), profile=profile,
)
st.write(f"{len(recs)} songs ({strategy})")
st.write(" | ".join(r.title for r in recs))
"""


def test_one_reading_is_one_mood_however_many_strategies_it_is_shown_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MOODLENS_FEEDBACK_DB", str(tmp_path / "feedback.sqlite3"))
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    app = AppTest.from_string(STRATEGY_PAGE, default_timeout=60)
    moods = []
    for reading in [
        (0, "match", "default"),
        (0, "uplift", "default"),  # the same photo, other songs: not a second mood
        (0, "calm", "default"),
        (1, "calm", "default"),  # another reading
        (1, "calm", "ana"),  # the same one for another profile: its own history
        (1, "calm", "ana"),  # a rerun
    ]:
        app.session_state["reading"] = reading
        app.run()
        assert not app.exception, app.exception
        assert f"({reading[1]})" in app.markdown[0].value  # the songs follow the strategy
        moods.append((len(store.history("default")), len(store.history("ana"))))
    assert moods == [(1, 0), (1, 0), (1, 0), (2, 0), (2, 1), (2, 1)]


def test_each_reading_draws_its_own_songs_among_equals_and_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The starter catalog has mood labels only, so all of a mood's songs tie: every sad face
    got the same five. Now each reading draws its own five, and keeps them across strategies."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MOODLENS_FEEDBACK_DB", str(tmp_path / "feedback.sqlite3"))
    app = AppTest.from_string(STRATEGY_PAGE, default_timeout=60)

    def titles(reading: tuple) -> str:
        app.session_state["reading"] = reading
        app.run()
        assert not app.exception, app.exception
        return app.markdown[1].value

    first = titles((0, "match", "default"))
    assert titles((0, "uplift", "default")) != first
    assert titles((0, "match", "default")) == first  # the same reading, back to its songs
    readings = {first} | {titles((face, "match", "default")) for face in range(1, 6)}
    assert len(readings) >= 4  # six sad faces, not one set of five songs
