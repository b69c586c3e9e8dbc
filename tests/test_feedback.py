"""core.music.feedback: votes and mood history persist in SQLite and shift future rankings."""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
from pathlib import Path

import pandas as pd
import pytest

from core.music.catalog import load_catalog
from core.music.feedback import FeedbackStore, Preference, default_db_path
from core.music.recommender import Recommender
from core.music.tracks import Recommendation

CATALOG_CSV = "title,artist,genre,mood,popularity\n" + "".join(
    f"Sad {i},Artist {i},{'blues' if i < 4 else 'folk'},Sad,{90 - i}\n" for i in range(8)
)


def track(title: str, artist: str, track_id: str | None = None, genre: str = "pop") -> dict:
    return {"title": title, "artist": artist, "track_id": track_id, "genre": genre, "mood": "Sad"}


def test_default_path_honours_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOODLENS_FEEDBACK_DB", str(tmp_path / "x" / "fb.sqlite3"))
    assert default_db_path() == tmp_path / "x" / "fb.sqlite3"
    store = FeedbackStore()
    assert store.path.exists()


def test_votes_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(path)
    store.record_vote("ana", track("Hurt", "Johnny Cash", "id1"), +1, emotion="sad")
    store.record_vote("ana", track("Yesterday", "The Beatles"), -1)
    store.record_vote("ben", track("Hurt", "Johnny Cash", "id1"), -1)
    store.record_mood("ana", "sad", probabilities={"sad": 0.8, "neutral": 0.2})
    del store

    reopened = FeedbackStore(path)
    assert reopened.profiles() == ["ana", "ben"]
    assert reopened.vote_of("ana", "id1") == 1
    assert reopened.vote_of("ana", "the beatles::yesterday") == -1
    assert reopened.vote_of("ben", "id1") == -1
    liked = reopened.liked_songs("ana")
    assert liked["title"].tolist() == ["Hurt"] and liked["emotion"].tolist() == ["sad"]
    history = reopened.history("ana")
    assert history["emotion"].tolist() == ["sad"] and history["mood"].tolist() == ["Sad"]


def test_a_new_vote_replaces_the_old_one(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite3")
    store.record_vote("ana", track("Hurt", "Johnny Cash", "id1"), +1)
    store.record_vote("ana", track("Hurt", "Johnny Cash", "id1"), -1)
    assert len(store.votes("ana")) == 1 and store.vote_of("ana", "id1") == -1
    store.clear_vote("ana", "id1")
    assert store.vote_of("ana", "id1") == 0


def test_recommendation_objects_can_be_voted(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite3")
    rec = Recommendation("T", "A", None, None, "blues", "Sad", None, None, "why", 1.0)
    store.record_vote("ana", rec, +1)
    assert store.vote_of("ana", rec.key) == 1


def test_bad_input_is_rejected(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite3")
    with pytest.raises(ValueError, match=r"\+1"):
        store.record_vote("ana", track("T", "A"), 0)
    with pytest.raises(ValueError, match="profile name"):
        store.record_vote("  ", track("T", "A"), 1)
    with pytest.raises(ValueError, match="Unknown emotion"):
        store.record_mood("ana", "bored")


def test_history_orders_events_and_counts_moods_per_day(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite3")
    day = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)
    store.record_mood("ana", "happy", when=day + dt.timedelta(days=1))
    store.record_mood("ana", "sad", when=day)
    store.record_mood("ana", "sad", when=day + dt.timedelta(hours=1))
    history = store.history("ana")
    assert history["recorded_at"].is_monotonic_increasing
    assert history["emotion"].tolist() == ["sad", "sad", "happy"]
    counts = store.mood_counts("ana")
    sad_first_day = counts[(counts["mood"] == "Sad") & (counts["period"] == "2025-03-01")]
    assert sad_first_day["count"].tolist() == [2]
    assert store.mood_counts("nobody").empty


def test_export_liked_csv(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite3")
    store.record_vote("ana", track("Hurt, live", "Johnny Cash", "id1"), +1)
    store.record_vote("ana", track("Nope", "X"), -1)
    rows = list(csv.DictReader(io.StringIO(store.export_liked_csv("ana"))))
    assert [row["title"] for row in rows] == ["Hurt, live"]
    assert rows[0]["spotify_url"] == "https://open.spotify.com/track/id1"
    assert rows[0]["liked_at"].endswith("Z")
    empty = store.export_liked_csv("nobody")
    assert empty.startswith("title,artist") and len(empty.splitlines()) == 1


def test_preference_shifts_that_profiles_ranking_only(tmp_path: Path) -> None:
    catalog = load_catalog(io.StringIO(CATALOG_CSV), name="sad.csv")
    recommender = Recommender(catalog)
    before = [rec.title for rec in recommender.recommend({"sad": 1.0}, "match", k=3)]
    store = FeedbackStore(tmp_path / "f.sqlite3")
    store.record_vote("ana", track(before[0], "Artist 0", genre="blues"), -1)
    store.record_vote("ana", track("Sad 6", "Artist 6", genre="folk"), +1)
    preference = FeedbackStore(tmp_path / "f.sqlite3").preference("ana")  # after a restart
    after = recommender.recommend({"sad": 1.0}, "match", k=3, feedback=preference)
    titles = [rec.title for rec in after]
    assert before[0] not in titles  # disliked: demoted out of the top 3
    assert titles[0] == "Sad 6"  # liked: up from 7th
    assert "you liked it" in after[0].reason
    other = recommender.recommend({"sad": 1.0}, "match", k=3, feedback=store.preference("ben"))
    assert [rec.title for rec in other] == before


def test_liked_artist_and_genre_lift_other_tracks() -> None:
    preference = Preference(tracks={"x": 1}, artists={"artist 5": 2}, genres={"folk": 3})
    assert preference.boost("other", "Artist 5", "folk") > preference.boost("o", "Artist 1", "x")
    assert preference.boost("other", "Artist 9", "folk") > 0
    assert Preference(artists={"a": -2}).boost("k", "A", None) < 0
    assert not Preference() and preference


def test_concurrent_writers_do_not_lose_votes(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite3")

    def vote(worker: int) -> None:
        for i in range(10):
            store.record_vote(f"p{worker}", track(f"Song {i}", "A"), 1 if i % 2 else -1)

    threads = [threading.Thread(target=vote, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(store.votes(f"p{w}")) == 10 for w in range(4))
    assert isinstance(store.votes("p0")["voted_at"].dtype, pd.DatetimeTZDtype)


def test_boost_many_agrees_with_boost() -> None:
    import numpy as np

    preference = Preference(
        tracks={"k1": 1, "k2": -1}, artists={"artist a": 3, "artist b": -1}, genres={"folk": 2}
    )
    rows = [("k1", "Artist A", "Folk"), ("k2", "artist b", None), ("k3", "Artist C", float("nan"))]
    single = [preference.boost(k, a, g if isinstance(g, str) else None) for k, a, g in rows]
    many = preference.boost_many(
        [r[0] for r in rows], [r[1].lower() for r in rows], [r[2] for r in rows]
    )
    assert np.allclose(single, many)
