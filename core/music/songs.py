"""The songs service: one object that answers "which songs for this face?" for the pages.

`SongsService` is built from the run-time `Settings`, the active catalog's `Recommender` and the
`FeedbackStore`, once per process (the page layer caches it). It

* chooses between the local catalog and Spotify (when asked for and set up),
* falls back to the local catalog with a note for the user when Spotify cannot answer,
* applies the profile's thumbs up/down and records each mood event in the profile's history,
* owns ONE `SpotifyRecommender`, built on first use: its access token and its 10-minute cache of
  search results serve every later call instead of a fresh client (and token) per call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from core.labels import EMOTIONS
from core.music.feedback import Preference
from core.music.store import STORE_FAILURES, unavailable_note
from core.music.targets import Probabilities, dominant_emotion
from core.music.tracks import Recommendation

if TYPE_CHECKING:
    from core.music.feedback import FeedbackStore
    from core.music.recommender import Recommender
    from core.music.spotify_ranking import SpotifyRecommender
    from core.settings import Settings


log = logging.getLogger(__name__)


class Songs(NamedTuple):
    """Recommended songs and, when they are not what was asked for, a note why."""

    recommendations: list[Recommendation]
    note: str | None


class SongsService:
    """Songs for a face from the local catalog or Spotify; see the module doc.

    `spotify_options` go to `SpotifyRecommender.from_settings` (e.g. a short `timeout`), or pass
    a ready `spotify` recommender. Safe to share between the threads of a Streamlit server.
    """

    def __init__(
        self,
        settings: Settings,
        recommender: Recommender,
        feedback: FeedbackStore,
        *,
        spotify: SpotifyRecommender | None = None,
        spotify_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.recommender = recommender
        self.feedback = feedback
        self._spotify = spotify
        self._spotify_options = dict(spotify_options or {})
        self._lock = threading.Lock()

    @property
    def spotify_configured(self) -> bool:
        """True when Spotify credentials are set (the 'Live from Spotify' switch is usable)."""
        return self._spotify is not None or self.settings.spotify_credentials is not None

    @property
    def spotify(self) -> SpotifyRecommender | None:
        """The service's one Spotify recommender, built on first use; None without credentials."""
        if self._spotify is None and self.settings.spotify_credentials is not None:
            # Imported here: spotipy (and the redis client it imports) costs ~0.6 s.
            from core.music.spotify_ranking import SpotifyRecommender

            with self._lock:
                if self._spotify is None:
                    self._spotify = SpotifyRecommender.from_settings(
                        self.settings, **self._spotify_options
                    )
        return self._spotify

    def recommend(
        self,
        probabilities: Probabilities,
        strategy: str = "match",
        *,
        use_spotify: bool = False,
        profile: str = "default",
        k: int = 5,
        exclude: Iterable[str] = (),
        seed: int | None = None,
    ) -> Songs:
        """`k` songs for the face: from Spotify when `use_spotify` and it answers, else from
        the local catalog (with a note when Spotify was asked for); `seed` orders the local
        catalog's near-ties (see `Recommender.recommend`)."""
        preference, store_note = self._preference(profile)
        if not use_spotify:
            recs = self.recommender.recommend(
                probabilities, strategy, k, exclude=exclude, feedback=preference, seed=seed
            )
            return Songs(recs, store_note)
        from core.music.spotify_ranking import recommend_with_fallback

        recs, note = recommend_with_fallback(
            self.recommender,
            probabilities,
            strategy,
            k,
            spotify=self.spotify,
            exclude=exclude,
            feedback=preference,
        )
        return Songs(recs, " ".join(n for n in (note, store_note) if n) or None)

    def _preference(self, profile: str) -> tuple[Preference, str | None]:
        """The profile's thumbs, or none and a note when the database cannot be read."""
        try:
            return self.feedback.preference(profile), None
        except STORE_FAILURES as error:
            log.warning("feedback database unavailable: %s", type(error).__name__)
            return Preference(), unavailable_note(error)

    def songs_for_mood(
        self,
        profile: str,
        probabilities: Probabilities,
        strategy: str = "match",
        *,
        emotion: str | None = None,
        use_spotify: bool = False,
        k: int = 5,
        record: bool = True,
        seed: int | None = None,
    ) -> Songs:
        """Record the mood event in the profile's history (unless not `record`: the same
        reading again, for another strategy), then recommend (see `recommend`).

        `emotion` is the one recorded (default: the most likely one).
        """
        if record:
            self._record(profile, probabilities, strategy, emotion)
        return self.recommend(
            probabilities, strategy, use_spotify=use_spotify, profile=profile, k=k, seed=seed
        )

    def _record(
        self, profile: str, probabilities: Probabilities, strategy: str, emotion: str | None
    ) -> None:
        try:
            self.feedback.record_mood(
                profile,
                emotion or dominant_emotion(probabilities),
                strategy=strategy,
                probabilities=_as_mapping(probabilities),
            )
        except STORE_FAILURES as error:  # the songs matter more than the history
            log.warning("mood not recorded: %s", type(error).__name__)


def _as_mapping(probabilities: Probabilities) -> dict[str, float]:
    """Emotion -> probability as given (a mapping, or 7 numbers in EMOTIONS order)."""
    if isinstance(probabilities, Mapping):
        return {name: float(value) for name, value in probabilities.items()}
    return dict(zip(EMOTIONS, map(float, probabilities), strict=True))
