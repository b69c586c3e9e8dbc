"""Secrets never reach git: no tracked secrets file, no tracked value shaped like a secret."""

from __future__ import annotations

import re
import subprocess

import pytest

from core.paths import REPO_ROOT

# A Spotify client id/secret is 32 lowercase hex characters; a client-credentials or user token
# is a long base64url string starting "BQ".
SPOTIFY_SECRET_SHAPE = re.compile(
    r"""(?ix)(client_secret|client_id|secret|token)["']?\s*[:=]\s*["']?(?P<value>[0-9a-f]{32})\b"""
)
SPOTIFY_TOKEN_SHAPE = re.compile(r"\bBQ[A-Za-z0-9_-]{60,}")
SECRET_FILES = re.compile(r"(^|/)(secrets\.toml|\.env)$")


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: nothing is tracked")
    return [name for name in out.decode().split("\0") if name]


def test_the_secrets_file_is_ignored_and_the_example_is_not():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".streamlit/secrets.toml"], cwd=REPO_ROOT
    )
    assert ignored.returncode == 0, ".streamlit/secrets.toml must be listed in .gitignore"
    assert ".streamlit/secrets.toml.example" in tracked_files()


def test_no_tracked_file_is_a_secrets_file():
    offenders = [name for name in tracked_files() if SECRET_FILES.search(name)]
    assert not offenders, f"secrets files are tracked: {offenders}"


def test_no_tracked_file_holds_a_value_shaped_like_a_spotify_secret():
    offenders = []
    for name in tracked_files():
        path = REPO_ROOT / name
        if not path.is_file() or path.stat().st_size > 2_000_000 or path.suffix == ".npz":
            continue
        text = path.read_text(errors="ignore")
        if SPOTIFY_SECRET_SHAPE.search(text) or SPOTIFY_TOKEN_SHAPE.search(text):
            offenders.append(name)
    assert not offenders, f"values shaped like Spotify secrets or tokens in: {offenders}"


def test_the_secret_patterns_catch_what_they_are_for():
    shaped = "0123456789abcdef" * 2  # built here, so this file holds no such literal
    assert SPOTIFY_SECRET_SHAPE.search(f'client_secret = "{shaped}"')
    assert SPOTIFY_TOKEN_SHAPE.search("Bearer BQ" + "x" * 80)
    assert not SPOTIFY_SECRET_SHAPE.search('client_secret = ""')
    assert SECRET_FILES.search(".streamlit/secrets.toml")
