"""A private playlist in the listener's own Spotify account (authorization code with PKCE).

    spotify = SpotifyPlaylists.from_settings(settings)     # client id + redirect URI
    login = spotify.start_login()                           # login.url: "Connect Spotify"
    ...  Spotify sends the browser back to the redirect URI with ?code=...&state=...
    token = spotify.finish_login(query_params, login)       # checks state, exchanges the code
    saved = spotify.save_playlist(token, "moodlens · sad", tracks)
    saved.url, saved.added, saved.skipped                   # link, songs added, songs left out

PKCE needs no client secret in the browser flow: the app sends a SHA-256 challenge of a random
verifier with the sign-in and the verifier itself with the code, so a stolen code is useless.
Only the scope ``playlist-modify-private`` is asked for. The playlist is created with ``POST
/v1/me/playlists`` and filled 100 songs per ``POST /v1/playlists/{id}/items`` (the path
Spotify uses since February 2026; ``/tracks`` is refused to Development-Mode apps). Only tracks
with a Spotify id go in; the others come back in `SavedPlaylist.skipped`.

Tokens live in the `UserToken` the caller keeps (the pages: in the browser session's
st.session_state), never on disk; they are left out of reprs and of every error message.
A full-page redirect starts a new Streamlit session, so the pages keep started logins in
`PendingLogins`, a process-memory, single-use store keyed by the unguessable state, which
expires them after 15 minutes. Every failure is a `PlaylistError` with a message for the
listener (denied consent, expired sign-in, Development-Mode allow-list, rate limit, outages).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import requests

from core.music.playlists import spotify_id
from core.music.tracks import Recommendation

if TYPE_CHECKING:
    from core.settings import Settings

AUTHORIZE_URL = "https://accounts.spotify.com/authorize"
TOKEN_URL = "https://accounts.spotify.com/api/token"
API_BASE = "https://api.spotify.com/v1/"
SCOPE = "playlist-modify-private"
BATCH_SIZE = 100  # Spotify's cap on URIs per "add items" request
SERVER_ERRORS = range(500, 600)

NOT_SET_UP = (
    "Saving to your Spotify needs the app's Spotify client ID and a redirect URI "
    "([spotify] client_id and redirect_uri in .streamlit/secrets.toml, or SPOTIFY_CLIENT_ID "
    "and SPOTIFY_REDIRECT_URI). You can still download the playlist as a file."
)
DENIED = (
    "You did not allow moodlens to create a playlist in your Spotify account, so nothing was "
    "saved. Download the playlist as a file instead, or press Connect Spotify again."
)
BAD_STATE = (
    "This Spotify sign-in does not belong to a Connect Spotify press in this browser, or it is "
    "older than 15 minutes (state mismatch), so it was ignored. Press Connect Spotify again "
    "(in the browser, and at the address, you use moodlens with)."
)
EXPIRED = "Your Spotify sign-in has expired (401). Press Connect Spotify again."
DEVELOPMENT_MODE = (
    "Spotify refused (403): this Spotify app is in Development Mode and your Spotify account "
    "is not on its allow-list. The app's owner must add your Spotify account's name and email "
    "under User Management in the Spotify developer dashboard. Until then, download the "
    "playlist as a file."
)
MISSING_SCOPE = (
    "Spotify refused (403): the sign-in did not grant moodlens permission to create private "
    "playlists (playlist-modify-private). Press Connect Spotify again and allow it."
)
NOTHING_TO_SAVE = (
    "None of these songs has a Spotify id, so there is nothing to add to a Spotify playlist. "
    "Download the playlist as a file instead, or use 'Live from Spotify' songs."
)


class PlaylistError(Exception):
    """Saving to Spotify failed; `str(error)` is a message for the listener.

    `reconnect`: the sign-in is no longer usable (drop the token, offer Connect again).
    `playlist_url` and `added`: set when the playlist was created but not every song went in.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        reconnect: bool = False,
        playlist_url: str | None = None,
        added: int = 0,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.reconnect = reconnect
        self.playlist_url = playlist_url
        self.added = added


@dataclass(frozen=True)
class Login:
    """A started sign-in: the authorize URL to open, its state and PKCE verifier."""

    url: str
    state: str
    code_verifier: str = field(repr=False)


@dataclass(frozen=True)
class UserToken:
    """A listener's access token (kept out of repr); expires_at is a time.time() value.
    Spotify's refresh token is not kept: after the hour, the listener connects again."""

    access_token: str = field(repr=False)
    expires_at: float
    scope: str = ""

    def expired(self, now: float | None = None, margin: float = 30.0) -> bool:
        """True when the token is (nearly) expired and a new sign-in is needed."""
        return (time.time() if now is None else now) >= self.expires_at - margin


@dataclass(frozen=True)
class SavedPlaylist:
    """A playlist made in the listener's account: link, songs added and songs left out."""

    id: str
    url: str
    name: str
    added: int
    skipped: tuple[Recommendation, ...] = ()


def code_challenge(verifier: str) -> str:
    """PKCE S256 challenge: base64url(SHA-256(verifier)) without padding (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def split_tracks(tracks: Iterable[Recommendation]) -> tuple[list[str], list[Recommendation]]:
    """(spotify:track URIs, in order and without repeats; tracks without a Spotify id)."""
    uris: list[str] = []
    skipped: list[Recommendation] = []
    seen: set[str] = set()
    for track in tracks:
        track_id = spotify_id(track)
        if track_id is None:
            skipped.append(track)
        elif track_id not in seen:
            seen.add(track_id)
            uris.append(f"spotify:track:{track_id}")
    return uris, skipped


def _wait_text(seconds: float | None) -> str:
    if seconds is None:
        return "in a minute"
    if seconds >= 90:
        return f"in about {round(seconds / 60)} minutes"
    return f"in {max(1, round(seconds))} s"


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


def _spotify_message(response: requests.Response) -> str:
    """Spotify's own words from an error body ({"error": {"message"}} or OAuth's fields)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or "")
    parts = [str(error or ""), str(body.get("error_description") or "")]
    return ": ".join(p for p in parts if p)


class SpotifyPlaylists:
    """Sign-in (authorization code + PKCE) and playlist creation for one Spotify app.

    `authorize_url`, `token_url` and `api_base` default to Spotify's and exist so tests can use
    a local server. No request is retried except a 429 whose Retry-After is at most
    `max_retry_after` seconds (Spotify did not act on it): creating a playlist or adding songs
    twice would duplicate them.
    """

    def __init__(
        self,
        client_id: str,
        redirect_uri: str,
        *,
        authorize_url: str = AUTHORIZE_URL,
        token_url: str = TOKEN_URL,
        api_base: str = API_BASE,
        timeout: float = 6.0,
        max_retry_after: float = 3.0,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        if not client_id or not redirect_uri:
            raise PlaylistError(NOT_SET_UP)
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.authorize_endpoint = authorize_url
        self.token_url = token_url
        self.api_base = api_base if api_base.endswith("/") else api_base + "/"
        self.timeout = timeout
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._session = session or requests.Session()

    @staticmethod
    def configured(settings: Settings) -> bool:
        """True when `settings` have what the sign-in needs (client ID and redirect URI)."""
        return bool(settings.spotify_client_id and settings.spotify_redirect_uri)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> SpotifyPlaylists:
        """A client for the app in `settings`; PlaylistError (NOT_SET_UP) without a client ID
        or redirect URI. A test token URL ``<base>/api/token`` implies ``<base>/authorize``."""
        if not cls.configured(settings):
            raise PlaylistError(NOT_SET_UP)
        if settings.spotify_token_url:
            kwargs.setdefault("token_url", settings.spotify_token_url)
            base = settings.spotify_token_url.removesuffix("/api/token")
            kwargs.setdefault("authorize_url", f"{base}/authorize")
        if settings.spotify_api_base:
            kwargs.setdefault("api_base", settings.spotify_api_base)
        return cls(settings.spotify_client_id, settings.spotify_redirect_uri, **kwargs)

    # ------------------------------------------------------------------ sign-in

    def start_login(self) -> Login:
        """A new sign-in: random state and PKCE verifier, and the authorize URL for them."""
        state = secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(64)  # 86 characters of [A-Za-z0-9_-]
        query = {
            "client_id": self.client_id,
            "response_type": "code",
            "redirect_uri": self.redirect_uri,
            "scope": SCOPE,
            "state": state,
            "code_challenge_method": "S256",
            "code_challenge": code_challenge(verifier),
        }
        return Login(f"{self.authorize_endpoint}?{urlencode(query)}", state, verifier)

    def finish_login(self, params: Mapping[str, Any], login: Login | None) -> UserToken:
        """Check the redirect's `params` (code, state or error) against `login` (None when the
        state is unknown) and exchange the code for the listener's token."""
        state = str(params.get("state") or "")
        if login is None or not hmac.compare_digest(state, login.state):
            raise PlaylistError(BAD_STATE)
        error = params.get("error")
        if error == "access_denied":
            raise PlaylistError(DENIED)
        if error:
            raise PlaylistError(
                f"Spotify could not sign you in ({error}). Press Connect Spotify again."
            )
        code = params.get("code")
        if not code:
            raise PlaylistError("Spotify sent no sign-in code back. Press Connect Spotify again.")
        form = {
            "grant_type": "authorization_code",
            "code": str(code),
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
            "code_verifier": login.code_verifier,
        }
        answer = self._request("POST", self.token_url, "signing you in", data=form)
        try:
            return UserToken(
                access_token=str(answer["access_token"]),
                expires_at=time.time() + float(answer.get("expires_in", 3600)),
                scope=str(answer.get("scope") or ""),
            )
        except (KeyError, TypeError, ValueError):
            raise PlaylistError(
                "Spotify's sign-in answer had no access token. Press Connect Spotify again."
            ) from None

    # ------------------------------------------------------------------ API

    def current_user(self, token: UserToken) -> dict[str, Any]:
        """The listener's profile (``GET /v1/me``): id, display_name, ..."""
        return self._request("GET", f"{self.api_base}me", "reading your profile", token=token)

    def save_playlist(
        self,
        token: UserToken,
        name: str,
        tracks: Sequence[Recommendation],
        *,
        description: str = "Made by moodlens.",
    ) -> SavedPlaylist:
        """Create a private playlist `name` in the listener's account and add the tracks with a
        Spotify id, 100 per request, in order. Raises NOTHING_TO_SAVE (before creating
        anything) when no track has an id; a failure after creation names the playlist's link
        and how many songs went in."""
        uris, skipped = split_tracks(tracks)
        if not uris:
            raise PlaylistError(NOTHING_TO_SAVE)
        created = self._request(
            "POST",
            f"{self.api_base}me/playlists",
            "creating the playlist",
            token=token,
            json={"name": name[:100], "description": description[:300], "public": False},
        )
        playlist_id = str(created.get("id") or "")
        if not playlist_id:
            raise PlaylistError("Spotify created no playlist (its answer had no id). Try again.")
        url = (created.get("external_urls") or {}).get("spotify") or (
            f"https://open.spotify.com/playlist/{playlist_id}"
        )
        added = 0
        for start in range(0, len(uris), BATCH_SIZE):
            batch = uris[start : start + BATCH_SIZE]
            try:
                self._request(
                    "POST",
                    f"{self.api_base}playlists/{playlist_id}/items",
                    "adding songs to the playlist",
                    token=token,
                    json={"uris": batch},
                )
            except PlaylistError as error:
                raise PlaylistError(
                    f"{error.message} The playlist was created with {added} of {len(uris)} "
                    f"songs: {url}",
                    status=error.status,
                    retry_after=error.retry_after,
                    reconnect=error.reconnect,
                    playlist_url=url,
                    added=added,
                ) from None
            added += len(batch)
        return SavedPlaylist(
            playlist_id, url, str(created.get("name") or name), added, tuple(skipped)
        )

    # ------------------------------------------------------------------ HTTP

    def _request(
        self,
        method: str,
        url: str,
        what: str,
        *,
        token: UserToken | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One call; every failure becomes PlaylistError, with no token in its message."""
        if token is not None and token.expired():
            raise PlaylistError(EXPIRED, status=401, reconnect=True)
        headers = {"Authorization": f"Bearer {token.access_token}"} if token else {}
        waited = False
        while True:
            try:
                response = self._session.request(
                    method, url, headers=headers, json=json, data=data, timeout=self.timeout
                )
            except requests.exceptions.Timeout:
                raise PlaylistError(
                    f"Spotify did not answer within {self.timeout:g} s while {what}. "
                    "Try again in a moment."
                ) from None
            except requests.exceptions.RequestException as error:
                raise PlaylistError(
                    f"Cannot reach Spotify ({type(error).__name__}) while {what}. "
                    "Check the internet connection and try again."
                ) from None
            status = response.status_code
            if status == 429:
                retry_after = _retry_after(response)
                if not waited and retry_after is not None and retry_after <= self.max_retry_after:
                    waited = True
                    self._sleep(retry_after)
                    continue
            if 200 <= status < 300:
                try:
                    answer = response.json() if response.content else {}
                except ValueError:
                    answer = {}
                return answer if isinstance(answer, dict) else {}
            error = self._error(what, response, token is None)
            if token is not None and token.access_token in error.message:  # never show it
                error = PlaylistError(
                    error.message.replace(token.access_token, "…"),
                    status=error.status,
                    retry_after=error.retry_after,
                    reconnect=error.reconnect,
                )
            raise error

    def _error(self, what: str, response: requests.Response, sign_in: bool) -> PlaylistError:
        status = response.status_code
        said = _spotify_message(response)
        if sign_in and status in (400, 401):
            return PlaylistError(
                f"Spotify did not accept the sign-in ({said or status}); the code may have "
                "expired or been used already. Press Connect Spotify again.",
                status=status,
                reconnect=True,
            )
        if status == 401:
            return PlaylistError(EXPIRED, status=status, reconnect=True)
        if status == 403:
            if "scope" in said.lower():
                return PlaylistError(MISSING_SCOPE, status=status, reconnect=True)
            if not said or "registered" in said.lower() or said.lower() == "forbidden":
                return PlaylistError(DEVELOPMENT_MODE, status=status)
            return PlaylistError(
                f"Spotify refused (403: {said}) while {what}. If this Spotify app is in "
                "Development Mode, your account must be on its allow-list. Download the "
                "playlist as a file instead.",
                status=status,
            )
        if status == 429:
            retry_after = _retry_after(response)
            return PlaylistError(
                f"Spotify is rate-limiting this app; try again {_wait_text(retry_after)}.",
                status=status,
                retry_after=retry_after,
            )
        if status in SERVER_ERRORS:
            return PlaylistError(
                f"Spotify had a server error ({status}) while {what}. Try again later; the "
                "playlist file download still works.",
                status=status,
            )
        return PlaylistError(
            f"Spotify refused ({status}{': ' + said if said else ''}) while {what}. "
            "This is a bug in moodlens; please report it.",
            status=status,
        )


class PendingLogins:
    """Started sign-ins waiting for Spotify's redirect: state -> (Login, payload), in process
    memory only, each taken at most once, by the browser that started it, within `ttl`
    seconds of its start.

    The redirect opens a new browser session, so the session that started the sign-in cannot
    hold its verifier; the state (unguessable, and checked) finds it. `payload` is what the
    new session should offer to save (e.g. the playlist's name and songs). `browser` is a
    secret only the starting browser holds (a cookie the page set): without it, a sign-in that
    someone else started, its redirect link sent to a listener, would connect the listener's
    session to the sender's Spotify account (login CSRF).
    """

    def __init__(
        self,
        ttl: float = 900.0,
        capacity: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting: dict[str, tuple[float, Login, Any, str]] = {}
        # States taken or expired: never waiting again (a session keeps its Login object).
        self._retired: dict[str, None] = {}

    def put(self, login: Login, payload: Any = None, browser: str = "") -> bool:
        """Keep `login` for `browser` (again: with a fresh payload, its deadline unchanged);
        False when its state was taken or has expired (start a new login then)."""
        now = self._clock()
        with self._lock:
            self._prune(now)
            if login.state in self._retired:
                return False
            started = self._waiting.get(login.state, (now,))[0]
            self._waiting[login.state] = (started, login, payload, _digest(browser))
            while len(self._waiting) > self.capacity:
                self._retire(next(iter(self._waiting)))
            return True

    def take(self, state: str, browser: str = "") -> tuple[Login, Any] | None:
        """The login started with `state` by `browser` and its payload, once; None when unknown,
        expired or started by another browser (which may still take it)."""
        now = self._clock()
        with self._lock:
            self._prune(now)
            entry = self._waiting.get(state) if state else None
            if entry is None or not hmac.compare_digest(entry[3], _digest(browser)):
                return None
            self._retire(state)
            return entry[1], entry[2]

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiting)

    def _retire(self, state: str) -> None:
        self._waiting.pop(state, None)
        self._retired[state] = None
        while len(self._retired) > 20 * self.capacity:
            del self._retired[next(iter(self._retired))]

    def _prune(self, now: float) -> None:
        for state in [key for key, entry in self._waiting.items() if now - entry[0] > self.ttl]:
            self._retire(state)


def _digest(browser: str) -> str:
    return hashlib.sha256(browser.encode()).hexdigest()
