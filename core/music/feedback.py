"""Thumbs up/down and mood history per profile: a local SQLite file, or one shared PostgreSQL.

`FeedbackStore(path)` opens (and creates) a SQLite file; `FeedbackStore(url=...)` any database
URL `core.music.store` supports (``postgresql+psycopg://user:pass@host:5432/moodlens``, or
``sqlite:///file``); `FeedbackStore()` / `FeedbackStore.from_settings(settings)` uses
``MOODLENS_DATABASE_URL`` (``[database] url`` in secrets) when set, so every replica of the app
shares one database, else the file ``MOODLENS_FEEDBACK_DB`` or ``~/.moodlens/feedback.sqlite3``.
Every call runs in its own transaction on a pooled connection, so one store can be shared by the
threads of a Streamlit server and by several processes. `FeedbackStore.preference(profile)`
summarises a profile's votes as a `Preference` that ``Recommender.recommend(feedback=...)`` uses
to boost liked tracks, artists and genres and to demote disliked artists and genres; disliked
tracks are left out altogether (`excluded_keys`).

Artists are matched one by one (`artist_names`): a vote on "A feat. B" or Spotify's "A, B"
counts for A and for B, and a thumbs down on A also lowers a track by "A, B".
"""

from __future__ import annotations

import ast
import datetime as dt
import io
import json
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
from sqlalchemy import URL, Connection, func, select, union
from sqlalchemy.sql.expression import Executable

from core.labels import EMOTION_TO_MOOD, EMOTIONS
from core.music.playlists import csv_text
from core.music.store import (
    STORE_FAILURES,
    Database,
    StoreError,
    check_backend,
    database_url,
    mood_events,
    sqlite_path,
    votes,
)
from core.music.tracks import as_spotify_id, spotify_url, track_key
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

# Boosts added to a track's score by `Preference.boost` (scores are roughly 0..1.3): a liked
# track outranks equally fitting ones, not tracks for another mood. A disliked track gets no
# penalty: it is never recommended again (`excluded_keys`).
LIKED_TRACK_BOOST = 0.3
ARTIST_STEP, ARTIST_CAP = 0.04, 0.12
# After a try to open the feedback database that failed slowly (SLOW_OPEN_S or longer: a
# server that does not answer), calls fail at once for REOPEN_AFTER_S.
REOPEN_AFTER_S = 15.0
SLOW_OPEN_S = 1.0
GENRE_STEP, GENRE_CAP = 0.015, 0.06


def default_db_path(settings: Settings | None = None) -> Path:
    """``MOODLENS_FEEDBACK_DB`` if set, else ``~/.moodlens/feedback.sqlite3``."""
    settings = settings or Settings.from_env()
    return Path(settings.feedback_db or DEFAULT_DB_PATH).expanduser()


def feedback_url(settings: Settings | None = None) -> str:
    """The feedback database as a URL: ``MOODLENS_DATABASE_URL`` if set, else the SQLite file
    of `default_db_path` (a key for caching one store per database)."""
    settings = settings or Settings.from_env()
    if settings.database_url:
        try:
            return database_url(settings.database_url).render_as_string(hide_password=False)
        except StoreError:  # its store says why at every use
            return settings.database_url
    return database_url(path=default_db_path(settings)).render_as_string(hide_password=False)


HISTORY_POINTS = 2000  # moods My history draws (the newest); its totals count them all


def in_time_zone(frame: pd.DataFrame, column: str, zone: str | None) -> pd.DataFrame:
    """`frame` with its UTC timestamps in `column` shown in time zone `zone` (an IANA name, as
    browsers send it); UTC when it is None or unknown."""
    if column not in frame.columns or frame.empty:
        return frame
    try:
        tz = ZoneInfo(zone or "UTC")
    except (ValueError, ZoneInfoNotFoundError):
        tz = ZoneInfo("UTC")
    return frame.assign(**{column: pd.to_datetime(frame[column], utc=True).dt.tz_convert(tz)})


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


# ----------------------------------------------------------------------------- artist credits

# Where one credited artist ends and the next begins, besides commas: "A; B" (one dataset style),
# "A feat. B", "A ft. B", "A featuring B", "A (feat. B)". "&", "and", "x" and "/" are not
# delimiters: they are part of names ("Simon & Garfunkel", "Chloe x Halle", "AC/DC").
_CREDIT_BREAK = re.compile(r"\s*;\s*|\s+(?:feat\.?|ft\.?|featuring)\s+", re.I)
_BRACKETED_GUEST = re.compile(r"\s*[(\[]((?:feat|ft)\.?|featuring)\s+([^)\]]*)[)\]]", re.I)
# What may follow a comma inside one name: "Hank Williams, Jr.", "Sammy Davis, Sr.".
_NAME_SUFFIX = re.compile(r"(?:jr|sr|ii|iii|iv)\b\.?", re.I)
# A comma-list band name is single words, the last two joined by & or "and": "Earth, Wind & Fire",
# "Crosby, Stills, Nash & Young", "Peter, Paul and Mary".
_ONE_WORD = re.compile(r"\S+")
_LAST_PAIR = re.compile(r"\S+\s+(?:&|and)\s+\S+", re.I)
# Names with a comma that neither rule recognises (lower case, ", " after each comma). Spotify
# credits naming any artist with a comma are joined with "; " (spotify_ranking), so those stay
# unambiguous whatever the name.
COMMA_ARTISTS: frozenset[str] = frozenset(
    {"tyler, the creator", "slaughter beach, dog", "now, now", "black country, new road"}
)
_COMMA_ARTIST_PARTS = max(name.count(",") + 1 for name in COMMA_ARTISTS)


def _split_commas(piece: str) -> list[str]:
    """One credit split at the commas that separate artists, keeping the commas inside names:
    COMMA_ARTISTS, comma-list band names and name suffixes (see the rules above)."""
    if "," not in piece:
        return [piece]
    parts = [part.strip() for part in piece.split(",") if part.strip()]
    names: list[str] = []
    i = 0
    while i < len(parts):
        known = next(
            (
                stop
                for stop in range(min(len(parts), i + _COMMA_ARTIST_PARTS), i + 1, -1)
                if ", ".join(parts[i:stop]).lower() in COMMA_ARTISTS
            ),
            None,
        )
        words = i
        while words < len(parts) and _ONE_WORD.fullmatch(parts[words]):
            words += 1
        if known is not None:
            stop = known
        elif words > i and words < len(parts) and _LAST_PAIR.fullmatch(parts[words]):
            stop = words + 1
        elif names and _NAME_SUFFIX.fullmatch(parts[i]):
            names[-1] = f"{names[-1]}, {parts[i]}"
            i += 1
            continue
        else:
            stop = i + 1
        names.append(", ".join(parts[i:stop]))
        i = stop
    return names


@lru_cache(maxsize=65_536)
def _split_credit(text: str) -> tuple[str, ...]:
    """`artist_names` of one string (cached: catalogs repeat their artists)."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):  # "['A', 'B']": a list literal
        try:
            items = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            items = None
        if isinstance(items, list | tuple) and all(isinstance(i, str) for i in items):
            return _unique(i.strip() for i in items)
        text = text[1:-1].strip()
    text = _BRACKETED_GUEST.sub(r" feat. \2", text)  # "A (feat. B)" as "A feat. B"
    pieces = [piece.strip() for piece in _CREDIT_BREAK.split(text)]
    if ";" in text:  # a list delimited by ";" does not delimit by commas as well
        return _unique(pieces)
    return _unique(name for piece in pieces if piece for name in _split_commas(piece))


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for name in names:
        if name and name.lower() not in seen:
            seen[name.lower()] = name
    return tuple(seen.values())


def artist_names(artist: str | Iterable[str] | None) -> list[str]:
    """The individual artists of a credit, in order, as spelled (repeats dropped).

    A string is split at ";", "feat."/"ft."/"featuring" and at the commas that separate artists:
    not inside "Tyler, The Creator", "Earth, Wind & Fire" or "Hank Williams, Jr." (see
    COMMA_ARTISTS and `_split_commas`); a list literal "['A', 'B']" gives its items. Any other
    iterable (Spotify's artist objects' names) is taken as one name per item.
    """
    if isinstance(artist, str):
        return list(_split_credit(artist))
    if isinstance(artist, Iterable):
        return list(_unique(a.strip() for a in artist if isinstance(a, str)))
    return []  # None, NaN, pd.NA


def artist_keys(artist: str | Iterable[str] | None) -> list[str]:
    """`artist_names` in lower case: what votes are matched on."""
    return [name.lower() for name in artist_names(artist)]


def _per_artist(artists: Mapping[str, int]) -> dict[str, int]:
    """Net votes keyed by individual artist: a key such as "a, b" counts for a and for b."""
    net: dict[str, int] = {}
    for credit, vote in artists.items():
        for name in artist_keys(credit):
            net[name] = net.get(name, 0) + int(vote)
    return {name: vote for name, vote in net.items() if vote}  # votes that cancel: no opinion


def excluded_keys(exclude: Iterable[str] = (), feedback: Preference | None = None) -> set[str]:
    """Track keys a recommendation leaves out: `exclude` and every track `feedback` disliked."""
    keys = set(exclude)
    if feedback:
        keys |= feedback.disliked
    return keys


@dataclass(frozen=True)
class Preference:
    """What one profile liked: net votes per track key, artist (lower case) and genre.

    `artists` is keyed by individual artist; keys naming several ("A feat. B") are split.
    """

    tracks: Mapping[str, int] = field(default_factory=dict)
    artists: Mapping[str, int] = field(default_factory=dict)
    genres: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "artists", _per_artist(self.artists))

    def __bool__(self) -> bool:
        return bool(self.tracks or self.artists or self.genres)

    def artist_vote(self, artist: str | Iterable[str] | None) -> int:
        """Net votes on the individual artists of a credit, summed."""
        if not self.artists:
            return 0
        return sum(self.artists.get(name, 0) for name in artist_keys(artist))

    @property
    def disliked(self) -> frozenset[str]:
        """Keys of the tracks this profile gave a thumbs down: never recommended to it again
        (a score penalty alone lets a track that fits well enough come back)."""
        return frozenset(key for key, vote in self.tracks.items() if vote < 0)

    def boost(self, key: str, artist: str | Iterable[str], genre: str | None) -> float:
        """Score change for a track: liked tracks up, liked/disliked artists and genres up/down.

        `artist` is a credit string or the artists' names. Disliked tracks get no penalty: they
        are left out (`excluded_keys`).
        """
        total = LIKED_TRACK_BOOST if self.tracks.get(key, 0) > 0 else 0.0
        net_artist = self.artist_vote(artist)
        total += max(-ARTIST_CAP, min(ARTIST_CAP, ARTIST_STEP * net_artist))
        if genre:
            net_genre = self.genres.get(str(genre).lower(), 0)
            total += max(-GENRE_CAP, min(GENRE_CAP, GENRE_STEP * net_genre))
        return total

    def boost_many(
        self, keys: Sequence[str], artists: Sequence[str], genres: Sequence[Any]
    ) -> np.ndarray:
        """`boost` for many tracks at once (artists: credit strings; genres may be NaN)."""
        total = np.zeros(len(keys))
        if self.tracks:
            votes = np.array([self.tracks.get(k, 0) for k in keys])
            total += np.where(votes > 0, LIKED_TRACK_BOOST, 0.0)
        if self.artists:
            net = np.array([self.artist_vote(a) for a in artists], dtype=float)
            total += np.clip(ARTIST_STEP * net, -ARTIST_CAP, ARTIST_CAP)
        if self.genres:
            net = np.array(
                [self.genres.get(g.lower(), 0) if isinstance(g, str) else 0 for g in genres],
                dtype=float,
            )
            total += np.clip(GENRE_STEP * net, -GENRE_CAP, GENRE_CAP)
        return total

    def explain(self, key: str, artist: str | Iterable[str], genre: str | None) -> str | None:
        """A short note on how feedback moved this track, or None."""
        if self.tracks.get(key, 0) > 0:
            return "you liked it"
        if self.artist_vote(artist) > 0:
            liked = [a for a in artist_names(artist) if self.artists.get(a.lower(), 0) > 0]
            return f"you liked {' and '.join(liked)}"
        if genre and self.genres.get(str(genre).lower(), 0) > 0:
            return f"you like {genre}"
        return None


def _field(track: Any, name: str) -> Any:
    value = track.get(name) if isinstance(track, Mapping) else getattr(track, name, None)
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value


class FeedbackStore:
    """Votes and mood events of every profile, in one SQLite file or one shared database."""

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        url: str | None = None,
        *,
        settings: Settings | None = None,
    ) -> None:
        """`path`: a SQLite file; `url`: a database URL; neither: from `settings` (the
        environment when None) - MOODLENS_DATABASE_URL, else the default SQLite file."""
        if path is not None and url is not None:
            raise ValueError("Give FeedbackStore a path or a url, not both.")
        if path is None and url is None:
            settings = settings or Settings.from_env()
            url = settings.database_url
            if url is None:
                path = default_db_path(settings)
        # A URL moodlens cannot use (not a URL, another database) fails every use with its
        # StoreError, as a database that is down does: the pages go on without it, saying why.
        self._unusable: StoreError | None = None
        try:
            self.url: URL | None = database_url(url, path)
            self._backend = check_backend(self.url)
        except StoreError as error:
            self._unusable, self.url, self._backend = error, None, "unusable"
        self.path: Path | None = sqlite_path(self.url) if self.url is not None else None
        self._database: Database | None = None
        self._opening = threading.Lock()
        self._failure: tuple[float, BaseException] | None = None  # the last failed opening

    @property
    def _db(self) -> Database:
        """The database, connected (and its schema brought up to date) on first use, so a store
        made while its server is down works once the server is back; opened again after a
        failure (see core.music.store.STORE_FAILURES)."""
        if self._unusable is not None:
            raise StoreError(str(self._unusable)) from self._unusable
        if self._database is None:
            self._raise_recent_failure()
            with self._opening:
                if self._database is None:
                    self._raise_recent_failure()  # another thread's try just failed
                    started = time.monotonic()
                    try:
                        self._database = Database(self.url)
                    except STORE_FAILURES as error:
                        if time.monotonic() - started >= SLOW_OPEN_S:  # a quick one: retry now
                            self._failure = (time.monotonic(), error)
                        raise
                    self._failure = None
        return self._database

    def _raise_recent_failure(self) -> None:
        """StoreError at once while the last slow try to open the database failed under
        REOPEN_AFTER_S ago: a server that hangs would otherwise hold every session for its
        connect timeout (10 s), one after another, at every reading. (A quick failure, e.g. a
        folder that cannot be written or a refused connection, is tried again at once.)"""
        if self._failure and time.monotonic() - self._failure[0] < REOPEN_AFTER_S:
            cause = self._failure[1]
            detail = (str(getattr(cause, "orig", None) or cause).strip().splitlines() or [""])[0]
            raise StoreError(detail or type(cause).__name__) from cause

    @classmethod
    def from_settings(cls, settings: Settings) -> FeedbackStore:
        """The store `settings` name: its database_url, else its (default) SQLite file."""
        return cls(settings=settings)

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._backend

    def close(self) -> None:
        """Close the pooled connections (the store reconnects if used again)."""
        if self._database is not None:
            self._database.close()

    def __repr__(self) -> str:
        shown = self.url.render_as_string(hide_password=True) if self.url else "unusable URL"
        return f"FeedbackStore({shown!r})"

    def _frame(self, conn: Connection, query: Executable) -> pd.DataFrame:
        result = conn.execute(query)
        return pd.DataFrame.from_records(
            result.all(), columns=list(result.keys()), coerce_float=True
        )

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
        key = _field(track, "key") or track_key(track_id, title, artist)
        row = {
            "profile": _clean_profile(profile),
            "track_key": str(key),
            "title": str(title),
            "artist": str(artist),
            "album": _text(_field(track, "album")),
            "genre": _text(_field(track, "genre")),
            "mood": _text(_field(track, "mood")),
            "emotion": emotion,
            "track_id": _text(track_id),
            "vote": int(vote),
            "voted_at": _iso(when),
        }
        with self._db.write() as conn:
            conn.execute(_upsert_vote(conn, row))

    def clear_vote(self, profile: str, key: str) -> None:
        """Forget a profile's vote on a track."""
        with self._db.write() as conn:
            conn.execute(
                votes.delete().where(
                    votes.c.profile == _clean_profile(profile), votes.c.track_key == key
                )
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
        with self._db.write() as conn:
            conn.execute(
                mood_events.insert().values(
                    profile=_clean_profile(profile),
                    emotion=emotion,
                    mood=EMOTION_TO_MOOD[emotion],
                    strategy=strategy,
                    probabilities=probs,
                    recorded_at=_iso(when),
                )
            )

    def delete_profile(self, profile: str) -> None:
        """Remove every vote and mood event of a profile."""
        name = _clean_profile(profile)
        with self._db.write() as conn:
            conn.execute(votes.delete().where(votes.c.profile == name))
            conn.execute(mood_events.delete().where(mood_events.c.profile == name))

    # ------------------------------------------------------------------ reading

    def profiles(self) -> list[str]:
        """Every profile with a vote or a mood event, sorted."""
        query = union(select(votes.c.profile), select(mood_events.c.profile))
        with self._db.read() as conn:
            rows = conn.execute(query.order_by(query.selected_columns[0])).scalars().all()
        return list(rows)

    def vote_of(self, profile: str, key: str) -> int:
        """The profile's current vote on a track: +1, -1 or 0 when none."""
        query = select(votes.c.vote).where(
            votes.c.profile == _clean_profile(profile), votes.c.track_key == key
        )
        with self._db.read() as conn:
            vote = conn.execute(query).scalar()
        return int(vote) if vote is not None else 0

    def votes(self, profile: str) -> pd.DataFrame:
        """Every vote of a profile, newest first (voted_at as UTC timestamps)."""
        c = votes.c
        query = (
            select(
                c.track_key,
                c.title,
                c.artist,
                c.album,
                c.genre,
                c.mood,
                c.emotion,
                c.track_id,
                c.vote,
                c.voted_at,
            )
            .where(c.profile == _clean_profile(profile))
            .order_by(c.voted_at.desc(), c.id.desc())
        )
        with self._db.read() as conn:
            frame = self._frame(conn, query)
        frame["voted_at"] = pd.to_datetime(frame["voted_at"], utc=True, format="ISO8601")
        return frame

    def liked_songs(self, profile: str) -> pd.DataFrame:
        """The profile's thumbs-up tracks, newest first."""
        votes = self.votes(profile)
        return votes[votes["vote"] > 0].drop(columns="vote").reset_index(drop=True)

    def history(self, profile: str, latest: int | None = None) -> pd.DataFrame:
        """Mood events of a profile in time order: recorded_at (UTC), emotion, mood, strategy;
        only the newest `latest` of them when it is given (read through the profile's index, so
        a long history costs the page no more than a short one)."""
        c = mood_events.c
        query = select(c.recorded_at, c.emotion, c.mood, c.strategy, c.probabilities).where(
            c.profile == _clean_profile(profile)
        )
        if latest is None:
            query = query.order_by(c.recorded_at, c.id)
        else:
            query = query.order_by(c.recorded_at.desc(), c.id.desc()).limit(max(int(latest), 0))
        with self._db.read() as conn:
            frame = self._frame(conn, query)
        if latest is not None:
            frame = frame.iloc[::-1].reset_index(drop=True)
        frame["recorded_at"] = pd.to_datetime(frame["recorded_at"], utc=True, format="ISO8601")
        return frame

    def emotion_totals(self, profile: str) -> dict[str, int]:
        """How many mood events of each emotion the profile has, most frequent first (counted
        by the database, for histories too long to read whole)."""
        c = mood_events.c
        count = func.count()
        query = (
            select(c.emotion, count)
            .where(c.profile == _clean_profile(profile))
            .group_by(c.emotion)
            .order_by(count.desc(), c.emotion)
        )
        with self._db.read() as conn:
            return {emotion: int(n) for emotion, n in conn.execute(query).all()}

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
                    lambda tid: spotify_url(tid) if as_spotify_id(tid) else None
                ),
                "liked_at": liked["voted_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            columns=list(LIKED_CSV_COLUMNS),
        )
        for column in ("title", "artist", "album", "genre", "mood", "emotion", "track_id"):
            export[column] = export[column].map(lambda v: v if pd.isna(v) else csv_text(v))
        buffer = io.StringIO()
        export.to_csv(buffer, index=False)
        return buffer.getvalue()

    def preference(self, profile: str) -> Preference:
        """Net votes of a profile per track, artist and genre (for Recommender.recommend)."""
        votes = self.votes(profile)
        if votes.empty:
            return Preference()
        # Net votes per credit as stored; Preference splits each credit into its artists once
        # (a vote on "A feat. B" counts for A and for B).
        credited = votes.dropna(subset=["artist"])
        credit_votes = credited.groupby(credited["artist"].astype(str))["vote"].sum()
        genres = votes.dropna(subset=["genre"])
        genre_votes = genres.groupby(genres["genre"].str.lower())["vote"].sum()
        return Preference(
            tracks=dict(zip(votes["track_key"], votes["vote"].astype(int), strict=True)),
            artists={str(k): int(v) for k, v in credit_votes.items()},
            genres={k: int(v) for k, v in genre_votes.items() if v},
        )


def _text(value: Any) -> str | None:
    """Optional text columns as text (a catalog may hold numbers, e.g. a numeric album)."""
    return None if value is None else str(value)


def _upsert_vote(conn: Connection, row: dict[str, Any]) -> Executable:
    """INSERT ... ON CONFLICT (profile, track_key) DO UPDATE, in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # Database refuses other backends; kept for a clear message
        raise StoreError(f"No vote upsert for the {conn.dialect.name} backend.")
    stmt = insert(votes).values(**row)
    return stmt.on_conflict_do_update(
        index_elements=[votes.c.profile, votes.c.track_key],
        set_={
            "vote": stmt.excluded.vote,
            "voted_at": stmt.excluded.voted_at,
            "emotion": func.coalesce(stmt.excluded.emotion, votes.c.emotion),
        },
    )
