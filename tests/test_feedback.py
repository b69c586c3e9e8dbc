"""core.music.feedback: votes and mood history persist and shift future rankings.

Every store test runs twice: on a SQLite file and on a fresh database of a throwaway PostgreSQL
server (tests/support/postgres.py; skipped with the reason when Debian's server is missing).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import multiprocessing
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core.labels import EMOTIONS
from core.music.catalog import load_catalog
from core.music.feedback import FeedbackStore, Preference, default_db_path, feedback_url
from core.music.recommender import Recommender
from core.music.store import SCHEMA_VERSION, StoreError, database_url
from core.music.tracks import Recommendation
from core.settings import Settings

BACKENDS = ["sqlite", "postgresql"]

CATALOG_CSV = "title,artist,genre,mood,popularity\n" + "".join(
    f"Sad {i},Artist {i},{'blues' if i < 4 else 'folk'},Sad,{90 - i}\n" for i in range(8)
)


HURT = "5ODwx4i8mLFvHQb8PIpASR"  # a Spotify track id (22 base-62 characters)


def track(title: str, artist: str, track_id: str | None = None, genre: str = "pop") -> dict:
    return {"title": title, "artist": artist, "track_id": track_id, "genre": genre, "mood": "Sad"}


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """FeedbackStore's arguments: a SQLite file, or a new database on the test PostgreSQL."""
    if request.param == "sqlite":
        yield {"path": tmp_path / "feedback.sqlite3"}
        return
    cluster = request.getfixturevalue("postgres")
    url = cluster.create_database()
    yield {"url": url}
    cluster.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def open_store(location: dict[str, Any]) -> Iterator[Callable[[], FeedbackStore]]:
    """Opens the store at `location` (again: a restart); every store is closed afterwards."""
    opened: list[FeedbackStore] = []

    def open_() -> FeedbackStore:
        opened.append(FeedbackStore(**location))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], FeedbackStore]) -> FeedbackStore:
    return open_store()


def test_default_path_honours_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOODLENS_FEEDBACK_DB", str(tmp_path / "x" / "fb.sqlite3"))
    assert default_db_path() == tmp_path / "x" / "fb.sqlite3"
    store = FeedbackStore()
    assert store.backend == "sqlite" and not store.path.exists()  # made on first use
    assert store.profiles() == [] and store.path.exists()
    assert feedback_url() == f"sqlite:///{tmp_path}/x/fb.sqlite3"
    store.close()


def test_votes_survive_a_restart(open_store: Callable[[], FeedbackStore]) -> None:
    store = open_store()
    store.record_vote("ana", track("Hurt", "Johnny Cash", HURT), +1, emotion="sad")
    store.record_vote("ana", track("Yesterday", "The Beatles"), -1)
    store.record_vote("ben", track("Hurt", "Johnny Cash", HURT), -1)
    store.record_mood("ana", "sad", probabilities={"sad": 0.8, "neutral": 0.2})
    store.close()

    reopened = open_store()
    assert reopened.profiles() == ["ana", "ben"]
    assert reopened.vote_of("ana", HURT) == 1
    assert reopened.vote_of("ana", "the beatles::yesterday") == -1
    assert reopened.vote_of("ben", HURT) == -1
    liked = reopened.liked_songs("ana")
    assert liked["title"].tolist() == ["Hurt"] and liked["emotion"].tolist() == ["sad"]
    history = reopened.history("ana")
    assert history["emotion"].tolist() == ["sad"] and history["mood"].tolist() == ["Sad"]
    assert history["probabilities"].tolist() == ['{"sad": 0.8, "neutral": 0.2}']


def test_a_new_vote_replaces_the_old_one(store: FeedbackStore) -> None:
    store.record_vote("ana", track("Hurt", "Johnny Cash", HURT), +1)
    store.record_vote("ana", track("Hurt", "Johnny Cash", HURT), -1)
    assert len(store.votes("ana")) == 1 and store.vote_of("ana", HURT) == -1
    store.clear_vote("ana", HURT)
    assert store.vote_of("ana", HURT) == 0


def test_recommendation_objects_can_be_voted(store: FeedbackStore) -> None:
    rec = Recommendation("T", "A", None, None, "blues", "Sad", None, None, "why", 1.0)
    store.record_vote("ana", rec, +1)
    assert store.vote_of("ana", rec.key) == 1


def test_bad_input_is_rejected(store: FeedbackStore) -> None:
    with pytest.raises(ValueError, match=r"\+1"):
        store.record_vote("ana", track("T", "A"), 0)
    with pytest.raises(ValueError, match="profile name"):
        store.record_vote("  ", track("T", "A"), 1)
    with pytest.raises(ValueError, match="Unknown emotion"):
        store.record_mood("ana", "bored")


def test_history_orders_events_and_counts_moods_per_day(store: FeedbackStore) -> None:
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


def test_history_reads_only_the_latest_events_and_totals_count_them_all(
    store: FeedbackStore,
) -> None:
    start = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)
    emotions = ["sad"] * 6 + ["happy"] * 3 + ["angry"]
    for minute, emotion in enumerate(emotions):
        store.record_mood("ana", emotion, when=start + dt.timedelta(minutes=minute))
    store.record_mood("ana", "fear", when=start + dt.timedelta(minutes=4))  # same time as a sad
    store.record_mood("bob", "happy", when=start)
    latest = store.history("ana", latest=4)
    assert latest["emotion"].tolist() == ["happy", "happy", "happy", "angry"]
    assert latest["recorded_at"].is_monotonic_increasing
    assert store.history("ana", latest=100).equals(store.history("ana"))
    assert store.history("ana", latest=0).empty
    # ties on recorded_at keep the order of recording, as in the whole history
    assert store.history("ana", latest=7)["emotion"].tolist()[:2] == ["sad", "fear"]
    assert store.emotion_totals("ana") == {"sad": 6, "happy": 3, "angry": 1, "fear": 1}
    assert list(store.emotion_totals("ana")) == ["sad", "happy", "angry", "fear"]
    assert store.emotion_totals("nobody") == {}


def test_export_liked_csv(store: FeedbackStore) -> None:
    store.record_vote("ana", track("Hurt, live", "Johnny Cash", HURT), +1)
    store.record_vote("ana", track("Nope", "X"), -1)
    rows = list(csv.DictReader(io.StringIO(store.export_liked_csv("ana"))))
    assert [row["title"] for row in rows] == ["Hurt, live"]
    assert rows[0]["spotify_url"] == "https://open.spotify.com/track/" + HURT
    assert rows[0]["liked_at"].endswith("Z")
    # A title a spreadsheet would run as a formula is escaped, as in the playlist export.
    store.record_vote("ana", track('=HYPERLINK("http://x.example")', "-Dash", genre=""), +1)
    rows = list(csv.DictReader(io.StringIO(store.export_liked_csv("ana"))))
    assert rows[0]["title"] == '\'=HYPERLINK("http://x.example")' and rows[0]["artist"] == "'-Dash"
    empty = store.export_liked_csv("nobody")
    assert empty.startswith("title,artist") and len(empty.splitlines()) == 1


def test_preference_shifts_that_profiles_ranking_only(
    open_store: Callable[[], FeedbackStore],
) -> None:
    catalog = load_catalog(io.StringIO(CATALOG_CSV), name="sad.csv")
    recommender = Recommender(catalog)
    before = [rec.title for rec in recommender.recommend({"sad": 1.0}, "match", k=3)]
    store = open_store()
    store.record_vote("ana", track(before[0], "Artist 0", genre="blues"), -1)
    store.record_vote("ana", track("Sad 6", "Artist 6", genre="folk"), +1)
    preference = open_store().preference("ana")  # after a restart
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


def test_concurrent_writers_do_not_lose_votes(store: FeedbackStore) -> None:

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


def test_excluded_keys_are_the_exclusions_and_the_dislikes() -> None:
    from core.music.feedback import excluded_keys

    preference = Preference(tracks={"down": -1, "up": 1}, artists={"a": -1})
    assert excluded_keys(["seen"], preference) == {"seen", "down"}
    assert excluded_keys(["seen"], None) == {"seen"}
    assert excluded_keys(iter(["seen"]), Preference()) == {"seen"}
    assert excluded_keys() == set()


def test_a_disliked_track_gets_no_score_penalty_as_it_is_left_out() -> None:
    import numpy as np

    preference = Preference(tracks={"down": -1, "up": 1})
    assert preference.boost("down", "A", None) == 0.0 == preference.boost("other", "A", None)
    many = preference.boost_many(["down", "up", "other"], ["a", "a", "a"], [None] * 3)
    assert np.allclose(many, [0.0, 0.3, 0.0])
    assert preference.disliked == {"down"}  # what leaves it out instead


@pytest.mark.parametrize(
    ("credit", "names"),
    [
        ("Tyler, The Creator", ["Tyler, The Creator"]),
        ("Earth, Wind & Fire", ["Earth, Wind & Fire"]),
        ("Crosby, Stills, Nash & Young", ["Crosby, Stills, Nash & Young"]),
        ("Hank Williams, Jr.", ["Hank Williams, Jr."]),
        ("Simon & Garfunkel", ["Simon & Garfunkel"]),
        ("AC/DC", ["AC/DC"]),
        ("Calvin Harris, Dua Lipa", ["Calvin Harris", "Dua Lipa"]),
        ("Mark Ronson feat. Bruno Mars", ["Mark Ronson", "Bruno Mars"]),
        ("Rihanna ft. Drake", ["Rihanna", "Drake"]),
        ("Kygo (feat. Selena Gomez)", ["Kygo", "Selena Gomez"]),
        ("Sunn O)))", ["Sunn O)))"]),
        ("Daft Punk;Pharrell Williams", ["Daft Punk", "Pharrell Williams"]),
        ("Tyler, The Creator; Kali Uchis", ["Tyler, The Creator", "Kali Uchis"]),
        ("Tyler, The Creator, Kali Uchis", ["Tyler, The Creator", "Kali Uchis"]),
        ("Earth, Wind & Fire, The Emotions", ["Earth, Wind & Fire", "The Emotions"]),
        ("['Tyler, The Creator', 'Kali Uchis']", ["Tyler, The Creator", "Kali Uchis"]),
        ("['Earth, Wind & Fire']", ["Earth, Wind & Fire"]),
        ("  ", []),
    ],
)
def test_artist_names_split_credits_but_not_names_with_commas(
    credit: str, names: list[str]
) -> None:
    from core.music.feedback import artist_names

    assert artist_names(credit) == names


def test_artist_names_of_spotify_names_and_missing_values() -> None:
    from core.music.feedback import artist_names

    assert artist_names(["Tyler, The Creator", None, "Kali Uchis"]) == [
        "Tyler, The Creator",
        "Kali Uchis",
    ]
    assert artist_names(None) == artist_names(float("nan")) == artist_names(pd.NA) == []


def test_artist_votes_count_for_each_artist_of_a_credit() -> None:
    import numpy as np

    dislike_a = Preference(artists={"a": -2})
    for credit in ("A, B", "A feat. B", "B ft. a", "A; B", "['B', 'A']", ["B", "A"]):
        assert dislike_a.boost("k", credit, None) < 0, credit
    assert dislike_a.boost("k", "B", None) == 0.0
    assert np.all(dislike_a.boost_many(["k", "k"], ["a, b", "b feat. a"], [None, None]) < 0)
    # A like on "A, B" credits A and B one by one, as a vote stored for such a track does.
    like_both = Preference(artists={"A, B": 1})
    assert like_both.artists == {"a": 1, "b": 1}
    assert like_both.boost("k", "B", None) > 0 and like_both.boost("k", "A feat. C", None) > 0
    assert like_both.explain("k", "C feat. B", None) == "you liked B"
    # A name with a comma stays one artist: no credit to "Tyler" or to "The Creator".
    tyler = Preference(artists={"tyler, the creator": -1})
    assert tyler.boost("k", "Tyler", None) == 0.0 == tyler.boost("k", "The Creator", None)
    assert tyler.boost("k", "Tyler, The Creator, Kali Uchis", None) < 0
    assert Preference(artists={"earth, wind & fire": 1}).boost("k", "Earth", None) == 0.0


def test_preference_credits_every_artist_of_a_voted_track(store: FeedbackStore) -> None:
    store.record_vote("ana", track("Uptown Funk", "Mark Ronson feat. Bruno Mars"), +1)
    store.record_vote("ana", track("24K Magic", "Bruno Mars"), +1)
    store.record_vote("ana", track("September", "Earth, Wind & Fire"), -1)
    preference = store.preference("ana")
    assert preference.artists == {"mark ronson": 1, "bruno mars": 2, "earth, wind & fire": -1}
    assert preference.boost("k", "Bruno Mars", None) > preference.boost("k", "Mark Ronson", None)
    assert preference.boost("k", "Earth", None) == 0.0


# ---------------------------------------------------------------- backends, schema, processes

# The schema of the first version (raw sqlite3, no schema_version table), as it shipped.
OLD_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS votes (
    profile   TEXT NOT NULL,
    track_key TEXT NOT NULL,
    title     TEXT NOT NULL,
    artist    TEXT NOT NULL,
    album     TEXT,
    genre     TEXT,
    mood      TEXT,
    emotion   TEXT,
    track_id  TEXT,
    vote      INTEGER NOT NULL CHECK (vote IN (-1, 1)),
    voted_at  TEXT NOT NULL,
    PRIMARY KEY (profile, track_key)
);
CREATE TABLE IF NOT EXISTS mood_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    profile       TEXT NOT NULL,
    emotion       TEXT NOT NULL,
    mood          TEXT,
    strategy      TEXT,
    probabilities TEXT,
    recorded_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mood_events_profile ON mood_events (profile, recorded_at);
"""


def fill(store: FeedbackStore) -> None:
    """Votes and moods that exercise ties, NULLs, upserts, case and several profiles."""
    noon = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)
    for i in range(6):
        genre = None if i % 2 else "folk"
        store.record_vote("ana", track(f"Song {i}", "Ana Artist", genre=genre), 1 if i % 3 else -1)
    store.record_vote("ana", track("Song 1", "Ana Artist"), -1, emotion="sad", when=noon)
    store.record_vote("Bob", track("Zed", "B", "tid-1"), 1, when=noon)
    store.record_vote("bob", track("Zed", "B", "tid-1"), 1, when=noon)
    store.record_vote("_x", track("Ä", "Ö", "tid-2"), -1, when=noon)
    store.record_mood("ana", "sad", probabilities={"sad": 0.7}, strategy="match", when=noon)
    store.record_mood("ana", "happy", when=noon)
    store.record_mood("ana", "neutral", when=noon - dt.timedelta(days=3))
    store.record_mood("Bob", "angry", when=noon + dt.timedelta(weeks=2))


def test_both_backends_give_identical_results(tmp_path: Path, postgres) -> None:
    url = postgres.create_database()
    lite, pg = FeedbackStore(tmp_path / "f.sqlite3"), FeedbackStore(url=url)
    for store in (lite, pg):
        with pytest.MonkeyPatch.context() as patch:  # same "now" for votes without `when`
            patch.setattr(
                "core.music.feedback._now", lambda: dt.datetime(2025, 2, 1, tzinfo=dt.UTC)
            )
            fill(store)
    assert lite.profiles() == pg.profiles() == ["Bob", "_x", "ana", "bob"]  # byte order
    for profile in ("ana", "Bob", "bob", "_x", "nobody"):
        for method in ("votes", "liked_songs", "history", "mood_counts"):
            pd.testing.assert_frame_equal(
                getattr(lite, method)(profile), getattr(pg, method)(profile)
            )
        assert lite.export_liked_csv(profile) == pg.export_liked_csv(profile)
        assert lite.preference(profile) == pg.preference(profile)
        assert lite.emotion_totals(profile) == pg.emotion_totals(profile)
        pd.testing.assert_frame_equal(
            lite.history(profile, latest=2), pg.history(profile, latest=2)
        )
        assert lite.mood_counts(profile, "W").equals(pg.mood_counts(profile, "W"))
    # ties on voted_at break by first vote, newest first, on both
    assert lite.votes("ana")["title"].tolist()[:3] == ["Song 1", "Song 5", "Song 4"]
    lite.close()
    pg.close()


def test_delete_profile_removes_only_that_profile(store: FeedbackStore) -> None:
    fill(store)
    store.delete_profile("ana")
    assert store.profiles() == ["Bob", "_x", "bob"]
    assert store.votes("ana").empty and store.history("ana").empty
    assert len(store.votes("bob")) == 1


def test_schema_version_is_kept_in_the_database(open_store) -> None:
    from sqlalchemy import text

    store = open_store()
    with store._db.read() as conn:
        assert conn.execute(text("SELECT version FROM schema_version")).scalars().all() == [
            SCHEMA_VERSION
        ]
    store.record_vote("ana", track("T", "A"), 1)
    again = open_store()  # opening twice migrates nothing and loses nothing
    assert again.vote_of("ana", "a::t") == 1
    with again._db.write() as conn:
        conn.execute(text("UPDATE schema_version SET version = :v"), {"v": SCHEMA_VERSION + 1})
    newer = open_store()  # opened on first use, so a server that is down does not break pages
    with pytest.raises(StoreError, match="newer than this moodlens"):
        newer.profiles()


def test_a_file_of_the_first_version_opens_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    with sqlite3.connect(path) as conn:  # what the first, raw-sqlite3 FeedbackStore wrote
        conn.executescript(OLD_SQLITE_SCHEMA)
        conn.executemany(
            "INSERT INTO votes (profile, track_key, title, artist, album, genre, mood, emotion,"
            " track_id, vote, voted_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [
                ("ana", "id1", "Hurt", "Johnny Cash", None, "country", "Sad", "sad", "id1", 1,
                 "2025-03-01T12:00:00+00:00"),
                ("ana", "x::y", "Y", "X", "Alb", None, "Sad", None, None, -1,
                 "2025-03-01T12:00:00+00:00"),
                ("ana", "a::old", "Old", "A", None, "folk", None, None, None, 1,
                 "2025-02-01T08:30:00+00:00"),
                ("ben", "id1", "Hurt", "Johnny Cash", None, None, None, None, "id1", -1,
                 "2025-03-02T09:00:00+00:00"),
            ],
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO mood_events (profile, emotion, mood, strategy, probabilities,"
            " recorded_at) VALUES (?,?,?,?,?,?)",
            [
                ("ana", "sad", "Sad", "match", '{"sad": 0.9}', "2025-03-01T12:00:00+00:00"),
                ("ana", "happy", "Happy", None, None, "2025-03-01T11:00:00+00:00"),
                ("cleo", "neutral", "Calm", None, None, "2025-03-03T10:00:00+00:00"),
            ],
        )
    conn.close()

    store = FeedbackStore(path)
    assert store.profiles() == ["ana", "ben", "cleo"]
    votes = store.votes("ana")
    assert votes["track_key"].tolist() == ["x::y", "id1", "a::old"]  # same-second: later first
    assert votes["vote"].tolist() == [-1, 1, 1] and votes["album"].fillna("-").tolist() == [
        "Alb",
        "-",
        "-",
    ]
    assert store.vote_of("ben", "id1") == -1
    assert store.history("ana")["emotion"].tolist() == ["happy", "sad"]
    assert store.history("ana")["probabilities"].fillna("-").tolist() == ["-", '{"sad": 0.9}']
    assert store.preference("ana").artists == {"johnny cash": 1, "x": -1, "a": 1}

    store.record_vote("ana", track("Y", "X"), 1, emotion="happy")  # upsert on a migrated row
    store.record_mood("cleo", "happy")
    assert store.vote_of("ana", "x::y") == 1 and len(store.votes("ana")) == 3
    assert store.history("cleo")["emotion"].tolist() == ["neutral", "happy"]
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert conn.execute("SELECT count(*) FROM votes").fetchone() == (4,)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert "votes_v1" not in tables
    assert FeedbackStore(path).votes("ben")["title"].tolist() == ["Hurt"]  # and reopens


def _write_many(location: dict[str, Any], worker: int, start: Any, count: int) -> None:
    """One writer process: `count` votes and mood events of its own, plus shared-track votes."""
    store = FeedbackStore(**location)
    start.wait(120)
    for i in range(count):
        store.record_vote(f"w{worker}", track(f"Song {i}", "A"), 1 if i % 2 else -1)
        store.record_mood(f"w{worker}", EMOTIONS[i % len(EMOTIONS)], strategy=str(worker))
        if i % 5 == 0:  # every process upserts the same 20 rows of one profile
            store.record_vote("shared", track(f"Song {i}", "A"), 1 if worker % 2 else -1)
    store.close()


def test_processes_writing_at_once_lose_nothing(
    location: dict[str, Any], open_store: Callable[[], FeedbackStore]
) -> None:
    store = open_store()  # creates the schema; the writers then race on rows only
    workers, count = 4, 100
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    processes = [
        context.Process(target=_write_many, args=(location, w, start, count))
        for w in range(workers)
    ]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        process.join(300)
    assert [process.exitcode for process in processes] == [0] * workers
    assert store.profiles() == ["shared", "w0", "w1", "w2", "w3"]
    for w in range(workers):
        votes, history = store.votes(f"w{w}"), store.history(f"w{w}")
        assert len(votes) == count and votes["track_key"].nunique() == count
        assert len(history) == count and set(history["strategy"]) == {str(w)}
        assert int((votes["vote"] > 0).sum()) == count // 2
    assert len(store.votes("shared")) == count // 5


def test_database_url_setting_is_read_and_hidden() -> None:
    url = "postgresql+psycopg://moodlens:hunter2-secret@db.example.org:5432/moodlens"
    assert Settings.from_env({}, {}).database_url is None
    from_env = Settings.from_env({}, {"MOODLENS_DATABASE_URL": url})
    assert from_env.database_url == url and "hunter2" not in repr(from_env)
    secret = url.replace("hunter2", "from-secrets")
    both = Settings.from_env({"database": {"url": secret}}, {"MOODLENS_DATABASE_URL": url})
    assert both.database_url == secret  # secrets first, as for every setting
    assert feedback_url(from_env) == url


def test_database_urls_are_normalised_and_checked(tmp_path: Path) -> None:
    plain = database_url("postgresql://u:p@h:5432/d")
    assert plain.drivername == "postgresql+psycopg" and plain.database == "d"
    assert database_url("postgres://u@h/d").drivername == "postgresql+psycopg"
    assert database_url(path=tmp_path / "f.db").database == str(tmp_path / "f.db")
    with pytest.raises(StoreError, match="not a database URL"):
        database_url("not a url")
    other = FeedbackStore(url="mysql://u@h/d")  # made: every use says why it cannot be used
    for use in (lambda: other.votes("ana"), lambda: other.record_vote("ana", track("T", "A"), 1)):
        with pytest.raises(StoreError, match="SQLite or PostgreSQL"):
            use()
    with pytest.raises(StoreError, match="not a database URL"):
        FeedbackStore(url="postgresql://u@h:abc/d").history("ana")
    with pytest.raises(ValueError, match="not both"):
        FeedbackStore(tmp_path / "f.db", url="sqlite://")
    memory = FeedbackStore(url="sqlite://")  # in memory: one connection, still one database
    memory.record_vote("ana", track("T", "A"), 1)
    assert memory.vote_of("ana", "a::t") == 1 and memory.path is None
    memory.close()


def test_default_store_uses_the_database_url(
    postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres.create_database()
    monkeypatch.setenv("MOODLENS_FEEDBACK_DB", str(tmp_path / "unused.sqlite3"))
    monkeypatch.setenv("MOODLENS_DATABASE_URL", url)
    store = FeedbackStore()
    assert store.backend == "postgresql" and store.path is None
    assert "***" in repr(store) and postgres.password not in repr(store)
    store.record_vote("ana", track("T", "A"), 1)
    other = FeedbackStore.from_settings(Settings.from_env())  # another replica
    assert other.vote_of("ana", "a::t") == 1
    assert not (tmp_path / "unused.sqlite3").exists()
    store.close()
    other.close()


def test_a_database_that_does_not_answer_fails_at_once_for_a_while_then_is_tried_again(
    monkeypatch,
) -> None:
    """A hung server would hold every session for its connect timeout, one after another."""
    import socket
    import time

    from core.music import feedback as feedback_module
    from core.music.store import STORE_FAILURES

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []

    def never_answer() -> None:  # a "server" that takes each connection and says nothing
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=never_answer, daemon=True).start()
    port = server.getsockname()[1]
    url = f"postgresql://moodlens:pw@127.0.0.1:{port}/moodlens?connect_timeout=2"
    store = FeedbackStore(url=url)
    try:
        with pytest.raises(STORE_FAILURES):
            store.votes("default")
        tries = len(held)
        assert tries >= 1
        started = time.monotonic()
        for _ in range(3):
            with pytest.raises(StoreError):
                store.votes("default")
        assert len(held) == tries and time.monotonic() - started < 0.5  # no wait, no new try
        monkeypatch.setattr(feedback_module, "REOPEN_AFTER_S", 0.0)
        with pytest.raises(STORE_FAILURES):
            store.votes("default")
        assert len(held) > tries  # and tried again later
    finally:
        server.close()
        for connection in held:
            connection.close()


def test_an_in_memory_database_serves_threads_reading_while_one_writes() -> None:
    store = FeedbackStore(url="sqlite://")
    errors: list[BaseException] = []

    def work(action: Callable[[int], Any]) -> None:
        for i in range(150):
            try:
                action(i)
            except Exception as error:  # the assertion below shows them
                errors.append(error)

    probabilities = dict.fromkeys(EMOTIONS, 1 / len(EMOTIONS))

    def write(i: int) -> None:
        store.record_mood("p", "happy", probabilities=probabilities)

    threads = [
        threading.Thread(target=work, args=(write,)),
        threading.Thread(target=work, args=(lambda i: store.history("p"),)),
        threading.Thread(target=work, args=(lambda i: store.votes("p"),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    assert len(store.history("p")) == 150


def test_a_database_url_with_a_bad_port_says_what_is_expected() -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        database_url("postgresql://user:pw@host:abc/moodlens")


def test_history_times_are_shown_in_the_browsers_time_zone(tmp_path: Path) -> None:
    from core.music.feedback import in_time_zone

    store = FeedbackStore(tmp_path / "f.db")
    late = dt.datetime(2026, 12, 6, 2, 30, tzinfo=dt.UTC)  # 9:30 pm on the 5th in New York
    store.record_mood("ana", "sad", when=late)
    history = store.history("ana")
    shown = in_time_zone(history, "recorded_at", "America/New_York")["recorded_at"][0]
    assert (shown.day, shown.hour, shown.minute) == (5, 21, 30)
    for unknown in (None, "Not/AZone"):
        utc = in_time_zone(history, "recorded_at", unknown)["recorded_at"][0]
        assert (utc.day, utc.hour) == (6, 2)
    assert in_time_zone(history.iloc[:0], "recorded_at", "Europe/Paris").empty


def test_a_credit_is_split_into_its_artists_once(tmp_path: Path) -> None:
    """Spotify joins a credit naming an artist with a comma with "; ": the comma inside that
    artist's name must not split it again."""
    store = FeedbackStore(tmp_path / "f.db")
    store.record_vote("ana", track("Song", "Hello, Goodbye; X", "t1"), 1)
    store.record_vote("ana", track("Other", "X feat. Y", "t2"), 1)
    assert store.preference("ana").artists == {"hello, goodbye": 1, "x": 2, "y": 1}


def test_a_password_with_a_raw_at_sign_is_refused_without_showing_it() -> None:
    """An unencoded '@' ends the password early: the rest of it would parse as the host and be
    shown in the "database unavailable" note and in the store's repr."""
    from core.music.store import unavailable_note

    url = "postgresql://moodlens:s3cr@tPart@db.example.org:5432/moodlens"
    fragments = ("s3cr", "tPart", "s3cr@tPart")
    with pytest.raises(StoreError, match="%40") as raised:
        database_url(url)
    assert "password" in str(raised.value)
    store = FeedbackStore(url=url)  # made: every use says why, as for any unusable URL
    with pytest.raises(StoreError, match="%40") as used:
        store.preference("ana")
    note = unavailable_note(used.value)
    assert "percent-encode" in note and "%40" in note
    for shown in (str(raised.value), str(used.value), note, repr(store)):
        assert not any(fragment in shown for fragment in fragments), shown
    assert database_url(url.replace("s3cr@tPart", "s3cr%40tPart")).password == "s3cr@tPart"


def test_a_connect_timeout_that_is_not_whole_seconds_makes_the_store_unusable() -> None:
    from core.music.store import STORE_FAILURES, unavailable_note

    url = "postgresql://moodlens:pw@db.example.org/moodlens?connect_timeout={}"
    for bad in ("5s", "2.5", "-1", "%205"):
        with pytest.raises(StoreError, match="connect_timeout must be whole seconds"):
            database_url(url.format(bad))
    with pytest.raises(StoreError, match="connect_timeout must be whole seconds"):
        database_url(url.format("5") + "&connect_timeout=6")
    assert database_url(url.format("5")).query["connect_timeout"] == "5"
    store = FeedbackStore(url=url.format("5s"))  # made; its uses fail as a store failure
    for use in (lambda: store.preference("ana"), lambda: store.record_mood("ana", "sad")):
        with pytest.raises(STORE_FAILURES) as raised:
            use()
        assert isinstance(raised.value, StoreError)
        assert "connect_timeout must be whole seconds" in unavailable_note(raised.value)
