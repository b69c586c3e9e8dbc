"""The HTTP side of Spotify: a client-credentials client with short retries and a result cache.

`SpotifyClient` wraps spotipy with one `requests` session, a token kept in memory (fetched once,
renewed once on a 401), a cap on how long a 429's Retry-After may make a page wait, and a
10-minute cache of search and playlist results. Every failure becomes `SpotifyUnavailable` with
a message for the user. What a new Spotify app may still use (and what the ranking in
core.music.spotify_ranking is therefore built on) is described there; `probe` reports it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import requests
import spotipy
from requests.adapters import HTTPAdapter
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.exceptions import SpotifyException, SpotifyOauthError
from urllib3.util.retry import Retry

if TYPE_CHECKING:
    from core.settings import Settings

SPOTIFY_API_BASE = "https://api.spotify.com/v1/"
SPOTIFY_TOKEN_URL = "https://accounts.spotify.com/api/token"
SEARCH_PAGE_LIMIT = 10  # Spotify's cap on `limit` for search since early 2026
SERVER_ERRORS = (500, 502, 503, 504)
# How long a 429 without Retry-After (Development Mode's quota 429s come so) keeps calls off.
DEFAULT_RETRY_AFTER = 60.0

# Endpoints that Spotify closed to new apps in November 2024 (403/404 for them).
CLOSED_SINCE_2024 = frozenset(
    {"recommendations", "audio features", "audio analysis", "related artists",
     "featured playlists", "category playlists", "playlist items"}
)  # fmt: skip
NOT_SET_UP = (
    "Spotify is not set up (no SPOTIFY_CLIENT_ID / SPOTIFY_CLIENT_SECRET in "
    "st.secrets or the environment). Showing the local catalog."
)

T = TypeVar("T")

# spotipy logs every HTTP error at ERROR level; we turn them into SpotifyUnavailable instead.
# A NullHandler keeps them off stderr unless the app configures logging itself.
logging.getLogger("spotipy").addHandler(logging.NullHandler())

_CREDENTIALS = re.compile(
    r"""(?ix)
    (?P<scheme>basic|bearer)\s+[A-Za-z0-9._~+/=-]+           # Authorization header values
    | (?P<key>["']?(?:access_token|refresh_token|client_secret|code_verifier)["']?
        \s*[:=]\s*["']?)[^"',}&\s]+                          # token-bearing fields
    """
)


def redact(text: str) -> str:
    """`text` with Authorization header values and token fields replaced by "[redacted]"."""
    return _CREDENTIALS.sub(
        lambda m: f"{m['scheme']} [redacted]" if m["scheme"] else f"{m['key']}[redacted]", text
    )


class RedactCredentials(logging.Filter):
    """Scrubs credentials from spotipy's records: at DEBUG it logs request headers (the client
    secret as Basic auth, the Bearer token) and bodies; nothing secret may reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


# A logger's filters see only its own records, not its children's: attach to each module.
for _name in ("spotipy", "spotipy.client", "spotipy.oauth2", "spotipy.cache_handler"):
    logging.getLogger(_name).addFilter(RedactCredentials())


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


def _json_reply(response: Any) -> bool:
    """Whether an HTTP reply's body is JSON (Spotify's own error object); True when there is no
    reply to look at (spotipy raised without one)."""
    if response is None:
        return True
    try:
        response.json()
    except ValueError:
        return False
    return True


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


class SpotifyClient:
    """Spotify Web API calls with client credentials; build once, reuse (token and cache).

    `api_base` and `token_url` default to Spotify's and exist so tests can use a local server.
    Timeouts and retries are deliberately short so a page never hangs: one retry on connection
    errors and 5xx, none on read timeouts; a 429 is retried once after its Retry-After when that
    is at most `max_retry_after` seconds, else reported at once, and every call until that
    Retry-After has passed is answered the same without asking Spotify. A 429 without
    Retry-After (how Development Mode reports a used-up quota) is not retried and counts as a
    Retry-After of `default_retry_after` seconds. Search and playlist results are kept for
    `cache_seconds`.
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
        default_retry_after: float = DEFAULT_RETRY_AFTER,
        market: str | None = None,
        cache_seconds: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not client_id or not client_secret:
            raise SpotifyUnavailable(
                "Spotify is not set up: the client ID or secret is empty. "
                "Showing the local catalog."
            )
        self.timeout = timeout
        self.max_retry_after = max_retry_after
        self.default_retry_after = default_retry_after
        self.market = market
        self.cache_seconds = cache_seconds
        self._sleep = sleep
        self._clock = clock
        # Until when Spotify asked for no more calls (a 429's Retry-After too long to wait out):
        # every session shares this client, and calls into the ban would only prolong it.
        self._rate_limited_until = 0.0
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
    def from_settings(cls, settings: Settings, **kwargs: Any) -> SpotifyClient:
        """A client with the credentials and endpoints of `settings`; SpotifyUnavailable
        (NOT_SET_UP) when it has no credentials. `kwargs` go to the constructor."""
        credentials = settings.spotify_credentials
        if credentials is None:
            raise SpotifyUnavailable(NOT_SET_UP)
        if settings.spotify_api_base:
            kwargs.setdefault("api_base", settings.spotify_api_base)
        if settings.spotify_token_url:
            kwargs.setdefault("token_url", settings.spotify_token_url)
        return cls(*credentials, **kwargs)

    # ------------------------------------------------------------------ HTTP calls

    def _call(self, what: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one spotipy call, turning every failure into SpotifyUnavailable."""
        banned_for = self._rate_limited_until - self._clock()
        if banned_for > 0:
            raise self._http_error(what, 429, banned_for)
        refreshed = waited = False
        while True:
            try:
                return function(*args, **kwargs)
            except SpotifyOauthError as err:
                # spotipy reports any failed token request so; only a 4xx is the credentials.
                token_reply = getattr(err.__context__, "response", None)
                status = getattr(token_reply, "status_code", None) or 400
                if status == 429 or status >= 500:
                    retry_after = (
                        self._cooldown(getattr(token_reply, "headers", None))
                        if status == 429
                        else None
                    )
                    raise self._rate_limited(
                        self._http_error("the token request", status, retry_after)
                    ) from err
                if status not in (400, 401) or not _json_reply(token_reply):
                    # Not Spotify's answer about the credentials (a proxy's page, say): its
                    # text is not shown, and the credentials are not blamed.
                    raise self._http_error("the token request", status, None) from err
                raise SpotifyUnavailable(
                    "Spotify did not accept this app's credentials "
                    f"({str(err.error or 'token request failed')[:120]}"
                    f"{': ' + str(err.error_description)[:120] if err.error_description else ''}"
                    "). Check SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET.",
                    status=401,
                ) from err
            except SpotifyException as err:
                status = err.http_status
                if status == 401 and not refreshed:
                    refreshed = True
                    self._auth.cache_handler.save_token_to_cache(None)  # token may have expired
                    continue
                retry_after = _retry_after_seconds(err.headers) if status == 429 else None
                if status == 429 and retry_after is None:
                    # No Retry-After: a quota, not a burst; a retry would only spend more of
                    # it. Report it and keep every call off for the default cooldown.
                    retry_after = self.default_retry_after
                elif status == 429 and not waited and retry_after <= self.max_retry_after:
                    waited = True
                    self._sleep(retry_after)
                    continue
                raise self._rate_limited(self._http_error(what, status, retry_after)) from err
            except requests.exceptions.Timeout as err:
                raise SpotifyUnavailable(
                    f"Spotify did not answer {what} within {self.timeout:g} s. "
                    "Try again in a moment."
                ) from err
            except requests.exceptions.RequestException as err:
                raise SpotifyUnavailable(
                    f"Cannot reach Spotify ({type(err).__name__}). Check the internet connection."
                ) from err

    def _cooldown(self, headers: Mapping[str, str] | None) -> float:
        """A 429's Retry-After in seconds, or `default_retry_after` when it sent none."""
        retry_after = _retry_after_seconds(headers)
        return self.default_retry_after if retry_after is None else retry_after

    def _rate_limited(self, error: SpotifyUnavailable) -> SpotifyUnavailable:
        """`error`, remembering a 429's Retry-After so no call is made before it has passed."""
        if error.status == 429 and error.retry_after:
            self._rate_limited_until = self._clock() + error.retry_after
        return error

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

    def track(self, track_id: str) -> dict[str, Any]:
        """One track object by id (name, artists, album art, links)."""
        return self._call("track lookup", self._client.track, track_id, market=self.market)

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
