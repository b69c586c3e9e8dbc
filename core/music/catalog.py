"""Music catalogs: load, validate and normalise CSV tables of tracks.

Three formats are recognised (any other table with the same column names works too):

* ``starter`` - ``data/starter_catalog.csv``: title, artist, year, genre, mood; no audio features.
* ``data_moods`` - the Kaggle "Spotify music data to identify the moods" table: name, album,
  artist, id, release_date, popularity, length, audio features, mood, genre.
* ``spotify_features`` - the Kaggle "Spotify Tracks DB" table (SpotifyFeatures.csv and subsets):
  genre, artist_name, track_name, track_id, popularity, audio features; no mood.
* ``labelled`` - what ``python -m core.music.catalog label`` writes: the normalised columns plus
  ``mood_confidence`` (1.0 for moods the catalog had, the classifier's probability otherwise).

`load_catalog` returns one normalised frame whatever the format (see `NORMALISED_COLUMNS`).
A ``year`` column may hold any year from 1000 to next year (the starter catalog dates classical
works by publication). A ``release_date`` column (Spotify exports) is trusted only from 1920:
Spotify uses placeholder dates such as 1900 or 1905 for tracks whose release date it does not
know. Other years become NA.

CLI: ``python -m core.music.catalog info --in X`` checks and summarises a catalog;
``python -m core.music.catalog label --in X --out Y`` gives every unlabelled track a mood and a
confidence from a scikit-learn classifier trained on a labelled catalog (core.music.moods).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from core.labels import MOODS
from core.paths import shared_data_dir

AUDIO_FEATURES: tuple[str, ...] = (
    "danceability",
    "energy",
    "valence",
    "acousticness",
    "instrumentalness",
    "liveness",
    "speechiness",
    "loudness",
    "tempo",
)
# The features a catalog must have for feature-based recommendation.
CORE_FEATURES: tuple[str, ...] = ("valence", "energy", "danceability", "acousticness")

# Columns of every normalised catalog, in order; audio features present follow them.
NORMALISED_COLUMNS: tuple[str, ...] = (
    "title",
    "artist",
    "album",
    "year",
    "genre",
    "mood",
    "popularity",
    "track_id",
    "duration_ms",
)

# Accepted source column names (lower-cased, stripped) for each normalised column, by priority.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "title": ("title", "name", "track_name", "track", "song", "song_name"),
    "artist": ("artist", "artist_name", "artists", "artist_names"),
    "album": ("album", "album_name"),
    "year": ("year", "release_year", "release_date", "date"),
    "genre": ("genre", "track_genre", "genres"),
    "mood": ("mood", "moods"),
    "popularity": ("popularity",),
    "track_id": ("track_id", "id", "spotify_id", "uri", "track_uri"),
    "duration_ms": ("duration_ms", "length", "length_ms"),
}

MOOD_CONFIDENCE = "mood_confidence"
MIN_YEAR = 1000
MIN_RELEASE_DATE_YEAR = 1920
_MISSING_GENRES = ("", "n/a", "na", "nan", "none", "null", "unknown", "-", "?")
# A feature column may hold this share of unreadable cells (turned into NA) before it is an error.
_MAX_BAD_FEATURE_SHARE = 0.01
_SNIFF_BYTES = 8192

CatalogSource = str | os.PathLike | IO[bytes] | IO[str]


class CatalogError(ValueError):
    """A catalog file that cannot be used; the message tells an end user what to fix."""


# --------------------------------------------------------------------------- reading


def _read_bytes(source: CatalogSource) -> tuple[bytes | str, str]:
    """The raw content of `source` and a display name for it."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.exists():
            raise CatalogError(f"Catalog file not found: {path}. Check the path and try again.")
        if path.is_dir():
            raise CatalogError(f"{path} is a folder, not a CSV file. Point to a .csv or .csv.gz.")
        try:
            return path.read_bytes(), path.name
        except OSError as err:
            raise CatalogError(f"Cannot read catalog file {path}: {err.strerror or err}.") from err
    name = str(getattr(source, "name", "") or "uploaded catalog")
    data = source.read()
    return data, Path(name).name if name else "uploaded catalog"


def _decode(raw: bytes | str, name: str) -> tuple[str, list[str]]:
    """Text of a CSV (gunzipped, BOM stripped); CatalogError when it is not text."""
    notes: list[str] = []
    if isinstance(raw, str):
        text = raw
    else:
        if raw[:2] == b"\x1f\x8b":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError) as err:
                raise CatalogError(
                    f"{name} looks gzip-compressed but cannot be decompressed ({err}). "
                    "Re-export it as a plain .csv or a complete .csv.gz."
                ) from err
        if b"\x00" in raw[:_SNIFF_BYTES]:
            raise CatalogError(
                f"{name} is not a CSV text file (it contains binary data). "
                "Export the catalog as CSV (comma-separated, UTF-8) and load that."
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
            notes.append(f"{name} is not UTF-8; read it as Windows-1252 (Latin) text.")
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise CatalogError(f"{name} is empty. A catalog needs a header row and at least one track.")
    return text, notes


def _separator(text: str) -> str:
    """The header's field separator: comma, else semicolon (European Excel) or tab."""
    header = text.split("\n", 1)[0]
    if "," in header:
        return ","
    return max((";", "\t"), key=header.count) if (";" in header or "\t" in header) else ","


def _read_frame(text: str, name: str) -> pd.DataFrame:
    """Parse CSV text into a frame (numbers typed by pandas; the rest in `_normalise`)."""
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=_separator(text),
            keep_default_na=False,
            na_values=[""],
            skipinitialspace=True,
            low_memory=False,
        )
    except pd.errors.EmptyDataError as err:
        raise CatalogError(
            f"{name} is empty. A catalog needs a header row and at least one track."
        ) from err
    except (pd.errors.ParserError, ValueError) as err:
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CatalogError(
            f"{name} is not a readable CSV file ({first_line}). "
            "Save it as comma-separated values with one header row and try again."
        ) from err
    frame.columns = [str(col).strip().lower().removeprefix("\ufeff") for col in frame.columns]
    return frame


# --------------------------------------------------------------------------- normalising


def _pick(frame: pd.DataFrame, target: str) -> str | None:
    """The first source column of `frame` that provides normalised column `target`."""
    return next((alias for alias in COLUMN_ALIASES[target] if alias in frame.columns), None)


def _clean_text(values: pd.Series) -> pd.Series:
    """Strings stripped of surrounding spaces; empty strings become NA."""
    text = values.astype("str").str.strip()
    return text.mask(text == "")


def _to_numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Float values and a mask of the non-empty cells that are not numbers."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64"), pd.Series(False, index=values.index)
    text = _clean_text(values)
    numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    return numbers, numbers.isna() & text.notna()


def _parse_years(values: pd.Series, min_year: int = MIN_YEAR) -> pd.Series:
    """Release years (Int64) from bare years or dates; implausible years become NA."""
    if pd.api.types.is_numeric_dtype(values):
        years = values.astype("float64")
        return (
            years.where(years.between(min_year, dt.date.today().year + 1)).round().astype("Int64")
        )
    text = _clean_text(values)
    digits = text.str.extract(r"(?<!\d)(\d{4})(?!\d)", expand=False)
    years = pd.to_numeric(digits, errors="coerce")
    # Dates such as 5/1/99 carry a two-digit year: let pandas have a go at what is left.
    undated = years.isna() & text.notna()
    if undated.any():
        parsed = pd.to_datetime(text[undated], errors="coerce", format="mixed")
        years.loc[undated] = parsed.dt.year
    plausible = years.between(min_year, dt.date.today().year + 1)
    return years.where(plausible).round().astype("Int64")


def _parse_track_ids(values: pd.Series) -> pd.Series:
    """Spotify track ids from bare ids, ``spotify:track:`` URIs or open.spotify.com URLs."""
    text = _clean_text(values)
    linked = text.str.contains(":", regex=False) | text.str.contains("/", regex=False)
    if not linked.fillna(False).any():
        return text
    from_link = text.str.extract(r"(?:spotify:track:|/track/)([0-9A-Za-z]+)", expand=False)
    return from_link.fillna(text)


def _parse_moods(values: pd.Series, name: str) -> pd.Series:
    """Mood labels as spelled in MOODS; CatalogError listing any unknown label."""
    text = _clean_text(values)
    canonical = {mood.lower(): mood for mood in MOODS}
    moods = text.str.lower().map(canonical)
    unknown = text[moods.isna() & text.notna()]
    if not unknown.empty:
        counts = unknown.value_counts()
        shown = ", ".join(f"'{label}' ({count})" for label, count in counts.head(10).items())
        more = f" and {len(counts) - 10} more" if len(counts) > 10 else ""
        raise CatalogError(
            f"{name} has unknown mood label(s): {shown}{more}. "
            f"Moods must be one of {', '.join(MOODS)} (any letter case), or left empty "
            "for tracks without a mood."
        )
    return moods.astype("str")


def _parse_features(frame: pd.DataFrame, name: str, notes: list[str]) -> dict[str, pd.Series]:
    """Numeric audio-feature columns; CatalogError when a column is not numeric."""
    features: dict[str, pd.Series] = {}
    bad_columns: list[str] = []
    for feature in AUDIO_FEATURES:
        if feature not in frame.columns:
            continue
        numbers, bad = _to_numbers(frame[feature])
        filled = int(frame[feature].notna().sum())
        if filled and bad.sum() > _MAX_BAD_FEATURE_SHARE * filled:
            samples = ", ".join(repr(str(v).strip()) for v in frame[feature][bad].unique()[:3])
            bad_columns.append(f"{feature} (e.g. {samples})")
            continue
        if bad.any():
            notes.append(f"Ignored {int(bad.sum())} non-numeric {feature} value(s).")
        features[feature] = numbers
    if bad_columns:
        raise CatalogError(
            f"{name} has audio-feature column(s) that are not numeric: "
            f"{'; '.join(bad_columns)}. Audio features must be numbers (danceability, energy, "
            "valence ... between 0 and 1; loudness in dB; tempo in BPM). Fix or remove "
            "those columns."
        )
    return features


def _detect_format(frame: pd.DataFrame, has_features: bool, has_mood: bool) -> str:
    """Which known catalog layout `frame` follows."""
    columns = set(frame.columns)
    if MOOD_CONFIDENCE in columns and has_mood:
        return "labelled"
    if {"track_name", "artist_name", "track_id"} <= columns and has_features:
        return "spotify_features"
    if {"name", "artist", "id"} <= columns and has_features and has_mood:
        return "data_moods"
    if not has_features and {"title", "artist"} <= columns and has_mood:
        return "starter"
    return "custom"


def _required_columns_error(name: str, missing: Sequence[str]) -> CatalogError:
    return CatalogError(
        f"{name} is missing required column(s): {', '.join(missing)}. A catalog needs "
        "title (or name/track_name), artist (or artist_name), and at least one of: mood "
        f"({'/'.join(MOODS)}), genre, or the audio features {', '.join(CORE_FEATURES)}. "
        "Optional: album, year (or release_date), popularity, track_id (or id)."
    )


def _normalise(frame: pd.DataFrame, name: str, notes: list[str]) -> pd.DataFrame:
    """The normalised catalog built from a frame of raw strings."""
    sources = {target: _pick(frame, target) for target in COLUMN_ALIASES}
    missing = [target for target in ("title", "artist") if sources[target] is None]
    features = _parse_features(frame, name, notes)
    has_core_features = all(f in features for f in CORE_FEATURES)
    if not missing and not (sources["mood"] or sources["genre"] or has_core_features):
        missing = ["mood, genre or audio features"]
    if missing:
        raise _required_columns_error(name, missing)

    def column(target: str) -> pd.Series | None:
        source = sources[target]
        return frame[source] if source else None

    n_rows = len(frame)
    na_text = pd.Series(pd.NA, index=frame.index, dtype="str")
    na_float = pd.Series(np.nan, index=frame.index, dtype="float64")
    out = pd.DataFrame(index=frame.index)
    out["title"] = _clean_text(frame[sources["title"]])
    out["artist"] = _clean_text(frame[sources["artist"]])
    album = column("album")
    out["album"] = _clean_text(album) if album is not None else na_text
    year = column("year")
    if year is not None:
        from_release_date = sources["year"] in ("release_date", "date")
        out["year"] = _parse_years(year, MIN_RELEASE_DATE_YEAR if from_release_date else MIN_YEAR)
    else:
        out["year"] = pd.array([pd.NA] * n_rows, dtype="Int64")
    genre = column("genre")
    if genre is not None:
        lowered = _clean_text(genre).str.lower()
        out["genre"] = lowered.mask(lowered.isin(_MISSING_GENRES))
    else:
        out["genre"] = na_text
    mood = column("mood")
    out["mood"] = _parse_moods(mood, name) if mood is not None else na_text
    popularity = column("popularity")
    if popularity is not None:
        pop, _ = _to_numbers(popularity)
        out["popularity"] = pop.where(pop.between(0, 100))
    else:
        out["popularity"] = na_float
    track_id = column("track_id")
    out["track_id"] = _parse_track_ids(track_id) if track_id is not None else na_text
    duration = column("duration_ms")
    if duration is not None:
        ms, _ = _to_numbers(duration)
        out["duration_ms"] = ms.where(ms > 0)
    else:
        out["duration_ms"] = na_float
    for feature, values in features.items():
        out[feature] = values
    if MOOD_CONFIDENCE in frame.columns:
        confidence, _ = _to_numbers(frame[MOOD_CONFIDENCE])
        out[MOOD_CONFIDENCE] = confidence.where(confidence.between(0, 1))

    unnamed = out["title"].isna() | out["artist"].isna()
    if unnamed.any():
        notes.append(f"Dropped {int(unnamed.sum())} row(s) without a title or an artist.")
        out = out[~unnamed]
    duplicated = out["track_id"].notna() & out["track_id"].duplicated(keep="first")
    if duplicated.any():
        notes.append(
            f"Dropped {int(duplicated.sum())} duplicate track id(s) (kept the first of each)."
        )
        out = out[~duplicated]
    if has_core_features:
        present = [f for f in AUDIO_FEATURES if f in out.columns]
        gaps = out[present].isna()
        if gaps.all(axis=1).any():
            featureless = gaps.all(axis=1)
            notes.append(f"Dropped {int(featureless.sum())} row(s) without any audio feature.")
            out = out[~featureless]
        if out[present].isna().any().any():
            counts = out[present].isna().sum()
            filled = ", ".join(f"{f} ({n})" for f, n in counts[counts > 0].items())
            notes.append(f"Filled missing audio features with the column median: {filled}.")
            out[present] = out[present].fillna(out[present].median())
    if out.empty:
        raise CatalogError(
            f"{name} has no usable tracks: every row lacks a title, an artist or audio "
            "features. Check that the file has data rows under its header."
        )
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- public API


def load_catalog(source: CatalogSource, name: str | None = None) -> pd.DataFrame:
    """Read a catalog CSV (plain or gzipped; path or open file) into a normalised frame.

    The frame has the columns of `NORMALISED_COLUMNS`, then each audio feature present, then
    ``mood_confidence`` when the file has one. ``df.attrs`` holds ``name``, ``format``
    (starter, data_moods, spotify_features, labelled or custom) and ``notes`` (what was fixed up).
    Raises `CatalogError` with an end-user message when the file cannot be used.
    """
    raw, default_name = _read_bytes(source)
    display_name = name or default_name
    text, notes = _decode(raw, display_name)
    frame = _read_frame(text, display_name)
    if frame.empty:
        raise CatalogError(
            f"{display_name} has a header but no tracks. Add at least one row of data."
        )
    features_present = all(f in frame.columns for f in CORE_FEATURES)
    has_mood_column = _pick(frame, "mood") is not None
    catalog_format = _detect_format(frame, features_present, has_mood_column)
    catalog = _normalise(frame, display_name, notes)
    catalog.attrs["name"] = display_name
    catalog.attrs["format"] = catalog_format
    catalog.attrs["notes"] = notes
    return catalog


def has_audio_features(df: pd.DataFrame) -> bool:
    """True when the catalog has the core audio features (valence, energy, ...)."""
    return all(f in df.columns and df[f].notna().any() for f in CORE_FEATURES)


def has_moods(df: pd.DataFrame) -> bool:
    """True when at least one track of the catalog has a mood label."""
    return "mood" in df.columns and bool(df["mood"].notna().any())


def feature_columns(df: pd.DataFrame) -> list[str]:
    """The audio features present in a normalised catalog, in AUDIO_FEATURES order."""
    return [f for f in AUDIO_FEATURES if f in df.columns and df[f].notna().any()]


def load_default_catalog() -> pd.DataFrame:
    """The catalog named by ``MOODLENS_CATALOG``, else the starter catalog shipped in data/."""
    from core.settings import Settings

    return load_catalog(Settings.from_env().default_catalog)


def data_moods_path() -> Path:
    """Path of the shared Kaggle data_moods.csv (may not exist on a user's machine)."""
    return shared_data_dir() / "music" / "data_moods.csv"


def spotify_features_path() -> Path:
    """Path of the shared 19k-row Spotify features table (may not exist)."""
    return shared_data_dir() / "music" / "spotify_features_19k.csv.gz"


# --------------------------------------------------------------------------- CLI


def _label_command(args: argparse.Namespace) -> int:
    from core.music.moods import label_catalog_file

    summary = label_catalog_file(
        args.input, args.output, train=args.train, folds=args.folds, overwrite=args.overwrite
    )
    print(json.dumps(summary, indent=2))
    return 0


def _info_command(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.input)
    summary = {
        "name": catalog.attrs["name"],
        "format": catalog.attrs["format"],
        "tracks": len(catalog),
        "artists": int(catalog["artist"].nunique()),
        "has_moods": has_moods(catalog),
        "has_audio_features": has_audio_features(catalog),
        "audio_features": feature_columns(catalog),
        "moods": {m: int(n) for m, n in catalog["mood"].value_counts().items()},
        "top_genres": {g: int(n) for g, n in catalog["genre"].value_counts().head(10).items()},
        "notes": catalog.attrs["notes"],
    }
    print(json.dumps(summary, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m core.music.catalog {label,info}``."""
    parser = argparse.ArgumentParser(
        prog="python -m core.music.catalog", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    label = commands.add_parser(
        "label", help="give unlabelled tracks a mood and a confidence from audio features"
    )
    label.add_argument("--in", dest="input", required=True, help="catalog CSV (or .csv.gz)")
    label.add_argument("--out", dest="output", required=True, help="labelled CSV to write")
    label.add_argument(
        "--train", help="labelled catalog to train on (default: shared data_moods.csv)"
    )
    label.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    label.add_argument(
        "--overwrite", action="store_true", help="also relabel tracks that already have a mood"
    )
    info = commands.add_parser("info", help="check a catalog and summarise it as JSON")
    info.add_argument("--in", dest="input", required=True, help="catalog CSV (or .csv.gz)")
    args = parser.parse_args(argv)
    try:
        return _label_command(args) if args.command == "label" else _info_command(args)
    except CatalogError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
