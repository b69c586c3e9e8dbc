"""The local recommender: emotion probabilities -> ranked tracks of one normalised catalog.

How a query is answered (`Recommender.recommend`):

1. The face's probabilities become emotion weights and, per strategy, a target point in scaled
   audio-feature space, mood weights and genre keywords (all in core.music.targets).
2. Catalogs with audio features: a k-nearest-neighbour search (scikit-learn) around the target in
   the weighted scaled space gives a candidate pool, re-ranked by closeness + mood agreement
   + genre affinity + a small popularity tie-breaker + the profile's feedback. Catalogs without
   features (the starter catalog) rank by mood weight + genre affinity + popularity + feedback.
3. Diversity: no artist appears twice in one list. Each track gets a one-line reason.

Building one is cheap (a million tracks: a fraction of a second): the search tree, track keys and
artist codes are built on first use, so the explorer's cluster colouring does not wait for them.

`Recommender.more_like_this` finds neighbours of a track inside its k-means cluster
(core.music.clusters).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from core.labels import MOODS
from core.music.catalog import (
    MOOD_CONFIDENCE,
    CatalogError,
    feature_columns,
    has_audio_features,
)
from core.music.clusters import Clustering, fit_clusters
from core.music.feedback import Preference, artist_names, excluded_keys
from core.music.targets import (
    FEATURE_RANGES,
    FEATURE_WEIGHTS,
    FEATURE_WORDS,
    GENRE_WEIGHT,
    LOCAL_POPULARITY_WEIGHT,
    MOOD_WEIGHT,
    STRATEGY_FEATURES,
    STRATEGY_VERBS,
    Probabilities,
    blended_target,
    check_strategy,
    describe_face,
    emotion_weights,
    genre_keywords,
    mood_weights,
    scale_features,
)
from core.music.tracks import SPOTIFY_ID, Recommendation


def _none_if_na(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _float_or_none(value: Any) -> float | None:
    value = _none_if_na(value)
    return float(value) if value is not None else None


METADATA_COLUMNS = ("title", "artist", "album", "year", "genre", "mood", "popularity", "track_id")
# Artist credits that may name several artists (a superset of what `artist_names` splits):
# only these are split when finding each track's primary artist.
_CREDIT_MARKS = r"[,;\[]|feat|\bft\b"
_BLOCK_ROWS = 65_536  # rows scaled at a time when building the search space (fits in cache)


def _primary_artist(credit: str) -> str:
    """The first artist of a credit, lower case: "A feat. B", "A; B" and "A, B" are A's, while
    "Earth, Wind & Fire" and "Tyler, The Creator" are one artist (see `artist_names`)."""
    names = artist_names(credit)
    return (names[0] if names else credit).strip().lower()


def _level(scaled: float) -> int:
    return 0 if scaled < 1 / 3 else (2 if scaled > 2 / 3 else 1)


def _format_feature(feature: str, value: float) -> str:
    if feature == "tempo":
        return f"{value:.0f} BPM"
    if feature == "loudness":
        return f"{value:.0f} dB"
    return f"{feature} {value:.2f}"


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
        popularity = pd.to_numeric(self.catalog["popularity"], errors="coerce")
        self._popularity = (popularity.fillna(0.0).to_numpy(float) / 100.0).clip(0.0, 1.0)
        self._genre_codes, self._genres = pd.factorize(self.catalog["genre"])
        codes, labels = pd.factorize(self.catalog["mood"])  # a few labels: look those up only
        of_label = np.array([MOODS.index(m) if m in MOODS else -1 for m in labels] + [-1])
        self._mood_codes = of_label[codes].astype(np.int16)
        confidence = (
            self.catalog[MOOD_CONFIDENCE].fillna(1.0).to_numpy(float)
            if MOOD_CONFIDENCE in self.catalog
            else np.ones(n)
        )
        self._mood_confidence = np.where(self._mood_codes >= 0, confidence, 0.0)
        self._genre_cache: dict[tuple[str, ...], np.ndarray] = {}
        # The columns' own arrays: reading one cell costs microseconds (DataFrame lookups cost
        # ~0.1 ms each, mostly copying attrs), and no column is converted whole.
        self._arrays = {c: self.catalog[c].array for c in METADATA_COLUMNS}
        if self.features:
            self._build_feature_space()

    # ------------------------------------------------------------------ index

    def _build_feature_space(self) -> None:
        """The weighted search space: scale_features' arithmetic, then the feature weights.

        Straight from the columns, block by block of rows: the space is the only n x features
        array (a million tracks: 72 MB); raw and 0..1 values of a shown track are read per row.
        """
        self._raw_columns = [self.catalog[f].to_numpy(dtype=float) for f in self.features]
        ranges = [FEATURE_RANGES.get(f, (0.0, 1.0)) for f in self.features]
        self._low = np.array([low for low, _ in ranges])
        self._span = np.array([high - low for low, high in ranges])
        self._weights = np.sqrt(np.array([FEATURE_WEIGHTS[f] for f in self.features]))
        self._max_distance = float(np.linalg.norm(self._weights))
        n = len(self.catalog)
        space = np.empty((n, len(self.features)))
        block = np.empty((min(n, _BLOCK_ROWS), len(self.features)), order="F")
        for start in range(0, n, _BLOCK_ROWS):
            stop = min(n, start + _BLOCK_ROWS)
            part = block[: stop - start]
            for i, values in enumerate(self._raw_columns):  # contiguous column writes
                np.subtract(values[start:stop], self._low[i], out=part[:, i])
                part[:, i] /= self._span[i]
            np.clip(part, 0.0, 1.0, out=part)
            np.multiply(part, self._weights, out=space[start:stop])
        self._space = space

    def _scaled_value(self, row: int, i: int) -> float:
        """Feature `i` of track `row` on 0..1 (as scale_features maps it)."""
        value = (self._raw_columns[i][row] - self._low[i]) / self._span[i]
        return float(min(max(value, 0.0), 1.0))

    @cached_property
    def _index(self) -> Any:
        """Exact k-nearest-neighbour search tree over the weighted feature space (first use).

        scipy's cKDTree, unbalanced: builds a million points in ~0.3 s (scikit-learn's KDTree:
        ~3.5 s) and answers a 120-neighbour query in about a millisecond, as fast.
        """
        from scipy.spatial import cKDTree

        return cKDTree(self._space, leafsize=32, balanced_tree=False, compact_nodes=False)

    def _nearest(self, point: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Distances and rows of the `k` tracks nearest `point` in the weighted space."""
        distances, rows = self._index.query(point, k=k)
        return np.atleast_1d(distances), np.atleast_1d(rows).astype(np.int64)

    @cached_property
    def _title_artist(self) -> tuple[pd.Series, pd.Series]:
        title = self.catalog["title"].str.strip().str.lower()
        artist = self.catalog["artist"].str.strip().str.lower()
        return title, artist

    @cached_property
    def _keys(self) -> np.ndarray:
        """Each track's key (`tracks.track_key`): its Spotify id, else 'artist::title' (lower
        case)."""
        title, artist = self._title_artist
        ids = self.catalog["track_id"].astype("string").str.strip()
        spotify = ids.str.fullmatch(SPOTIFY_ID.pattern).fillna(False).astype(bool)
        return ids.where(spotify, artist + "::" + title).to_numpy(object)

    @cached_property
    def _artist_lower(self) -> np.ndarray:
        return self._title_artist[1].to_numpy(object)

    @cached_property
    def _primary_artists(self) -> tuple[np.ndarray, dict[str, int]]:
        """A code per track for its primary artist (`_primary_artist`: 'A feat. B' counts as A),
        and the code of each primary artist (lower case)."""
        codes, artists = pd.factorize(self._title_artist[1])  # split once per distinct artist
        primary = pd.Series(artists, dtype="str")
        credits = primary.str.contains(_CREDIT_MARKS, regex=True).to_numpy(bool)
        if credits.any():
            primary[credits] = primary[credits].map(_primary_artist)
        primary_codes, names = pd.factorize(primary)
        return np.append(primary_codes, -1)[codes], {str(n): i for i, n in enumerate(names)}

    @property
    def _artist_codes(self) -> np.ndarray:
        return self._primary_artists[0]

    def _artist_code(self, artist: str | None) -> int | None:
        """The catalog's code for `artist`'s primary artist; None when none of its tracks is
        by that artist."""
        return self._primary_artists[1].get(_primary_artist(str(artist or "")))

    def _cells(self, column: str, rows: np.ndarray) -> np.ndarray:
        """Some cells of a metadata column as an object array (missing: None)."""
        values = self._arrays[column].take(rows)
        return np.asarray(values.to_numpy(dtype=object, na_value=None), dtype=object)

    def _value(self, column: str, row: int) -> Any:
        """One metadata cell, None when missing."""
        return _none_if_na(self._arrays[column][row])

    @property
    def uses_features(self) -> bool:
        """True when recommendations come from audio features (else mood and genre)."""
        return bool(self.features)

    @cached_property
    def _row_of_key(self) -> dict[str, int]:
        """Track key -> first row with it."""
        keys = self._keys
        count = len(keys)
        return dict(zip(keys[::-1].tolist(), range(count - 1, -1, -1), strict=True))

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
            self._keys[rows], self._artist_lower[rows], self._cells("genre", rows)
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
        distances, rows = self._nearest(point, n_neighbors)
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
        check_strategy(strategy)
        if k <= 0:
            return []
        weights = emotion_weights(probabilities)
        mood_vector, genre_terms = self._query_terms(weights, strategy)
        excluded = excluded_keys(exclude, feedback)
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
            scores = scores + LOCAL_POPULARITY_WEIGHT * popularity
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
            promised = [f for f in STRATEGY_FEATURES.get(strategy, ()) if f in self.features]
            defining = (
                promised
                or sorted(
                    self.features,
                    key=lambda f: -FEATURE_WEIGHTS[f] * abs(target[f] - 0.5),
                )[:2]
            )
            described = [
                f"{FEATURE_WORDS[f][_level(self._scaled_value(row, position(f)))]} "
                f"({_format_feature(f, self._raw_columns[position(f)][row])})"
                for f in defining
            ]
            parts.append(", ".join(described))
        mood = self._value("mood", row)
        if mood is not None and mood_vector[MOODS.index(mood)] > 0:
            estimated = self._mood_confidence[row] < 1.0
            parts.append(f"{'likely ' if estimated else ''}{mood} mood")
        genre = self._value("genre", row)
        if genre is not None:
            code = self._genre_codes[row]
            if any(affinity[code] > 0 for _, affinity in genre_terms):
                parts.append(f"{genre} suits it")
        if feedback:
            note = feedback.explain(self._keys[row], self._value("artist", row), genre)
            if note:
                parts.append(note)
        head = f"{STRATEGY_VERBS[strategy]} {describe_face(weights)}"
        return f"{head}: {' · '.join(parts)}" if parts else head

    def _to_recommendation(self, row: int, reason: str, score: float) -> Recommendation:
        values = {c: self._value(c, row) for c in METADATA_COLUMNS}
        features = (
            {f: float(self._raw_columns[i][row]) for i, f in enumerate(self.features)}
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
            self._clustering = fit_clusters(
                self._space,
                None,
                self.features,
                self._mood_codes,
                name=self.name,
                k_range=k_range,
                seed=seed,
                weights=self._weights,
            )
        return self._clustering

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
        excluded = excluded_keys(exclude, feedback) | {key}
        # The seed's artist, also for a track from elsewhere (Spotify) by a catalog artist.
        code = int(self._artist_codes[row]) if row is not None else self._artist_code(track.artist)
        banned = [code] if code is not None else []
        seed_title = track.title if isinstance(track, Recommendation) else self._value("title", row)
        features = track.features if isinstance(track, Recommendation) else {}
        if self.uses_features and (row is not None or set(self.features) <= set(features)):
            if row is not None:
                point = self._space[row]
            else:
                raw = np.array([[features[f] for f in self.features]])
                point = scale_features(raw, self.features)[0] * self._weights
            pool = min(len(self._space), max(self.pool_size, 20 * k))
            distances, rows = self._nearest(point, pool)
            closeness = 1.0 - distances / self._max_distance
            try:
                clustering = self.clusters()
            except CatalogError:  # too few tracks to cluster: the nearest sound alone
                clustering = None
            if clustering is None:
                labels, cluster = np.zeros(len(self._space), np.int64), 0
            else:
                labels = clustering.labels
                cluster = labels[row] if row is not None else labels[rows[0]]
            same_cluster = labels[rows] == cluster
            scores = (
                closeness + 0.5 * same_cluster + LOCAL_POPULARITY_WEIGHT * self._popularity[rows]
            )
            scores += self._feedback_scores(rows, feedback)
            chosen = self._pick_diverse(rows, scores, k, excluded, banned)
            reasons = {
                r: f"Like '{seed_title}': "
                + (
                    "closest sound"
                    if clustering is None
                    else ("same cluster" if labels[r] == cluster else "near cluster")
                    + f" ({clustering.names[int(cluster)]})"
                )
                for r in chosen
            }
            score_of = dict(zip(rows.tolist(), scores.tolist(), strict=True))
        else:
            mood = self._value("mood", row) if row is not None else track.mood
            genre = self._value("genre", row) if row is not None else track.genre
            mood, genre = _none_if_na(mood), _none_if_na(genre)
            rows = np.arange(len(self.catalog))
            same_mood = (self.catalog["mood"] == mood).fillna(False).to_numpy(bool)
            same_genre = (self.catalog["genre"] == genre).fillna(False).to_numpy(bool)
            scores = same_mood + 0.5 * same_genre + LOCAL_POPULARITY_WEIGHT * self._popularity
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
