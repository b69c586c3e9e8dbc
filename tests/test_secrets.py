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


LEAK_PAGE = """
import numpy as np

from core.music.catalog import load_catalog
from core.paths import STARTER_CATALOG
from pages.common import active_recommender, mood_songs, render_songs

catalog = load_catalog(STARTER_CATALOG)
sad = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0])
(recs, note), shown = mood_songs(
    "leak", ("sad",), sad, "sad", strategy="match", use_spotify=True,
    catalog=catalog, profile="default",
)
render_songs(recs, note, "leak", "default", shown, active_recommender(catalog))
"""


def test_a_spotify_401_leaks_neither_secret_nor_token(tmp_path, monkeypatch, caplog, capfd):
    """Spotify rejects the token (401): the page says so and falls back to the local catalog,
    and neither the client secret nor any token appears on the page or in the server's log."""
    import base64
    import logging

    from streamlit.testing.v1 import AppTest

    from tests.support.fake_spotify import CLIENT_ID, CLIENT_SECRET, FakeSpotify
    from tests.support.page_text import page_text

    with FakeSpotify() as fake:
        fake.fail("/v1/search", 401)
        monkeypatch.setenv("SPOTIFY_CLIENT_ID", CLIENT_ID)
        monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", CLIENT_SECRET)
        monkeypatch.setenv("MOODLENS_SPOTIFY_API_BASE", fake.api_base)
        monkeypatch.setenv("MOODLENS_SPOTIFY_TOKEN_URL", fake.token_url)
        monkeypatch.setenv("MOODLENS_FEEDBACK_DB", str(tmp_path / "feedback.sqlite3"))
        caplog.set_level(logging.DEBUG)
        app = AppTest.from_string(LEAK_PAGE, default_timeout=60)
        app.run()
        tokens = set(fake.tokens)
    assert not app.exception, app.exception
    shown = page_text(app)
    assert "401" in shown and "local catalog" in shown.lower()  # the page says what happened
    assert tokens, "the fake issued no token: the test did not reach Spotify"
    out, err = capfd.readouterr()
    log = "\n".join([caplog.text, out, err])
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    for secret in (CLIENT_SECRET, basic, *tokens):
        assert secret not in shown, "a secret reached the page"
        assert secret not in log, "a secret reached the server log"


def test_spotipy_debug_logs_are_scrubbed(caplog):
    """spotipy logs request headers at DEBUG: our filter removes the credentials from them."""
    import logging

    from core.music.spotify_client import redact

    caplog.set_level(logging.DEBUG)
    logging.getLogger("spotipy.oauth2").debug(
        "Sending POST to %s with Headers: %s", "/api/token", {"Authorization": "Basic c2VjcmV0"}
    )
    logging.getLogger("spotipy.client").debug("token %s", "{'access_token': 'BQsecretvalue'}")
    assert "c2VjcmV0" not in caplog.text and "BQsecretvalue" not in caplog.text
    assert caplog.text.count("[redacted]") == 2 and redact("status code: 401") == "status code: 401"
