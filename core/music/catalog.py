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
``year`` is the release year of a recording: from 1877 (the phonograph) to next year; an
earlier year is a composition date, so it becomes NA with a note. Such dates belong in an
optional ``composed`` column (any year from 1000; the starter catalog has one for its classical
works). A ``release_date`` column (Spotify exports) is trusted only from 1920: Spotify uses
placeholder dates such as 1900 or 1905 for tracks whose release date it does not know. Other
years become NA.

Files are read by pyarrow (CSV multi-threaded, Parquet files or folders of them), only the
columns above, and normalised with vectorised pandas/pyarrow operations: a million-row CSV
loads in about 2 s, its Parquet in about 1 s (benchmarks/recommend.py). CSV that pyarrow
cannot parse (ragged rows, not UTF-8, ...) falls back to pandas' parser.

CLI: ``python -m core.music.catalog info --in X`` checks and summarises a catalog;
``python -m core.music.catalog label --in X --out Y`` gives every unlabelled track a mood and a
confidence from a scikit-learn classifier trained on a labelled catalog (core.music.moods);
``label --engine dask [--scheduler ADDRESS] --in 'GLOB or parquet dir' --out DIR`` does it
partition by partition on a Dask cluster and writes partitioned Parquet.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import sys
import zlib
from collections.abc import Iterable, Sequence
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
# Optional: the year a work was composed (or first published), for pieces older than recording.
COMPOSED = "composed"
COMPOSED_ALIASES: tuple[str, ...] = ("composed", "year_composed", "composition_year")
# The oldest year a `composed` column may hold.
MIN_YEAR = 1000
# The oldest plausible release year of a recording (Edison's phonograph: 1877). An earlier `year`
# is a composition date, not a release: it becomes NA (with a note pointing to `composed`).
MIN_RECORDING_YEAR = 1877
MIN_RELEASE_DATE_YEAR = 1920
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
PARQUET_MAGIC = b"PAR1"
# Source columns `_normalise` may use: only these are read from CSV and Parquet files.
_KNOWN_COLUMNS = frozenset(
    [alias for aliases in COLUMN_ALIASES.values() for alias in aliases]
    + [*AUDIO_FEATURES, MOOD_CONFIDENCE, *COMPOSED_ALIASES]
)
_TEXT_TARGETS = ("title", "artist", "album", "genre", "mood", "track_id")
# Of those, the ones read as text whatever they look like (a title '1999', dates).
_TEXT_COLUMNS = frozenset(
    [alias for t in _TEXT_TARGETS for alias in COLUMN_ALIASES[t]] + ["release_date", "date"]
)
_MISSING_GENRES = ("", "n/a", "na", "nan", "none", "null", "unknown", "-", "?")
# A feature column may hold this share of unreadable cells (turned into NA) before it is an error.
_MAX_BAD_FEATURE_SHARE = 0.01
_SNIFF_BYTES = 8192
# A number written with a decimal comma (European Excel): 0,5  -6,25  1,5E-05
_DECIMAL_COMMA = r"[+-]?\d+,\d+(?:[eE][+-]?\d+)?"
# A decimal comma that could as well be a thousands separator: 1,234  -12,500
_THOUSANDS = r"[+-]?[1-9]\d{0,2},\d{3}"
# The most bytes a gzipped CSV may expand to (a million-track CSV is ~250 MB): a small upload
# that would inflate to gigabytes (a "gzip bomb") is refused instead of filling the memory.
MAX_CSV_BYTES = 500_000_000
# Audio-feature values beyond this magnitude are no measurement (0..1 scores, dB, BPM): they are
# treated like unreadable cells (and would break histograms: 1e308 leaves no finite bin width).
MAX_FEATURE_MAGNITUDE = 1e6

CatalogSource = str | os.PathLike | IO[bytes] | IO[str]


class CatalogError(ValueError):
    """A catalog file that cannot be used; the message tells an end user what to fix."""


# --------------------------------------------------------------------------- reading


def _read_source(source: CatalogSource) -> tuple[bytes | Path, str]:
    """The raw bytes of `source` (or the path of a Parquet file or folder) and a display name."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.exists():
            raise CatalogError(f"Catalog file not found: {path}. Check the path and try again.")
        if path.is_dir():
            if _parquet_files(path):
                return path, path.name
            raise CatalogError(
                f"{path} is a folder, not a CSV file. Point to a .csv, .csv.gz or .parquet file, "
                "or to a folder of .parquet files."
            )
        if path.suffix.lower() in PARQUET_SUFFIXES:
            return path, path.name
        try:
            return path.read_bytes(), path.name
        except OSError as err:
            raise CatalogError(f"Cannot read catalog file {path}: {err.strerror or err}.") from err
    name = str(getattr(source, "name", "") or "uploaded catalog")
    data = source.read()
    if isinstance(data, str):
        data = data.encode("utf-8")
    return data, Path(name).name if name else "uploaded catalog"


def _parquet_files(folder: Path) -> list[Path]:
    """The Parquet files in a folder (and its partition folders), without _metadata or dotfiles."""
    return sorted(
        p
        for p in folder.rglob("*.parquet")
        if p.is_file()
        and not any(part.startswith(("_", ".")) for part in p.relative_to(folder).parts)
    )


def _wanted_column(name: str) -> bool:
    """True for the source columns `_normalise` may use (the rest are not read)."""
    return name.strip().lower().removeprefix("\ufeff") in _KNOWN_COLUMNS


def _read_parquet(source: Path | bytes, name: str) -> pd.DataFrame:
    """The catalog columns of a Parquet file, folder of Parquet files or Parquet bytes."""
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    try:
        if isinstance(source, Path) and source.is_dir():
            dataset = pads.dataset(_parquet_files(source), format="parquet")
            columns = [c for c in dataset.schema.names if _wanted_column(c)]
            table = dataset.to_table(columns=columns or None)
        else:
            handle = pa.BufferReader(source) if isinstance(source, bytes) else source
            parquet = pq.ParquetFile(handle)
            columns = [c for c in parquet.schema_arrow.names if _wanted_column(c)]
            table = parquet.read(columns=columns or None)
    except (OSError, pa.ArrowException, ValueError) as err:
        raise CatalogError(
            f"{name} is not a readable Parquet file ({str(err).splitlines()[0]}). "
            "Re-export it, or save the catalog as CSV."
        ) from err
    return _arrow_to_frame(table)


def _arrow_to_frame(table) -> pd.DataFrame:
    """A pyarrow Table as a pandas frame with lower-cased, de-duplicated column names."""
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    frame.columns = _column_names(frame.columns)
    return frame


def _column_names(columns: Iterable[object]) -> list[str]:
    """Stripped, lower-cased names; repeats get '.1', '.2' ... as in pandas' CSV reader."""
    names: list[str] = []
    seen: set[str] = set()
    for column in columns:
        base = str(column).strip().lower().removeprefix("\ufeff")
        name, n = base, 0
        while name in seen:
            n += 1
            name = f"{base}.{n}"
        seen.add(name)
        names.append(name)
    return names


def _gunzip(raw: bytes, name: str, limit: int | None = None) -> bytes:
    """Every gzip member of `raw`, decompressed to at most `limit` bytes (MAX_CSV_BYTES by
    default): CatalogError beyond it, EOFError when the data stop before a member's end."""
    limit = MAX_CSV_BYTES if limit is None else limit
    out = bytearray()
    rest = raw
    while rest:
        member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out += member.decompress(rest, limit + 1 - len(out))
        if len(out) > limit:
            raise CatalogError(
                f"{name} expands to more than {limit / 1e6:,.0f} MB when decompressed, "
                "more than a catalog CSV may hold. Load a smaller catalog, or convert this one "
                "to Parquet and load that."
            )
        if not member.eof:
            raise EOFError("compressed file ended before the end-of-stream marker was reached")
        rest = member.unused_data.lstrip(b"\x00")  # the next member (zero padding skipped)
    return bytes(out)


def _prepare_bytes(raw: bytes, name: str) -> bytes:
    """CSV bytes gunzipped; CatalogError when they are empty or binary."""
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = _gunzip(raw, name)
        except (OSError, EOFError, zlib.error) as err:  # truncated, or damaged inside
            raise CatalogError(
                f"{name} looks gzip-compressed but cannot be decompressed ({err}). "
                "Re-export it as a plain .csv or a complete .csv.gz."
            ) from err
    if b"\x00" in raw[:_SNIFF_BYTES]:
        raise CatalogError(
            f"{name} is not a CSV text file (it contains binary data). "
            "Export the catalog as CSV (comma-separated, UTF-8) and load that."
        )
    if not raw[:_SNIFF_BYTES].strip() and not raw.strip():
        raise CatalogError(f"{name} is empty. A catalog needs a header row and at least one track.")
    return raw


def _separator(header: str) -> str:
    """The header's field separator: comma, else semicolon (European Excel) or tab."""
    if "," in header:
        return ","
    return max((";", "\t"), key=header.count) if (";" in header or "\t" in header) else ","


def _header(raw: bytes) -> str:
    """The first line of CSV bytes as text, without a BOM."""
    first = raw[: raw.find(b"\n")] if b"\n" in raw[:_SNIFF_BYTES] else raw[:_SNIFF_BYTES]
    return first.decode("utf-8", errors="replace").removeprefix("\ufeff").rstrip("\r")


def _read_csv_arrow(raw: bytes, separator: str) -> pd.DataFrame | None:
    """Parse UTF-8 CSV bytes with pyarrow (multi-threaded, typed); None when pyarrow cannot.

    Only the columns `_normalise` may use are converted; text columns are read as strings (a
    title such as '1999' stays text). Anything pyarrow rejects (invalid UTF-8, ragged rows, a
    column typed from its first block that changes later) returns None, and the pandas parser
    has its go, with its error messages.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    try:
        names = next(csv.reader([_header(raw)], delimiter=separator))
    except (csv.Error, StopIteration):
        return None
    if len(set(names)) != len(names) or not all(names):
        return None  # pandas mangles repeated and empty names; leave those files to it
    wanted = [n for n in names if _wanted_column(n)]
    text_names = {n for n in wanted if n.strip().lower() in _TEXT_COLUMNS}
    try:
        table = pcsv.read_csv(
            pa.BufferReader(raw),
            read_options=pcsv.ReadOptions(use_threads=True, block_size=1 << 22),
            parse_options=pcsv.ParseOptions(delimiter=separator),
            convert_options=pcsv.ConvertOptions(
                include_columns=wanted or None,
                column_types={n: pa.string() for n in text_names},
                null_values=[""],
                strings_can_be_null=True,
                true_values=["True", "TRUE", "true"],
                false_values=["False", "FALSE", "false"],
            ),
        )
    except (pa.ArrowException, ValueError):
        return None
    return _arrow_to_frame(table)


def _read_csv_pandas(raw: bytes, name: str, separator: str, notes: list[str]) -> pd.DataFrame:
    """Parse CSV bytes with pandas (any encoding fix-ups noted); CatalogError when unreadable."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
        notes.append(f"{name} is not UTF-8; read it as Windows-1252 (Latin) text.")
    try:
        frame = pd.read_csv(
            io.StringIO(text.removeprefix("\ufeff")),
            sep=separator,
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
    frame.columns = _column_names(frame.columns)
    return frame


def _read_decimal_commas(frame: pd.DataFrame, separator: str) -> pd.DataFrame:
    """`frame` with decimal commas ('0,5', '-6,2', '1,5E-05') in its number columns read as
    decimal points, as a European Excel writes them.

    In a ';'- or tab-separated file every such cell is a decimal comma. In a comma-separated
    file (quoted cells) a column is converted only when all its cells are numbers or decimal
    commas and not all of those look like thousands ('1,234'), which stay unreadable. A column
    whose every cell then parses becomes float; otherwise only the decimal-comma cells are
    rewritten, so the unreadable ones are still reported as they were written. Cells such as
    '1,234,567' or '1.234,5' are left alone (and so are still not numbers).
    """
    for column in frame.columns:
        values = frame[column]
        if column not in _KNOWN_COLUMNS or column in _TEXT_COLUMNS:
            continue
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        text = _clean_text(values)
        comma = text.str.fullmatch(_DECIMAL_COMMA).fillna(False).astype(bool)
        if not comma.any():
            continue
        if separator == ",":
            numbers = pd.to_numeric(text.mask(comma), errors="coerce")
            if (numbers.isna() & text.notna() & ~comma).any():
                continue  # other cells are not numbers either: no sign of a decimal comma
            if text[comma].str.fullmatch(_THOUSANDS).all():
                continue  # '1,234': thousands as likely as decimals; leave it unreadable
        dotted = text.where(~comma, text.str.replace(",", ".", regex=False))
        numbers = pd.to_numeric(dotted, errors="coerce")
        if not (numbers.isna() & dotted.notna()).any():
            frame[column] = numbers.astype("float64")
        else:
            frame[column] = values.astype(object).where(~comma, dotted)
    return frame


def _read_frame(source: bytes | Path, name: str, notes: list[str]) -> pd.DataFrame:
    """The raw table of a catalog: Parquet by pyarrow; CSV by pyarrow, else by pandas."""
    if isinstance(source, Path) or source[:4] == PARQUET_MAGIC:
        return _read_parquet(source, name)
    raw = _prepare_bytes(source, name)
    separator = _separator(_header(raw))
    frame = _read_csv_arrow(raw, separator)
    if frame is None:
        frame = _read_csv_pandas(raw, name, separator, notes)
    return _read_decimal_commas(frame, separator)


# --------------------------------------------------------------------------- normalising


def _pick(frame: pd.DataFrame, target: str) -> str | None:
    """The first source column of `frame` that provides normalised column `target`."""
    return next((alias for alias in COLUMN_ALIASES[target] if alias in frame.columns), None)


def _clean_text(values: pd.Series) -> pd.Series:
    """Strings stripped of surrounding spaces; empty strings become NA."""
    text = values.astype("str").str.strip()
    return text.mask(text == "")


def _to_numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Float values, NaN where a cell is empty or not a finite number ("inf" and "-inf" parse
    as floats but break every mean, scale and distance), and a mask of the non-empty cells
    that are not finite numbers."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.astype("float64")
        infinite = pd.Series(np.isinf(numbers.to_numpy()), index=values.index)
        return numbers.mask(infinite), infinite
    text = _clean_text(values)
    numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    numbers = numbers.mask(np.isinf(numbers.to_numpy()))
    return numbers, numbers.isna() & text.notna()


def _year_numbers(values: pd.Series) -> pd.Series:
    """Years (float, NaN when unreadable) from bare years or dates such as 2019-05-01 or 5/1/99."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    text = _clean_text(values)
    years = pd.to_numeric(text, errors="coerce").astype("float64")  # bare years: most cells
    rest = years.isna() & text.notna()
    if rest.any():
        digits = text[rest].str.extract(r"(?<!\d)(\d{4})(?!\d)", expand=False)
        years.loc[rest] = pd.to_numeric(digits, errors="coerce").astype("float64")
        # Dates such as 5/1/99 carry a two-digit year: let pandas have a go at what is left.
        undated = years.isna() & text.notna()
        if undated.any():
            parsed = pd.to_datetime(text[undated], errors="coerce", format="mixed")
            years.loc[undated] = parsed.dt.year.astype("float64")
    return years


def _parse_years(values: pd.Series, min_year: int = MIN_YEAR) -> pd.Series:
    """Years (Int64) from bare years or dates; years before `min_year` or after next year: NA."""
    years = _year_numbers(values)
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
    codes, labels = pd.factorize(_clean_text(values))  # a few distinct labels: map those only
    canonical = {mood.lower(): mood for mood in MOODS}
    known = pd.Series(labels, dtype="str").str.lower().map(canonical)
    unknown = known.isna().to_numpy()
    if unknown.any():
        bad = np.flatnonzero(unknown)
        counts = pd.Series(np.bincount(codes[codes >= 0], minlength=len(labels))[bad])
        counts.index = pd.Index(np.asarray(labels, dtype=object)[bad])
        counts = counts.sort_values(ascending=False, kind="stable")
        shown = ", ".join(f"'{label}' ({count})" for label, count in counts.head(10).items())
        more = f" and {len(counts) - 10} more" if len(counts) > 10 else ""
        raise CatalogError(
            f"{name} has unknown mood label(s): {shown}{more}. "
            f"Moods must be one of {', '.join(MOODS)} (any letter case), or left empty "
            "for tracks without a mood."
        )
    moods = np.append(known.to_numpy(dtype=object), None)[codes]  # code -1 (empty): None
    return pd.Series(moods, index=values.index, dtype="str")


def _parse_features(frame: pd.DataFrame, name: str, notes: list[str]) -> dict[str, pd.Series]:
    """Numeric audio-feature columns; CatalogError when a column is not numeric."""
    features: dict[str, pd.Series] = {}
    bad_columns: list[str] = []
    for feature in AUDIO_FEATURES:
        if feature not in frame.columns:
            continue
        numbers, bad = _to_numbers(frame[feature])
        absurd = numbers.abs() > MAX_FEATURE_MAGNITUDE
        huge = bool(absurd.any())
        if huge:
            numbers, bad = numbers.mask(absurd), bad | absurd
        filled = int(frame[feature].notna().sum())
        if filled and bad.sum() > _MAX_BAD_FEATURE_SHARE * filled:
            samples = ", ".join(repr(str(v).strip()) for v in frame[feature][bad].unique()[:3])
            bad_columns.append(f"{feature} (e.g. {samples})")
            continue
        if bad.any():
            beyond = f" (or beyond ±{MAX_FEATURE_MAGNITUDE:,.0f})" if huge else ""
            notes.append(
                f"Ignored {int(bad.sum())} non-numeric or infinite {feature} value(s){beyond}."
            )
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


def _normalise(
    frame: pd.DataFrame, name: str, notes: list[str], allow_empty: bool = False
) -> pd.DataFrame:
    """The normalised catalog built from a raw frame (lower-case column names)."""
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

    na_text = pd.Series(pd.NA, index=frame.index, dtype="str")
    na_float = pd.Series(np.nan, index=frame.index, dtype="float64")
    out = pd.DataFrame(index=frame.index)
    out["title"] = _clean_text(frame[sources["title"]])
    out["artist"] = _clean_text(frame[sources["artist"]])
    album = column("album")
    out["album"] = _clean_text(album) if album is not None else na_text
    year = column("year")
    if year is not None and sources["year"] in ("release_date", "date"):
        out["year"] = _parse_years(year, MIN_RELEASE_DATE_YEAR)
    elif year is not None:
        numbers = _year_numbers(year)
        early = numbers.between(MIN_YEAR, MIN_RECORDING_YEAR - 1)
        if early.any():
            notes.append(
                f"Left the year of {int(early.sum())} track(s) empty: years before "
                f"{MIN_RECORDING_YEAR} (e.g. {int(numbers[early].min())}) predate recorded "
                f"music, so they are composition dates, not releases. Put those in a "
                f"'{COMPOSED}' column."
            )
        out["year"] = _parse_years(numbers, MIN_RECORDING_YEAR)
    else:
        out["year"] = na_float.astype("Int64")
    genre = column("genre")
    if genre is not None:
        codes, labels = pd.factorize(_clean_text(genre))
        lowered = pd.Series(labels, dtype="str").str.lower()
        lowered = lowered.mask(lowered.isin(_MISSING_GENRES)).to_numpy(dtype=object)
        out["genre"] = pd.Series(np.append(lowered, None)[codes], index=frame.index, dtype="str")
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
    composed = next((c for c in COMPOSED_ALIASES if c in frame.columns), None)
    if composed is not None:
        out[COMPOSED] = _parse_years(frame[composed], MIN_YEAR)
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
    without_id = out["track_id"].isna()
    if without_id.any():  # exact copies of a row without a track id: the id check misses them
        copies = np.zeros(len(out), dtype=bool)
        copies[without_id.to_numpy()] = out[without_id].duplicated(keep="first").to_numpy()
        if copies.any():
            notes.append(
                f"Dropped {int(copies.sum())} exact duplicate row(s) without a track id "
                "(kept the first of each)."
            )
            out = out[~copies]
    filled_counts: dict[str, int] = {}  # feature -> tracks given the median (for charts)
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
            gappy = list(counts[counts > 0].index)
            out[gappy] = out[gappy].fillna(out[gappy].median())
            filled_counts = {str(f): int(n) for f, n in counts[counts > 0].items()}
    if out.empty and not allow_empty:
        raise CatalogError(
            f"{name} has no usable tracks: every row lacks a title, an artist or audio "
            "features. Check that the file has data rows under its header."
        )
    out = out.reset_index(drop=True)
    out.attrs["filled_features"] = filled_counts
    return out


# --------------------------------------------------------------------------- public API


def load_catalog(source: CatalogSource, name: str | None = None) -> pd.DataFrame:
    """Read a catalog into a normalised frame: CSV (plain or gzipped), a Parquet file or a folder
    of Parquet files (e.g. what ``label --engine dask`` writes); a path or an open file.

    The frame has the columns of `NORMALISED_COLUMNS`, then each audio feature present, then
    ``composed`` and ``mood_confidence`` when the file has them. ``df.attrs`` holds ``name``,
    ``format`` (starter, data_moods, spotify_features, labelled or custom) and ``notes`` (what
    was fixed up). Raises `CatalogError` with an end-user message when the file cannot be used.
    CSV is parsed by pyarrow (multi-threaded) when it can, else by pandas.
    """
    raw, default_name = _read_source(source)
    display_name = name or default_name
    notes: list[str] = []
    frame = _read_frame(raw, display_name, notes)
    if frame.empty:
        raise CatalogError(
            f"{display_name} has a header but no tracks. Add at least one row of data."
        )
    return _normalised_catalog(frame, display_name, notes)


def normalise_frame(
    frame: pd.DataFrame, name: str = "catalog", *, allow_empty: bool = False
) -> pd.DataFrame:
    """A raw catalog table already in memory, normalised exactly as `load_catalog` does a file.

    For one partition of a partitioned catalog (``label --engine dask``): pass
    ``allow_empty=True`` so a partition without usable tracks gives an empty frame, not an error.
    Duplicate track ids are dropped and missing features filled within `frame` only.
    """
    frame = frame.copy(deep=False)
    frame.columns = _column_names(frame.columns)
    return _normalised_catalog(frame, name, [], allow_empty=allow_empty)


def _normalised_catalog(
    frame: pd.DataFrame, name: str, notes: list[str], allow_empty: bool = False
) -> pd.DataFrame:
    features_present = all(f in frame.columns for f in CORE_FEATURES)
    has_mood_column = _pick(frame, "mood") is not None
    catalog_format = _detect_format(frame, features_present, has_mood_column)
    catalog = _normalise(frame, name, notes, allow_empty=allow_empty)
    catalog.attrs["name"] = name
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


def catalog_file(path: str | os.PathLike, folders: Iterable[Path]) -> Path:
    """The catalog file `path` names, when it lies inside one of `folders` (links and ``..``
    resolved first); CatalogError otherwise, the same whether or not the file exists, so a page
    cannot be used to read, or probe for, any other file on its server."""
    file = Path(path).expanduser().resolve()
    roots = [Path(folder).expanduser().resolve() for folder in folders]
    if not any(file.is_relative_to(root) for root in roots):
        raise CatalogError(
            f"A catalog is opened by path only from {', '.join(str(r) for r in roots)} "
            "(add a folder with MOODLENS_CATALOG_DIRS); upload the file instead."
        )
    if not file.is_file():
        raise CatalogError(f"Catalog file not found: {file}. Check the path.")
    return file


def data_moods_path() -> Path:
    """Path of the shared Kaggle data_moods.csv (may not exist on a user's machine)."""
    return shared_data_dir() / "music" / "data_moods.csv"


def spotify_features_path() -> Path:
    """Path of the shared 19k-row Spotify features table (may not exist)."""
    return shared_data_dir() / "music" / "spotify_features_19k.csv.gz"


# --------------------------------------------------------------------------- CLI


def _label_command(args: argparse.Namespace) -> int:
    if args.engine == "dask":
        from core.music.moods import label_catalog_dask

        summary = label_catalog_dask(
            args.input,
            args.output,
            train=args.train,
            folds=args.folds,
            overwrite=args.overwrite,
            scheduler=args.scheduler,
            workers=args.workers,
            partitions=args.partitions,
        )
    else:
        if args.scheduler:
            raise CatalogError("--scheduler needs --engine dask.")
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
    label.add_argument(
        "--in",
        dest="input",
        required=True,
        help="catalog: CSV (.csv.gz) or Parquet file; with --engine dask also a glob of CSV or "
        "Parquet files (quote it) or a folder of Parquet files",
    )
    label.add_argument(
        "--out",
        dest="output",
        required=True,
        help="labelled catalog: a CSV or .parquet file; with --engine dask a new folder of "
        "Parquet files",
    )
    label.add_argument(
        "--engine",
        choices=("pandas", "dask"),
        default="pandas",
        help="pandas: in memory (default); dask: partition by partition on a Dask cluster",
    )
    label.add_argument(
        "--scheduler",
        help="address of a running `dask scheduler` (tcp://HOST:8786); default: a LocalCluster",
    )
    label.add_argument(
        "--workers", type=int, help="LocalCluster worker processes (default: one a CPU)"
    )
    label.add_argument(
        "--partitions", type=int, help="repartition to at least this many (default: 2 a worker)"
    )
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
