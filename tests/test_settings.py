"""core.settings: one frozen Settings read from secrets and the environment; offline defaults."""

from __future__ import annotations

import pytest

from core.paths import MODELS_DIR, STARTER_CATALOG
from core.settings import Settings, SettingsError


def test_defaults_run_offline():
    settings = Settings.from_env({}, environ={})
    assert settings.ice_servers() == []
    assert settings.spotify_credentials is None
    assert settings.models_dir == MODELS_DIR
    assert settings.default_catalog == STARTER_CATALOG
    assert settings.preferred_model is None and settings.feedback_db is None


def test_ice_servers_from_secrets_then_env():
    turn = {"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "c"}
    environ = {"MOODLENS_ICE_SERVERS": '[{"urls": "stun:stun.example.org:3478"}]'}
    assert Settings.from_env({"webrtc": {"ice_servers": [turn]}}, environ).ice_servers() == [turn]
    assert Settings.from_env({}, environ).ice_servers() == [{"urls": "stun:stun.example.org:3478"}]


def test_bad_ice_settings_say_how_to_fix():
    with pytest.raises(SettingsError, match="not valid JSON"):
        Settings.from_env({}, {"MOODLENS_ICE_SERVERS": "stun:oops"}).ice_servers()
    with pytest.raises(SettingsError, match="urls"):
        Settings.from_env({}, {"MOODLENS_ICE_SERVERS": '[{"url": "stun:x"}]'}).ice_servers()
    bare = '["stun:stun.example.org:19302"]'  # URLs without their objects: an easy slip
    with pytest.raises(SettingsError, match="list of objects"):
        Settings.from_env({}, {"MOODLENS_ICE_SERVERS": bare}).ice_servers()


def test_every_moodlens_variable_is_read(tmp_path):
    environ = {
        "MOODLENS_MODELS_DIR": str(tmp_path),
        "MOODLENS_MODEL": "resnet50v2",
        "MOODLENS_RUNTIME": "keras",
        "MOODLENS_CATALOG": str(tmp_path / "c.csv"),
        "MOODLENS_FEEDBACK_DB": str(tmp_path / "fb.sqlite3"),
        "MOODLENS_SPOTIFY_API_BASE": "http://127.0.0.1:1/v1/",
        "MOODLENS_SPOTIFY_TOKEN_URL": "http://127.0.0.1:1/api/token",
    }
    s = Settings.from_env(None, environ)
    assert (s.models_dir, s.preferred_model, s.runtime) == (tmp_path, "resnet50v2", "keras")
    assert s.default_catalog == tmp_path / "c.csv" and s.feedback_db == tmp_path / "fb.sqlite3"
    assert s.spotify_api_base.endswith("/v1/") and s.spotify_token_url.endswith("/token")


def test_spotify_credentials_secrets_first_and_never_in_repr():
    secrets = {"spotify": {"client_id": "id-from-secrets", "client_secret": "s3cr3t-value"}}
    environ = {"SPOTIFY_CLIENT_ID": "env-id", "SPOTIFY_CLIENT_SECRET": "env-secret"}
    settings = Settings.from_env(secrets, environ)
    assert settings.spotify_credentials == ("id-from-secrets", "s3cr3t-value")
    assert "s3cr3t" not in repr(settings) and "id-from-secrets" not in repr(settings)
    assert Settings.from_env({}, environ).spotify_credentials == ("env-id", "env-secret")
    half = {"SPOTIFY_CLIENT_ID": "only-an-id"}
    assert Settings.from_env({}, half).spotify_credentials is None


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        Settings.from_env({}, {}).models_dir = MODELS_DIR  # type: ignore[misc]


def test_turn_credentials_are_short_lived_and_checkable_with_the_shared_secret():
    import base64
    import hashlib
    import hmac

    settings = Settings.from_env(
        {"webrtc": {"turn_secret": "s3cret-value"}},
        {
            "MOODLENS_TURN_URLS": "turn:turn.example.org:3478?transport=udp, "
            "turns:turn.example.org:443"
        },
    )
    [server] = settings.ice_servers(now=1_000_000)
    assert server["urls"] == [
        "turn:turn.example.org:3478?transport=udp",
        "turns:turn.example.org:443",
    ]
    expires, _ = server["username"].split(":")
    assert 0 <= int(expires) - (1_000_000 + settings.turn_ttl_s) < 3600
    assert settings.ice_servers(now=1_000_060) == [server]  # stable between page runs
    expected = hmac.new(b"s3cret-value", server["username"].encode(), hashlib.sha1).digest()
    assert server["credential"] == base64.b64encode(expected).decode()
    assert "s3cret-value" not in repr(settings) and "s3cret-value" not in str(server)


def test_turn_urls_without_the_secret_name_the_fix():
    settings = Settings.from_env({}, {"MOODLENS_TURN_URLS": "turn:127.0.0.1:3478"})
    with pytest.raises(SettingsError, match="MOODLENS_TURN_SECRET"):
        settings.ice_servers()
