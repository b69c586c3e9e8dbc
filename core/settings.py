"""Run-time settings from the environment or Streamlit secrets (passed in as a mapping)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.paths import MODELS_DIR


class SettingsError(ValueError):
    """A setting that cannot be used; the message names it and the fix."""


def models_dir() -> Path:
    """`MOODLENS_MODELS_DIR` if set, else the repo's models/."""
    env = os.environ.get("MOODLENS_MODELS_DIR", "").strip()
    return Path(env).expanduser() if env else MODELS_DIR


def preferred_model() -> str | None:
    """`MOODLENS_MODEL`: the shipped model (file stem, e.g. `resnet50v2`) the app opens with,
    instead of the best on validation. None when unset."""
    return os.environ.get("MOODLENS_MODEL", "").strip() or None


def ice_servers(secrets: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """ICE (STUN/TURN) servers for WebRTC: `[webrtc] ice_servers` in secrets, else the
    `MOODLENS_ICE_SERVERS` JSON list, else none (localhost needs none, and the app then
    contacts no outside server)."""
    raw: Any = None
    if secrets is not None:
        section = secrets.get("webrtc") if hasattr(secrets, "get") else None
        if section is not None and hasattr(section, "get"):
            raw = section.get("ice_servers")
    if raw is None:
        text = os.environ.get("MOODLENS_ICE_SERVERS", "").strip()
        if not text:
            return []
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise SettingsError(
                f"MOODLENS_ICE_SERVERS is not valid JSON ({error.msg}). Example: "
                '[{"urls": ["stun:stun.example.org:3478"]}]'
            ) from error
    servers = [dict(s) for s in raw] if isinstance(raw, list | tuple) else None
    if servers is None or any("urls" not in s for s in servers):
        raise SettingsError(
            'ICE servers must be a list of objects with "urls" (and, for TURN, '
            '"username" and "credential").'
        )
    return servers
