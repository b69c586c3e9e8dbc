"""Thumbs up/down and mood history per profile, kept in a local SQLite file.

`FeedbackStore(path)` opens (and creates) the database; the default path is ``MOODLENS_FEEDBACK_DB``
or ``~/.moodlens/feedback.sqlite3``. Every call opens its own short-lived connection, so one store
can be shared by the threads of a Streamlit server. `FeedbackStore.preference(profile)` summarises
a profile's votes as a `Preference` that ``Recommender.recommend(feedback=...)`` uses to boost
liked tracks, artists and genres and to demote disliked ones.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.labels import EMOTION_TO_MOOD, EMOTIONS
from core.settings import Settings

DEFAULT_DB_PATH = Path("~/.moodlens/feedback.sqlite3")
MAX_PROFILE_LENGTH = 64
LIKED_CSV_COLUMNS: tuple[str, ...] = (
    "title",
    "artist",
    "album",
    "genre",
    "mood",
    "emotion",
    "track_id",
    "spotify_url",
    "liked_at",
)

_SCHEMA = """
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

# Boosts added to a track's score by `Preference.boost` (scores are roughly 0..1.3): a liked
# track outranks equally fitting ones, not tracks for another mood.
LIKED_TRACK_BOOST = 0.3
DISLIKED_TRACK_PENALTY = -1.0
ARTIST_STEP, ARTIST_CAP = 0.04, 0.12
GENRE_STEP, GENRE_CAP = 0.015, 0.06


def default_db_path(settings: Settings | None = None) -> Path:
    """``MOODLENS_FEEDBACK_DB`` if set, else ``~/.moodlens/feedback.sqlite3``."""
    settings = settings or Settings.from_env()
    return Path(settings.feedback_db or DEFAULT_DB_PATH).expanduser()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(when: dt.datetime | None) -> str:
    """UTC ISO-8601 text of `when` (now when None); naive datetimes are taken as UTC."""
    moment = when or _now()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def _clean_profile(profile: str) -> str:
    name = str(profile).strip()
    if not name:
        raise ValueError("A profile name cannot be empty.")
    if len(name) > MAX_PROFILE_LENGTH:
        raise ValueError(f"A profile name has at most {MAX_PROFILE_LENGTH} characters.")
    return name


def _artist_key(artist: str) -> str:
    return str(artist).strip().lower()


@dataclass(frozen=True)
class Preference:
    """What one profile liked: net votes per track key, artist (lower case) and genre."""

    tracks: Mapping[str, int] = field(default_factory=dict)
    artists: Mapping[str, int] = field(default_factory=dict)
    genres: Mapping[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.tracks or self.artists or self.genres)

    def boost(self, key: str, artist: str, genre: str | None) -> float:
        """Score change for a track: liked tracks/artists/genres up, disliked ones down."""
        total = 0.0
        vote = self.tracks.get(key, 0)
        if vote > 0:
            total += LIKED_TRACK_BOOST
        elif vote < 0:
            total += DISLIKED_TRACK_PENALTY
        net_artist = self.artists.get(_artist_key(artist), 0)
        total += max(-ARTIST_CAP, min(ARTIST_CAP, ARTIST_STEP * net_artist))
        if genre:
            net_genre = self.genres.get(str(genre).lower(), 0)
            total += max(-GENRE_CAP, min(GENRE_CAP, GENRE_STEP * net_genre))
        return total

    def boost_many(
        self, keys: Sequence[str], artists: Sequence[str], genres: Sequence[Any]
    ) -> np.ndarray:
        """`boost` for many tracks at once (artists already lower-cased; genres may be NaN)."""
        total = np.zeros(len(keys))
        if self.tracks:
            votes = np.array([self.tracks.get(k, 0) for k in keys])
            total += np.where(votes > 0, LIKED_TRACK_BOOST, 0.0)
            total += np.where(votes < 0, DISLIKED_TRACK_PENALTY, 0.0)
        if self.artists:
            net = np.array([self.artists.get(a, 0) for a in artists], dtype=float)
            total += np.clip(ARTIST_STEP * net, -ARTIST_CAP, ARTIST_CAP)
        if self.genres:
            net = np.array(
                [self.genres.get(g.lower(), 0) if isinstance(g, str) else 0 for g in genres],
                dtype=float,
            )
            total += np.clip(GENRE_STEP * net, -GENRE_CAP, GENRE_CAP)
        return total

    def explain(self, key: str, artist: str, genre: str | None) -> str | None:
        """A short note on how feedback moved this track, or None."""
        if self.tracks.get(key, 0) > 0:
            return "you liked it"
        net_artist = self.artists.get(_artist_key(artist), 0)
        if net_artist > 0:
            return f"you liked {artist}"
        if genre and self.genres.get(str(genre).lower(), 0) > 0:
            return f"you like {genre}"
        return None


def _field(track: Any, name: str) -> Any:
    value = track.get(name) if isinstance(track, Mapping) else getattr(track, name, None)
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value


class FeedbackStore:
    """Votes and mood events of every profile, in one SQLite file."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as conn:
            conn.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection inside one transaction, closed afterwards."""
        conn = sqlite3.connect(self.path, timeout=10.0)
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    # ------------------------------------------------------------------ writing

    def record_vote(
        self,
        profile: str,
        track: Any,
        vote: int,
        *,
        emotion: str | None = None,
        when: dt.datetime | None = None,
    ) -> None:
        """Store a thumbs up (+1) or down (-1) for a track; a new vote replaces the old one.

        `track` is a `core.recommend.Recommendation` or a mapping with title, artist and
        optionally key/track_id, album, genre, mood.
        """
        if vote not in (-1, 1):
            raise ValueError("A vote is +1 (thumbs up) or -1 (thumbs down).")
        title, artist = _field(track, "title"), _field(track, "artist")
        if not title or not artist:
            raise ValueError("A voted track needs a title and an artist.")
        track_id = _field(track, "track_id")
        key = _field(track, "key") or (
            str(track_id) if track_id else f"{_artist_key(artist)}::{str(title).strip().lower()}"
        )
        row = (
            _clean_profile(profile),
            str(key),
            str(title),
            str(artist),
            _field(track, "album"),
            _field(track, "genre"),
            _field(track, "mood"),
            emotion,
            track_id,
            int(vote),
            _iso(when),
        )
        with self._lock, self._connect() as conn:
            conn.execute(
                "INSERT INTO votes (profile, track_key, title, artist, album, genre, mood,"
                " emotion, track_id, vote, voted_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (profile, track_key) DO UPDATE SET vote = excluded.vote,"
                " voted_at = excluded.voted_at, emotion = COALESCE(excluded.emotion, emotion)",
                row,
            )

    def clear_vote(self, profile: str, key: str) -> None:
        """Forget a profile's vote on a track."""
        with self._lock, self._connect() as conn:
            conn.execute(
                "DELETE FROM votes WHERE profile = ? AND track_key = ?",
                (_clean_profile(profile), key),
            )

    def record_mood(
        self,
        profile: str,
        emotion: str,
        *,
        probabilities: Mapping[str, float] | None = None,
        strategy: str | None = None,
        when: dt.datetime | None = None,
    ) -> None:
        """Store one detected emotion (and its mood) in the profile's history."""
        if emotion not in EMOTIONS:
            raise ValueError(f"Unknown emotion {emotion!r}; expected one of {EMOTIONS}.")
        probs = (
            json.dumps({k: round(float(v), 4) for k, v in probabilities.items()})
            if (probabilities)
            else None
        )
        with self._lock, self._connect() as conn:
            conn.execute(
                "INSERT INTO mood_events (profile, emotion, mood, strategy, probabilities,"
                " recorded_at) VALUES (?,?,?,?,?,?)",
                (
                    _clean_profile(profile),
                    emotion,
                    EMOTION_TO_MOOD[emotion],
                    strategy,
                    probs,
                    _iso(when),
                ),
            )

    def delete_profile(self, profile: str) -> None:
        """Remove every vote and mood event of a profile."""
        name = _clean_profile(profile)
        with self._lock, self._connect() as conn:
            conn.execute("DELETE FROM votes WHERE profile = ?", (name,))
            conn.execute("DELETE FROM mood_events WHERE profile = ?", (name,))

    # ------------------------------------------------------------------ reading

    def profiles(self) -> list[str]:
        """Every profile with a vote or a mood event, sorted."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT profile FROM votes UNION SELECT profile FROM mood_events ORDER BY 1"
            ).fetchall()
        return [row[0] for row in rows]

    def vote_of(self, profile: str, key: str) -> int:
        """The profile's current vote on a track: +1, -1 or 0 when none."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT vote FROM votes WHERE profile = ? AND track_key = ?",
                (_clean_profile(profile), key),
            ).fetchone()
        return int(row[0]) if row else 0

    def votes(self, profile: str) -> pd.DataFrame:
        """Every vote of a profile, newest first (voted_at as UTC timestamps)."""
        with self._connect() as conn:
            frame = pd.read_sql_query(
                "SELECT track_key, title, artist, album, genre, mood, emotion, track_id, vote,"
                " voted_at FROM votes WHERE profile = ? ORDER BY voted_at DESC, rowid DESC",
                conn,
                params=(_clean_profile(profile),),
            )
        frame["voted_at"] = pd.to_datetime(frame["voted_at"], utc=True, format="ISO8601")
        return frame

    def liked_songs(self, profile: str) -> pd.DataFrame:
        """The profile's thumbs-up tracks, newest first."""
        votes = self.votes(profile)
        return votes[votes["vote"] > 0].drop(columns="vote").reset_index(drop=True)

    def history(self, profile: str) -> pd.DataFrame:
        """Mood events of a profile in time order: recorded_at (UTC), emotion, mood, strategy."""
        with self._connect() as conn:
            frame = pd.read_sql_query(
                "SELECT recorded_at, emotion, mood, strategy, probabilities FROM mood_events"
                " WHERE profile = ? ORDER BY recorded_at, id",
                conn,
                params=(_clean_profile(profile),),
            )
        frame["recorded_at"] = pd.to_datetime(frame["recorded_at"], utc=True, format="ISO8601")
        return frame

    def mood_counts(self, profile: str, freq: str = "D") -> pd.DataFrame:
        """Mood events counted per period (``freq`` as in pandas, e.g. D or W) and mood."""
        history = self.history(profile)
        if history.empty:
            return pd.DataFrame(columns=["period", "mood", "count"])
        periods = history["recorded_at"].dt.tz_localize(None).dt.to_period(freq).dt.start_time
        counts = history.groupby([periods.rename("period"), "mood"]).size()
        return counts.rename("count").reset_index()

    def export_liked_csv(self, profile: str) -> str:
        """The profile's liked songs as CSV text (for a download button)."""
        liked = self.liked_songs(profile)
        export = pd.DataFrame(
            {
                "title": liked["title"],
                "artist": liked["artist"],
                "album": liked["album"],
                "genre": liked["genre"],
                "mood": liked["mood"],
                "emotion": liked["emotion"],
                "track_id": liked["track_id"],
                "spotify_url": liked["track_id"].map(
                    lambda tid: (
                        f"https://open.spotify.com/track/{tid}"
                        if isinstance(tid, str) and tid
                        else None
                    )
                ),
                "liked_at": liked["voted_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            columns=list(LIKED_CSV_COLUMNS),
        )
        buffer = io.StringIO()
        export.to_csv(buffer, index=False)
        return buffer.getvalue()

    def preference(self, profile: str) -> Preference:
        """Net votes of a profile per track, artist and genre (for Recommender.recommend)."""
        votes = self.votes(profile)
        if votes.empty:
            return Preference()
        artists = votes.groupby(votes["artist"].str.strip().str.lower())["vote"].sum()
        genres = votes.dropna(subset=["genre"])
        genre_votes = genres.groupby(genres["genre"].str.lower())["vote"].sum()
        return Preference(
            tracks=dict(zip(votes["track_key"], votes["vote"].astype(int), strict=True)),
            artists={k: int(v) for k, v in artists.items() if v},
            genres={k: int(v) for k, v in genre_votes.items() if v},
        )
