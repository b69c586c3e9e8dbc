"""Tuning tables and the emotion -> target maths shared by the local and Spotify recommenders.

A face's probabilities become emotion weights (`emotion_weights`: the dominant emotion when
confident, else a blend of up to three); each (strategy, emotion) has a target point in scaled
audio-feature space (`emotion_target`, `blended_target`), mood weights (`mood_weights`) and genre
keywords (`genre_keywords`). Targets live in the space of `scale_features`: Spotify's 0..1
features as they are, tempo 60..180 BPM and loudness -30..0 dB mapped onto 0..1, so "low energy"
means the same on every catalog. Every score weight of both recommenders is defined here once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from core.labels import EMOTIONS, MOODS

STRATEGIES: tuple[str, ...] = ("match", "uplift", "calm")

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
# Popularity only breaks ties between local catalog tracks (Recommender) ...
LOCAL_POPULARITY_WEIGHT = 0.02
# ... but counts for more among Spotify search results, whose other scores are coarser
# (how many queries found a track, and how high).
SPOTIFY_POPULARITY_WEIGHT = 0.1
PLAYLIST_QUERY_WEIGHT = 0.8  # a mood playlist's tracks, against 1.0 for the best genre query
CONFIDENT_PROBABILITY = 0.6
BLEND_MIN_PROBABILITY = 0.15
BLEND_MAX_EMOTIONS = 3

# Words for a feature's low / middle / high third, in reasons and cluster names.
FEATURE_WORDS: dict[str, tuple[str, str, str]] = {
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
STRATEGY_FEATURES = {
    "match": ("valence", "energy"),
    "uplift": ("valence", "energy"),
    "calm": ("energy", "acousticness"),
}


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


def check_strategy(strategy: str) -> None:
    """ValueError naming the choices unless `strategy` is one of STRATEGIES."""
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy {strategy!r}; choose one of {STRATEGIES}.")


def emotion_target(emotion: str, strategy: str) -> dict[str, float]:
    """Target of every audio feature (scaled, 0..1) for one emotion under a strategy."""
    check_strategy(strategy)
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
    check_strategy(strategy)
    blended = dict.fromkeys(MOODS, 0.0)
    for emotion, weight in weights.items():
        for mood, value in STRATEGY_MOODS[strategy][emotion].items():
            blended[mood] += weight * value
    return blended


def genre_keywords(emotion: str, strategy: str) -> tuple[str, ...]:
    """Genre keywords that suit an emotion under a strategy."""
    check_strategy(strategy)
    if strategy == "calm":
        return CALM_GENRES
    if strategy == "uplift":
        extra = GENRE_AFFINITY["surprise"] if emotion == "surprise" else ()
        return GENRE_AFFINITY["happy"] + extra
    return GENRE_AFFINITY[emotion]


def describe_face(weights: Mapping[str, float]) -> str:
    """'a sad face', or 'a mixed sad/happy face (55%/45%)' for a blend (used in reasons)."""
    if len(weights) == 1:
        adjective = _EMOTION_ADJECTIVES[next(iter(weights))]
        return f"{'an' if adjective[0] in 'aeiou' else 'a'} {adjective} face"
    parts = "/".join(weights)
    shares = "/".join(f"{w:.0%}" for w in weights.values())
    return f"a mixed {parts} face ({shares})"


def scale_features(raw: np.ndarray, features: Sequence[str]) -> np.ndarray:
    """Raw audio features (columns in `features` order) mapped onto 0..1 (see FEATURE_RANGES)."""
    scaled = np.array(raw, dtype=float, copy=True)
    for i, feature in enumerate(features):
        low, high = FEATURE_RANGES.get(feature, (0.0, 1.0))
        scaled[:, i] = (scaled[:, i] - low) / (high - low)
    return np.clip(scaled, 0.0, 1.0)
