"""A local server on 127.0.0.1 that answers like the Spotify Web API, for tests.

It serves the client-credentials token endpoint, search (tracks and playlists, ``genre:"x"``
filters, Spotify's 2026 cap of 10 items per page), tracks, artists and playlist items; the
endpoints closed to new apps since November 2024 answer 403. `FakeSpotify.fail` injects error
responses (any status, headers such as Retry-After, a delay for timeouts) on chosen paths,
`requests` records every request so tests can check what the client sent, and `token_requests`
counts the access tokens asked for.

The listener side (authorization code with PKCE): ``GET /authorize`` redirects at once to the
redirect URI with a code and the state (``error=access_denied`` when `deny_consent`); the
token endpoint's ``authorization_code`` grant checks the code, client, redirect URI and the
``code_verifier`` against the S256 challenge; ``GET /v1/me``, ``POST /v1/me/playlists`` (and
``/v1/users/{id}/playlists``) and ``POST /v1/playlists/{id}/items`` (or ``/tracks``; more than
100 URIs is a 400 as on Spotify) act for the signed-in `user`. `allow_list` set to a set of user
ids plays a Development-Mode app (403 for anyone else); `playlists_created` and `added_batches`
record what was saved.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

CLIENT_ID = "moodlens-test-id"
CLIENT_SECRET = "moodlens-test-secret"
CLOSED_PREFIXES = (
    "/v1/recommendations",
    "/v1/audio-features",
    "/v1/audio-analysis",
    "/v1/browse/featured-playlists",
    "/v1/browse/categories",
)
GENRES = (
    "pop", "dance", "happy", "soft rock", "classical", "blues", "rock", "metal", "punk",
    "ambient", "piano", "chill", "electronic", "experimental", "jazz", "acoustic", "lo-fi",
    "indie", "new age",
)  # fmt: skip
TRACKS_PER_GENRE = 14
SEARCH_LIMIT_MAX = 10
ADD_ITEMS_MAX = 100
USER = {"id": "moodlens-listener", "display_name": 'Zoë & "Bey" Fan', "type": "user"}
DEVELOPMENT_MODE_403 = (
    "Check settings on developer.spotify.com/dashboard, the user may not be registered."
)
TRACK_URI = re.compile(r"spotify:track:[0-9A-Za-z]{22}")


def fake_id(text: str) -> str:
    """A 22-character base62-looking id derived from `text`."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    number = int(hashlib.sha256(text.encode()).hexdigest(), 16)
    chars = []
    for _ in range(22):
        number, digit = divmod(number, 62)
        chars.append(alphabet[digit])
    return "".join(chars)


def make_track(genre: str, index: int) -> dict[str, Any]:
    """A track object shaped like Spotify's, with the genre kept aside for filtering."""
    track_id = fake_id(f"{genre}-{index}")
    artist_name = f"{genre.title()} Artist {index % 10}"
    album_id = fake_id(f"album-{genre}-{index}")
    return {
        "id": track_id,
        "type": "track",
        "uri": f"spotify:track:{track_id}",
        "name": f"{genre.title()} Song {index}",
        "popularity": (index * 37) % 100,
        "duration_ms": 180_000 + index * 1000,
        "explicit": False,
        "preview_url": None,
        "external_urls": {"spotify": f"https://open.spotify.com/track/{track_id}"},
        "artists": [{"id": fake_id(artist_name), "name": artist_name, "type": "artist"}],
        "album": {
            "id": album_id,
            "name": f"{genre.title()} Album {index // 3}",
            "release_date": f"{2000 + index}-05-01",
            "release_date_precision": "day",
            "images": [
                {"url": f"https://i.scdn.co/image/{album_id}-640", "width": 640, "height": 640},
                {"url": f"https://i.scdn.co/image/{album_id}-300", "width": 300, "height": 300},
                {"url": f"https://i.scdn.co/image/{album_id}-64", "width": 64, "height": 64},
            ],
        },
        "_genre": genre,
    }


@dataclass
class Failure:
    """An injected response for requests whose path starts with `prefix`."""

    prefix: str
    status: int = 500
    times: int | None = None  # None: every time
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | str | None = None  # a str is sent as an HTML page (a proxy's)
    delay: float = 0.0  # seconds to wait before answering (then answer normally if status 200)
    skip: int = 0  # let this many matching requests through first


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any = None  # the JSON body of API calls, the form of token requests


@dataclass
class Grant:
    """An authorization code the fake /authorize handed out, until it is exchanged."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    scope: str


class FakeSpotify:
    """The fake API server; use as a context manager."""

    def __init__(self, closed_status: int = 403) -> None:
        self.tracks = [make_track(g, i) for g in GENRES for i in range(TRACKS_PER_GENRE)]
        self.by_id = {t["id"]: t for t in self.tracks}
        self.playlists = [
            {"id": fake_id(f"playlist-{g}"), "name": f"{g} mood", "genre": g, "type": "playlist"}
            for g in GENRES
        ]
        self.closed_status = closed_status
        self.failures: list[Failure] = []
        self.requests: list[Recorded] = []
        self.tokens: set[str] = set()
        # The listener side (authorization code + PKCE).
        self.user = dict(USER)
        self.deny_consent = False  # /authorize answers error=access_denied
        self.allow_list: set[str] | None = None  # a set: a Development-Mode app's users
        self.grants: dict[str, Grant] = {}
        self.user_tokens: dict[str, str] = {}  # access token -> granted scope
        self.user_playlists: dict[str, dict[str, Any]] = {}
        self.playlists_created: list[dict[str, Any]] = []
        self.added_batches: list[tuple[str, list[str]]] = []  # (playlist id, uris) accepted
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        # A client that timed out has hung up: ignore the broken pipe instead of printing it.
        self._server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> FakeSpotify:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_base(self) -> str:
        return f"{self.base}/v1/"

    @property
    def token_url(self) -> str:
        return f"{self.base}/api/token"

    @property
    def authorize_url(self) -> str:
        return f"{self.base}/authorize"

    # ------------------------------------------------------------------ test controls

    def fail(self, prefix: str, status: int = 500, **kwargs: Any) -> Failure:
        failure = Failure(prefix, status, **kwargs)
        with self._lock:
            self.failures.append(failure)
        return failure

    def revoke_tokens(self) -> None:
        """Make every issued token invalid (as if it expired)."""
        with self._lock:
            self.tokens.clear()

    def calls(self, prefix: str, method: str | None = None) -> list[Recorded]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r.path.startswith(prefix) and (method is None or r.method == method)
            ]

    @property
    def token_requests(self) -> int:
        """How many access tokens clients have asked for (POSTs to the token endpoint)."""
        return len(self.calls("/api/token", "POST"))

    def _take_failure(self, path: str) -> Failure | None:
        with self._lock:
            for failure in self.failures:
                if path.startswith(failure.prefix) and (failure.times is None or failure.times > 0):
                    if failure.skip > 0:
                        failure.skip -= 1
                        continue
                    if failure.times is not None:
                        failure.times -= 1
                    return failure
        return None

    # ------------------------------------------------------------------ API

    def authorize(self, query: dict[str, str]) -> tuple[int, dict, str | None]:
        """(status, body, redirect Location): Spotify's consent page, consenting at once."""
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != CLIENT_ID:
            return 400, {"error": "invalid_client", "error_description": "Invalid client"}, None
        if not redirect_uri.startswith(("http://", "https://")):
            return 400, {"error": "invalid_request", "error_description": "Bad redirect"}, None
        if query.get("response_type") != "code":
            return 400, {"error": "unsupported_response_type"}, None
        challenge = query.get("code_challenge", "")
        if query.get("code_challenge_method") != "S256" or len(challenge) != 43:
            return 400, {"error": "invalid_request", "error_description": "code_challenge"}, None
        back: dict[str, str] = {}
        if self.deny_consent:
            back["error"] = "access_denied"
        else:
            code = f"code-{time.monotonic_ns()}"
            with self._lock:
                self.grants[code] = Grant(
                    CLIENT_ID, redirect_uri, challenge, query.get("scope", "")
                )
            back["code"] = code
        if "state" in query:
            back["state"] = query["state"]
        separator = "&" if "?" in redirect_uri else "?"
        return 303, {}, f"{redirect_uri}{separator}{urlencode(back)}"

    def _user_token(self, form: dict[str, str]) -> tuple[int, dict]:
        with self._lock:
            grant = self.grants.pop(form.get("code", ""), None)  # a code works once
        if grant is None:
            return 400, {
                "error": "invalid_grant",
                "error_description": "Invalid authorization code",
            }
        if form.get("client_id") != grant.client_id:
            return 400, {"error": "invalid_client", "error_description": "Invalid client"}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "Invalid redirect URI"}
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.code_challenge:
            return 400, {
                "error": "invalid_grant",
                "error_description": "code_verifier was incorrect",
            }
        with self._lock:
            token = f"user-token-{len(self.tokens) + 1}-{time.monotonic_ns()}"
            self.tokens.add(token)
            self.user_tokens[token] = grant.scope
        return 200, {
            "access_token": token,
            "token_type": "Bearer",
            "scope": grant.scope,
            "expires_in": 3600,
            "refresh_token": f"refresh-{token}",
        }

    def token(self, authorization: str | None, form: dict[str, str]) -> tuple[int, dict]:
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if form.get("grant_type") == "authorization_code":
            return self._user_token(form)
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if authorization != f"Basic {expected}":
            return 400, {"error": "invalid_client", "error_description": "Invalid client"}
        with self._lock:
            token = f"token-{len(self.tokens) + 1}-{time.monotonic_ns()}"
            self.tokens.add(token)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600}

    def listener_api(
        self, method: str, path: str, body: Any, token: str
    ) -> tuple[int, dict] | None:
        """The signed-in listener's endpoints; None for every other path."""
        adding = path.startswith("/v1/playlists/") and path.endswith(("/items", "/tracks"))
        creating = path == "/v1/me/playlists" or re.fullmatch(r"/v1/users/[^/]+/playlists", path)
        if not (path == "/v1/me" or (method == "POST" and (adding or creating))):
            return None
        with self._lock:
            scope = self.user_tokens.get(token)
        if scope is None:
            return 401, _error(401, "Only valid bearer authentication supported")
        if self.allow_list is not None and self.user["id"] not in self.allow_list:
            return 403, _error(403, DEVELOPMENT_MODE_403)
        if path == "/v1/me":
            return 200, dict(self.user)
        if "playlist-modify-private" not in scope.split():
            return 403, _error(403, "Insufficient client scope")
        body = body if isinstance(body, dict) else {}
        if creating:
            if path.startswith("/v1/users/") and path.split("/")[3] != self.user["id"]:
                return 403, _error(403, "You cannot create a playlist for another user")
            if not body.get("name"):
                return 400, _error(400, "Missing required field: name")
            with self._lock:
                playlist_id = fake_id(f"user-playlist-{len(self.user_playlists)}")
                playlist = {
                    "id": playlist_id,
                    "type": "playlist",
                    "name": body["name"],
                    "description": body.get("description", ""),
                    "public": bool(body.get("public", True)),
                    "owner": {"id": self.user["id"], "type": "user"},
                    "uri": f"spotify:playlist:{playlist_id}",
                    "external_urls": {
                        "spotify": f"https://open.spotify.com/playlist/{playlist_id}"
                    },
                    "items": [],
                }
                self.user_playlists[playlist_id] = playlist
                self.playlists_created.append(playlist)
            return 201, {k: v for k, v in playlist.items() if k != "items"}
        playlist_id = path.split("/")[3]
        with self._lock:
            playlist = self.user_playlists.get(playlist_id)
        if playlist is None:
            return 404, _error(404, "Not found")
        uris = body.get("uris")
        if not isinstance(uris, list) or not uris:
            return 400, _error(400, "No uris provided")
        if len(uris) > ADD_ITEMS_MAX:
            return 400, _error(400, "You can add a maximum of 100 tracks per request.")
        if not all(isinstance(u, str) and TRACK_URI.fullmatch(u) for u in uris):
            return 400, _error(400, "Invalid base62 id")
        with self._lock:
            playlist["items"].extend(uris)
            self.added_batches.append((playlist_id, list(uris)))
            snapshot = f"snapshot-{len(self.added_batches)}"
        return 201, {"snapshot_id": snapshot}

    def api(self, path: str, query: dict[str, str]) -> tuple[int, dict]:
        if path.startswith(CLOSED_PREFIXES) or "/related-artists" in path:
            return self.closed_status, _error(self.closed_status, "Forbidden")
        if path == "/v1/search":
            return self._search(query)
        if path.startswith("/v1/tracks/"):
            track = self.by_id.get(path.rsplit("/", 1)[-1])
            return (200, _public(track)) if track else (404, _error(404, "Not found"))
        if path.startswith("/v1/artists/"):
            artist_id = path.rsplit("/", 1)[-1]
            for track in self.tracks:
                artist = (track.get("artists") or [None])[0]
                if isinstance(artist, dict) and artist.get("id") == artist_id:
                    return 200, {**artist, "genres": [track["_genre"]]}
            return 404, _error(404, "Not found")
        if path.startswith("/v1/playlists/") and path.endswith(("/items", "/tracks")):
            playlist_id = path.split("/")[3]
            playlist = next((p for p in self.playlists if p["id"] == playlist_id), None)
            if playlist is None:
                return 404, _error(404, "Not found")
            limit = int(query.get("limit", 100))
            items = [
                {"added_at": "2024-01-01T00:00:00Z", "track": _public(t)}
                for t in self.tracks
                if t["_genre"] == playlist["genre"]
            ][:limit]
            return 200, {"items": items, "limit": limit, "offset": 0, "total": len(items)}
        return 404, _error(404, "Service not found")

    def _search(self, query: dict[str, str]) -> tuple[int, dict]:
        try:
            limit = int(query.get("limit", 5))
            offset = int(query.get("offset", 0))
        except ValueError:
            return 400, _error(400, "Invalid limit")
        if not 1 <= limit <= SEARCH_LIMIT_MAX:
            return 400, _error(400, "Invalid limit")
        text = query.get("q", "").lower()
        kind = query.get("type", "track")
        if kind == "playlist":
            words = [w for w in text.split() if len(w) > 2]
            found: list[dict | None] = [
                {**p, "tracks": {"total": TRACKS_PER_GENRE}}
                for p in self.playlists
                if any(w in p["name"] for w in words)
            ] or [{**self.playlists[0], "tracks": {"total": TRACKS_PER_GENRE}}]
            found.insert(0, None)  # Spotify's search returns null for hidden playlists
            page = found[offset : offset + limit]
            return 200, {"playlists": _paging(page, limit, offset, len(found), query)}
        if kind != "track":
            return 400, _error(400, "Unsupported type")
        if 'genre:"' in text:
            genre = text.split('genre:"', 1)[1].split('"', 1)[0]
            matches = [t for t in self.tracks if t["_genre"] == genre]
        else:
            matches = [t for t in self.tracks if any(w in t["name"].lower() for w in text.split())]
        page = [_public(t) for t in matches[offset : offset + limit]]
        return 200, {"tracks": _paging(page, limit, offset, len(matches), query)}


def _public(track: dict[str, Any] | None) -> dict[str, Any] | None:
    """A track as Spotify sends it: without the fake's own keys; null for one marked `_null`
    (a test's malformed answer)."""
    if track and track.get("_null"):
        return None
    return {k: v for k, v in (track or {}).items() if not k.startswith("_")}


def _error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"status": status, "message": message}}


def _paging(items: list, limit: int, offset: int, total: int, query: dict[str, str]) -> dict:
    more = offset + limit < total
    next_url = (
        "https://api.spotify.com/v1/search?" + urlencode({**query, "offset": offset + limit})
        if more
        else None
    )
    return {"items": items, "limit": limit, "offset": offset, "total": total, "next": next_url}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid 40 ms stalls

    def log_message(self, format: str, *args: Any) -> None:  # silence the test output
        return

    @property
    def fake(self) -> FakeSpotify:
        return self.server.fake  # type: ignore[attr-defined]

    def _send(self, status: int, body: dict[str, Any] | str, headers: dict[str, str] | None = None):
        if isinstance(body, str):
            payload, kind = body.encode(), "text/html"
        else:
            payload = json.dumps(body).encode() if body or status != 303 else b""
            kind = "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _handle(self, method: str) -> None:
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        form = {k: v[-1] for k, v in parse_qs(body).items()}
        try:
            data: Any = json.loads(body) if body else None
        except ValueError:
            data = None
        with self.fake._lock:
            recorded = form if url.path == "/api/token" else data
            self.fake.requests.append(Recorded(method, url.path, query, recorded))
        failure = self.fake._take_failure(url.path)
        if failure is not None:
            if failure.delay:
                time.sleep(failure.delay)
            if failure.status != 200:
                default = _error(failure.status, "Injected failure")
                self._send(failure.status, failure.body or default, failure.headers)
                return
        if url.path == "/api/token" and method == "POST":
            self._send(*self.fake.token(self.headers.get("Authorization"), form))
            return
        if url.path == "/authorize" and method == "GET":
            status, answer, location = self.fake.authorize(query)
            self._send(status, answer, {"Location": location} if location else None)
            return
        if not url.path.startswith("/v1/"):
            self._send(404, _error(404, "Not found"))
            return
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        with self.fake._lock:
            valid = token in self.fake.tokens
        if not valid:
            self._send(401, _error(401, "Invalid access token"))
            return
        answer = self.fake.listener_api(method, url.path, data, token)
        self._send(*(answer or self.fake.api(url.path, query)))

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")
