"""Every run-time setting in one frozen object, read once from the environment and secrets.

    settings = Settings.from_env(st.secrets)   # the page layer; core takes `settings` as given
    settings.models_dir, settings.catalog_path, settings.spotify_credentials, ...

Sources, first found wins: Streamlit secrets (a mapping: `[spotify] client_id`, `[webrtc]
ice_servers`, ...), then `MOODLENS_*` / `SPOTIFY_*` environment variables. Secret values are
kept out of `repr()` so a logged or displayed Settings never shows them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.paths import DATA_DIR, DEFAULT_SHARED_DATA, MODELS_DIR, STARTER_CATALOG


class SettingsError(ValueError):
    """A setting that cannot be used; the message names it and the fix."""


def _lookup(secrets: Mapping[str, Any] | None, *path: str) -> str | None:
    """A non-empty string from nested `secrets` (st.secrets or a dict); None when absent."""
    node: Any = secrets
    try:
        for key in path:
            if node is None or not hasattr(node, "get"):
                return None
            node = node.get(key)
    except Exception:  # st.secrets raises when there is no secrets.toml
        return None
    return node.strip() or None if isinstance(node, str) else None


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


@dataclass(frozen=True)
class Settings:
    """What the app and the CLIs may be configured with; defaults run fully offline."""

    models_dir: Path = MODELS_DIR
    preferred_model: str | None = None  # MOODLENS_MODEL: a shipped model's file stem
    runtime: str | None = None  # MOODLENS_RUNTIME: "onnx" or "keras"
    catalog_path: Path | None = None  # MOODLENS_CATALOG: the catalog the app opens with
    # MOODLENS_CATALOG_DIRS (os.pathsep-separated): more folders whose catalogs the sidebar may
    # open by path, beside data/, the shared data and MOODLENS_CATALOG's folder
    catalog_dirs: tuple[Path, ...] = ()
    feedback_db: Path | None = None  # MOODLENS_FEEDBACK_DB: the SQLite file for votes/moods
    # MOODLENS_DATABASE_URL / [database] url: one database every replica shares (it wins over
    # feedback_db); hidden from repr, a URL carries a password
    database_url: str | None = field(default=None, repr=False)
    spotify_client_id: str | None = field(default=None, repr=False)
    spotify_client_secret: str | None = field(default=None, repr=False)
    spotify_api_base: str | None = None  # MOODLENS_SPOTIFY_API_BASE (tests: a local server)
    spotify_token_url: str | None = None  # MOODLENS_SPOTIFY_TOKEN_URL
    # [spotify] redirect_uri / SPOTIFY_REDIRECT_URI: where Spotify sends a listener back after
    # "Connect Spotify" (the app's My history page, e.g. http://127.0.0.1:8501/history)
    spotify_redirect_uri: str | None = None
    ice_servers_raw: Any = field(default=None, repr=False)
    # [webrtc] turn_urls / MOODLENS_TURN_URLS (comma-separated) and turn_secret /
    # MOODLENS_TURN_SECRET: a TURN server (coturn, deploy/turnserver.conf) sharing a secret with
    # the app, which hands each page short-lived credentials made from it (the secret stays here)
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = field(default=None, repr=False)
    turn_ttl_s: int = 6 * 3600  # how long a page's TURN credentials stay valid
    shared_data: Path | None = None  # MOODLENS_SHARED_DATA: FER2013 and music data (dev, tests)
    pause_training: bool = True  # MOODLENS_NO_PAUSE=1: tests/benchmarks leave a training alone

    @classmethod
    def from_env(
        cls, secrets: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Read every setting once from `secrets` (may be None) and the environment."""
        env = os.environ if environ is None else environ
        models = _env(env, "MOODLENS_MODELS_DIR")
        catalog = _env(env, "MOODLENS_CATALOG")
        feedback = _env(env, "MOODLENS_FEEDBACK_DB")
        pairs = (
            (
                _lookup(secrets, "spotify", "client_id"),
                _lookup(secrets, "spotify", "client_secret"),
            ),
            (_lookup(secrets, "SPOTIFY_CLIENT_ID"), _lookup(secrets, "SPOTIFY_CLIENT_SECRET")),
            (_env(env, "SPOTIFY_CLIENT_ID"), _env(env, "SPOTIFY_CLIENT_SECRET")),
            (_env(env, "SPOTIPY_CLIENT_ID"), _env(env, "SPOTIPY_CLIENT_SECRET")),
        )
        # The first full pair; else a client ID alone (a listener's PKCE sign-in needs no secret).
        client_id, client_secret = next(
            (pair for pair in pairs if all(pair)),
            (next((cid for cid, _ in pairs if cid), None), None),
        )
        ice: Any = None
        try:
            webrtc = secrets.get("webrtc") if secrets is not None else None
            if webrtc is not None and hasattr(webrtc, "get"):
                ice = webrtc.get("ice_servers")
        except Exception:  # st.secrets without a secrets.toml
            ice = None
        if ice is None:
            ice = _env(env, "MOODLENS_ICE_SERVERS")
        turn_urls = _lookup(secrets, "webrtc", "turn_urls") or _env(env, "MOODLENS_TURN_URLS")
        return cls(
            models_dir=Path(models).expanduser() if models else MODELS_DIR,
            preferred_model=_env(env, "MOODLENS_MODEL"),
            runtime=_env(env, "MOODLENS_RUNTIME"),
            catalog_path=Path(catalog).expanduser() if catalog else None,
            catalog_dirs=tuple(
                Path(d).expanduser()
                for d in (_env(env, "MOODLENS_CATALOG_DIRS") or "").split(os.pathsep)
                if d.strip()
            ),
            feedback_db=Path(feedback).expanduser() if feedback else None,
            database_url=_lookup(secrets, "database", "url") or _env(env, "MOODLENS_DATABASE_URL"),
            spotify_client_id=client_id,
            spotify_client_secret=client_secret,
            spotify_api_base=_env(env, "MOODLENS_SPOTIFY_API_BASE"),
            spotify_token_url=_env(env, "MOODLENS_SPOTIFY_TOKEN_URL"),
            spotify_redirect_uri=_lookup(secrets, "spotify", "redirect_uri")
            or _lookup(secrets, "SPOTIFY_REDIRECT_URI")
            or _env(env, "SPOTIFY_REDIRECT_URI"),
            ice_servers_raw=ice,
            turn_urls=tuple(u.strip() for u in (turn_urls or "").split(",") if u.strip()),
            turn_secret=_lookup(secrets, "webrtc", "turn_secret")
            or _env(env, "MOODLENS_TURN_SECRET"),
            shared_data=Path(shared).expanduser()
            if (shared := _env(env, "MOODLENS_SHARED_DATA"))
            else None,
            pause_training=_env(env, "MOODLENS_NO_PAUSE") != "1",
        )

    @property
    def spotify_credentials(self) -> tuple[str, str] | None:
        """(client_id, client_secret), or None when either is missing."""
        if self.spotify_client_id and self.spotify_client_secret:
            return self.spotify_client_id, self.spotify_client_secret
        return None

    @property
    def default_catalog(self) -> Path:
        """The catalog the app opens with: MOODLENS_CATALOG, else the starter catalog."""
        return self.catalog_path or STARTER_CATALOG

    @property
    def catalog_folders(self) -> tuple[Path, ...]:
        """The folders the sidebar opens catalogs from by path: the repo's data/, the shared
        data, MOODLENS_CATALOG's folder and MOODLENS_CATALOG_DIRS. A served app must not read
        any file its server can (anything else is uploaded instead)."""
        folders = [DATA_DIR, self.shared_data or DEFAULT_SHARED_DATA, *self.catalog_dirs]
        if self.catalog_path is not None:
            folders.append(self.catalog_path.parent)
        return tuple(folders)

    def ice_servers(self, now: float | None = None) -> list[dict[str, Any]]:
        """ICE (STUN/TURN) servers for WebRTC; none by default (localhost needs none, and the
        app then contacts no outside server), plus the shared-secret TURN server with fresh
        credentials when one is set. Raises SettingsError naming the fix."""
        return self._configured_ice_servers() + self._turn_servers(now)

    def _turn_servers(self, now: float | None) -> list[dict[str, Any]]:
        """coturn's `use-auth-secret` scheme (the TURN REST API): username = expiry time,
        credential = base64(HMAC-SHA1(secret, username)); coturn recomputes and checks both."""
        if not self.turn_urls:
            return []
        if not self.turn_secret:
            raise SettingsError(
                "MOODLENS_TURN_URLS is set but MOODLENS_TURN_SECRET is not: give the app the "
                "static-auth-secret of the TURN server (see deploy/turnserver.conf)."
            )
        # Rounded up to the hour: the page's WebRTC settings stay the same from run to run (a
        # change would re-render the streamer), and stay valid for at least the TTL.
        expires = -(-(int(time.time() if now is None else now) + self.turn_ttl_s) // 3600) * 3600
        username = f"{expires}:moodlens"
        digest = hmac.new(self.turn_secret.encode(), username.encode(), hashlib.sha1).digest()
        credential = base64.b64encode(digest).decode()
        return [{"urls": list(self.turn_urls), "username": username, "credential": credential}]

    def _configured_ice_servers(self) -> list[dict[str, Any]]:
        raw = self.ice_servers_raw
        if raw is None:
            return []
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as error:
                raise SettingsError(
                    f"MOODLENS_ICE_SERVERS is not valid JSON ({error.msg}). Example: "
                    '[{"urls": ["stun:stun.example.org:3478"]}]'
                ) from error
        listed = isinstance(raw, list | tuple) and all(isinstance(s, Mapping) for s in raw)
        servers = [dict(s) for s in raw] if listed else None  # not bare URL strings
        if servers is None or any("urls" not in s for s in servers):
            raise SettingsError(
                'ICE servers must be a list of objects with "urls" (and, for TURN, '
                '"username" and "credential").'
            )
        return servers
