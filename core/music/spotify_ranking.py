"""Recommendations from Spotify's Web API, designed on what a new Spotify app can still use.

Since November 2024 Spotify answers new apps with 403/404 on recommendations, audio-features,
audio-analysis, related-artists and featured/category playlists, and since early 2026 `search`
returns at most 10 items per request. What still works with client credentials: the token
endpoint, search (tracks and playlists, with ``genre:`` filters), tracks, playlist items of
user playlists, album art and the embed player. So `SpotifyRecommender` searches tracks by the
genres that suit the face (the same affinity table as the local recommender) and one mood
playlist, pages through results 10 at a time, and ranks them by how many queries found them,
each query's weight, popularity and the profile's feedback. Spotify gives no audio features, so
the result's `features` are empty. The HTTP calls are core.music.spotify_client's.

Every error path raises `SpotifyUnavailable` with a message for the user; the app shows it and
falls back to the local catalog (`recommend_with_fallback` does both). Malformed items in
Spotify's answers (a null, a track without an id, name or artist, a playlist without an id) are
skipped with a debug log line.

A result's `artist` joins the track's artists with ", " ("A, B"), or with "; " when one of the
names has a comma itself ("Tyler, The Creator; Kali Uchis"), so `artist_names` splits it back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.labels import EMOTIONS
from core.music.feedback import Preference, excluded_keys
from core.music.spotify_client import (
    NOT_SET_UP,
    SEARCH_PAGE_LIMIT,
    SpotifyClient,
    SpotifyUnavailable,
)
from core.music.targets import (
    PLAYLIST_QUERY_WEIGHT,
    SPOTIFY_POPULARITY_WEIGHT,
    STRATEGY_VERBS,
    Probabilities,
    check_strategy,
    describe_face,
    emotion_weights,
    genre_keywords,
    mood_weights,
)
from core.music.tracks import Recommendation

if TYPE_CHECKING:
    from core.music.recommender import Recommender
    from core.settings import Settings

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class _Candidate:
    track: dict[str, Any]
    genre: str | None
    playlist: str | None


class SpotifyRecommender:
    """Track recommendations from Spotify search, through one `SpotifyClient`.

    Build it once and reuse it: the client keeps its access token and caches search results
    (see `SpotifyClient`). `genres_per_query` genre searches of `pages_per_genre` pages each,
    plus one mood playlist when `use_playlists`. Once Spotify answers the playlist step with 403
    (since February 2026 a client-credentials app may not read other people's playlist items),
    the recommender remembers it in `playlists_closed` and later recommendations skip that step.
    """

    def __init__(
        self,
        client: SpotifyClient,
        *,
        genres_per_query: int = 3,
        pages_per_genre: int = 2,
        use_playlists: bool = True,
    ) -> None:
        self.client = client
        self.genres_per_query = genres_per_query
        self.pages_per_genre = pages_per_genre
        self.use_playlists = use_playlists
        # Set on a 403 from the playlist step: it is closed to this app, not to one playlist
        # (a 404 may be one playlist's, so it does not count).
        self.playlists_closed = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        genres_per_query: int = 3,
        pages_per_genre: int = 2,
        use_playlists: bool = True,
        **client_kwargs: Any,
    ) -> SpotifyRecommender:
        """A recommender on `SpotifyClient.from_settings`; SpotifyUnavailable without
        credentials."""
        return cls(
            SpotifyClient.from_settings(settings, **client_kwargs),
            genres_per_query=genres_per_query,
            pages_per_genre=pages_per_genre,
            use_playlists=use_playlists,
        )

    def track(self, track_id: str) -> Recommendation:
        """One track by id (name, artists, album art, links)."""
        data = self.client.track(track_id)
        return self._to_recommendation(data, reason="Spotify track", score=0.0, genre=None)

    def probe(self) -> dict[str, str]:
        """Which endpoints this app may use now (see `SpotifyClient.probe`)."""
        return self.client.probe()

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
        check_strategy(strategy)
        if k <= 0:
            return []  # as the local catalog answers, and without a call to Spotify
        weights = emotion_weights(probabilities)
        dominant = max(weights, key=weights.__getitem__)
        moods = mood_weights(weights, strategy)
        target_mood = max(moods, key=moods.__getitem__)
        scores: dict[str, float] = {}
        candidates: dict[str, _Candidate] = {}

        def collect(tracks: list[dict[str, Any]], weight: float, genre: str | None,
                    playlist: str | None) -> None:  # fmt: skip
            for rank, track in enumerate(tracks or []):
                if not isinstance(track, Mapping):
                    log.debug("Skipped a Spotify result that is not a track object.")
                    continue
                track_id = track.get("id")
                name, artists = track.get("name"), self._artist_names(track)
                if not isinstance(track_id, str) or not track_id or not name or not artists:
                    log.debug("Skipped Spotify track %s: no id, name or artist.", track_id)
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
                    self.client.search_tracks(f'genre:"{genre}"', limit=per_genre),
                    weight,
                    genre,
                    None,
                )
            except SpotifyUnavailable as err:
                if err.status in (401, 429) or err.status is None:
                    raise  # credentials, rate limit, network: no point in more queries
                failures.append(err)
        if self.use_playlists and not self.playlists_closed:
            query = PLAYLIST_QUERIES[strategy][dominant]
            try:
                playlist = self._first_playlist(self.client.search_playlists(query, limit=3))
                if playlist is not None:
                    tracks = self.client.playlist_tracks(str(playlist["id"]), limit=30)
                    collect(tracks, PLAYLIST_QUERY_WEIGHT, None, playlist.get("name") or query)
            except SpotifyUnavailable as err:
                if not err.closed and err.status in (401, 429):
                    raise
                # Playlists are a bonus: closed or failing playlist endpoints are skipped, and
                # one closed to this app is not asked again.
                if err.closed and err.status == 403:
                    self.playlists_closed = True
                    log.debug("Spotify's playlist step is closed to this app: %s", err.message)
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
                    + SPOTIFY_POPULARITY_WEIGHT
                    * float(candidates[tid].track.get("popularity") or 0)
                    / 100
                    + (self._boost(candidates[tid], feedback) if feedback else 0.0)
                )
            ),
        )
        excluded = excluded_keys(exclude, feedback)
        seen_artists: set[str] = set()
        results: list[Recommendation] = []
        face = describe_face(weights)
        verb = STRATEGY_VERBS[strategy]
        for track_id in ranked:
            candidate = candidates[track_id]
            artist = self._artist_names(candidate.track)[0].lower()
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
    def _first_playlist(playlists: Iterable[Any] | None) -> Mapping[str, Any] | None:
        """The first playlist object with an id (Spotify lists nulls for hidden playlists)."""
        for playlist in playlists or []:
            if isinstance(playlist, Mapping) and playlist.get("id"):
                return playlist
            log.debug("Skipped a Spotify playlist result without an id.")
        return None

    @staticmethod
    def _artist_names(track: Mapping[str, Any]) -> list[str]:
        """The names of a track's artists (null or nameless artist objects left out)."""
        artists = track.get("artists")
        if not isinstance(artists, list | tuple):
            return []
        names = (a.get("name") for a in artists if isinstance(a, Mapping))
        return [name.strip() for name in names if isinstance(name, str) and name.strip()]

    @classmethod
    def _artists(cls, track: Mapping[str, Any]) -> str:
        """The artists as one credit: "A, B", or "A; B" when a name has a comma itself."""
        names = cls._artist_names(track)
        return ("; " if any("," in name for name in names) else ", ").join(names)

    def _boost(self, candidate: _Candidate, feedback: Preference) -> float:
        track = candidate.track
        return feedback.boost(str(track["id"]), self._artist_names(track), candidate.genre)

    def _feedback_note(self, candidate: _Candidate, feedback: Preference | None) -> str | None:
        if not feedback:
            return None
        track = candidate.track
        return feedback.explain(str(track["id"]), self._artist_names(track), candidate.genre)

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
            title=str(track.get("name") or ""),
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
    spotify: SpotifyRecommender | None,
    exclude: Iterable[str] = (),
    feedback: Preference | None = None,
) -> tuple[list[Recommendation], str | None]:
    """Spotify recommendations when possible, else the local catalog's, with a note why.

    `spotify` None means Spotify is not set up (no credentials): the note says so.
    """
    try:
        if spotify is None:
            raise SpotifyUnavailable(NOT_SET_UP)
        recs = spotify.recommend(probabilities, strategy, k, exclude=exclude, feedback=feedback)
        if recs:
            return recs, None
        note = "Spotify found nothing new for this mood. Showing the local catalog."
    except SpotifyUnavailable as err:
        note = err.message
        if "local catalog" not in note:
            note += " Showing the local catalog instead."
    return local.recommend(probabilities, strategy, k, exclude=exclude, feedback=feedback), note
