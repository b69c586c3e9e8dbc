"""One recommended track (`Recommendation`), from the local catalog or Spotify, and its links."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

SPOTIFY_ID = re.compile(r"[0-9A-Za-z]{22}")  # a Spotify track id: 22 base-62 characters
SPOTIFY_TRACK_URL = "https://open.spotify.com/track/"
SPOTIFY_EMBED_URL = "https://open.spotify.com/embed/track/"


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
    def spotify_track_id(self) -> str | None:
        """`track_id` when it is a Spotify id (a catalog's own ids, e.g. row numbers, are not)."""
        return as_spotify_id(self.track_id)

    @property
    def url(self) -> str | None:
        """Link to the track on Spotify, when it has a Spotify id."""
        if self.external_url:
            return self.external_url
        return spotify_url(self.spotify_track_id) if self.spotify_track_id else None

    @property
    def embed(self) -> str | None:
        """Spotify embed-player URL, when the track has a Spotify id."""
        return embed_url(self.spotify_track_id) if self.spotify_track_id else None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict, with key, url and embed added."""
        return {**asdict(self), "key": self.key, "url": self.url, "embed_url": self.embed}


def as_spotify_id(value: object) -> str | None:
    """`value` (stripped) when it is a Spotify track id, else None."""
    text = str(value if value is not None else "").strip()
    return text if SPOTIFY_ID.fullmatch(text) else None


def track_key(track_id: str | None, title: str, artist: str) -> str:
    """Identity of a track: its Spotify id when it has one, else ``artist::title`` lower-cased.
    A catalog's own ids (row numbers, 1, 2, ...) name a different song in another catalog, so
    they are no identity: a thumb on track 1 of one file must not land on track 1 of the next."""
    return as_spotify_id(track_id) or f"{str(artist).strip().lower()}::{str(title).strip().lower()}"


def spotify_url(track_id: str) -> str:
    """Public Spotify page of a track."""
    return f"{SPOTIFY_TRACK_URL}{track_id}"


def embed_url(track_id: str) -> str:
    """Spotify's embeddable player for a track (for an iframe)."""
    return f"{SPOTIFY_EMBED_URL}{track_id}"
