"""Emotion -> music recommendations from a normalised catalog (see core.music.catalog).

How a query is answered (`Recommender.recommend`):

1. The face's probabilities are turned into emotion weights: a confident face (top probability
   >= 0.6) counts as its dominant emotion alone; an ambiguous one as a probability-weighted blend
   of the emotions above 0.15 (at most three).
2. Each (strategy, emotion) has a target point in audio-feature space (`MATCH_TARGETS`, moved by
   the strategy: `uplift` towards positive valence and energy, `calm` towards low energy and high
   acousticness), mood weights (`STRATEGY_MOODS`) and genre keywords (`GENRE_AFFINITY`).
   Targets live in the scaled feature space of `scale_features`: Spotify's 0..1 features as they
   are, tempo 60..180 BPM and loudness -30..0 dB mapped onto 0..1, so "low energy" means the same
   on every catalog. The blend averages targets, mood weights and genre affinities.
3. Catalogs with audio features: a k-nearest-neighbour search (scikit-learn) around the target in
   the weighted scaled space gives a candidate pool, re-ranked by closeness + mood agreement
   + genre affinity + a small popularity tie-breaker + the profile's feedback. Catalogs without
   features (the starter catalog) rank by mood weight + genre affinity + popularity + feedback.
4. Diversity: no artist appears twice in one list. Each track gets a one-line reason.

`Recommender.more_like_this` finds neighbours of a track inside its k-means cluster (k chosen by
silhouette, clusters named by their mood mix). CLI: ``python -m core.music.recommend --help``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.labels import EMOTIONS, MOODS
from core.music.catalog import (
    MOOD_CONFIDENCE,
    CatalogError,
    feature_columns,
    has_audio_features,
    load_catalog,
    load_default_catalog,
)
from core.music.feedback import Preference

STRATEGIES: tuple[str, ...] = ("match", "uplift", "calm")
SPOTIFY_TRACK_URL = "https://open.spotify.com/track/"
SPOTIFY_EMBED_URL = "https://open.spotify.com/embed/track/"

Probabilities = Mapping[str, float] | Sequence[float] | np.ndarray

# Relative importance of each audio feature in the distance to a target.
FEATURE_WEIGHTS: dict[str, float] = {
    "valence": 1.0,
    "energy": 1.0,
    "acousticness": 0.6,
    "danceability": 0.5,
    "instrumentalness": 0.3,
    "loudness": 0.3,
    "tempo": 0.3,
    "speechiness": 0.15,
    "liveness": 0.05,
}

# Fixed ranges mapped onto 0..1 for the features that are not already 0..1.
FEATURE_RANGES: dict[str, tuple[float, float]] = {"tempo": (60.0, 180.0), "loudness": (-30.0, 0.0)}

# Where each emotion's "match" music sits in scaled feature space (see `scale_features`),
# guided by the mood medians of data_moods.csv. Features left out take DEFAULT_TARGET.
DEFAULT_TARGET: dict[str, float] = {
    "valence": 0.5, "energy": 0.5, "danceability": 0.55, "acousticness": 0.3,
    "instrumentalness": 0.05, "loudness": 0.7, "tempo": 0.5, "speechiness": 0.05,
    "liveness": 0.15,
}  # fmt: skip
MATCH_TARGETS: dict[str, dict[str, float]] = {
    "angry": {"valence": 0.25, "energy": 0.9, "danceability": 0.5, "acousticness": 0.02,
              "tempo": 0.6, "loudness": 0.88},
    "disgust": {"valence": 0.25, "energy": 0.78, "danceability": 0.45, "acousticness": 0.1,
                "tempo": 0.55, "loudness": 0.82},
    "fear": {"valence": 0.15, "energy": 0.25, "danceability": 0.35, "acousticness": 0.7,
             "tempo": 0.45, "loudness": 0.5, "instrumentalness": 0.6},
    "happy": {"valence": 0.75, "energy": 0.75, "danceability": 0.7, "acousticness": 0.1,
              "tempo": 0.6, "loudness": 0.78},
    "sad": {"valence": 0.2, "energy": 0.3, "danceability": 0.45, "acousticness": 0.65,
            "tempo": 0.45, "loudness": 0.6},
    "surprise": {"valence": 0.55, "energy": 0.85, "danceability": 0.65, "acousticness": 0.05,
                 "tempo": 0.65, "loudness": 0.82, "instrumentalness": 0.3},
    "neutral": {"valence": 0.5, "energy": 0.5, "danceability": 0.55, "acousticness": 0.4,
                "tempo": 0.5, "loudness": 0.7},
}  # fmt: skip
# `uplift` moves the match target this far towards UPLIFT_POLE; `calm` towards CALM_POLE.
UPLIFT_POLE: dict[str, float] = {
    "valence": 0.85, "energy": 0.8, "danceability": 0.72, "tempo": 0.6, "loudness": 0.8,
}  # fmt: skip
CALM_POLE: dict[str, float] = {
    "energy": 0.1, "acousticness": 0.95, "tempo": 0.4, "loudness": 0.35, "danceability": 0.4,
    "instrumentalness": 0.8, "valence": 0.3, "speechiness": 0.04,
}  # fmt: skip
UPLIFT_STEP = 0.65
CALM_STEP = 0.75
CALM_VALENCE_STEP = 0.3  # calm keeps most of the emotion's colour (valence)
# Medians of data_moods.csv's moods (scaled), to estimate moods of unlabelled clusters.
MOOD_PROTOTYPES: dict[str, dict[str, float]] = {
    "Calm": {"valence": 0.12, "energy": 0.12, "acousticness": 0.97},
    "Energetic": {"valence": 0.43, "energy": 0.91, "acousticness": 0.0},
    "Happy": {"valence": 0.59, "energy": 0.78, "acousticness": 0.05},
    "Sad": {"valence": 0.23, "energy": 0.36, "acousticness": 0.67},
}
# Mood weights per strategy and emotion. `match` mirrors the feeling (iso principle), so angry
# and disgust go to Energetic music rather than labels.EMOTION_TO_MOOD's Calm, which is what
# the `calm` strategy is for.
STRATEGY_MOODS: dict[str, dict[str, dict[str, float]]] = {
    "match": {
        "angry": {"Energetic": 1.0},
        "disgust": {"Energetic": 0.6, "Sad": 0.4},
        "fear": {"Calm": 0.7, "Sad": 0.3},
        "happy": {"Happy": 1.0, "Energetic": 0.3},
        "sad": {"Sad": 1.0, "Calm": 0.3},
        "surprise": {"Energetic": 1.0, "Happy": 0.3},
        "neutral": {"Happy": 0.6, "Calm": 0.4},
    },
    "uplift": {
        "angry": {"Happy": 0.7, "Energetic": 0.3},
        "disgust": {"Happy": 0.7, "Energetic": 0.3},
        "fear": {"Happy": 0.8, "Energetic": 0.2},
        "happy": {"Happy": 0.6, "Energetic": 0.4},
        "sad": {"Happy": 0.8, "Energetic": 0.2},
        "surprise": {"Energetic": 0.6, "Happy": 0.4},
        "neutral": {"Happy": 0.7, "Energetic": 0.3},
    },
    "calm": {emotion: {"Calm": 1.0} for emotion in EMOTIONS},
}

# The research's genre affinity table (disgust, absent from it, borrows angry's row plus punk).
GENRE_AFFINITY: dict[str, tuple[str, ...]] = {
    "happy": ("pop", "dance", "upbeat"),
    "sad": ("soft", "classical", "blues"),
    "angry": ("rock", "metal"),
    "disgust": ("rock", "metal", "punk"),
    "fear": ("ambient", "instrumental", "chill"),
    "surprise": ("electronic", "experimental", "jazz"),
    "neutral": ("acoustic", "lo-fi", "lofi", "indie"),
}
CALM_GENRES: tuple[str, ...] = (
    "ambient", "instrumental", "chill", "classical", "acoustic", "lo-fi", "lofi", "new age",
)  # fmt: skip

# Score weights: closeness to the target is in 0..1; the others are added to it.
MOOD_WEIGHT = 0.15
GENRE_WEIGHT = 0.10
POPULARITY_WEIGHT = 0.02  # a tie-breaker, no more
CONFIDENT_PROBABILITY = 0.6
BLEND_MIN_PROBABILITY = 0.15
BLEND_MAX_EMOTIONS = 3

_FEATURE_WORDS: dict[str, tuple[str, str, str]] = {
    "valence": ("dark", "bittersweet", "bright"),
    "energy": ("gentle", "steady", "high-energy"),
    "danceability": ("still", "groovy", "danceable"),
    "acousticness": ("electric", "part-acoustic", "acoustic"),
    "instrumentalness": ("vocal", "mostly vocal", "instrumental"),
    "tempo": ("slow", "mid-tempo", "fast"),
    "loudness": ("quiet", "medium-loud", "loud"),
    "speechiness": ("sung", "sung", "wordy"),
    "liveness": ("studio", "studio", "live"),
}
_EMOTION_ADJECTIVES = {
    "angry": "angry", "disgust": "disgusted", "fear": "fearful", "happy": "happy", "sad": "sad",
    "surprise": "surprised", "neutral": "neutral",
}  # fmt: skip
STRATEGY_VERBS = {"match": "Matches", "uplift": "Lifts", "calm": "Calms"}
# The features a strategy promises to move, shown in its reasons.
_STRATEGY_FEATURES = {
    "match": ("valence", "energy"),
    "uplift": ("valence", "energy"),
    "calm": ("energy", "acousticness"),
}


@dataclass(frozen=True)
class Recommendation:
    """One recommended track and why it was chosen."""

    title: str
    artist: str
    album: str | None
    year: int | None
    genre: str | None
    mood: str | None
    popularity: float | None
    track_id: str | None
    reason: str
    score: float
    features: dict[str, float] = field(default_factory=dict)
    image_url: str | None = None
    external_url: str | None = None
    preview_url: str | None = None
    source: str = "catalog"

    @property
    def key(self) -> str:
        """Stable identity of the track: its Spotify id, else artist and title."""
        return track_key(self.track_id, self.title, self.artist)

    @property
    def url(self) -> str | None:
        """Link to the track on Spotify, when it has an id."""
        if self.external_url:
            return self.external_url
        return spotify_url(self.track_id) if self.track_id else None

    @property
    def embed(self) -> str | None:
        """Spotify embed-player URL, when the track has an id."""
        return embed_url(self.track_id) if self.track_id else None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict, with key, url and embed added."""
        return {**asdict(self), "key": self.key, "url": self.url, "embed_url": self.embed}


def track_key(track_id: str | None, title: str, artist: str) -> str:
    """Identity of a track: the Spotify id when known, else ``artist::title`` lower-cased."""
    if track_id:
        return str(track_id)
    return f"{str(artist).strip().lower()}::{str(title).strip().lower()}"


def spotify_url(track_id: str) -> str:
    """Public Spotify page of a track."""
    return f"{SPOTIFY_TRACK_URL}{track_id}"


def embed_url(track_id: str) -> str:
    """Spotify's embeddable player for a track (for an iframe)."""
    return f"{SPOTIFY_EMBED_URL}{track_id}"


# --------------------------------------------------------------------------- emotions -> targets


def normalise_probabilities(probabilities: Probabilities) -> dict[str, float]:
    """Emotion -> probability over EMOTIONS, non-negative and summing to 1.

    Accepts a mapping keyed by emotion names (missing emotions count as 0) or a sequence of 7
    numbers in EMOTIONS order. Raises ValueError on unknown names, wrong length or no mass.
    """
    if isinstance(probabilities, Mapping):
        unknown = sorted(set(probabilities) - set(EMOTIONS))
        if unknown:
            raise ValueError(f"Unknown emotion(s) {unknown}; expected some of {EMOTIONS}.")
        values = np.array([float(probabilities.get(e, 0.0)) for e in EMOTIONS])
    else:
        values = np.asarray(probabilities, dtype=float).ravel()
        if values.shape != (len(EMOTIONS),):
            raise ValueError(
                f"Expected {len(EMOTIONS)} probabilities in {EMOTIONS} order, got {values.size}."
            )
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("Probabilities must be finite and non-negative.")
    total = values.sum()
    if total <= 0:
        raise ValueError("Probabilities sum to zero: no emotion to recommend for.")
    return dict(zip(EMOTIONS, (values / total).tolist(), strict=True))


def dominant_emotion(probabilities: Probabilities) -> str:
    """The most likely emotion."""
    probs = normalise_probabilities(probabilities)
    return max(probs, key=probs.__getitem__)


def emotion_weights(probabilities: Probabilities) -> dict[str, float]:
    """The emotions a query is built from: the dominant one, or a blend when ambiguous."""
    probs = normalise_probabilities(probabilities)
    ranked = sorted(probs.items(), key=lambda item: -item[1])
    if ranked[0][1] >= CONFIDENT_PROBABILITY:
        return {ranked[0][0]: 1.0}
    kept = [(e, p) for e, p in ranked[:BLEND_MAX_EMOTIONS] if p >= BLEND_MIN_PROBABILITY]
    kept = kept or ranked[:1]
    total = sum(p for _, p in kept)
    return {e: p / total for e, p in kept}


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy {strategy!r}; choose one of {STRATEGIES}.")


def emotion_target(emotion: str, strategy: str) -> dict[str, float]:
    """Target of every audio feature (scaled, 0..1) for one emotion under a strategy."""
    _check_strategy(strategy)
    target = DEFAULT_TARGET | MATCH_TARGETS[emotion]
    if strategy == "uplift":
        for feature, pole in UPLIFT_POLE.items():
            target[feature] += UPLIFT_STEP * (pole - target[feature])
    elif strategy == "calm":
        for feature, pole in CALM_POLE.items():
            step = CALM_VALENCE_STEP if feature == "valence" else CALM_STEP
            target[feature] += step * (pole - target[feature])
    return target


def blended_target(weights: Mapping[str, float], strategy: str) -> dict[str, float]:
    """Probability-weighted average of the emotions' targets."""
    targets = [(w, emotion_target(e, strategy)) for e, w in weights.items()]
    return {f: sum(w * t[f] for w, t in targets) for f in FEATURE_WEIGHTS}


def mood_weights(weights: Mapping[str, float], strategy: str) -> dict[str, float]:
    """How much each mood suits the (blended) emotions under a strategy (0..1)."""
    _check_strategy(strategy)
    blended = dict.fromkeys(MOODS, 0.0)
    for emotion, weight in weights.items():
        for mood, value in STRATEGY_MOODS[strategy][emotion].items():
            blended[mood] += weight * value
    return blended


def genre_keywords(emotion: str, strategy: str) -> tuple[str, ...]:
    """Genre keywords that suit an emotion under a strategy."""
    _check_strategy(strategy)
    if strategy == "calm":
        return CALM_GENRES
    if strategy == "uplift":
        extra = GENRE_AFFINITY["surprise"] if emotion == "surprise" else ()
        return GENRE_AFFINITY["happy"] + extra
    return GENRE_AFFINITY[emotion]


def describe_face(weights: Mapping[str, float]) -> str:
    if len(weights) == 1:
        adjective = _EMOTION_ADJECTIVES[next(iter(weights))]
        return f"{'an' if adjective[0] in 'aeiou' else 'a'} {adjective} face"
    parts = "/".join(weights)
    shares = "/".join(f"{w:.0%}" for w in weights.values())
    return f"a mixed {parts} face ({shares})"


def _none_if_na(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _float_or_none(value: Any) -> float | None:
    value = _none_if_na(value)
    return float(value) if value is not None else None


def scale_features(raw: np.ndarray, features: Sequence[str]) -> np.ndarray:
    """Raw audio features (columns in `features` order) mapped onto 0..1 (see FEATURE_RANGES)."""
    scaled = np.array(raw, dtype=float, copy=True)
    for i, feature in enumerate(features):
        low, high = FEATURE_RANGES.get(feature, (0.0, 1.0))
        scaled[:, i] = (scaled[:, i] - low) / (high - low)
    return np.clip(scaled, 0.0, 1.0)


def _level(scaled: float) -> int:
    return 0 if scaled < 1 / 3 else (2 if scaled > 2 / 3 else 1)


def _format_feature(feature: str, value: float) -> str:
    if feature == "tempo":
        return f"{value:.0f} BPM"
    if feature == "loudness":
        return f"{value:.0f} dB"
    return f"{feature} {value:.2f}"


# --------------------------------------------------------------------------- clustering


@dataclass(frozen=True)
class Clustering:
    """k-means clusters of a catalog's tracks in the recommender's feature space."""

    k: int
    silhouette: float
    labels: np.ndarray
    names: tuple[str, ...]
    sizes: tuple[int, ...]
    mood_mix: pd.DataFrame  # rows: cluster names; columns: MOODS; shares summing to 1
    moods_estimated: bool  # True when moods came from features, not catalog labels

    def name_of(self, row: int) -> str:
        return self.names[int(self.labels[row])]


def _heuristic_moods(scaled: pd.DataFrame) -> np.ndarray:
    """A rough mood per track: the nearest of MOOD_PROTOTYPES (for unlabelled catalogs)."""
    dims = [f for f in ("valence", "energy", "acousticness") if f in scaled.columns]
    points = scaled[dims].to_numpy()
    prototypes = np.array([[MOOD_PROTOTYPES[m][f] for f in dims] for m in MOODS])
    nearest = np.linalg.norm(points[:, None, :] - prototypes[None, :, :], axis=2).argmin(axis=1)
    return np.array(MOODS, dtype=object)[nearest]


# --------------------------------------------------------------------------- recommender


class Recommender:
    """Recommendations over one catalog; build once per catalog, query many times."""

    def __init__(self, catalog: pd.DataFrame, pool_size: int = 120) -> None:
        self.catalog = catalog.reset_index(drop=True)
        self.name = str(catalog.attrs.get("name", "catalog"))
        self.pool_size = pool_size
        self.features: list[str] = (
            [f for f in feature_columns(self.catalog) if f in FEATURE_WEIGHTS]
            if has_audio_features(self.catalog)
            else []
        )
        n = len(self.catalog)
        columns = ("title", "artist", "album", "year", "genre", "mood", "popularity", "track_id")
        self._values = {c: self.catalog[c].to_numpy(dtype=object) for c in columns}
        popularity = pd.to_numeric(self.catalog["popularity"], errors="coerce")
        self._popularity = (popularity.fillna(0.0).to_numpy(float) / 100.0).clip(0.0, 1.0)
        title_key = self.catalog["title"].str.strip().str.lower()
        artist_key = self.catalog["artist"].str.strip().str.lower()
        self._keys = self.catalog["track_id"].fillna(artist_key + "::" + title_key).to_numpy(object)
        primary_artist = artist_key.str.replace(r"(;|,\s| feat\. | ft\. ).*$", "", regex=True)
        self._artist_codes, _ = pd.factorize(primary_artist)
        self._artist_lower = artist_key.to_numpy(object)
        self._genre_codes, self._genres = pd.factorize(self.catalog["genre"])
        mood_codes = pd.Categorical(self.catalog["mood"], categories=list(MOODS)).codes
        self._mood_codes = mood_codes.astype(np.int16)
        confidence = (
            self.catalog[MOOD_CONFIDENCE].fillna(1.0).to_numpy(float)
            if MOOD_CONFIDENCE in self.catalog
            else np.ones(n)
        )
        self._mood_confidence = np.where(self._mood_codes >= 0, confidence, 0.0)
        self._genre_cache: dict[tuple[str, ...], np.ndarray] = {}
        self._row_of_key = self._build_key_lookup()
        if self.features:
            self._build_feature_index()

    # ------------------------------------------------------------------ index

    def _build_feature_index(self) -> None:
        from sklearn.neighbors import KDTree

        self._raw = self.catalog[self.features].to_numpy(dtype=float)
        self._scaled = scale_features(self._raw, self.features)
        self._weights = np.sqrt(np.array([FEATURE_WEIGHTS[f] for f in self.features]))
        self._max_distance = float(np.linalg.norm(self._weights))
        self._space = self._scaled * self._weights
        # KDTree directly: NearestNeighbors.kneighbors adds ~2 ms of validation and joblib setup.
        self._index = KDTree(self._space, leaf_size=40)

    @property
    def uses_features(self) -> bool:
        """True when recommendations come from audio features (else mood and genre)."""
        return bool(self.features)

    def _build_key_lookup(self) -> dict[str, int]:
        """Track key -> first row with it."""
        count = len(self._keys)
        return dict(zip(self._keys[::-1].tolist(), range(count - 1, -1, -1), strict=True))

    def _genre_affinity(self, keywords: tuple[str, ...]) -> np.ndarray:
        """1.0 per distinct genre containing one of `keywords`, else 0.0 (cached)."""
        cached = self._genre_cache.get(keywords)
        if cached is None:
            genres = pd.Series(self._genres, dtype="str")
            pattern = "|".join(pd.Series(keywords).str.replace(r"([^\w\s])", r"\\\1", regex=True))
            matches = genres.str.contains(pattern, regex=True) if len(genres) else genres
            cached = np.append(matches.to_numpy(dtype=bool).astype(float), 0.0)  # code -1: none
            self._genre_cache[keywords] = cached
        return cached

    # ------------------------------------------------------------------ scoring

    def _query_terms(
        self, weights: Mapping[str, float], strategy: str
    ) -> tuple[np.ndarray, list[tuple[float, np.ndarray]]]:
        moods = mood_weights(weights, strategy)
        mood_vector = np.array([moods[m] for m in MOODS] + [0.0])  # index -1: no mood
        genre_terms = [
            (w, self._genre_affinity(genre_keywords(e, strategy))) for e, w in weights.items()
        ]
        return mood_vector, genre_terms

    def _side_scores(
        self,
        rows: np.ndarray,
        mood_vector: np.ndarray,
        genre_terms: list[tuple[float, np.ndarray]],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mood agreement (0..1), genre affinity (0..1) and popularity (0..1) of `rows`."""
        mood_fit = mood_vector[self._mood_codes[rows]] * self._mood_confidence[rows]
        genre_fit = np.zeros(len(rows))
        codes = self._genre_codes[rows]
        for weight, affinity in genre_terms:
            genre_fit += weight * affinity[codes]
        return mood_fit, genre_fit, self._popularity[rows]

    def _feedback_scores(self, rows: np.ndarray, feedback: Preference | None) -> np.ndarray:
        if not feedback:
            return np.zeros(len(rows))
        return feedback.boost_many(
            self._keys[rows], self._artist_lower[rows], self._values["genre"][rows]
        )

    def _liked_rows(self, feedback: Preference | None) -> np.ndarray:
        if not feedback:
            return np.empty(0, dtype=int)
        liked = [self._row_of_key.get(k) for k, v in feedback.tracks.items() if v > 0]
        return np.array([r for r in liked if r is not None], dtype=int)

    def _feature_candidates(
        self, target: Mapping[str, float], pool: int, feedback: Preference | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows near the target (plus liked rows) and their closeness (0..1)."""
        point = np.array([target[f] for f in self.features]) * self._weights
        n_neighbors = min(pool, len(self._space))
        distances, rows = self._index.query(point[None, :], k=n_neighbors)
        rows, distances = rows[0], distances[0]
        liked = np.setdiff1d(self._liked_rows(feedback), rows)
        if liked.size:
            rows = np.concatenate([rows, liked])
            extra = np.linalg.norm(self._space[liked] - point, axis=1)
            distances = np.concatenate([distances, extra])
        return rows, 1.0 - distances / self._max_distance

    def _pick_diverse(
        self,
        rows: np.ndarray,
        scores: np.ndarray,
        k: int,
        excluded: set[str],
        banned_artists: Iterable[int] = (),
    ) -> list[int]:
        """The best `k` rows by score with no artist twice and nothing excluded."""
        seen = set(banned_artists)
        chosen: list[int] = []
        for position in np.argsort(-scores, kind="stable"):
            row = int(rows[position])
            artist = int(self._artist_codes[row])
            if artist in seen or self._keys[row] in excluded:
                continue
            seen.add(artist)
            chosen.append(row)
            if len(chosen) == k:
                break
        return chosen

    # ------------------------------------------------------------------ public queries

    def target(self, probabilities: Probabilities, strategy: str = "match") -> dict[str, float]:
        """The query's target point in scaled feature space (0..1), for display."""
        return blended_target(emotion_weights(probabilities), strategy)

    def recommend(
        self,
        probabilities: Probabilities,
        strategy: str = "match",
        k: int = 5,
        exclude: Iterable[str] = (),
        feedback: Preference | None = None,
        seed: int | None = None,
    ) -> list[Recommendation]:
        """Top `k` tracks for the face's emotion probabilities under `strategy`.

        `exclude` holds track keys (`Recommendation.key`) to leave out; `feedback` is a profile's
        `Preference`; `seed`, when given, shuffles near-ties (for a "shuffle" button).
        """
        _check_strategy(strategy)
        if k <= 0:
            return []
        weights = emotion_weights(probabilities)
        mood_vector, genre_terms = self._query_terms(weights, strategy)
        excluded = set(exclude)
        target = blended_target(weights, strategy)
        pool = max(self.pool_size, 12 * k) + len(excluded)
        while True:
            if self.uses_features:
                rows, closeness = self._feature_candidates(target, pool, feedback)
            else:
                rows, closeness = np.arange(len(self.catalog)), np.zeros(len(self.catalog))
            mood_fit, genre_fit, popularity = self._side_scores(rows, mood_vector, genre_terms)
            if self.uses_features:
                scores = closeness + MOOD_WEIGHT * mood_fit + GENRE_WEIGHT * genre_fit
            else:
                scores = mood_fit + 0.3 * genre_fit
            scores = scores + POPULARITY_WEIGHT * popularity
            scores += self._feedback_scores(rows, feedback)
            if seed is not None:
                scores += np.random.default_rng(seed).uniform(0.0, 0.02, len(scores))
            chosen = self._pick_diverse(rows, scores, k, excluded)
            if len(chosen) == k or len(rows) >= len(self.catalog) or not self.uses_features:
                break
            pool *= 4  # too many excluded or same-artist neighbours: widen the search
        position_of = {int(r): i for i, r in enumerate(rows)}
        return [
            self._to_recommendation(
                row,
                reason=self._reason(row, weights, strategy, target, mood_vector, genre_terms,
                                    feedback),
                score=float(scores[position_of[row]]),
            )
            for row in chosen
        ]  # fmt: skip

    def _reason(
        self,
        row: int,
        weights: Mapping[str, float],
        strategy: str,
        target: Mapping[str, float],
        mood_vector: np.ndarray,
        genre_terms: list[tuple[float, np.ndarray]],
        feedback: Preference | None,
    ) -> str:
        """One line on why this track answers this face."""
        parts: list[str] = []
        if self.uses_features:
            position = self.features.index
            promised = [f for f in _STRATEGY_FEATURES.get(strategy, ()) if f in self.features]
            defining = (
                promised
                or sorted(
                    self.features,
                    key=lambda f: -FEATURE_WEIGHTS[f] * abs(target[f] - 0.5),
                )[:2]
            )
            described = [
                f"{_FEATURE_WORDS[f][_level(self._scaled[row, position(f)])]} "
                f"({_format_feature(f, self._raw[row, position(f)])})"
                for f in defining
            ]
            parts.append(", ".join(described))
        mood = self._values["mood"][row]
        mood = _none_if_na(mood)
        if mood is not None and mood_vector[MOODS.index(mood)] > 0:
            estimated = self._mood_confidence[row] < 1.0
            parts.append(f"{'likely ' if estimated else ''}{mood} mood")
        genre = _none_if_na(self._values["genre"][row])
        if genre is not None:
            code = self._genre_codes[row]
            if any(affinity[code] > 0 for _, affinity in genre_terms):
                parts.append(f"{genre} suits it")
        if feedback:
            note = feedback.explain(self._keys[row], self._values["artist"][row], genre)
            if note:
                parts.append(note)
        head = f"{STRATEGY_VERBS[strategy]} {describe_face(weights)}"
        return f"{head}: {' · '.join(parts)}" if parts else head

    def _to_recommendation(self, row: int, reason: str, score: float) -> Recommendation:
        values = {c: _none_if_na(v[row]) for c, v in self._values.items()}
        features = (
            {f: float(self._raw[row, i]) for i, f in enumerate(self.features)}
            if self.uses_features
            else {}
        )
        return Recommendation(
            title=str(values["title"]),
            artist=str(values["artist"]),
            album=values["album"],
            year=int(values["year"]) if values["year"] is not None else None,
            genre=values["genre"],
            mood=values["mood"],
            popularity=_float_or_none(values["popularity"]),
            track_id=values["track_id"],
            reason=reason,
            score=round(float(score), 4),
            features=features,
        )

    # ------------------------------------------------------------------ clusters

    def clusters(self, k_range: range = range(3, 9), seed: int = 0) -> Clustering:
        """k-means clusters of the catalog (k by silhouette on a sample), computed once."""
        if not self.uses_features:
            raise CatalogError(
                f"{self.name} has no audio features, so its tracks cannot be clustered."
            )
        if getattr(self, "_clustering", None) is None:
            from threadpoolctl import threadpool_limits

            # One thread: k-means' OpenMP threads thrash when the CPU is busy (~30x slower).
            with threadpool_limits(limits=1):
                self._clustering = self._fit_clusters(k_range, seed)
        return self._clustering

    def _fit_clusters(self, k_range: range, seed: int) -> Clustering:
        from sklearn.cluster import KMeans, MiniBatchKMeans
        from sklearn.metrics import silhouette_score

        rng = np.random.default_rng(seed)
        n = len(self._space)
        sample = self._space[rng.choice(n, size=min(n, 2000), replace=False)]
        candidates = [k for k in k_range if 2 <= k < len(sample)]
        if not candidates:
            raise CatalogError(f"{self.name} has too few tracks to cluster.")
        best_k, best_score = candidates[0], -1.0
        for k in candidates:
            labels = KMeans(n_clusters=k, n_init=2, random_state=seed).fit_predict(sample)
            score = float(silhouette_score(sample, labels))
            if score > best_score:
                best_k, best_score = k, score
        if n > 5_000:
            model = MiniBatchKMeans(n_clusters=best_k, n_init=3, random_state=seed, batch_size=4096)
        else:
            model = KMeans(n_clusters=best_k, n_init=4, random_state=seed)
        labels = model.fit_predict(self._space)
        scaled = pd.DataFrame(self._scaled, columns=self.features)
        estimated = not bool((self._mood_codes >= 0).any())
        moods = (
            _heuristic_moods(scaled)
            if estimated
            else np.where(self._mood_codes >= 0, self.catalog["mood"].to_numpy(object), None)
        )
        mix = pd.crosstab(labels, pd.Series(moods, name="mood"), normalize="index")
        mix = mix.reindex(index=range(best_k), columns=list(MOODS), fill_value=0.0)
        centres = scaled.groupby(labels).mean().reindex(range(best_k))
        names = self._cluster_names(mix, centres, estimated)
        mix.index = pd.Index(names, name="cluster")
        sizes = np.bincount(labels, minlength=best_k)
        return Clustering(
            k=best_k,
            silhouette=round(best_score, 4),
            labels=labels,
            names=tuple(names),
            sizes=tuple(int(s) for s in sizes),
            mood_mix=mix,
            moods_estimated=estimated,
        )

    def _cluster_names(
        self, mix: pd.DataFrame, centres: pd.DataFrame, estimated: bool
    ) -> list[str]:
        """Names such as 'Calm 80% · acoustic, gentle': mood mix, then standout features."""
        spread = self._scaled.std(axis=0) + 1e-9
        overall = self._scaled.mean(axis=0)
        names: list[str] = []
        for cluster in range(len(mix)):
            shares = mix.loc[cluster].sort_values(ascending=False)
            moods = [f"{m} {s:.0%}" for m, s in shares.items() if s >= 0.2][:2]
            mood_part = " / ".join(moods) or f"{shares.index[0]} {shares.iloc[0]:.0%}"
            z = (centres.loc[cluster].to_numpy() - overall) / spread
            standout = sorted(
                (i for i in range(len(self.features)) if abs(z[i]) > 0.5),
                key=lambda i: -FEATURE_WEIGHTS[self.features[i]] * abs(z[i]),
            )[:2]
            words = ", ".join(
                _FEATURE_WORDS[self.features[i]][0 if z[i] < 0 else 2] for i in standout
            )
            name = f"{'~' if estimated else ''}{mood_part}" + (f" · {words}" if words else "")
            while name in names:
                name += "'"
            names.append(name)
        return names

    def cluster_of(self, track: Recommendation | str) -> str | None:
        """Name of the cluster a catalog track belongs to (None if not in the catalog)."""
        row = self._row_of_key.get(track.key if isinstance(track, Recommendation) else track)
        if row is None or not self.uses_features:
            return None
        return self.clusters().name_of(row)

    def more_like_this(
        self,
        track: Recommendation | str,
        k: int = 5,
        exclude: Iterable[str] = (),
        feedback: Preference | None = None,
    ) -> list[Recommendation]:
        """Tracks like `track` (a Recommendation or a track key), by other artists.

        Catalog tracks: nearest neighbours inside the track's k-means cluster. Tracks from
        elsewhere (e.g. Spotify search) with features: nearest neighbours of those features.
        Otherwise (or without features): same mood and genre, most popular first.
        """
        key = track.key if isinstance(track, Recommendation) else str(track)
        row = self._row_of_key.get(key)
        if row is None and not isinstance(track, Recommendation):
            raise KeyError(f"Track {key!r} is not in catalog {self.name}.")
        excluded = set(exclude) | {key}
        banned = [int(self._artist_codes[row])] if row is not None else []
        seed_title = (
            track.title if isinstance(track, Recommendation) else self._values["title"][row]
        )
        features = track.features if isinstance(track, Recommendation) else {}
        if self.uses_features and (row is not None or set(self.features) <= set(features)):
            if row is not None:
                point = self._space[row]
            else:
                raw = np.array([[features[f] for f in self.features]])
                point = scale_features(raw, self.features)[0] * self._weights
            pool = min(len(self._space), max(self.pool_size, 20 * k))
            distances, rows = self._index.query(point[None, :], k=pool)
            rows, closeness = rows[0], 1.0 - distances[0] / self._max_distance
            clustering = self.clusters()
            cluster = clustering.labels[row] if row is not None else clustering.labels[rows[0]]
            same_cluster = clustering.labels[rows] == cluster
            scores = closeness + 0.5 * same_cluster + POPULARITY_WEIGHT * self._popularity[rows]
            scores += self._feedback_scores(rows, feedback)
            chosen = self._pick_diverse(rows, scores, k, excluded, banned)
            cluster_name = clustering.names[int(cluster)]
            reasons = {
                r: f"Like '{seed_title}': "
                + ("same cluster" if clustering.labels[r] == cluster else "near cluster")
                + f" ({cluster_name})"
                for r in chosen
            }
            score_of = dict(zip(rows.tolist(), scores.tolist(), strict=True))
        else:
            mood = self._values["mood"][row] if row is not None else track.mood
            genre = self._values["genre"][row] if row is not None else track.genre
            mood, genre = _none_if_na(mood), _none_if_na(genre)
            rows = np.arange(len(self.catalog))
            same_mood = (self.catalog["mood"] == mood).fillna(False).to_numpy(bool)
            same_genre = (self.catalog["genre"] == genre).fillna(False).to_numpy(bool)
            scores = same_mood + 0.5 * same_genre + POPULARITY_WEIGHT * self._popularity
            scores = scores + self._feedback_scores(rows, feedback)
            chosen = self._pick_diverse(rows, scores, k, excluded, banned)
            reasons = {
                r: f"Like '{seed_title}': "
                + " and ".join(
                    part
                    for part, same in ((f"same mood ({mood})", same_mood[r]),
                                       (f"same genre ({genre})", same_genre[r]))
                    if same
                )
                for r in chosen
            }  # fmt: skip
            score_of = dict(enumerate(scores.tolist()))
        return [
            self._to_recommendation(r, reason=reasons[r].rstrip(": "), score=score_of[r])
            for r in chosen
        ]


# --------------------------------------------------------------------------- CLI


def _parse_probs(text: str) -> dict[str, float]:
    probs: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        probs[name.strip().lower()] = float(value)
    return probs


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m core.music.recommend --emotion sad --strategy uplift -k 5 --json``."""
    parser = argparse.ArgumentParser(
        prog="python -m core.music.recommend", description="Recommend tracks for an emotion."
    )
    face = parser.add_mutually_exclusive_group(required=True)
    face.add_argument("--emotion", choices=EMOTIONS, help="the face's emotion")
    face.add_argument("--probs", help="emotion probabilities, e.g. sad=0.5,neutral=0.4,happy=0.1")
    parser.add_argument("--strategy", choices=STRATEGIES, default="match")
    parser.add_argument(
        "--catalog", help="catalog CSV (default: $MOODLENS_CATALOG or the starter catalog)"
    )
    parser.add_argument("-k", type=int, default=5, help="number of tracks")
    parser.add_argument("--more-like", metavar="N", type=int, help="also list tracks like result N")
    parser.add_argument("--profile", help="apply this profile's thumbs up/down (feedback DB)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    try:
        catalog = load_catalog(args.catalog) if args.catalog else load_default_catalog()
        probabilities = {args.emotion: 1.0} if args.emotion else _parse_probs(args.probs)
        recommender = Recommender(catalog)
        feedback = None
        if args.profile:
            from core.music.feedback import FeedbackStore

            feedback = FeedbackStore().preference(args.profile)
        recs = recommender.recommend(probabilities, args.strategy, k=args.k, feedback=feedback)
        similar: list[Recommendation] = []
        if args.more_like is not None and 1 <= args.more_like <= len(recs):
            shown = [rec.key for rec in recs]
            similar = recommender.more_like_this(recs[args.more_like - 1], k=args.k, exclude=shown)
    except (CatalogError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    weights = emotion_weights(probabilities)
    if args.json:
        payload: dict[str, Any] = {
            "catalog": catalog.attrs.get("name"),
            "format": catalog.attrs.get("format"),
            "tracks": len(catalog),
            "uses_audio_features": recommender.uses_features,
            "emotions": weights,
            "strategy": args.strategy,
            "target_scaled": {
                f: round(v, 3)
                for f, v in blended_target(weights, args.strategy).items()
                if f in recommender.features
            },
            "recommendations": [rec.to_dict() for rec in recs],
        }
        if args.more_like is not None:
            payload["more_like"] = [rec.to_dict() for rec in similar]
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    print(f"{catalog.attrs.get('name')} · {args.strategy} · {describe_face(weights)}")
    for number, rec in enumerate(recs, start=1):
        print(f"{number}. {rec.title} — {rec.artist} [{rec.mood or '?'}, {rec.genre or '?'}]")
        print(f"   {rec.reason}")
    if similar:
        print(f"More like #{args.more_like}:")
        for rec in similar:
            print(f" - {rec.title} — {rec.artist}: {rec.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
