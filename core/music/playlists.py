"""Playlist files for the songs moodlens showed you: M3U8, XSPF and CSV, as UTF-8 bytes.

    data = to_m3u8(recommendations, "moodlens · sad · Lift my mood")
    data = export(tracks_from_frame(store.liked_songs("ana")), "XSPF", "Liked by ana")

Every writer takes a list of `Recommendation` (from the recommenders, the session's list of
shown songs, or `tracks_from_frame` for a liked-songs / session DataFrame) and returns bytes, so
the pages hand them straight to `st.download_button` and nothing is written on the server.

Where a track lives: a track with a Spotify id points to its Spotify page
(https://open.spotify.com/track/<id>). A track without one (the starter catalog has none) gets
a Spotify *search* link for "artist title" in the M3U8: every ``#EXTINF`` line must be followed
by a location line (a comment instead would make players and importers attach the next track's
location to it), importers such as Soundiiz or TuneMyMusic match entries on the EXTINF's
"Artist - Title" anyway, and a person clicking the link lands on the song's search results.
XSPF allows a track without a location (it is meant to be resolved from title and creator),
so there such a track has no ``<location>`` and the search link goes in ``<info>``.
"""

from __future__ import annotations

import csv
import io
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from core.music.tracks import SPOTIFY_TRACK_URL, Recommendation, as_spotify_id, spotify_url

SPOTIFY_SEARCH_URL = "https://open.spotify.com/search/"
XSPF_NAMESPACE = "http://xspf.org/ns/0/"
CSV_COLUMNS = ("title", "artist", "album", "year", "genre", "mood", "spotify_url")
CREATOR = "moodlens"

_TRACK_ID_IN_TEXT = re.compile(r"(?:spotify:track:|open\.spotify\.com/(?:[\w-]+/)?track/)(\w{22})")
_FORMULA_STARTS = ("=", "+", "-", "@")  # what a spreadsheet reads a cell as a formula from
# Characters XML 1.0 cannot carry at all (even escaped): C0 controls but tab/newline/CR, etc.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# ----------------------------------------------------------------------------- track fields


def spotify_id(track: Recommendation) -> str | None:
    """The track's 22-character Spotify id (from its id, a spotify: URI or an open.spotify.com
    link), or None when it has none."""
    for text in (track.track_id, track.external_url):
        if not text:
            continue
        text = str(text).strip()
        if bare := as_spotify_id(text):
            return bare
        found = _TRACK_ID_IN_TEXT.search(text)
        if found:
            return found.group(1)
    return None


def search_url(track: Recommendation) -> str:
    """Spotify's web search for "artist title" (for tracks without a Spotify id)."""
    return SPOTIFY_SEARCH_URL + quote(_line(f"{track.artist} {track.title}"), safe="")


def location(track: Recommendation) -> str:
    """Where a player or person finds the track: its Spotify page, else a Spotify search."""
    track_id = spotify_id(track)
    return spotify_url(track_id) if track_id else search_url(track)


def duration_ms(track: Recommendation) -> int | None:
    """The track's length in ms when known (a `duration_ms` attribute or feature)."""
    value = getattr(track, "duration_ms", None)
    if value is None:
        value = (track.features or {}).get("duration_ms")
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number) if math.isfinite(number) and number > 0 else None


def _line(text: Any) -> str:
    """`text` on one line: every run of whitespace (newlines included) becomes one space."""
    return " ".join(str(text or "").split())


def _xml_text(text: Any) -> str:
    return _NOT_XML.sub("", _line(text))


# ----------------------------------------------------------------------------- writers


def to_m3u8(tracks: Sequence[Recommendation], title: str = CREATOR) -> bytes:
    """An extended M3U playlist (UTF-8): ``#EXTM3U``, ``#PLAYLIST:`` and, per track,
    ``#EXTINF:<seconds or -1>,<artist> - <title>`` then its location (see the module doc)."""
    lines = ["#EXTM3U", f"#PLAYLIST:{_line(title) or CREATOR}"]
    for track in tracks:
        ms = duration_ms(track)
        seconds = round(ms / 1000) if ms else -1
        lines.append(f"#EXTINF:{seconds},{_line(track.artist)} - {_line(track.title)}")
        lines.append(location(track))
    return ("\n".join(lines) + "\n").encode("utf-8")


def to_xspf(tracks: Sequence[Recommendation], title: str = CREATOR) -> bytes:
    """An XSPF (XML Shareable Playlist Format) playlist, UTF-8. Per track: location and
    identifier (spotify:track:<id>) when it has a Spotify id, title, creator (the artist),
    annotation (why it was chosen), info (its Spotify page or search), image, album, duration."""
    root = ET.Element("playlist", {"version": "1", "xmlns": XSPF_NAMESPACE})
    ET.SubElement(root, "title").text = _xml_text(title) or CREATOR
    ET.SubElement(root, "creator").text = CREATOR
    track_list = ET.SubElement(root, "trackList")
    for track in tracks:
        node = ET.SubElement(track_list, "track")
        track_id = spotify_id(track)
        if track_id:
            ET.SubElement(node, "location").text = spotify_url(track_id)
            ET.SubElement(node, "identifier").text = f"spotify:track:{track_id}"
        # Element order as in the XSPF 1 specification.
        fields = [
            ("title", track.title),
            ("creator", track.artist),
            ("annotation", track.reason),
            ("info", location(track)),
            ("image", track.image_url),
            ("album", track.album),
            ("duration", duration_ms(track)),
        ]
        for tag, value in fields:
            text = _xml_text(value)
            if text:
                ET.SubElement(node, tag).text = text
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode")  # escapes &, <, > and quotes in attributes
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{text}\n'.encode()


def csv_text(text: Any) -> str:
    """A text cell a spreadsheet shows as text: one line, and a leading = + - @ (a formula to
    Excel, LibreOffice and Sheets, e.g. a title '=HYPERLINK(...)') escaped with a quote."""
    cell = _line(text)
    return f"'{cell}" if cell[:1] in _FORMULA_STARTS else cell


def to_csv(tracks: Sequence[Recommendation]) -> bytes:
    """CSV (UTF-8 with a byte-order mark, so Excel reads accents right; RFC 4180 quoting) with
    a header row: title, artist, album, year, genre, mood, spotify_url (empty for tracks without
    a Spotify id). Text that a spreadsheet would run as a formula is escaped (`csv_text`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for track in tracks:
        track_id = spotify_id(track)
        writer.writerow(
            [
                csv_text(track.title),
                csv_text(track.artist),
                csv_text(track.album),
                track.year if track.year is not None else "",
                csv_text(track.genre),
                csv_text(track.mood),
                spotify_url(track_id) if track_id else "",
            ]
        )
    return buffer.getvalue().encode("utf-8-sig")


@dataclass(frozen=True)
class PlaylistFormat:
    """A file format the pages offer: its name, file extension, MIME type and writer."""

    name: str
    extension: str
    mime: str
    write: Callable[[Sequence[Recommendation], str], bytes]


FORMATS: dict[str, PlaylistFormat] = {
    "M3U8": PlaylistFormat("M3U8", "m3u8", "audio/x-mpegurl", to_m3u8),
    "XSPF": PlaylistFormat("XSPF", "xspf", "application/xspf+xml", to_xspf),
    "CSV": PlaylistFormat("CSV", "csv", "text/csv", lambda tracks, _title: to_csv(tracks)),
}


def export(tracks: Sequence[Recommendation], kind: str, title: str = CREATOR) -> bytes:
    """`tracks` as a file of format `kind` (a key of FORMATS, any case)."""
    try:
        playlist_format = FORMATS[kind.upper()]
    except KeyError:
        known = ", ".join(FORMATS)
        raise ValueError(f"Unknown playlist format {kind!r}; use one of {known}.") from None
    return playlist_format.write(list(tracks), title)


def file_name(title: str, kind: str) -> str:
    """A safe download name for a playlist, e.g. ``moodlens-sad-lift-my-mood.m3u8``."""
    slug = re.sub(r"[^0-9a-z]+", "-", title.lower()).strip("-")[:60].strip("-")
    return f"{slug or CREATOR}.{FORMATS[kind.upper()].extension}"


# ----------------------------------------------------------------------------- track lists


def merge_songs(
    songs: Iterable[Recommendation], more: Iterable[Recommendation]
) -> list[Recommendation]:
    """`songs` then the tracks of `more` not already in it (by `Recommendation.key`), in order:
    the session's list of shown songs, first seen first."""
    merged = list(songs)
    seen = {track.key for track in merged}
    for track in more:
        if track.key not in seen:
            seen.add(track.key)
            merged.append(track)
    return merged


def _value(row: dict[str, Any], name: str) -> Any:
    value = row.get(name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if value.__class__.__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return None
    if isinstance(value, str):
        return value.strip() or None
    return value


def _year(value: Any) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except (TypeError, ValueError, OverflowError):  # OverflowError: "1e999"
        text = str(value)
        return int(text[:4]) if text[:4].isdigit() else None


def tracks_from_frame(frame: Any) -> list[Recommendation]:
    """A DataFrame of songs as Recommendations, in row order: FeedbackStore.liked_songs or
    votes, a session's songs, or rows of `Recommendation.to_dict()`. Needs title and artist
    columns; album, year, genre, mood, track_id, spotify_url/url/external_url, reason, image_url
    are used when present. Rows without a title are left out."""
    if frame is None or len(frame) == 0:
        return []
    tracks = []
    for row in frame.to_dict("records"):
        title = _value(row, "title")
        if title is None:
            continue
        links = (_value(row, name) for name in ("external_url", "spotify_url", "url"))
        link = next((str(v) for v in links if v and SPOTIFY_TRACK_URL in str(v)), None)
        track_id = _value(row, "track_id")
        tracks.append(
            Recommendation(
                title=str(title),
                artist=str(_value(row, "artist") or ""),
                album=_value(row, "album"),
                year=_year(_value(row, "year")),
                genre=_value(row, "genre"),
                mood=_value(row, "mood"),
                popularity=None,
                track_id=str(track_id) if track_id is not None else None,
                reason=str(_value(row, "reason") or ""),
                score=0.0,
                image_url=_value(row, "image_url"),
                external_url=link,
                source=str(_value(row, "source") or "catalog"),
            )
        )
    return tracks
