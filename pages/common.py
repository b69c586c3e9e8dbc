"""Streamlit helpers shared by the pages: cached resources, sidebar pickers, the songs panel.

All logic lives in `core`; this module only wires it to widgets and caches.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from secrets import randbits, token_urlsafe
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import streamlit as st
import streamlit.components.v1 as components

import core  # noqa: F401  (loads pylibsrtp before TensorFlow; see core/__init__.py)
from core.emotion.cards import available_models, card_accuracy
from core.emotion.model import EmotionModel, ModelLoadError
from core.labels import FACE_SIZE
from core.music.catalog import CatalogError, catalog_file, has_audio_features, load_catalog
from core.music.feedback import MAX_PROFILE_LENGTH, FeedbackStore, Preference, feedback_url
from core.music.playlists import FORMATS, export, file_name, merge_songs, tracks_from_frame
from core.music.recommender import Recommender
from core.music.songs import Songs, SongsService
from core.music.spotify_playlists import (
    PendingLogins,
    PlaylistError,
    SavedPlaylist,
    SpotifyPlaylists,
)
from core.music.store import STORE_FAILURES, unavailable_note
from core.music.targets import STRATEGIES
from core.music.tracks import Recommendation
from core.paths import STARTER_CATALOG
from core.settings import Settings
from core.vision.faces import FaceDetector


def keep_models_warm_between_runs() -> None:
    """Stop Streamlit from calling `keras.backend.clear_session()` after every script run.

    Streamlit does that (plus a full `gc.collect`) whenever Keras is imported, meaning 5 times a
    second on the live page's fragments: each call empties TensorFlow's kernel cache and holds
    the GIL for ~100 ms, starving the WebRTC threads (measured: 1-3 analysed frames/s instead of
    the camera's 15). Our models are built once per process and shared (`st.cache_resource`),
    so there is no per-run Keras state to clean. Safe to call on every run.
    """
    from streamlit.runtime.scriptrunner import script_runner

    script_runner._clean_problem_modules = _no_cleanup


def _no_cleanup() -> None:
    """Replacement for Streamlit's per-run Keras/matplotlib cleanup (we use neither per run)."""


def route_through_app() -> None:
    """Run deep links through app.py's navigation (every page calls this first).

    Streamlit decides once per process whether a `pages/` folder means its legacy multipage
    mode, and only `st.navigation` (in app.py) turns that off. So when the very first request
    of a fresh server is a deep link such as /live, the page runs without app.py (no page
    config, a file-list sidebar). Turning the flag off and rerunning routes that request
    through app.py; the page keeps its URL because st.Page url paths match the file names.
    Once per process, as the decision it corrects.
    """
    global _routed
    if _routed:
        return
    _routed = True
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a future Streamlit without this internal: nothing to fix
        return
    if getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        st.rerun()


_routed = False


STRATEGY_LABELS = {
    "match": "Match my mood",
    "uplift": "Lift my mood",
    "calm": "Calm me down",
}


def app_settings() -> Settings:
    """Every setting, read once per script run from st.secrets and the environment."""
    return Settings.from_env(secrets())


def secrets() -> Mapping[str, Any]:
    """st.secrets as a mapping, or {} when the app has no secrets file."""
    try:
        return dict(st.secrets)
    except Exception:  # no secrets.toml: that is the normal local case
        return {}


# ----------------------------------------------------------------------------- models


def cached_model(path: str) -> EmotionModel:
    """Load a model file once per process (again once it is replaced on disk, e.g. by
    `make ship-resnet` while the app runs); warm it up so the first frame is fast."""
    return _cached_model(path, _modified(path))


@st.cache_resource(show_spinner="Loading the emotion model…")
def _cached_model(path: str, modified: int) -> EmotionModel:
    del modified  # part of the cache key only
    return model_loading(path).result()


def _modified(path: str) -> int:
    """The file's modification time in ns (0 when it is missing: its load says why)."""
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


_loads: dict[tuple[str, int], Future] = {}  # (path, modified) -> the load
_failed: dict[tuple[str, int], BaseException] = {}  # the last failed load's error, until one works
_started: set[tuple[str, int]] = set()
_loads_lock = threading.Lock()


def model_loading(path: str, start: bool = True) -> Future:
    """The model at `path` (an EmotionModel Future), loaded and warmed up once per process in a
    background thread: the first start of a page needs TensorFlow (~4 s), and the live page
    renders meanwhile. With `start=False` the load waits for `warm_up_models` (the end of the
    script run), so it does not slow the page down while that renders. A failed load is tried
    again on the next call."""
    load = (path, _modified(path))
    with _loads_lock:
        future = _loads.get(load)
        if future is not None and future.done():
            if future.exception() is None:
                _failed.pop(load, None)
            else:
                _failed[load] = future.exception()  # shown while it is tried again
        if future is None or (future.done() and future.exception() is not None):
            if replaced := [key for key in _loads if key[0] == path and key != load]:
                for key in replaced:  # the file was replaced: its old model is let go
                    del _loads[key]
                    _started.discard(key)
                    _failed.pop(key, None)
                _cached_model.clear()  # the other models stay in `_loads`: back at once
            future = _loads[load] = Future()
            _started.discard(load)
        if start and load not in _started:
            _started.add(load)
            threading.Thread(
                target=_load_into, args=(path, future), name="model-warm-up", daemon=True
            ).start()
        return future


def last_load_failure(path: str) -> BaseException | None:
    """Why the last load of the model at `path` (as it is now on disk) failed; None once a
    load has worked or none failed."""
    with _loads_lock:
        return _failed.get((path, _modified(path)))


def _load_into(path: str, future: Future) -> None:
    try:
        from core.emotion.onnx_cache import load_for_serving

        # From the ONNX cache when built (no TensorFlow: ~4 s less CPU on a fresh server).
        model = load_for_serving(path)
        model.predict(np.zeros((1, FACE_SIZE, FACE_SIZE), dtype=np.uint8))
    except BaseException as error:  # the page shows it (ModelLoadError says what to do)
        future.set_exception(error)
    else:
        future.set_result(model)


def warm_up_models() -> None:
    """Load, in the background, the models pages asked for without waiting, and once per
    process the default one. app.py calls it when each run ends: Streamlit has no server-start
    hook, so the first session's first page renders first, and the model loads meanwhile."""
    global _warm_started
    with _loads_lock:
        waiting = [path for path, modified in _loads if (path, modified) not in _started]
    for path in waiting:
        model_loading(path)
    if _warm_started:
        return
    _warm_started = True
    settings = app_settings()
    paths = available_models(settings.models_dir, first=settings.preferred_model)
    if paths:
        model_loading(str(paths[0]))


_warm_started = False


@st.cache_resource
def cached_detector() -> FaceDetector:
    """The live camera's detector (fast settings)."""
    return FaceDetector()


@st.cache_resource
def cached_photo_detector() -> FaceDetector:
    """The photo page's detector (also finds small faces in group photos)."""
    return FaceDetector.for_photos()


def chosen_model_version() -> tuple[str, int]:
    """The sidebar's model as (file, modification time): it changes when another model is
    picked or the file is replaced (`make ship-resnet` while the app runs)."""
    path = str(app_settings().models_dir / f"{st.session_state.get('model_name')}.npz")
    return path, _modified(path)


def model_choice(wait: bool = True) -> EmotionModel | Future | None:
    """Sidebar model picker (default: `MOODLENS_MODEL`, else the best on validation).
    Shows errors itself. With `wait=False` (the live page) a model still loading comes back
    as its Future, so the page renders meanwhile."""
    settings = app_settings()
    folder, preferred = settings.models_dir, settings.preferred_model
    paths = available_models(folder, first=preferred)
    if not paths:
        st.error(
            f"No emotion model found in `{folder}`. Restore the `models/` folder from the "
            "repository, or train one: `python -m core.train --model cnn --data "
            "../shared/data/fer2013/fer2013.npz`."
        )
        return None
    names = [p.stem for p in paths]
    if preferred is not None and preferred not in names:
        st.warning(
            f"MOODLENS_MODEL is `{preferred}`, which is not a shipped model "
            f"({', '.join(names)}). Opening with `{names[0]}`, the best on validation."
        )
    accuracy = {p.stem: card_accuracy(p, "test") for p in paths}
    chosen = st.sidebar.selectbox(
        "Emotion model",
        names,
        index=0,
        key="model_name",
        format_func=lambda name: (
            name if accuracy[name] is None else f"{name} · {accuracy[name]:.0%} on PublicTest"
        ),
        help="Shipped models, best first (on the validation split carved from Training; "
        "`MOODLENS_MODEL` puts one first). "
        "See Model Comparison.",
    )
    path = str(folder / f"{chosen}.npz")
    if not wait and not (loading := model_loading(path, start=False)).done():
        if (failure := last_load_failure(path)) is not None:  # tried again, still shown
            st.error(str(failure) if isinstance(failure, ModelLoadError) else repr(failure))
        else:
            st.sidebar.caption(f"{chosen}: loading…")
        return loading
    try:
        model = cached_model(path)
    except ModelLoadError as error:
        st.error(f"{error}")
        return None
    runtime = "ONNX Runtime" if model.runtime == "onnxruntime" else "TensorFlow"
    st.sidebar.caption(f"{model.name}: {model.parameters:,} parameters, runs on {runtime}.")
    return model


# ----------------------------------------------------------------------------- catalog


@st.cache_resource(max_entries=4, show_spinner="Loading the music catalog…")
def _catalog_from_path(path: str, modified: int, size: int) -> pd.DataFrame:
    del modified, size  # part of the cache key only: an edited file is read again
    return load_catalog(path)


@st.cache_resource(max_entries=4, show_spinner="Loading the uploaded catalog…")
def _catalog_from_upload(digest: str, _data: bytes, name: str) -> pd.DataFrame:
    del digest
    return load_catalog(io.BytesIO(_data), name=name)


@st.cache_resource(max_entries=4, show_spinner="Indexing the catalog…")
def _recommender(key: str, _catalog: pd.DataFrame) -> Recommender:
    del key
    return Recommender(_catalog)


_catalog_versions: dict[str, tuple[int, int]] = {}  # catalog file -> (mtime_ns, size) loaded
_catalog_versions_lock = threading.Lock()


def _path_key(file: str, version: tuple[int, int]) -> str:
    """The catalog key of one version of a catalog file: its recommender and songs service
    follow the file when it is edited or replaced while the app runs."""
    return f"path:{file}:{version[0]}:{version[1]}"


def _path_catalog(path: str | Path) -> tuple[pd.DataFrame, str]:
    file = str(catalog_file(path, app_settings().catalog_folders))
    stat = os.stat(file)
    version = (stat.st_mtime_ns, stat.st_size)
    with _catalog_versions_lock:
        old = _catalog_versions.get(file)
        _catalog_versions[file] = version
    if old is not None and old != version:  # the file changed: its old version is let go
        _catalog_from_path.clear(file, *old)
        _recommender.clear(_path_key(file, old), None)
        _songs_service.clear()  # keyed by a settings hash too; the others are rebuilt on use
    return _catalog_from_path(file, *version), _path_key(file, version)


def active_catalog() -> pd.DataFrame | None:
    """The catalog chosen in the sidebar (upload > path > MOODLENS_CATALOG > starter).

    A bad choice shows its error and falls back to the starter catalog, so the app goes on.
    """
    box = st.sidebar.expander("Music catalog", expanded=False)
    default_path = str(app_settings().default_catalog)
    path = box.text_input(
        "Catalog CSV path",
        value=default_path,
        key="catalog_path",
        help="Starter catalog, Kaggle data_moods.csv, or a Spotify features table (.csv or "
        ".csv.gz), from data/, the shared data folder or MOODLENS_CATALOG_DIRS; upload any "
        "other.",
    )
    upload = box.file_uploader(
        "…or upload a catalog (CSV or Parquet)", type=["csv", "gz", "parquet"], key="catalog_up"
    )
    try:
        if upload is not None:
            data = upload.getvalue()
            digest = hashlib.sha1(data).hexdigest()
            catalog, key = _catalog_from_upload(digest, data, upload.name), f"upload:{digest}"
        else:
            catalog, key = _path_catalog(path)
    except CatalogError as error:
        box.error(str(error))
        st.sidebar.warning("Could not load that catalog, so the starter catalog is active.")
        catalog, key = _path_catalog(STARTER_CATALOG)
    st.session_state["catalog_key"] = key
    features = "with audio features" if has_audio_features(catalog) else "no audio features"
    st.sidebar.caption(
        f"Active catalog: **{markdown_text(catalog.attrs.get('name', 'catalog'))}** · "
        f"{len(catalog):,} tracks · {features}"
    )
    for note in catalog.attrs.get("notes", [])[:3]:
        box.caption(markdown_text(note))  # notes name the file and its columns
    return catalog


def active_recommender(catalog: pd.DataFrame) -> Recommender:
    return _recommender(st.session_state.get("catalog_key", "default"), catalog)


# ----------------------------------------------------------------------------- feedback


@st.cache_resource
def _feedback_store(database_key: str, _url: str) -> FeedbackStore:
    """One store (one connection pool) per database, keyed by a hash: no password in the key."""
    del database_key
    return FeedbackStore(url=_url)


def _store_for(settings: Settings) -> FeedbackStore:
    url = feedback_url(settings)
    return _feedback_store(hashlib.sha256(url.encode()).hexdigest(), url)


def feedback_store() -> FeedbackStore:
    """The feedback database: MOODLENS_DATABASE_URL (shared PostgreSQL), else the local SQLite
    file (MOODLENS_FEEDBACK_DB, else ~/.moodlens/feedback.sqlite3)."""
    return _store_for(app_settings())


def profile_name() -> str:
    """The listener profile (feedback and history are kept per profile)."""
    name = st.sidebar.text_input(
        "Profile",
        value="default",
        key="profile",
        max_chars=MAX_PROFILE_LENGTH,
        help="Thumbs up/down and mood history are kept per profile, in the feedback database "
        "(a local SQLite file unless MOODLENS_DATABASE_URL names a shared one).",
    )
    return name.strip() or "default"


# ----------------------------------------------------------------------------- songs


@st.cache_resource(max_entries=4)
def _songs_service(
    catalog_key: str, settings_key: str, _settings: Settings, _recommender: Recommender
) -> SongsService:
    """One service per catalog, Spotify setup and feedback database, shared by every session
    and rerun, so its one Spotify client keeps its token and result cache between calls."""
    del catalog_key, settings_key
    return SongsService(_settings, _recommender, _store_for(_settings))


def songs_service(catalog: pd.DataFrame) -> SongsService:
    """The songs service for the active catalog (see core.music.songs)."""
    settings = app_settings()
    setup = (
        settings.spotify_credentials,
        settings.spotify_api_base,
        settings.spotify_token_url,
        feedback_url(settings),
    )
    return _songs_service(
        st.session_state.get("catalog_key", "default"),
        hashlib.sha256(repr(setup).encode()).hexdigest(),  # no secret in the cache key
        settings,
        active_recommender(catalog),
    )


def mood_songs(
    key: str,
    face: tuple[Any, ...],
    probabilities: np.ndarray,
    emotion: str,
    *,
    strategy: str,
    use_spotify: bool,
    catalog: pd.DataFrame,
    profile: str,
    hold: bool = False,
) -> tuple[Songs, str]:
    """Songs for a face and the emotion they were chosen for, kept in the session under `key`.

    They are chosen again only when `face` (what identifies the reading), the emotion read,
    the strategy, the Spotify switch, the catalog or the profile changed, and the mood is
    recorded in the profile's history only when the reading (face, emotion, profile) did: one
    photo browsed through three strategies is one mood, not three. With `hold` (the live
    page's 'Lock this mood') the last songs stay.

    Each new reading draws its own order among songs that fit equally well (a catalog with
    mood labels only ties all of a mood's songs): the next happy photo or live mood brings
    other happy songs, while one reading keeps its songs through strategy changes and back.
    """
    reading = (*face, emotion, profile)
    state = (*reading, strategy, use_spotify, st.session_state.get("catalog_key"))
    stored = st.session_state.get(f"{key}_songs")
    if stored is None or (not hold and stored[0] != state):
        new_reading = stored is None or stored[0][: len(reading)] != reading
        seed = randbits(32) if new_reading else stored[3]
        songs = songs_service(catalog).songs_for_mood(
            profile,
            probabilities,
            strategy,
            emotion=emotion,
            use_spotify=use_spotify,
            record=new_reading,
            seed=seed,
        )
        stored = (state, emotion, songs, seed)
        st.session_state[f"{key}_songs"] = stored
        shown = st.session_state.get(SESSION_SONGS, [])
        st.session_state[SESSION_SONGS] = merge_songs(shown, songs.recommendations)
    return stored[2], stored[1]


def song_controls(key: str) -> tuple[str, bool]:
    """Strategy choice and the Spotify switch, shown above the songs."""
    left, right = st.columns([3, 2])
    strategy = left.radio(
        "Music for this mood",
        STRATEGIES,
        horizontal=True,
        format_func=STRATEGY_LABELS.get,
        key=f"{key}_strategy",
    )
    has_credentials = app_settings().spotify_credentials is not None
    use_spotify = right.toggle(
        "Live from Spotify",
        value=False,
        key=f"{key}_spotify",
        disabled=not has_credentials,
        help="Needs SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET (or "
        "[spotify] in .streamlit/secrets.toml)."
        if not has_credentials
        else "Search Spotify's live catalogue.",
    )
    return strategy, use_spotify


VOTE_FAILED = "vote_failed"  # why the last thumb could not be saved, shown once


def _save_vote(
    store: FeedbackStore, vote_key: str, profile: str, rec: Recommendation, emotion: str | None
) -> None:
    """Store a thumb as it is clicked (up +1, down -1), forget it when it is taken back."""
    thumb = st.session_state.get(vote_key)
    forget_profile_reads()  # they change with this vote
    try:
        if thumb is None:
            store.clear_vote(profile, rec.key)
        else:
            store.record_vote(profile, rec, 1 if thumb == 1 else -1, emotion=emotion)
    except STORE_FAILURES as error:
        st.session_state[VOTE_FAILED] = unavailable_note(error)


def render_songs(
    recommendations: list[Recommendation],
    note: str | None,
    key: str,
    profile: str,
    emotion: str | None,
    recommender: Recommender,
) -> None:
    """The list of songs with reasons, links, player, thumbs and 'more like this'."""
    if note:
        st.info(note)
    if not recommendations:
        st.warning("No songs matched. Try another strategy or a larger catalog.")
        return
    store = feedback_store()
    if failed := st.session_state.pop(VOTE_FAILED, None):
        st.warning(failed)
    # Each thumb shows this profile's vote (a song liked before comes back thumbed up), and is
    # its own widget per profile: another profile's songs do not inherit it.
    preference = _preference(profile)
    who = hashlib.sha256(profile.encode()).hexdigest()[:8]
    for i, rec in enumerate(recommendations):
        with st.container(border=True):
            cols = st.columns([1, 6, 2]) if rec.image_url else st.columns([7, 2])
            if rec.image_url:
                cols[0].image(rec.image_url, width=64)
            body, actions = cols[-2], cols[-1]
            year = f" · {rec.year}" if rec.year else ""
            genre = f" · {markdown_text(rec.genre)}" if rec.genre else ""
            link = f" · [open in Spotify]({_link(rec.url)})" if rec.url else ""
            body.markdown(f"{_song_line(rec)}{year}{genre}{link}")
            body.caption(f"Why: {markdown_text(rec.reason)}")
            vote_key = f"{key}_vote_{who}_{i}_{rec.key}"
            vote = preference.tracks.get(rec.key, 0)
            actions.feedback(
                "thumbs",
                key=vote_key,
                default=1 if vote > 0 else (0 if vote < 0 else None),
                on_change=_save_vote,  # on a click only, not on every rerun
                args=(store, vote_key, profile, rec, emotion),
            )
            if actions.button("More like this", key=f"{key}_more_{i}_{rec.key}"):
                st.session_state[f"{key}_more"] = rec
            if rec.embed and rec.source == "spotify":
                components.iframe(rec.embed, height=80)
    anchor = st.session_state.get(f"{key}_more")
    if isinstance(anchor, Recommendation):
        # The profile's thumbs here too: a song turned down does not come back this way.
        similar = recommender.more_like_this(anchor, k=5, feedback=preference)
        st.markdown(f"**More like _{markdown_text(anchor.title)}_**")
        for rec in similar:
            st.markdown(f"- {_song_line(rec)} · {markdown_text(rec.reason)}")


def _preference(profile: str) -> Preference:
    """The profile's thumbs (kept for the session between votes, see `_per_session`); none
    while the feedback database cannot be read (the songs list says so)."""
    try:
        return _per_session(PREFERENCE, profile, lambda: feedback_store().preference(profile))
    except STORE_FAILURES:
        return Preference()


def _song_line(rec: Recommendation) -> str:
    """'**Title** — Artist' as markdown, whatever characters the title and artist hold."""
    return f"**{markdown_text(rec.title)}** — {markdown_text(rec.artist)}"


def _link(url: str) -> str:
    """A URL as a markdown link target (a space or parenthesis would end it early)."""
    return re.sub(r"[\s()<>]", lambda m: f"%{ord(m.group()):02X}", url)


# ----------------------------------------------------------------------------- playlists

SESSION_SONGS = "session_songs"  # every song shown in this browser session, first seen first
SPOTIFY = "spotify_listener"  # {"token": UserToken, "user": name, "offer": (name, tracks)}
# A random secret the page keeps in this browser's cookie: Spotify's redirect (a new session,
# maybe a new tab) finishes only a sign-in this browser started (`PendingLogins`).
SPOTIFY_BROWSER_COOKIE = "moodlens_spotify_browser"
SET_COOKIE_JS = """<script>
document.cookie = "%(name)s=%(value)s; path=/; max-age=86400; SameSite=Lax"
  + (location.protocol === "https:" ? "; Secure" : "");
</script>"""


@st.cache_resource
def _pending_logins() -> PendingLogins:
    """Started Spotify sign-ins of every session: Spotify's redirect opens a new session."""
    return PendingLogins()


def markdown_text(text: object) -> str:
    """`text` (a title, a name, a file name) escaped to show as itself inside markdown."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$&])", r"\\\1", str(text))


def _songs(count: int) -> str:
    return f"{count} song{'' if count == 1 else 's'}"


# What the songs panels read of the profile's votes, kept for the session (profile, read at,
# value) until a vote or SESSION_READ_TTL_S: the live page's songs panel reruns every second or
# two, and would otherwise query the database each time.
LIKED_SONGS, PREFERENCE = "liked_songs", "preference"
SESSION_READ_TTL_S = 30.0
T = TypeVar("T")


def forget_profile_reads() -> None:
    """Read the profile's votes again next time (after a vote, or its history deleted)."""
    for name in (LIKED_SONGS, PREFERENCE):
        st.session_state.pop(name, None)


def _per_session(name: str, profile: str, read: Callable[[], T]) -> T:
    """`read()` for `profile`, kept in this session under `name` (see LIKED_SONGS)."""
    cached = st.session_state.get(name)
    if cached and cached[0] == profile and time.monotonic() - cached[1] < SESSION_READ_TTL_S:
        return cached[2]
    value = read()
    st.session_state[name] = (profile, time.monotonic(), value)
    return value


def _liked_songs(profile: str) -> list[Recommendation]:
    """The profile's liked songs (kept for the session between votes); none while the
    feedback database cannot be read (the songs list says so)."""
    try:
        return _per_session(
            LIKED_SONGS, profile, lambda: tracks_from_frame(feedback_store().liked_songs(profile))
        )
    except STORE_FAILURES:
        return []


def take_songs_with_you(
    key: str, profile: str, current: list[Recommendation] | None = None, title: str = "moodlens"
) -> None:
    """These songs, the session's or the liked ones as an M3U8/XSPF/CSV download (built in
    memory when clicked, never stored), and 'Save to my Spotify'."""
    sources = {
        "These songs": (title, list(current or [])),
        "This session's songs": (
            f"moodlens · my session {time.strftime('%Y-%m-%d')}",
            st.session_state.get(SESSION_SONGS, []),
        ),
        "My liked songs": (f"moodlens · liked by {profile}", _liked_songs(profile)),
    }
    sources = {label: source for label, source in sources.items() if source[1]}
    if not sources:
        return
    with st.expander("Take these songs with you", icon=":material/playlist_add:"):
        left, right = st.columns([3, 2])
        which = left.selectbox(
            "Songs",
            list(sources),
            key=f"{key}_pl_songs",
            format_func=lambda label: f"{label} ({len(sources[label][1])})",
        )
        kind = right.radio(
            "Format",
            list(FORMATS),
            horizontal=True,
            key=f"{key}_pl_format",
            help="M3U8 and XSPF open in music players and playlist importers; CSV in a "
            "spreadsheet. Songs without a Spotify id link to a Spotify search.",
        )
        name, tracks = sources[which]
        st.download_button(
            f"Download {kind}",
            lambda: export(tracks, kind, name),
            file_name=file_name(name, kind),
            mime=FORMATS[kind].mime,
            key=f"{key}_pl_download",
            icon=":material/download:",
            on_click="ignore",
        )
        st.caption("The file is made when you click; nothing is saved on the server.")
        save_to_spotify(key, name, tracks)


def save_to_spotify(key: str, name: str, tracks: list[Recommendation]) -> None:
    """'Connect Spotify' (sign-in finished by `spotify_return`), then 'Save to my Spotify'."""
    settings = app_settings()
    if not SpotifyPlaylists.configured(settings):
        st.caption(
            "Saving to your own Spotify account needs the app's Spotify client ID and a "
            "redirect URI (see .streamlit/secrets.toml.example)."
        )
        return
    listener = st.session_state.get(SPOTIFY)
    if listener and not listener["token"].expired():
        _save_button(key, name, tracks, listener)
        return
    login, pending = st.session_state.get(f"{SPOTIFY}_login"), _pending_logins()
    browser = _spotify_browser()
    if not browser:  # the cookie is read when a session starts: keep this session's secret
        browser = st.session_state.setdefault(f"{SPOTIFY}_browser", token_urlsafe(24))
        st.html(
            SET_COOKIE_JS % {"name": SPOTIFY_BROWSER_COOKIE, "value": browser},
            unsafe_allow_javascript=True,
        )
    # Fresh songs for the same sign-in; a new sign-in once it was used or expired.
    if login is None or not pending.put(login, (name, tracks), browser=browser):
        login = SpotifyPlaylists.from_settings(settings).start_login()
        pending.put(login, (name, tracks), browser=browser)
        st.session_state[f"{SPOTIFY}_login"] = login
    st.link_button(
        "Connect Spotify",
        login.url,
        icon=":material/link:",
        help="Opens Spotify in a new tab. Once you allow moodlens to create private "
        "playlists, that tab offers to save these songs.",
    )
    _show_saved(key)


def _save_button(key: str, name: str, tracks: list[Recommendation], listener: dict) -> bool:
    """'Save to my Spotify' and what the last click did; True when this click created a
    playlist (also one that not every song went into)."""
    created = False
    if st.button(
        "Save to my Spotify",
        key=f"{key}_spotify_save",
        icon=":material/library_add:",
        help=f"A private playlist “{name}” in {listener['user']}'s Spotify account.",
    ):
        try:
            st.session_state[f"{key}_spotify_saved"] = SpotifyPlaylists.from_settings(
                app_settings()
            ).save_playlist(
                listener["token"], name, tracks, description="Songs moodlens picked for a mood."
            )
            created = True
        except PlaylistError as error:
            st.session_state[f"{key}_spotify_saved"] = error
            created = error.playlist_url is not None
            if error.reconnect:
                st.session_state.pop(SPOTIFY, None)
    _show_saved(key)
    return created


def _show_saved(key: str) -> None:
    result = st.session_state.get(f"{key}_spotify_saved")
    if isinstance(result, SavedPlaylist):
        st.success(
            f"Saved **{markdown_text(result.name)}** ({_songs(result.added)}) to your Spotify: "
            f"[open it]({_link(result.url)})"
        )
        if result.skipped:
            st.caption(
                "Not on Spotify (no Spotify id), so not added: "
                + "; ".join(markdown_text(f"{t.artist} – {t.title}") for t in result.skipped)
            )
    elif isinstance(result, PlaylistError):
        st.error(str(result))


def _spotify_browser() -> str:
    """This browser's sign-in secret from its cookie ('' before the page has set one)."""
    return str(st.context.cookies.get(SPOTIFY_BROWSER_COOKIE) or "")


def spotify_return() -> None:
    """Finish a 'Connect Spotify' sign-in when Spotify sent the browser back here (?code or
    ?error with the state), then offer to save the songs chosen when it began. Call it
    before the page may stop."""
    params = {name: st.query_params.get(name) for name in ("code", "state", "error")}
    settings = app_settings()
    if (params["code"] or params["error"]) and SpotifyPlaylists.configured(settings):
        for name in params:
            st.query_params.pop(name, None)
        taken = _pending_logins().take(params["state"] or "", browser=_spotify_browser())
        login, offer = taken or (None, None)
        try:
            spotify = SpotifyPlaylists.from_settings(settings)
            token = spotify.finish_login(params, login)
            user = spotify.current_user(token)
        except PlaylistError as error:
            st.error(str(error))
        else:
            name = user.get("display_name") or user.get("id") or "you"
            st.session_state[SPOTIFY] = {"token": token, "user": name, "offer": offer}
    listener = st.session_state.get(SPOTIFY)
    if listener and listener.get("offer"):
        name, tracks = listener["offer"]
        with st.container(border=True):
            st.success(f"Connected to Spotify as {markdown_text(listener['user'])}.")
            st.markdown(
                f"Save **{markdown_text(name)}** ({_songs(len(tracks))}) as a private playlist?"
            )
            if _save_button("spotify_return", name, tracks, listener):
                # Offered once: another click or rerun makes no second copy. A failure before
                # the playlist was made keeps the offer, to try again.
                listener["offer"] = None
    elif "spotify_return_spotify_saved" in st.session_state:
        _show_saved("spotify_return")  # the saved playlist's link, once more after the offer
        del st.session_state["spotify_return_spotify_saved"]


def deferred_csv(frame: pd.DataFrame, index: bool = False):
    """A download callback: the CSV is built only when the button is clicked."""
    return lambda: frame.to_csv(index=index).encode("utf-8")


def chart_with_data(
    fig,
    data: pd.DataFrame,
    name: str,
    key_prefix: str,
    caption: str | None = None,
    index: bool = False,
) -> None:
    """A plotly chart (PNG from its toolbar), an optional caption, and its data as CSV."""
    from core.analytics.charts import figure_alt, figure_config

    st.plotly_chart(
        fig,
        key=f"{key_prefix}_{name}",
        config=figure_config(f"moodlens-{name}"),
        alt=figure_alt(fig, caption or name.replace("-", " ")),
    )
    if caption:
        st.caption(caption)
    st.download_button(
        "⬇️ Data behind this chart (CSV)",
        deferred_csv(data, index=index),
        file_name=f"moodlens-{name}.csv",
        mime="text/csv",
        key=f"{key_prefix}_dl_{name}",
        on_click="ignore",
    )
