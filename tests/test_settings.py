"""core.settings: ICE servers from secrets or the environment; none by default."""

from __future__ import annotations

import pytest

from core.settings import SettingsError, ice_servers, models_dir


def test_no_ice_servers_unless_configured(monkeypatch):
    monkeypatch.delenv("MOODLENS_ICE_SERVERS", raising=False)
    assert ice_servers({}) == []


def test_ice_servers_from_secrets_then_env(monkeypatch):
    turn = {"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "c"}
    monkeypatch.setenv("MOODLENS_ICE_SERVERS", '[{"urls": "stun:stun.example.org:3478"}]')
    assert ice_servers({"webrtc": {"ice_servers": [turn]}}) == [turn]
    assert ice_servers({}) == [{"urls": "stun:stun.example.org:3478"}]


def test_bad_ice_settings_say_how_to_fix(monkeypatch):
    monkeypatch.setenv("MOODLENS_ICE_SERVERS", "stun:oops")
    with pytest.raises(SettingsError, match="not valid JSON"):
        ice_servers({})
    monkeypatch.setenv("MOODLENS_ICE_SERVERS", '[{"url": "stun:x"}]')
    with pytest.raises(SettingsError, match="urls"):
        ice_servers({})


def test_models_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("MOODLENS_MODELS_DIR", str(tmp_path))
    assert models_dir() == tmp_path
