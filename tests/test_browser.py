"""End to end in a real browser: Debian chromium's fake camera plays real FER2013 faces into
the live page over WebRTC; the page must show an emotion and songs."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

from core.labels import EMOTIONS
from tests.support.browser import chromium, require_browser, serve_app
from tests.support.scenes import layout, scene, write_y4m
from tests.support.tools import tool_missing

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is in requirements-dev.txt"
).expect
HAPPY, SAD = 3, 4


@pytest.fixture(scope="module")
def happy_video(tmp_path_factory, public_test, shipped_model):
    """Eight seconds of the happy face the live pipeline reads most clearly."""
    frame = _scene_reading_as(shipped_model, public_test, HAPPY)
    return write_y4m([frame] * 120, tmp_path_factory.mktemp("video") / "happy.y4m", fps=15)


@pytest.fixture
def app_url(tmp_path):
    require_browser()
    env = {"MOODLENS_FEEDBACK_DB": str(tmp_path / "feedback.sqlite3")}
    with serve_app(env, tmp_path / "streamlit.log") as url:
        yield url


def _analysed_fps(page) -> float:
    caption = page.get_by_text(re.compile(r"frames/s analysed")).first.inner_text()
    return float(re.search(r"([\d.]+) frames/s analysed", caption).group(1))


def _wait_for_analysis(page, timeout_ms: int = 60_000) -> float:
    """The page's analysed frame rate once it is above 0 (a stream that has only just started,
    or one on a busy CPU, shows 0 until its second analysed frame)."""
    for _ in range(timeout_ms // 500):
        fps = _analysed_fps(page)
        if fps > 0:
            return fps
        page.wait_for_timeout(500)
    raise AssertionError(f"no frame analysed within {timeout_ms / 1000:.0f} s")


def test_live_page_shows_emotion_and_songs(app_url, happy_video, tmp_path):
    with chromium(happy_video) as page:
        page.goto(f"{app_url}/live", wait_until="domcontentloaded")
        webrtc = page.frame_locator('iframe[title*="webrtc_streamer"]')
        webrtc.get_by_role("button", name="Start").click(timeout=90_000)
        detected = page.get_by_text(re.compile(r"Detected: \w+")).first
        detected.wait_for(timeout=150_000)
        label = re.search(r"Detected: (\w+)", detected.inner_text()).group(1)
        assert label in {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
        expect(page.get_by_text("Why:")).to_have_count(5, timeout=60_000)
        # Let it run a few seconds, then read the processed frame rate the page reports.
        page.wait_for_timeout(5000)
        fps = _analysed_fps(page)
        page.screenshot(path=str(tmp_path / "live.png"))
        print(json.dumps({"browser_live_fps": fps, "label": label}))
        # The camera sends 15 frames/s; a page that starves the video threads (as Streamlit's
        # per-run Keras cleanup did) analyses 1-3.
        assert fps >= 4
        webrtc.get_by_role("button", name="Stop").click()
        page.get_by_text(re.compile(r"Press \*?\*?Start")).first.wait_for(timeout=30_000)


def test_photo_upload_in_the_browser(app_url, public_test, detectable, tmp_path):
    import cv2

    x, _ = public_test
    ids = [detectable[c][0] for c in (HAPPY, 5)]
    _ok, png = cv2.imencode(".png", scene([x[i] for i in ids], layout(2, 200)))
    photo = tmp_path / "two.png"
    photo.write_bytes(png.tobytes())
    with chromium(None) as page:
        page.goto(f"{app_url}/photo", wait_until="domcontentloaded")
        uploader = page.locator('[data-testid="stFileUploader"]').filter(
            has_text="Photo with one or more faces"
        )
        uploader.locator('input[type="file"]').set_input_files(str(photo))
        page.get_by_text("2 faces found").wait_for(timeout=90_000)
        expect(page.get_by_text("Why:")).to_have_count(5, timeout=60_000)


def _compressed(frame, quality=25):
    """The frame after lossy compression, as a video codec at a low bitrate would leave it."""
    import cv2

    _ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)


def _scene_reading_as(shipped_model, public_test, cls):
    """The one-face scene the live pipeline itself (detector + crop + model) reads most
    confidently as `cls`, both as sent and after lossy compression (WebRTC's VP8 blurs it)."""
    from core.vision.faces import FaceDetector
    from core.vision.live import analyze_still

    x, y = public_test
    box = layout(1, 220)[0]
    detector = FaceDetector()
    best, best_confidence = None, 0.0
    for i in np.flatnonzero(y == cls)[:150]:
        frame = scene([x[i]], [box], seed=2)
        readings = [analyze_still(f, shipped_model, detector) for f in (frame, _compressed(frame))]
        if not all(len(faces) == 1 and faces[0].label == EMOTIONS[cls] for faces in readings):
            continue
        confidence = min(faces[0].confidence for faces in readings)
        if confidence > best_confidence:
            best, best_confidence = frame, confidence
    if best is not None:
        return best  # the clearest one, so the live label holds steady
    pytest.skip(f"no detectable {EMOTIONS[cls]} face that the shipped model reads clearly")


def test_expression_change_moves_emotion_and_songs(app_url, public_test, shipped_model, tmp_path):
    """A face that turns from happy to sad: the label and the songs follow it."""
    happy = _scene_reading_as(shipped_model, public_test, HAPPY)
    sad = _scene_reading_as(shipped_model, public_test, SAD)
    frames = [happy] * 90 + [sad] * 150  # 6 s happy, then 10 s sad (the video loops)
    video = write_y4m(frames, tmp_path / "happy_then_sad.y4m", fps=15)
    with chromium(video) as page:
        page.goto(f"{app_url}/live", wait_until="domcontentloaded")
        page.frame_locator('iframe[title*="webrtc_streamer"]').get_by_role(
            "button", name="Start"
        ).click(timeout=90_000)
        page.get_by_text("Detected: happy").first.wait_for(timeout=90_000)
        page.get_by_text("Songs for your happy mood").first.wait_for(timeout=30_000)
        page.get_by_text("Detected: sad").first.wait_for(timeout=60_000)
        # The songs follow the dominant emotion of the last seconds away from happy.
        page.get_by_text(re.compile(r"Songs for your (?!happy)\w+ mood")).first.wait_for(
            timeout=60_000
        )


def test_camera_denied_is_explained(app_url):
    with chromium(None, allow_camera=False) as page:
        page.goto(f"{app_url}/live", wait_until="domcontentloaded")
        webrtc = page.frame_locator('iframe[title*="webrtc_streamer"]')
        webrtc.get_by_role("button", name="Start").click(timeout=90_000)
        webrtc.get_by_text("Permission denied").wait_for(timeout=30_000)
        # The page's own help is open and says how to allow the camera.
        page.get_by_text("If you blocked the camera").wait_for(timeout=10_000)


def _start(page, app_url):
    page.goto(f"{app_url}/live", wait_until="domcontentloaded")
    webrtc = page.frame_locator('iframe[title*="webrtc_streamer"]')
    webrtc.get_by_role("button", name="Start").click(timeout=90_000)
    page.get_by_text(re.compile(r"Detected: \w+")).first.wait_for(timeout=150_000)
    return webrtc


def test_two_tabs_stream_at_once_and_a_stopped_stream_restarts(app_url, happy_video):
    """Two browser tabs are two sessions with their own streams; stopping one leaves the other
    running, and the stopped one starts again."""
    with chromium(happy_video) as first:
        second = first.context.new_page()
        first_webrtc = _start(first, app_url)
        _start(second, app_url)
        first_webrtc.get_by_role("button", name="Stop").click()
        first.get_by_text(re.compile(r"Press \*?\*?Start")).first.wait_for(timeout=30_000)
        _wait_for_analysis(second)  # the other tab kept going
        expect(second.get_by_text(re.compile(r"Detected: \w+")).first).to_be_visible()
        first_webrtc.get_by_role("button", name="Start").click(timeout=30_000)
        first.get_by_text(re.compile(r"Detected: \w+")).first.wait_for(timeout=90_000)
        _wait_for_analysis(first)


def test_three_tabs_stream_at_once_and_none_stops(app_url, happy_video):
    """Three sessions stream at once, on the same cores as their three browser tabs: the
    streams share the analysis (each analyses fewer frames) instead of stopping. Before, 3-4
    streams here ended by themselves ~35-40 s after they started (ICE consent checks missed
    their 0.5 s under load), so the check runs past that."""
    with chromium(happy_video) as first:
        pages = [first] + [first.context.new_page() for _ in range(2)]
        for page in pages:
            page.goto(f"{app_url}/live", wait_until="domcontentloaded")
        webrtcs = [page.frame_locator('iframe[title*="webrtc_streamer"]') for page in pages]
        for webrtc in webrtcs:
            webrtc.get_by_role("button", name="Start").click(timeout=90_000)
        started = time.monotonic()
        for page in pages:
            page.get_by_text(re.compile(r"Detected: \w+")).first.wait_for(timeout=60_000)
        while time.monotonic() - started < 45:  # <= 60 s of streaming in all
            first.wait_for_timeout(5000)
            for i, webrtc in enumerate(webrtcs):
                stopped = webrtc.get_by_role("button", name="Start").count()
                assert not stopped, f"tab {i + 1} stopped after {time.monotonic() - started:.0f} s"
        rates = [_wait_for_analysis(page, 10_000) for page in pages]
        print(json.dumps({"three_tabs_fps": rates}))
        assert all(rate > 0 for rate in rates)
        for webrtc in webrtcs:
            expect(webrtc.get_by_role("button", name="Stop")).to_be_visible()


def test_a_link_that_asks_to_resume_never_starts_a_camera_but_a_reload_of_its_tab_does(
    app_url, happy_video
):
    """`?stream=on` in a bookmark or a shared link opened in a browser that allowed the camera
    must not stream by itself (nor say it reconnects for ever); the tab whose viewer pressed
    Start resumes after a reload."""
    with chromium(happy_video) as page:
        page.goto(f"{app_url}/live?stream=on", wait_until="domcontentloaded")
        webrtc = page.frame_locator('iframe[title*="webrtc_streamer"]')
        start = webrtc.get_by_role("button", name="Start")
        start.wait_for(timeout=90_000)
        page.wait_for_timeout(4000)  # a resume presses Start 0.5 s after it shows
        expect(start).to_be_visible()
        expect(webrtc.get_by_role("button", name="Stop")).to_have_count(0)
        # No press comes: once the resume's wait is over the page says Start, not "Reconnecting"
        # (it did until the next click), and the link forgets ?stream=on.
        page.get_by_text("Press Start to begin").wait_for(timeout=60_000)
        expect(page.get_by_text("Reconnecting your camera")).to_have_count(0)
        page.wait_for_function("!location.search.includes('stream=on')", timeout=10_000)
        start.click()
        page.get_by_text(re.compile(r"Detected: \w+")).first.wait_for(timeout=90_000)
        page.reload(wait_until="domcontentloaded")
        page.get_by_text(re.compile(r"Detected: \w+")).first.wait_for(timeout=90_000)
        expect(webrtc.get_by_role("button", name="Stop")).to_be_visible()
        # "Duplicate tab" copies the URL and the tab's sessionStorage: still no second stream.
        flag = page.evaluate("sessionStorage.getItem('moodlens-camera-on')")
        assert flag
        duplicate = page.context.new_page()
        duplicate.add_init_script(f"sessionStorage.setItem('moodlens-camera-on', '{flag}')")
        duplicate.goto(page.url, wait_until="domcontentloaded")
        copy = duplicate.frame_locator('iframe[title*="webrtc_streamer"]')
        copy.get_by_role("button", name="Start").wait_for(timeout=90_000)
        duplicate.wait_for_timeout(4000)
        assert duplicate.evaluate("sessionStorage.getItem('moodlens-camera-on')") == flag
        expect(copy.get_by_role("button", name="Stop")).to_have_count(0)


def test_a_viewer_whose_replica_dies_reconnects_to_the_other_and_streams_again(
    happy_video, tmp_path
):
    """Two replicas behind nginx (deploy/serve.py). Killing the viewer's replica: the page says
    it is reconnecting, lands on the other replica and starts the camera by itself; Stop then
    hands Start back and the URL no longer asks to resume."""
    from deploy.serve import Room, nginx_binary
    from tests.support.browser import free_port

    try:
        nginx_binary()
    except RuntimeError as missing:
        tool_missing(str(missing))
    room = Room(
        replicas=2,
        port=free_port(),
        replica_ports=(free_port(), free_port()),
        runtime=tmp_path / "room",
        env={"MOODLENS_FEEDBACK_DB": str(tmp_path / "feedback.sqlite3")},
        restart=False,
    )
    with room, chromium(happy_video) as page:
        reply = page.goto(f"{room.url}/live", wait_until="domcontentloaded")
        serving = reply.headers["x-moodlens-replica"]
        webrtc = page.frame_locator('iframe[title*="webrtc_streamer"]')
        webrtc.get_by_role("button", name="Start").click(timeout=90_000)
        page.get_by_text(re.compile(r"Detected: \w+")).first.wait_for(timeout=90_000)
        assert "stream=on" in page.url

        room.kill(next(r.index for r in room.members if r.address == serving))
        page.get_by_text("Reconnecting your camera").first.wait_for(timeout=30_000)
        page.get_by_text(re.compile(r"Detected: \w+")).first.wait_for(timeout=60_000)
        assert _wait_for_analysis(page, 30_000) > 0
        expect(page.get_by_text("Reconnecting your camera")).to_have_count(0)

        webrtc.get_by_role("button", name="Stop").click()
        webrtc.get_by_role("button", name="Start").wait_for(timeout=30_000)
        page.get_by_text(re.compile(r"Press \*?\*?Start")).first.wait_for(timeout=30_000)
        assert "stream=on" not in page.url


def test_a_spotify_sign_in_finishes_in_the_browser_that_pressed_connect_and_no_other(
    fake, tmp_path
):
    """The page's script keeps a secret in the browser's cookie; Spotify's redirect connects
    that browser, while the same redirect link opened in another browser connects nobody."""
    import requests

    from core.music.feedback import FeedbackStore
    from core.music.spotify_playlists import BAD_STATE
    from tests.support.browser import app_server, free_port
    from tests.support.fake_spotify import CLIENT_ID
    from tests.test_spotify_playlists import song

    require_browser()
    port = free_port()
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    store.record_vote("default", song(1), 1)
    env = {
        "MOODLENS_FEEDBACK_DB": str(tmp_path / "feedback.sqlite3"),
        "SPOTIFY_CLIENT_ID": CLIENT_ID,
        "SPOTIFY_REDIRECT_URI": f"http://127.0.0.1:{port}/history",
        "MOODLENS_SPOTIFY_TOKEN_URL": fake.token_url,
        "MOODLENS_SPOTIFY_API_BASE": fake.api_base,
    }
    with app_server(env, tmp_path / "streamlit.log", port=port) as (url, _), chromium() as page:
        page.goto(f"{url}/history", wait_until="domcontentloaded")
        page.get_by_text("Take these songs with you").click(timeout=90_000)
        connect = page.get_by_role("link", name=re.compile("Connect Spotify"))
        connect.wait_for(timeout=90_000)
        page.wait_for_function("document.cookie.includes('moodlens_spotify_browser=')")
        consent = requests.get(connect.get_attribute("href"), allow_redirects=False, timeout=5)
        back = consent.headers["Location"]  # Spotify's redirect, with the code and the state
        other = page.context.browser.new_context()  # another browser: none of its cookies
        try:
            stranger = other.new_page()
            stranger.goto(back, wait_until="domcontentloaded")
            stranger.get_by_text(BAD_STATE[:40]).wait_for(timeout=90_000)
            expect(stranger.get_by_text("Connected to Spotify")).to_have_count(0)
        finally:
            other.close()
        landed = page.context.new_page()  # a new tab of the browser that pressed Connect
        landed.goto(back, wait_until="domcontentloaded")
        landed.get_by_text(f"Connected to Spotify as {fake.user['display_name']}").wait_for(
            timeout=90_000
        )
