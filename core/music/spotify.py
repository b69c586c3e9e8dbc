"""Recommendations from Spotify's Web API, designed on what a new Spotify app can still use.

Since November 2024 Spotify answers new apps with 403/404 on recommendations, audio-features,
audio-analysis, related-artists and featured/category playlists, and since early 2026 `search`
returns at most 10 items per request. What still works with client credentials: the token
endpoint, search (tracks and playlists, with ``genre:`` filters), tracks, playlist items of
user playlists, album art and the embed player. So `SpotifyRecommender` searches tracks by the
genres that suit the face (the same affinity table as the local recommender) and one mood
playlist, pages through results 10 at a time, and ranks them by how many queries found them,
each query's weight, popularity and the profile's feedback. Spotify gives no audio features, so
the result's `features` are empty.

Every error path raises `SpotifyUnavailable` with a message for the user; the app shows it and
falls back to the local catalog (`recommend_with_fallback` does both).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
import spotipy
from requests.adapters import HTTPAdapter
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.exceptions import SpotifyException, SpotifyOauthError
from urllib3.util.retry import Retry

from core.labels import EMOTIONS
from core.music.feedback import Preference
from core.music.recommend import (
    STRATEGIES,
    STRATEGY_VERBS,
    Probabilities,
    Recommendation,
    Recommender,
    describe_face,
    emotion_weights,
    genre_keywords,
    mood_weights,
)

SPOTIFY_API_BASE = "https://api.spotify.com/v1/"
SPOTIFY_TOKEN_URL = "https://accounts.spotify.com/api/token"
SEARCH_PAGE_LIMIT = 10  # Spotify's cap on `limit` for search since early 2026
SERVER_ERRORS = (500, 502, 503, 504)

# Affinity keywords that are not Spotify genre names, and the genre searched instead.
SPOTIFY_GENRE_NAMES: dict[str, str | None] = {
    "upbeat": "happy",
    "soft": "soft rock",
    "lofi": None,  # "lo-fi" is searched already
    "instrumental": "piano",
    "experimental": "experimental",
}
# Playlist searches (free text) per strategy, by dominant emotion.
PLAYLIST_QUERIES: dict[str, dict[str, str]] = {
    "match": {
        "angry": "angry rock",
        "disgust": "angry punk",
        "fear": "dark ambient",
        "happy": "happy hits",
        "sad": "sad songs",
        "surprise": "experimental electronic",
        "neutral": "chill indie acoustic",
    },
    "uplift": dict.fromkeys(EMOTIONS, "mood booster upbeat"),
    "calm": dict.fromkeys(EMOTIONS, "calm relaxing"),
}
# Endpoints that Spotify closed to new apps in November 2024 (403/404 for them).
CLOSED_SINCE_2024 = frozenset(
    {"recommendations", "audio features", "audio analysis", "related artists",
     "featured playlists", "category playlists", "playlist items"}
)  # fmt: skip
POPULARITY_WEIGHT = 0.1
PLAYLIST_QUERY_WEIGHT = 0.8

T = TypeVar("T")

# spotipy logs every HTTP error at ERROR level; we turn them into SpotifyUnavailable instead.
# A NullHandler keeps them off stderr unless the app configures logging itself.
logging.getLogger("spotipy").addHandler(logging.NullHandler())


class SpotifyUnavailable(Exception):
    """Spotify cannot answer now; `str(error)` is a message for the user."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        closed: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.closed = closed  # True for 403/404: this endpoint is not open to this app


def _lookup(secrets: Mapping[str, Any] | None, *path: str) -> str | None:
    """A string from nested `secrets` (st.secrets or a dict); None when absent or unreadable."""
    node: Any = secrets
    try:
        for part in path:
            if node is None or part not in node:
                return None
            node = node[part]
    except Exception:  # st.secrets raises when there is no secrets.toml
        return None
    text = str(node).strip() if node is not None else ""
    return text or None


def credentials_from_env(secrets: Mapping[str, Any] | None = None) -> tuple[str, str] | None:
    """(client_id, client_secret) from st.secrets, else the environment; None when missing.

    Looks for ``[spotify] client_id / client_secret`` or top-level ``SPOTIFY_CLIENT_ID /
    SPOTIFY_CLIENT_SECRET`` in `secrets`, then the ``SPOTIFY_CLIENT_ID / SPOTIFY_CLIENT_SECRET``
    environment variables (spotipy's ``SPOTIPY_CLIENT_ID / SPOTIPY_CLIENT_SECRET`` also work).
    """
    candidates = [
        (_lookup(secrets, "spotify", "client_id"), _lookup(secrets, "spotify", "client_secret")),
        (_lookup(secrets, "SPOTIFY_CLIENT_ID"), _lookup(secrets, "SPOTIFY_CLIENT_SECRET")),
        (os.environ.get("SPOTIFY_CLIENT_ID"), os.environ.get("SPOTIFY_CLIENT_SECRET")),
        (os.environ.get("SPOTIPY_CLIENT_ID"), os.environ.get("SPOTIPY_CLIENT_SECRET")),
    ]
    for client_id, client_secret in candidates:
        if client_id and client_secret and client_id.strip() and client_secret.strip():
            return client_id.strip(), client_secret.strip()
    return None


def _retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _wait_text(seconds: float | None) -> str:
    if seconds is None:
        return "in a minute"
    if seconds >= 90:
        return f"in about {round(seconds / 60)} minutes"
    return f"in {max(1, round(seconds))} s"


@dataclass(frozen=True)
class _Candidate:
    track: dict[str, Any]
    genre: str | None
    playlist: str | None


class SpotifyRecommender:
    """Track recommendations from Spotify search (client-credentials flow).

    `api_base` and `token_url` default to Spotify's and exist so tests can use a local server.
    Timeouts and retries are deliberately short so a page never hangs: one retry on connection
    errors and 5xx, none on read timeouts; a 429 is retried once after its Retry-After when that
    is at most `max_retry_after` seconds, else reported at once.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        api_base: str = SPOTIFY_API_BASE,
        token_url: str = SPOTIFY_TOKEN_URL,
        timeout: float = 4.0,
        retries: int = 1,
        backoff_factor: float = 0.3,
        max_retry_after: float = 3.0,
        market: str | None = None,
        genres_per_query: int = 3,
        pages_per_genre: int = 2,
        use_playlists: bool = True,
        cache_seconds: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not client_id or not client_secret:
            raise SpotifyUnavailable(
                "Spotify is not set up: the client ID or secret is empty. "
                "Showing the local catalog."
            )
        self.timeout = timeout
        self.max_retry_after = max_retry_after
        self.market = market
        self.genres_per_query = genres_per_query
        self.pages_per_genre = pages_per_genre
        self.use_playlists = use_playlists
        self.cache_seconds = cache_seconds
        self._sleep = sleep
        self._cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
        retry = Retry(
            total=retries,
            connect=retries,
            read=False,  # re-raise read timeouts as themselves, never retry them
            status=retries,
            other=0,
            backoff_factor=backoff_factor,
            status_forcelist=SERVER_ERRORS,
            allowed_methods=frozenset({"GET", "POST"}),
            raise_on_status=False,  # hand the last 5xx to spotipy, which reports its status
            respect_retry_after_header=False,  # 429 is handled in _call, with a cap
        )
        session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._session = session
        self._auth = spotipy.SpotifyClientCredentials(
            client_id=client_id,
            client_secret=client_secret,
            requests_session=session,
            requests_timeout=timeout,
            cache_handler=MemoryCacheHandler(),
        )
        self._auth.OAUTH_TOKEN_URL = token_url  # instance attribute shadows the class default
        self._client = spotipy.Spotify(
            auth_manager=self._auth,
            requests_session=session,
            requests_timeout=timeout,
            retries=retries,
            status_retries=retries,
            backoff_factor=backoff_factor,
        )
        self._client.prefix = api_base if api_base.endswith("/") else api_base + "/"

    @classmethod
    def from_env(
        cls, secrets: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> SpotifyRecommender:
        """A recommender with credentials from `credentials_from_env`; raises if there are none."""
        credentials = credentials_from_env(secrets)
        if credentials is None:
            raise SpotifyUnavailable(
                "Spotify is not set up (no SPOTIFY_CLIENT_ID / SPOTIFY_CLIENT_SECRET in "
                "st.secrets or the environment). Showing the local catalog."
            )
        return cls(*credentials, **kwargs)

    # ------------------------------------------------------------------ HTTP calls

    def _call(self, what: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one spotipy call, turning every failure into SpotifyUnavailable."""
        refreshed = waited = False
        while True:
            try:
                return function(*args, **kwargs)
            except SpotifyOauthError as err:
                raise SpotifyUnavailable(
                    "Spotify did not accept this app's credentials "
                    f"({err.error or 'token request failed'}"
                    f"{': ' + err.error_description if err.error_description else ''}). "
                    "Check SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET.",
                    status=401,
                ) from err
            except SpotifyException as err:
                status = err.http_status
                if status == 401 and not refreshed:
                    refreshed = True
                    self._auth.cache_handler.save_token_to_cache(None)  # token may have expired
                    continue
                retry_after = _retry_after_seconds(err.headers) if status == 429 else None
                if status == 429 and not waited and (retry_after or 0) <= self.max_retry_after:
                    waited = True
                    self._sleep(retry_after if retry_after is not None else 1.0)
                    continue
                raise self._http_error(what, status, retry_after) from err
            except requests.exceptions.Timeout as err:
                raise SpotifyUnavailable(
                    f"Spotify did not answer {what} within {self.timeout:g} s. "
                    "Try again in a moment."
                ) from err
            except requests.exceptions.RequestException as err:
                raise SpotifyUnavailable(
                    f"Cannot reach Spotify ({type(err).__name__}). Check the internet connection."
                ) from err

    def _http_error(self, what: str, status: int, retry_after: float | None) -> SpotifyUnavailable:
        if status == 401:
            return SpotifyUnavailable(
                "Spotify rejected this app's access token (401). Check SPOTIFY_CLIENT_ID and "
                "SPOTIFY_CLIENT_SECRET.",
                status=status,
            )
        if status in (403, 404):
            why = (
                " Since November 2024 Spotify keeps it from new apps."
                if what in CLOSED_SINCE_2024
                else " Check the app's settings on Spotify's developer dashboard."
            )
            return SpotifyUnavailable(
                f"Spotify does not let this app use {what} ({status}).{why}",
                status=status,
                closed=True,
            )
        if status == 429:
            return SpotifyUnavailable(
                f"Spotify is rate-limiting this app; try again {_wait_text(retry_after)}.",
                status=status,
                retry_after=retry_after,
            )
        if status >= 500:
            return SpotifyUnavailable(
                f"Spotify had a server error ({status}) on {what}. Try again later.",
                status=status,
            )
        return SpotifyUnavailable(
            f"Spotify refused {what} ({status}). This is a bug in moodlens; please report it.",
            status=status,
        )

    def _cached(self, key: tuple[Any, ...], load: Callable[[], T]) -> T:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.cache_seconds:
            return hit[1]
        value = load()
        self._cache[key] = (now, value)
        return value

    def search_tracks(self, query: str, limit: int = 20) -> list[dict[str, Any]]:
        """Track objects for a search query, paged 10 at a time (Spotify's current cap)."""
        tracks: list[dict[str, Any]] = []
        offset = 0
        while len(tracks) < limit:
            page_size = min(SEARCH_PAGE_LIMIT, limit - len(tracks))
            page = self._cached(
                ("search", "track", query, page_size, offset),
                lambda o=offset, n=page_size: self._call(
                    "search",
                    self._client.search,
                    q=query,
                    limit=n,
                    offset=o,
                    type="track",
                    market=self.market,
                ),
            )
            items = [t for t in ((page or {}).get("tracks") or {}).get("items") or [] if t]
            tracks.extend(items)
            if len(items) < page_size or not ((page or {}).get("tracks") or {}).get("next"):
                break
            offset += page_size
        return tracks

    def search_playlists(self, query: str, limit: int = 5) -> list[dict[str, Any]]:
        """Playlist objects for a search query (Spotify returns nulls for hidden ones)."""
        page = self._cached(
            ("search", "playlist", query, limit),
            lambda: self._call(
                "playlist search",
                self._client.search,
                q=query,
                limit=min(limit, SEARCH_PAGE_LIMIT),
                type="playlist",
                market=self.market,
            ),
        )
        return [p for p in ((page or {}).get("playlists") or {}).get("items") or [] if p]

    def playlist_tracks(self, playlist_id: str, limit: int = 30) -> list[dict[str, Any]]:
        """Track objects of a playlist (user playlists; Spotify's own ones are closed)."""
        page = self._cached(
            ("playlist", playlist_id, limit),
            lambda: self._call(
                "playlist items",
                self._client.playlist_items,
                playlist_id,
                limit=limit,
                market=self.market,
                additional_types=("track",),
            ),
        )
        tracks = []
        for item in (page or {}).get("items") or []:
            track = (item or {}).get("track") or (item or {}).get("item")
            if track and track.get("id") and track.get("type", "track") == "track":
                tracks.append(track)
        return tracks

    def track(self, track_id: str) -> Recommendation:
        """One track by id (name, artists, album art, links)."""
        data = self._call("track lookup", self._client.track, track_id, market=self.market)
        return self._to_recommendation(data, reason="Spotify track", score=0.0, genre=None)

    def probe(self) -> dict[str, str]:
        """Which endpoints this app may use now: endpoint -> 'available' or why not."""
        report: dict[str, str] = {}

        def attempt(name: str, call: Callable[[], Any]) -> Any:
            try:
                result = call()
            except SpotifyUnavailable as err:
                report[name] = f"not available ({err.status})" if err.status else str(err)
                return None
            report[name] = "available"
            return result

        if attempt("token", lambda: self._call("token", self._auth.get_access_token,
                                                as_dict=False)) is None:  # fmt: skip
            return report
        found = attempt("search", lambda: self.search_tracks('genre:"pop"', limit=1))
        track_id = found[0]["id"] if found else None
        if track_id:
            attempt("track", lambda: self.track(track_id))
            attempt(
                "audio-features",
                lambda: self._call("audio features", self._client.audio_features, [track_id]),
            )
        attempt(
            "recommendations",
            lambda: self._call(
                "recommendations", self._client.recommendations, seed_genres=["pop"], limit=1
            ),
        )
        playlists = attempt("playlist search", lambda: self.search_playlists("happy", limit=1))
        if playlists:
            attempt("playlist items", lambda: self.playlist_tracks(playlists[0]["id"], limit=1))
        return report

    # ------------------------------------------------------------------ recommending

    def _genre_queries(self, weights: Mapping[str, float], strategy: str) -> dict[str, float]:
        """Spotify genre name -> weight (max 1) for the blended emotions."""
        scores: dict[str, float] = {}
        for emotion, weight in weights.items():
            keywords = genre_keywords(emotion, strategy)
            for keyword in keywords:
                genre = SPOTIFY_GENRE_NAMES.get(keyword, keyword)
                if genre:
                    scores[genre] = scores.get(genre, 0.0) + weight / len(keywords)
        ranked = sorted(scores.items(), key=lambda item: -item[1])[: self.genres_per_query]
        top = ranked[0][1] if ranked else 1.0
        return {genre: score / top for genre, score in ranked}

    def recommend(
        self,
        probabilities: Probabilities,
        strategy: str = "match",
        k: int = 5,
        exclude: Iterable[str] = (),
        feedback: Preference | None = None,
    ) -> list[Recommendation]:
        """`k` Spotify tracks for the face, by genre and mood-playlist search; see module doc."""
        if strategy not in STRATEGIES:
            raise ValueError(f"Unknown strategy {strategy!r}; choose one of {STRATEGIES}.")
        weights = emotion_weights(probabilities)
        dominant = max(weights, key=weights.__getitem__)
        moods = mood_weights(weights, strategy)
        target_mood = max(moods, key=moods.__getitem__)
        scores: dict[str, float] = {}
        candidates: dict[str, _Candidate] = {}

        def collect(tracks: list[dict[str, Any]], weight: float, genre: str | None,
                    playlist: str | None) -> None:  # fmt: skip
            for rank, track in enumerate(tracks):
                track_id = track.get("id")
                if not track_id or not track.get("name") or not track.get("artists"):
                    continue
                relevance = weight * (1.0 - 0.5 * rank / max(1, len(tracks)))
                scores[track_id] = scores.get(track_id, 0.0) + relevance
                if track_id not in candidates:
                    candidates[track_id] = _Candidate(track, genre, playlist)

        per_genre = SEARCH_PAGE_LIMIT * self.pages_per_genre
        failures: list[SpotifyUnavailable] = []
        for genre, weight in self._genre_queries(weights, strategy).items():
            try:
                collect(
                    self.search_tracks(f'genre:"{genre}"', limit=per_genre), weight, genre, None
                )
            except SpotifyUnavailable as err:
                if err.status in (401, 429) or err.status is None:
                    raise  # credentials, rate limit, network: no point in more queries
                failures.append(err)
        if self.use_playlists:
            query = PLAYLIST_QUERIES[strategy][dominant]
            try:
                for playlist in self.search_playlists(query, limit=3)[:1]:
                    tracks = self.playlist_tracks(playlist["id"], limit=30)
                    collect(tracks, PLAYLIST_QUERY_WEIGHT, None, playlist.get("name") or query)
            except SpotifyUnavailable as err:
                if not err.closed and err.status in (401, 429):
                    raise
                # Playlists are a bonus: closed or failing playlist endpoints are skipped.
        if not candidates:
            if failures:
                raise failures[0]
            raise SpotifyUnavailable(
                "Spotify found no tracks for this mood right now. Showing the local catalog."
            )
        ranked = sorted(
            candidates,
            key=lambda tid: (
                -(
                    scores[tid]
                    + POPULARITY_WEIGHT * float(candidates[tid].track.get("popularity") or 0) / 100
                    + (self._boost(candidates[tid], feedback) if feedback else 0.0)
                )
            ),
        )
        excluded = set(exclude)
        seen_artists: set[str] = set()
        results: list[Recommendation] = []
        face = describe_face(weights)
        verb = STRATEGY_VERBS[strategy]
        for track_id in ranked:
            candidate = candidates[track_id]
            artist = str(candidate.track["artists"][0].get("name", "")).strip().lower()
            if track_id in excluded or artist in seen_artists:
                continue
            seen_artists.add(artist)
            source = (
                f"{candidate.genre} on Spotify"
                if candidate.genre
                else f"from playlist '{candidate.playlist}'"
            )
            note = self._feedback_note(candidate, feedback)
            reason = f"{verb} {face}: {source}" + (f" · {note}" if note else "")
            results.append(
                self._to_recommendation(
                    candidate.track,
                    reason=reason,
                    score=scores[track_id],
                    genre=candidate.genre,
                    mood=target_mood,
                )
            )
            if len(results) == k:
                break
        return results

    @staticmethod
    def _artists(track: Mapping[str, Any]) -> str:
        return ", ".join(a.get("name", "") for a in track.get("artists") or [] if a)

    def _boost(self, candidate: _Candidate, feedback: Preference) -> float:
        track = candidate.track
        return feedback.boost(str(track["id"]), self._artists(track), candidate.genre)

    def _feedback_note(self, candidate: _Candidate, feedback: Preference | None) -> str | None:
        if not feedback:
            return None
        track = candidate.track
        return feedback.explain(str(track["id"]), self._artists(track), candidate.genre)

    def _to_recommendation(
        self,
        track: Mapping[str, Any],
        *,
        reason: str,
        score: float,
        genre: str | None,
        mood: str | None = None,
    ) -> Recommendation:
        album = track.get("album") or {}
        images = [i for i in album.get("images") or [] if i and i.get("url")]
        # The image nearest 300 px wide suits a card; Spotify lists 640, 300 and 64.
        image = min(images, key=lambda i: abs((i.get("width") or 300) - 300), default=None)
        release = str(album.get("release_date") or "")
        year = int(release[:4]) if release[:4].isdigit() else None
        popularity = track.get("popularity")
        return Recommendation(
            title=str(track.get("name", "")),
            artist=self._artists(track),
            album=album.get("name"),
            year=year,
            genre=genre,
            mood=mood,
            popularity=float(popularity) if popularity is not None else None,
            track_id=track.get("id"),
            reason=reason,
            score=round(float(score), 4),
            features={},
            image_url=image["url"] if image else None,
            external_url=(track.get("external_urls") or {}).get("spotify"),
            preview_url=track.get("preview_url"),
            source="spotify",
        )


def recommend_with_fallback(
    local: Recommender,
    probabilities: Probabilities,
    strategy: str = "match",
    k: int = 5,
    *,
    spotify: SpotifyRecommender | None = None,
    secrets: Mapping[str, Any] | None = None,
    exclude: Iterable[str] = (),
    feedback: Preference | None = None,
) -> tuple[list[Recommendation], str | None]:
    """Spotify recommendations when possible, else the local catalog's, with a note why."""
    try:
        client = spotify or SpotifyRecommender.from_env(secrets)
        recs = client.recommend(probabilities, strategy, k, exclude=exclude, feedback=feedback)
        if recs:
            return recs, None
        note = "Spotify found nothing new for this mood. Showing the local catalog."
    except SpotifyUnavailable as err:
        note = err.message
        if "local catalog" not in note:
            note += " Showing the local catalog instead."
    return local.recommend(probabilities, strategy, k, exclude=exclude, feedback=feedback), note


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m core.music.spotify {probe,recommend}`` with credentials from the environment."""
    parser = argparse.ArgumentParser(
        prog="python -m core.music.spotify", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("probe", help="report which Spotify endpoints this app may use")
    rec = commands.add_parser("recommend", help="recommend Spotify tracks for an emotion")
    rec.add_argument("--emotion", choices=EMOTIONS, required=True)
    rec.add_argument("--strategy", choices=STRATEGIES, default="match")
    rec.add_argument("-k", type=int, default=5)
    args = parser.parse_args(argv)
    try:
        client = SpotifyRecommender.from_env()
        if args.command == "probe":
            print(json.dumps(client.probe(), indent=2))
        else:
            recs = client.recommend({args.emotion: 1.0}, args.strategy, args.k)
            print(json.dumps([r.to_dict() for r in recs], indent=2, ensure_ascii=False))
    except SpotifyUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
