"""core.music.spotify_playlists against the local fake Spotify (real HTTP on 127.0.0.1): the
PKCE sign-in, a private playlist filled 100 songs at a time, every error path's message, and
the listener's token in no message, repr or log; then the same flow through the pages."""

from __future__ import annotations

import logging
import re
import socket
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from core.music.spotify_playlists import (
    BAD_STATE,
    BATCH_SIZE,
    DENIED,
    DEVELOPMENT_MODE,
    EXPIRED,
    MISSING_SCOPE,
    NOT_SET_UP,
    NOTHING_TO_SAVE,
    SCOPE,
    Login,
    PendingLogins,
    PlaylistError,
    SpotifyPlaylists,
    UserToken,
    code_challenge,
)
from core.music.tracks import Recommendation
from core.settings import Settings
from tests.support.fake_spotify import CLIENT_ID, CLIENT_SECRET, FakeSpotify, fake_id

REDIRECT = "http://127.0.0.1:8501/history"


@pytest.fixture()
def sleeps() -> list[float]:
    return []


@pytest.fixture()
def spotify(fake: FakeSpotify, sleeps: list[float]) -> SpotifyPlaylists:
    return client(fake, sleeps)


def client(fake: FakeSpotify, sleeps: list[float] | None = None, **kwargs: Any):
    return SpotifyPlaylists(
        CLIENT_ID,
        REDIRECT,
        authorize_url=fake.authorize_url,
        token_url=fake.token_url,
        api_base=fake.api_base,
        sleep=(sleeps if sleeps is not None else []).append,
        **kwargs,
    )


def song(number: int, with_id: bool = True) -> Recommendation:
    return Recommendation(
        title=f"Song {number} “ünïcode” & co",
        artist=f"Artist {number}",
        album=None,
        year=None,
        genre=None,
        mood=None,
        popularity=None,
        track_id=fake_id(f"song-{number}") if with_id else None,
        reason="test",
        score=1.0,
    )


def consent(login: Login) -> dict[str, str]:
    """Open the authorize URL as the browser would; the query Spotify sends back."""
    answer = requests.get(login.url, allow_redirects=False, timeout=5)
    assert answer.status_code == 303, answer.text
    back = answer.headers["Location"]
    assert back.startswith(REDIRECT + "?")
    return {k: v[-1] for k, v in parse_qs(urlparse(back).query).items()}


def connect(spotify: SpotifyPlaylists) -> UserToken:
    login = spotify.start_login()
    return spotify.finish_login(consent(login), login)


def message_of(call, token: UserToken | None = None) -> PlaylistError:
    with pytest.raises(PlaylistError) as caught:
        call()
    error = caught.value
    if token is not None:
        assert token.access_token not in str(error) and token.access_token not in repr(error)
    return error


# --------------------------------------------------------------------------- the flow


def test_authorize_url_asks_for_pkce_s256_and_a_state(spotify: SpotifyPlaylists) -> None:
    login = spotify.start_login()
    url = urlparse(login.url)
    query = {k: v[-1] for k, v in parse_qs(url.query).items()}
    assert url.path == "/authorize"
    assert query["client_id"] == CLIENT_ID and query["response_type"] == "code"
    assert query["redirect_uri"] == REDIRECT and query["scope"] == SCOPE
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] == code_challenge(login.code_verifier)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", query["code_challenge"])
    assert query["state"] == login.state and len(login.state) >= 32
    assert re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", login.code_verifier)
    assert "client_secret" not in login.url and CLIENT_SECRET not in login.url
    assert login.code_verifier not in repr(login)
    other = spotify.start_login()
    assert (other.state, other.code_verifier) != (login.state, login.code_verifier)
    # RFC 7636's example pair.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_full_flow_creates_a_private_playlist_in_batches_of_100(
    fake: FakeSpotify, spotify: SpotifyPlaylists, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tracks = [song(i) for i in range(250)]
    for at in (0, 120, 251):
        tracks.insert(at, song(1000 + at, with_id=False))
    login = spotify.start_login()
    token = spotify.finish_login(consent(login), login)
    (exchange,) = fake.calls("/api/token", "POST")
    assert exchange.body["grant_type"] == "authorization_code"
    assert exchange.body["code_verifier"] == login.code_verifier
    assert "client_secret" not in exchange.body  # PKCE: no secret in the exchange
    assert SCOPE in token.scope and not token.expired()
    assert spotify.current_user(token)["display_name"] == fake.user["display_name"]

    saved = spotify.save_playlist(token, "moodlens · sad · Lift my mood", tracks)

    (created,) = fake.playlists_created
    assert created["name"] == "moodlens · sad · Lift my mood" and created["public"] is False
    assert saved.id == created["id"] and saved.url == created["external_urls"]["spotify"]
    assert [len(uris) for _, uris in fake.added_batches] == [100, 100, 50]
    expected = [f"spotify:track:{t.track_id}" for t in tracks if t.track_id]
    assert [uri for _, uris in fake.added_batches for uri in uris] == expected
    assert fake.user_playlists[saved.id]["items"] == expected
    assert saved.added == 250
    assert [t.title for t in saved.skipped] == [
        song(1000).title,
        song(1120).title,
        song(1251).title,
    ]
    adds = fake.calls(f"/v1/playlists/{saved.id}/items", "POST")
    assert [len(call.body["uris"]) for call in adds] == [100, 100, 50]
    assert all(token.access_token not in record.getMessage() for record in caplog.records)
    assert token.access_token not in repr(token)


def test_each_track_goes_in_once_and_only_with_a_spotify_id(
    fake: FakeSpotify, spotify: SpotifyPlaylists
) -> None:
    token = connect(spotify)
    first = song(1)
    tracks = [first, song(2), first, song(3, with_id=False)]
    saved = spotify.save_playlist(token, "mix", tracks)
    assert saved.added == 2 and len(fake.added_batches) == 1
    error = message_of(lambda: spotify.save_playlist(token, "none", [song(9, False)]), token)
    assert str(error) == NOTHING_TO_SAVE
    assert len(fake.playlists_created) == 1  # nothing was created for songs without ids


def test_the_fake_checks_the_verifier_and_uses_each_code_once(
    fake: FakeSpotify, spotify: SpotifyPlaylists
) -> None:
    login = spotify.start_login()
    params = consent(login)
    forged = Login(login.url, login.state, "x" * 64)
    error = message_of(lambda: spotify.finish_login(params, forged))
    assert "did not accept the sign-in" in str(error) and "code_verifier" in str(error)
    assert error.reconnect
    params = consent(login)
    spotify.finish_login(params, login)
    error = message_of(lambda: spotify.finish_login(params, login))  # the same code again
    assert "Invalid authorization code" in str(error)


def test_the_fake_refuses_more_than_100_uris(fake: FakeSpotify, spotify: SpotifyPlaylists) -> None:
    token = connect(spotify)
    playlist = spotify.save_playlist(token, "x", [song(0)])
    headers = {"Authorization": f"Bearer {token.access_token}"}
    uris = [f"spotify:track:{fake_id(str(i))}" for i in range(BATCH_SIZE + 1)]
    for path in ("items", "tracks"):
        url = f"{fake.api_base}playlists/{playlist.id}/{path}"
        too_many = requests.post(url, json={"uris": uris}, headers=headers, timeout=5)
        assert too_many.status_code == 400
        assert requests.post(url, json={"uris": uris[:100]}, headers=headers, timeout=5).ok
    assert [len(batch) for _, batch in fake.added_batches] == [1, 100, 100]


# --------------------------------------------------------------------------- sign-in errors


def test_denied_consent_says_nothing_was_saved(fake: FakeSpotify, spotify: SpotifyPlaylists):
    fake.deny_consent = True
    login = spotify.start_login()
    params = consent(login)
    assert params == {"error": "access_denied", "state": login.state}
    assert str(message_of(lambda: spotify.finish_login(params, login))) == DENIED
    assert fake.calls("/api/token") == []


def test_a_foreign_or_stale_state_is_refused(fake: FakeSpotify, spotify: SpotifyPlaylists):
    login = spotify.start_login()
    params = consent(login)
    other = spotify.start_login()
    assert str(message_of(lambda: spotify.finish_login(params, other))) == BAD_STATE
    assert str(message_of(lambda: spotify.finish_login(params, None))) == BAD_STATE
    assert str(message_of(lambda: spotify.finish_login({"code": "x"}, login))) == BAD_STATE
    assert fake.calls("/api/token") == []


def test_sign_in_outages_are_explained(fake: FakeSpotify, spotify: SpotifyPlaylists) -> None:
    login = spotify.start_login()
    params = consent(login)
    fake.fail("/api/token", 502, times=1)
    error = message_of(lambda: spotify.finish_login(params, login))
    assert "server error (502) while signing you in" in str(error)


# --------------------------------------------------------------------------- API errors


def test_an_expired_sign_in_asks_to_connect_again(fake: FakeSpotify, spotify: SpotifyPlaylists):
    token = connect(spotify)
    fake.revoke_tokens()  # as if it expired on Spotify's side
    error = message_of(lambda: spotify.save_playlist(token, "x", [song(1)]), token)
    assert str(error) == EXPIRED and error.status == 401 and error.reconnect
    old = UserToken("old-token-value", expires_at=0.0)
    calls = len(fake.requests)
    error = message_of(lambda: spotify.save_playlist(old, "x", [song(1)]), old)
    assert str(error) == EXPIRED and len(fake.requests) == calls  # not even sent


def test_development_mode_users_not_allow_listed_are_told_so(
    fake: FakeSpotify, spotify: SpotifyPlaylists
) -> None:
    token = connect(spotify)
    fake.allow_list = {"the-app-owner"}
    for call in (
        lambda: spotify.current_user(token),
        lambda: spotify.save_playlist(token, "x", [song(1)]),
    ):
        error = message_of(call, token)
        assert str(error) == DEVELOPMENT_MODE and error.status == 403
        assert "Development Mode" in str(error) and "allow-list" in str(error)
    fake.allow_list.add(fake.user["id"])
    assert spotify.save_playlist(token, "x", [song(1)]).added == 1
    body = {"error": {"status": 403, "message": "Premium required"}}
    fake.fail("/v1/me/playlists", 403, body=body, times=1)
    error = message_of(lambda: spotify.save_playlist(token, "x", [song(1)]), token)
    assert "(403: Premium required)" in str(error) and "allow-list" in str(error)


def test_a_sign_in_without_the_playlist_scope_is_explained(
    fake: FakeSpotify, spotify: SpotifyPlaylists
) -> None:
    login = spotify.start_login()
    narrow = Login(login.url.replace(f"scope={SCOPE}", "scope=user-read-private"), login.state,
                   login.code_verifier)  # fmt: skip
    token = spotify.finish_login(consent(narrow), login)
    error = message_of(lambda: spotify.save_playlist(token, "x", [song(1)]), token)
    assert str(error) == MISSING_SCOPE and error.reconnect


def test_rate_limits_say_how_long_to_wait(
    fake: FakeSpotify, spotify: SpotifyPlaylists, sleeps: list[float]
) -> None:
    token = connect(spotify)
    fake.fail("/v1/me/playlists", 429, headers={"Retry-After": "2"}, times=1)
    assert spotify.save_playlist(token, "x", [song(1)]).added == 1  # waited 2 s, tried again
    assert sleeps == [2.0]
    fake.fail("/v1/me/playlists", 429, headers={"Retry-After": "120"}, times=1)
    error = message_of(lambda: spotify.save_playlist(token, "x", [song(1)]), token)
    assert "rate-limiting" in str(error) and "try again in about 2 minutes" in str(error)
    assert error.retry_after == 120 and sleeps == [2.0]  # a long wait is not slept through
    fake.fail("/v1/me/playlists", 429, headers={"Retry-After": "20"}, times=1)
    error = message_of(lambda: spotify.save_playlist(token, "x", [song(1)]), token)
    assert "try again in 20 s" in str(error)


def test_a_failure_half_way_names_the_playlist_and_what_went_in(
    fake: FakeSpotify, spotify: SpotifyPlaylists
) -> None:
    token = connect(spotify)
    fake.fail("/v1/playlists/", 500, skip=1)
    error = message_of(lambda: spotify.save_playlist(token, "x", [song(i) for i in range(250)]))
    (created,) = fake.playlists_created
    assert "server error (500) while adding songs" in str(error)
    assert f"created with 100 of 250 songs: {error.playlist_url}" in str(error)
    assert error.playlist_url == created["external_urls"]["spotify"] and error.added == 100
    assert len(fake.calls("/v1/playlists/", "POST")) == 2  # a failed add is not repeated


def test_outages_and_timeouts_are_explained(fake: FakeSpotify, spotify: SpotifyPlaylists):
    token = connect(spotify)
    fake.fail("/v1/me/playlists", 503, times=1)
    error = message_of(lambda: spotify.save_playlist(token, "x", [song(1)]), token)
    assert "server error (503) while creating the playlist" in str(error)
    assert len(fake.calls("/v1/me/playlists", "POST")) == 1  # never retried: no duplicates
    slow = client(fake, timeout=0.3)
    fake.fail("/v1/me", 200, delay=1.0, times=1)
    error = message_of(lambda: slow.current_user(token), token)
    assert "did not answer within 0.3 s while reading your profile" in str(error)
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    gone = SpotifyPlaylists(CLIENT_ID, REDIRECT, api_base=f"http://127.0.0.1:{port}/v1/")
    error = message_of(lambda: gone.current_user(token), token)
    assert "Cannot reach Spotify" in str(error)


# --------------------------------------------------------------------------- set-up and state


def test_settings_enable_it_only_with_a_redirect_uri(fake: FakeSpotify) -> None:
    environ = {"SPOTIFY_CLIENT_ID": CLIENT_ID, "SPOTIFY_CLIENT_SECRET": CLIENT_SECRET}
    assert not SpotifyPlaylists.configured(Settings.from_env({}, environ))
    assert str(message_of(lambda: SpotifyPlaylists.from_settings(Settings.from_env({}, environ))))\
        == NOT_SET_UP  # fmt: skip
    environ |= {
        "SPOTIFY_REDIRECT_URI": REDIRECT,
        "MOODLENS_SPOTIFY_TOKEN_URL": fake.token_url,
        "MOODLENS_SPOTIFY_API_BASE": fake.api_base,
    }
    spotify = SpotifyPlaylists.from_settings(Settings.from_env({}, environ))
    assert spotify.authorize_endpoint == fake.authorize_url and spotify.redirect_uri == REDIRECT
    assert connect(spotify).access_token
    secrets = {"spotify": {"client_id": "a", "client_secret": "b", "redirect_uri": REDIRECT}}
    assert Settings.from_env(secrets, {}).spotify_redirect_uri == REDIRECT
    assert SpotifyPlaylists.from_settings(Settings.from_env(secrets, {})).authorize_endpoint == (
        "https://accounts.spotify.com/authorize"
    )


def test_a_listeners_sign_in_needs_only_the_client_id_and_redirect_uri() -> None:
    """PKCE needs no client secret: an app set up for playlists alone can offer them."""
    for secrets, env in (
        ({"spotify": {"client_id": "abc", "redirect_uri": REDIRECT}}, {}),
        ({"SPOTIFY_CLIENT_ID": "abc", "SPOTIFY_REDIRECT_URI": REDIRECT}, {}),
        (None, {"SPOTIFY_CLIENT_ID": "abc", "SPOTIFY_REDIRECT_URI": REDIRECT}),
    ):
        settings = Settings.from_env(secrets, env)
        assert SpotifyPlaylists.configured(settings), (secrets, env)
        assert settings.spotify_credentials is None  # the app's own searches still need both


def test_pending_logins_are_single_use_and_expire() -> None:
    now = [0.0]
    pending = PendingLogins(ttl=60, clock=lambda: now[0])
    first, second = Login("u1", "state-1", "v1"), Login("u2", "state-2", "v2")
    assert pending.put(first, ("name", [1])) and pending.put(second)
    assert pending.put(first, ("newer", [2]))  # the page refreshes the songs on every run
    assert pending.take("state-1") == (first, ("newer", [2]))
    assert pending.take("state-1") is None and not pending.put(first)  # used: start anew
    assert pending.take("") is None and pending.take("unknown") is None
    now[0] = 61.0
    assert pending.take("state-2") is None and len(pending) == 0


def test_a_pending_login_expires_from_its_start_however_often_the_page_refreshes_it() -> None:
    now = [0.0]
    pending = PendingLogins(ttl=60, clock=lambda: now[0])
    login = Login("u", "state", "v")
    for second in range(0, 60, 5):  # a live page reruns its songs panel every few seconds
        now[0] = float(second)
        assert pending.put(login, ("songs", [second]))
    now[0] = 61.0
    assert pending.take("state") is None
    assert not pending.put(login)  # expired: the page starts a new sign-in
    now[0] = 10_000.0  # long after: a session that kept the used Login cannot revive it
    assert not pending.put(login) and pending.take("state") is None


def test_a_pending_login_is_taken_only_by_the_browser_that_started_it() -> None:
    pending = PendingLogins()
    login = Login("u", "state", "v")
    assert pending.put(login, "songs", browser="secret-of-browser-a")
    assert pending.take("state") is None
    assert pending.take("state", browser="secret-of-browser-b") is None
    assert pending.take("state", browser="secret-of-browser-a") == (login, "songs")
    assert pending.take("state", browser="secret-of-browser-a") is None


# --------------------------------------------------------------------------- the pages


@pytest.fixture()
def app_env(fake: FakeSpotify, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MOODLENS_FEEDBACK_DB", str(tmp_path / "feedback.sqlite3"))
    monkeypatch.setenv("SPOTIFY_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("SPOTIFY_REDIRECT_URI", REDIRECT)
    monkeypatch.setenv("MOODLENS_SPOTIFY_TOKEN_URL", fake.token_url)
    monkeypatch.setenv("MOODLENS_SPOTIFY_API_BASE", fake.api_base)
    monkeypatch.delenv("MOODLENS_CATALOG", raising=False)
    # AppTest resets PagesManager.uses_pages_directory before every run, so the pages' one-time
    # rerun in route_through_app happens on every run and would swallow button clicks.
    monkeypatch.setattr("pages.common.route_through_app", lambda: None)
    from core.music.feedback import FeedbackStore

    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    store.record_vote("default", song(1), 1)
    store.record_vote("default", song(2, with_id=False), 1)


def set_cookie(app) -> str:
    """The sign-in secret the page's script stores in the browser's cookie."""
    from pages.common import SPOTIFY_BROWSER_COOKIE

    scripts = [h.value for h in app.html if SPOTIFY_BROWSER_COOKIE in h.value]
    (value,) = {re.search(SPOTIFY_BROWSER_COOKIE + r"=([\w-]+);", js).group(1) for js in scripts}
    return value


def history_page(query: dict[str, str] | None = None, cookie: str = "", monkeypatch=None):
    """The History page in a new browser session, which sends `cookie` (AppTest cannot send
    cookies, so the page's reader of it is replaced)."""
    from streamlit.testing.v1 import AppTest

    from core.paths import REPO_ROOT

    if monkeypatch is not None:
        monkeypatch.setattr("pages.common._spotify_browser", lambda: cookie)
    app = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=120)
    app.run()
    app.switch_page("pages/history.py")
    app.query_params.update(query or {})
    app.run()
    assert not app.exception, app.exception
    return app


def page_text(app) -> str:
    parts = [m.value for m in app.markdown] + [e.value for e in app.error]
    parts += [s.value for s in app.success] + [c.value for c in app.caption]
    return "\n".join(str(p) for p in parts)


def connect_in_a_browser(monkeypatch) -> tuple[dict[str, str], str]:
    """Press Connect Spotify on a fresh browser's History page and follow it to Spotify: the
    redirect's query and the cookie the page set in that browser."""
    app = history_page(monkeypatch=monkeypatch)
    (connect_button,) = [b for b in app.link_button if b.value == "Connect Spotify"]
    back = requests.get(connect_button.proto.url, allow_redirects=False, timeout=5)
    query = {k: v[-1] for k, v in parse_qs(urlparse(back.headers["Location"]).query).items()}
    return query, set_cookie(app)


def test_pages_connect_spotify_and_save_the_liked_songs(
    fake: FakeSpotify, app_env, monkeypatch
) -> None:
    query, cookie = connect_in_a_browser(monkeypatch)
    # Spotify's redirect opens a new browser session, in the browser that pressed Connect.
    landed = history_page(query, cookie, monkeypatch)
    body = page_text(landed)
    assert f"Connected to Spotify as {fake.user['display_name']}" in body.replace("\\", "")
    assert "(2 songs)" in body
    landed.button(key="spotify_return_spotify_save").click().run()
    assert not landed.exception, landed.exception
    body = page_text(landed)
    (created,) = fake.playlists_created
    assert created["name"] == "moodlens · liked by default" and created["public"] is False
    assert [uris for _, uris in fake.added_batches] == [[f"spotify:track:{song(1).track_id}"]]
    assert created["external_urls"]["spotify"] in body and "(1 song)" in body
    assert "no Spotify id" in body and "Artist 2" in body
    token = landed.session_state["spotify_listener"]["token"].access_token
    assert token not in body
    # The download still works next to it, and nothing of the token is in the page's text.
    assert any(b.label == "Download M3U8" for b in landed.download_button)


def test_a_sign_in_link_started_in_another_browser_connects_nobody(
    fake: FakeSpotify, app_env, monkeypatch
) -> None:
    """Login CSRF: someone signs in to their own Spotify, stops the redirect and sends its link
    to a listener. The listener's session must not get the sender's token."""
    query, cookie = connect_in_a_browser(monkeypatch)
    for listener_cookie in ("", "another-browsers-secret"):
        landed = history_page(query, listener_cookie, monkeypatch)
        assert BAD_STATE in [e.value for e in landed.error]
        assert "spotify_listener" not in landed.session_state
    # The sign-in still belongs to its own browser, once.
    assert "Connected to Spotify" in page_text(history_page(query, cookie, monkeypatch))
    again = history_page(query, cookie, monkeypatch)
    assert BAD_STATE in [e.value for e in again.error]


def test_pages_explain_a_denied_consent(fake: FakeSpotify, app_env, monkeypatch) -> None:
    fake.deny_consent = True
    query, cookie = connect_in_a_browser(monkeypatch)
    landed = history_page(query, cookie, monkeypatch)
    assert DENIED in [e.value for e in landed.error]
    assert any(b.label == "Download M3U8" for b in landed.download_button)
    forged = history_page({"code": "stolen", "state": "not-ours"})
    assert BAD_STATE in [e.value for e in forged.error]
