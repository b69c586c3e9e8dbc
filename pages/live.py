"""Live camera page: webcam -> faces -> emotions (live) -> songs for the mood."""

import time
import uuid
from functools import partial

import cv2
import numpy as np
import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from core.analytics.charts import emotion_alt, emotion_bars, emotion_timeline
from core.settings import SettingsError
from core.vision.live import (
    LiveAnalyzer,
    SettledMood,
    latest_frames_only,
    make_frame_callback,
    shared_budget,
    tolerate_busy_consent_checks,
)
from pages.common import (
    STRATEGY_LABELS,
    active_catalog,
    active_recommender,
    app_settings,
    cached_detector,
    chosen_model_version,
    model_choice,
    mood_songs,
    profile_name,
    render_songs,
    route_through_app,
    song_controls,
    spotify_return,
    take_songs_with_you,
    warm_up_models,
)

route_through_app()  # first, so a deep link on a fresh server runs through app.py
tolerate_busy_consent_checks()  # a busy server keeps its streams (see core.vision.live)

st.title(":material/videocam: Live camera")
spotify_return()  # back from "Connect Spotify": finish the sign-in, offer to save
model = model_choice(wait=False)  # still loading on a fresh server: the page renders anyway
catalog = active_catalog()
profile = profile_name()
if model is None:
    st.stop()

# One analyzer per browser session; the frame callback runs in another thread and talks to
# the page only through the analyzer's lock-guarded snapshot. All sessions' analyzers share one
# budget: with more streams, each analyses fewer frames and passes the rest through.
budget = shared_budget()
version = chosen_model_version()
if "analyzer" not in st.session_state:
    st.session_state["analyzer"] = LiveAnalyzer(model, cached_detector(), budget=budget)
    st.session_state["analyzer_model"] = version
analyzer: LiveAnalyzer = st.session_state["analyzer"]
if st.session_state["analyzer_model"] != version:
    # Another model picked, or its file replaced: the stream goes on with the new one, and
    # forgets faces and probabilities the old one read (they would blend into the new ones).
    analyzer.reset()
    analyzer.use_model(model)  # after reset: the status says the model loads, not "Stopped."
    st.session_state["analyzer_model"] = version
elif analyzer.load_failed:  # model_choice has started the load again: a stream takes it up
    analyzer.use_model(model)

try:
    servers = app_settings().ice_servers()
except SettingsError as error:
    st.error(f"WebRTC settings: {error}")
    servers = []

# Failover: while a stream plays, the URL says so (?stream=on). A session that starts with it is
# a reconnect (the viewer's replica went away and nginx sent the browser to another one, or the
# page was reloaded): it mounts a fresh streamer (the old one holds the dead connection) and
# presses its Start button in the browser, once, as the viewer would (see `press_start_once`).
# Only in the tab whose viewer pressed Start: the tab's sessionStorage remembers it (a reload
# or a reconnect keeps it; a bookmark, a shared link or another browser has none), so a URL
# with ?stream=on never turns a camera on by itself.
# The browser presses Start within RESUME_WAIT_S or not at all (a shared link, a duplicated
# tab): after that the page stops saying it reconnects, and shows Start as for any visit.
RESUME_WAIT_S = 30
if "stream_token" not in st.session_state:
    st.session_state["stream_token"] = uuid.uuid4().hex[:8]
    st.session_state["resume_stream"] = st.query_params.get("stream") == "on"
    st.session_state["resume_until"] = time.monotonic() + RESUME_WAIT_S

# Why a press and not `desired_playing_state=True`: streamlit-webrtc 0.79 starts a peer
# connection on every render it gets while asked to play and still stopped (its start awaits a
# module import before it leaves STOPPED), so a fresh page opened two or three at once, the
# server answered one of them, and each of the others failed ICE 15 s later before it tried
# again (measured: first label 22-38 s after a reconnect, none within 60 s on a busy CPU).
# A press starts exactly one. The script is keyed by the streamer, so a rerun never presses twice.
CAMERA_ON_KEY = "moodlens-camera-on"
PRESS_START_JS = """<script>
(() => {
  const key = "moodlens-press-start-%(token)s";
  // Resume where this document had the camera on (a reconnect to another replica), or in a
  // reload of such a tab; not in a duplicate of it (it copies sessionStorage, not the page).
  const on = sessionStorage.getItem("%(camera_on)s");
  const nav = performance.getEntriesByType("navigation")[0];
  const resume = on && (on === window.moodlensDocument || (nav && nav.type === "reload"));
  if (window[key] || !resume) return;
  window[key] = true;
  const deadline = Date.now() + %(wait_ms)d;
  let seenSince = null;
  const timer = setInterval(() => {
    const frame = document.querySelector('iframe[title*="webrtc_streamer"]');
    const doc = frame && frame.contentDocument;
    const start = doc && [...doc.querySelectorAll("button")].find(
      (b) => b.textContent.trim() === "Start" && !b.disabled);
    if (start) seenSince = seenSince || Date.now();
    if (start && Date.now() - seenSince >= 500) { clearInterval(timer); start.click(); }
    else if (Date.now() > deadline) clearInterval(timer);
  }, 250);
})();
</script>"""


def press_start_once() -> None:
    """In the browser: press the streamer's Start button once it has been on the page for
    half a second, if this tab's viewer had pressed it (the camera permission is the site's,
    already given before the reconnect)."""
    st.html(
        PRESS_START_JS
        % {
            "token": st.session_state["stream_token"],
            "camera_on": CAMERA_ON_KEY,
            "wait_ms": RESUME_WAIT_S * 1000,
        },
        unsafe_allow_javascript=True,
    )


REMEMBER_JS = """<script>
window.moodlensDocument = window.moodlensDocument || Math.random().toString(36).slice(2);
sessionStorage.setItem("%s", window.moodlensDocument);
</script>"""


def remember_camera_on(on: bool) -> None:
    """In the browser: whether this tab's viewer has the camera on, and in which document (see
    `press_start_once`)."""
    script = (
        REMEMBER_JS % CAMERA_ON_KEY
        if on
        else f'<script>sessionStorage.removeItem("{CAMERA_ON_KEY}");</script>'
    )
    st.html(script, unsafe_allow_javascript=True)


video_col, panel_col = st.columns([3, 2], gap="large")
with video_col:
    try:
        from streamlit_webrtc.relay import get_global_relay

        latest_frames_only(get_global_relay())  # a busy server drops frames, never queues them
        context = webrtc_streamer(
            key=f"moodlens-live-{st.session_state['stream_token']}",
            mode=WebRtcMode.SENDRECV,
            frontend_rtc_configuration={"iceServers": servers},
            server_rtc_configuration={"iceServers": servers},
            media_stream_constraints={
                "video": {"width": {"ideal": 640}, "height": {"ideal": 480}},
                "audio": False,
            },
            video_frame_callback=make_frame_callback(analyzer),
            on_video_ended=partial(analyzer.reset, keep_timeline=True),
            async_processing=True,
            translations={
                "start": "Start",
                "stop": "Stop",
                "device_access_denied": "Camera access was denied. Allow the camera for this site "
                "(camera icon in the address bar), then reload the page.",
                "device_not_available": "No camera found. Connect one, or use the Photo page.",
                "media_api_not_available": "This browser cannot use the camera here: open the app "
                "on localhost or over HTTPS.",
            },
        )
    except Exception as error:  # the WebRTC component could not start in this server
        st.error(
            f"The live video could not start here ({error}). Use the Photo page, or "
            "run the app with `make run` on this machine."
        )
        warm_up_models()  # the picked model still loads: a stream on a later run needs it
        st.stop()
    if st.session_state["resume_stream"]:
        if context.state.playing:
            st.session_state["resume_stream"] = False  # resumed: from here on, a stream as any
        elif time.monotonic() >= st.session_state["resume_until"]:
            st.session_state["resume_stream"] = False  # no press came: a visit as any other
        else:
            press_start_once()
    st.caption(
        ":material/lock: Frames are analysed in memory on this machine and never stored; "
        "the moods detected go to your profile's history."
    )
    with st.expander("Camera not working?", expanded=not context.state.playing):
        st.markdown(
            "- Press **Start** and allow camera access when the browser asks.\n"
            "- If you blocked the camera, click the camera icon in the address bar, allow it, "
            "and reload the page.\n"
            "- Browsers only offer the camera on `localhost` or over **HTTPS**; on a remote "
            "server, serve the app over HTTPS (see the README).\n"
            "- Another app (video call) may be holding the camera: close it and press Start.\n"
            "- No camera at all? Use the **Photo** page instead."
        )

if context.state.playing:
    if not st.session_state.get("live_was_playing"):  # Start: this stream settles its own mood
        st.session_state.pop("live_window", None)
        st.session_state.pop("live_mood", None)
    remember_camera_on(True)
    if st.query_params.get("stream") != "on":
        st.query_params["stream"] = "on"
elif not st.session_state["resume_stream"]:
    remember_camera_on(False)  # stopped here: a reload does not start the camera
    if "stream" in st.query_params:
        del st.query_params["stream"]

st.session_state["live_was_playing"] = bool(context.state.playing)
strategy_key = "live"
# Poll only while a stream plays: an open page with the camera stopped costs the server nothing.
# (Start and Stop rerun the page, which re-times the fragments.) With more streams on the server,
# each page polls less often (4x a second alone, once a second from 4 streams): the reruns, and
# the browsers redrawing the bars, take CPU the video needs.
streaming = bool(context.state.playing)
streams = budget.active(id(analyzer)) if streaming else 0
# Waiting for a resume, the panel looks once a second whether its time is up.
waiting = st.session_state["resume_stream"] and not streaming
panel_every = min(1.0, 0.25 * streams) if streaming else 1.0 if waiting else None
songs_every = (1.0 if streams <= 2 else 2.0) if streaming else None


@st.fragment(run_every=panel_every)
def live_panel() -> None:
    """Bars, status and the session timeline: refreshed (4x a second alone, less often with
    more streams on the server) without a full rerun."""
    playing = context.state.playing
    snap = analyzer.snapshot()
    if st.session_state["resume_stream"] and snap.fps == 0:
        if not playing and time.monotonic() >= st.session_state["resume_until"]:
            st.rerun()  # no resume came: the page shows Start, and the link forgets ?stream=on
        st.info(
            ":material/sync: **Reconnecting your camera.** If this page lost its server or was "
            "reloaded with the camera on, the stream starts again by itself in a moment; "
            "otherwise press **Start**."
        )
        if not playing:
            return
    elif not playing:
        st.info("Press **Start** to begin. Your expression drives the music.")
        return
    head = st.empty()
    if snap.faces:
        main = snap.faces[0]
        head.markdown(f"### Detected: **{main.label}** {main.confidence:.0%}")
    else:
        head.markdown("### Looking for a face…")
    shared = budget.active(id(analyzer))
    st.caption(
        f"{snap.status} · {snap.fps:.1f} frames/s analysed"
        + (f" (the server's {shared} streams share the CPU)" if shared > 1 else "")
    )
    lead = snap.faces[0].probabilities if snap.faces else None
    st.plotly_chart(
        emotion_bars(lead),
        key="live_bars",
        config={"displayModeBar": False},
        alt=emotion_alt(lead, "Face that picks the music" if lead is not None else ""),
    )
    if len(snap.faces) > 1:
        st.caption(
            "Other faces: "
            + ", ".join(f"#{f.face_id} {f.label} {f.confidence:.0%}" for f in snap.faces[1:])
        )
    if snap.window_probabilities is not None:
        st.session_state["live_window"] = snap.window_probabilities


@st.fragment(run_every=songs_every)
def songs_panel() -> None:
    """Songs for the dominant emotion of the last few seconds (unless the mood is locked)."""
    window = st.session_state.get("live_window")
    locked = st.toggle(
        "Lock this mood", key="live_lock", help="Keep the current songs while you make other faces."
    )
    if window is None:
        st.caption("Songs appear once a face has been seen for a moment.")
        return
    strategy, use_spotify = song_controls(strategy_key)
    # The songs follow a settled emotion: a near-tie does not swap them every second; stopped,
    # the last stream's mood stays.
    emotion = st.session_state.setdefault("live_mood", SettledMood()).follow(
        np.asarray(window), time.monotonic(), bool(context.state.playing)
    )
    (recs, note), shown = mood_songs(
        "live",
        (emotion,),
        np.asarray(window),
        emotion,
        strategy=strategy,
        use_spotify=use_spotify,
        catalog=catalog,
        profile=profile,
        hold=locked,
    )
    st.subheader(f"Songs for your {shown} mood" + (" (locked)" if locked else ""))
    render_songs(recs, note, "live", profile, shown, active_recommender(catalog))
    take_songs_with_you("live", profile, recs, f"moodlens · {shown} · {STRATEGY_LABELS[strategy]}")


with panel_col:
    live_panel()

songs_panel()


@st.fragment(run_every=2.0 if streaming else None)
def timeline_panel() -> None:
    """The session's moods so far: redrawn every 2 s while a stream plays, kept after Stop."""
    st.plotly_chart(
        emotion_timeline(analyzer.snapshot().timeline),
        key="live_timeline",
        alt="This session's emotion probabilities over time",
    )


with st.expander("Session mood timeline and snapshot"):
    timeline_panel()
    if st.button(
        "Take a snapshot",
        icon=":material/photo_camera:",
        help="Keeps the annotated frame in this browser "
        "session only; download it if you want a copy.",
    ):
        frame = analyzer.last_annotated_frame()
        if frame is None:
            st.warning("No frame yet: press Start first.")
        else:
            st.session_state["live_snapshot"] = (time.strftime("%H-%M-%S"), frame)
    if "live_snapshot" in st.session_state:
        stamp, frame = st.session_state["live_snapshot"]
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        st.image(rgb, caption=f"Snapshot {stamp} (in memory only)", width=320)
        ok, png = cv2.imencode(".png", frame)
        if ok:
            st.download_button(
                "Download snapshot",
                png.tobytes(),
                file_name=f"moodlens-{stamp}.png",
                mime="image/png",
            )

warm_up_models()  # a model still loading starts now that the page is out (app.py does too)
