"""The listener pages under streamlit.testing's AppTest, with the real model and catalog."""

from __future__ import annotations

import re

import cv2
import pytest
from streamlit.testing.v1 import AppTest

from core.paths import REPO_ROOT
from tests.support.page_text import page_text
from tests.support.scenes import layout, phone_photo, scene

TIMEOUT = 120


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Feedback goes to a temp database; no catalog override leaks in."""
    monkeypatch.setenv("MOODLENS_FEEDBACK_DB", str(tmp_path / "feedback.sqlite3"))
    monkeypatch.delenv("MOODLENS_CATALOG", raising=False)
    monkeypatch.delenv("MOODLENS_MODEL", raising=False)
    monkeypatch.delenv("SPOTIFY_CLIENT_ID", raising=False)
    monkeypatch.delenv("SPOTIFY_CLIENT_SECRET", raising=False)


def open_page(page: str | None = None) -> AppTest:
    app = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=TIMEOUT)
    app.run()
    if page:
        app.switch_page(page)
        app.run()
    assert not app.exception, app.exception
    return app


texts = page_text


def test_home_explains_the_app_and_privacy():
    app = open_page()
    assert app.title[0].value.endswith("moodlens")
    assert "never leave" in texts(app)


def test_live_page_renders_without_a_browser():
    """AppTest has no WebRTC peer: the page must say so cleanly (the browser tests cover the
    real stream)."""
    app = open_page("pages/live.py")
    assert "Live camera" in texts(app)
    errors = "\n".join(e.value for e in app.error)
    assert not errors or "Photo page" in errors


def _ready(model):
    """The model a live analyzer holds, once its background load has finished."""
    return model.result(timeout=TIMEOUT) if hasattr(model, "result") else model


def test_live_page_hands_its_stream_a_newly_picked_model_and_forgets_the_old_readings(
    public_test, detectable
):
    x, _ = public_test
    face = next(i for cls in sorted(detectable) for i in detectable[cls])
    app = open_page("pages/live.py")
    analyzer = app.session_state["analyzer"]
    first = _ready(analyzer.model).name
    for step in range(3):  # what a playing stream would have read
        analyzer.process(scene([x[face]], layout(1), seed=step))
    assert analyzer.snapshot().frames_processed == 3 and analyzer.snapshot().faces
    picker = app.selectbox(key="model_name")
    assert picker.value == first
    picker.select_index(1).run()
    other = app.selectbox(key="model_name").value
    assert other != first
    assert not app.exception, app.exception
    assert app.session_state["analyzer"] is analyzer  # the stream's callback keeps working
    assert _ready(analyzer.model).name == other
    snap = analyzer.snapshot()
    assert snap.frames_processed == 0 and not snap.faces and not snap.timeline
    assert snap.status.startswith("Loading the emotion model")  # not "Stopped." mid-stream
    app.run()  # a rerun with the same model keeps what it reads
    analyzer.process(scene([x[face]], layout(1), seed=9))
    app.run()
    assert analyzer.snapshot().frames_processed == 1


def test_photo_page_reads_every_face_and_recommends(public_test, detectable):
    x, _ = public_test
    ids = [i for cls in sorted(detectable) for i in detectable[cls]][:2]
    _ok, png = cv2.imencode(".png", scene([x[i] for i in ids], layout(2, 200)))
    app = open_page("pages/photo.py")
    assert "Upload a photo" in texts(app)
    app.file_uploader(key="photo_upload").upload("two.png", png.tobytes(), "image/png").run()
    assert not app.exception, app.exception
    body = texts(app)
    assert "2 faces found" in body
    assert body.count("Why:") == 5  # five songs, each with its reason
    assert len(app.radio(key="photo_face").options) == 2
    # Each face's bars have an accessible name that says what they show, most likely first.
    alts = [chart.proto.alt for chart in app.get("plotly_chart")]
    assert [a.split(":")[0] for a in alts] == ["Face #1", "Face #2"]
    assert all(re.search(r"emotion probabilities: \w+ \d+%(, \w+ \d+%){6}$", a) for a in alts)


def test_photo_page_reads_a_photo_once_however_often_the_page_reruns(
    public_test, detectable, monkeypatch
):
    import core.vision.live

    calls = []
    real = core.vision.live.analyze_still

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(core.vision.live, "analyze_still", counted)
    x, _ = public_test
    ids = [i for cls in sorted(detectable) for i in detectable[cls]][:2]
    _ok, png = cv2.imencode(".png", scene([x[i] for i in ids], layout(2, 200)))
    app = open_page("pages/photo.py")
    app.file_uploader(key="photo_upload").upload("two.png", png.tobytes(), "image/png").run()
    app.radio(key="photo_face").set_value(2).run()
    assert not app.exception, app.exception
    assert app.radio(key="photo_face").value == 2 and len(calls) == 1
    _ok, other = cv2.imencode(".png", scene([x[ids[0]]], layout(1, 200)))
    app.file_uploader(key="photo_upload").upload("one.png", other.tobytes(), "image/png").run()
    assert len(calls) == 2 and "faces found" not in texts(app)


def test_photo_page_reads_the_photo_again_when_its_model_file_is_replaced(
    public_test, detectable, monkeypatch, tmp_path
):
    """`make ship-resnet` while the app runs replaces a model under the same name: the photo's
    readings (and songs) must come from the new file, not stay from the old one."""
    import os
    import shutil

    import core.vision.live

    calls = []
    real = core.vision.live.analyze_still
    monkeypatch.setattr(
        core.vision.live, "analyze_still", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("cnn.npz", "cnn.json"):
        shutil.copy(REPO_ROOT / "models" / name, folder / name)
    monkeypatch.setenv("MOODLENS_MODELS_DIR", str(folder))
    app = _photo_page_with_songs(public_test, detectable)
    app.run()
    assert len(calls) == 1
    stat = (folder / "cnn.npz").stat()
    os.utime(folder / "cnn.npz", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # shipped anew
    app.run()
    assert not app.exception, app.exception
    assert len(calls) == 2


def test_photo_songs_are_chosen_again_for_another_model_or_profile(
    public_test, detectable, monkeypatch
):
    """Songs follow what was read and for whom: another model reads the face again (its label
    may differ), another profile has its own thumbs and history; a plain rerun keeps them."""
    from core.music.songs import SongsService

    chosen = []
    real = SongsService.songs_for_mood

    def recorded(self, profile, probabilities, strategy, **kwargs):
        chosen.append((profile, kwargs.get("emotion")))
        return real(self, profile, probabilities, strategy, **kwargs)

    monkeypatch.setattr(SongsService, "songs_for_mood", recorded)
    app = _photo_page_with_songs(public_test, detectable)
    assert len(chosen) == 1
    app.run()
    assert len(chosen) == 1
    app.selectbox(key="model_name").select_index(1).run()
    assert not app.exception, app.exception
    assert len(chosen) == 2
    label = chosen[-1][1]
    assert app.subheader[-1].value == f"Songs for a {label} face"  # heading and songs agree
    app.sidebar.text_input(key="profile").input("ana").run()
    assert chosen[-1][0] == "ana" and len(chosen) == 3


def _photo_page_with_songs(public_test, detectable) -> AppTest:
    x, _ = public_test
    ids = [i for cls in sorted(detectable) for i in detectable[cls]][:1]
    _ok, png = cv2.imencode(".png", scene([x[i] for i in ids], layout(1, 200)))
    app = open_page("pages/photo.py")
    app.file_uploader(key="photo_upload").upload("me.png", png.tobytes(), "image/png").run()
    assert not app.exception, app.exception
    return app


def test_the_photo_page_reads_the_picture_given_last(public_test, detectable):
    x, _ = public_test
    ids = [i for cls in sorted(detectable) for i in detectable[cls]][:3]
    _ok, two = cv2.imencode(".jpg", scene([x[ids[0]], x[ids[1]]], layout(2, 200)))
    _ok, one = cv2.imencode(".png", scene([x[ids[2]]], layout(1, 200)))
    app = _photo_page_with_songs(public_test, detectable)
    assert "faces found" not in texts(app)
    app.camera_input(key="photo_camera").upload("snap.jpg", two.tobytes()).run()
    assert not app.exception, app.exception
    assert "2 faces found" in texts(app)  # the snapshot taken after the upload, not the upload
    app.file_uploader(key="photo_upload").upload("other.png", one.tobytes(), "image/png").run()
    assert not app.exception, app.exception
    assert "faces found" not in texts(app)  # and a new upload after the snapshot


def test_a_thumb_is_saved_when_clicked_and_forgotten_when_taken_back(
    public_test, detectable, tmp_path
):
    from core.music.feedback import FeedbackStore

    app = _photo_page_with_songs(public_test, detectable)
    store = FeedbackStore(tmp_path / "feedback.sqlite3")  # the page's database (`isolated`)
    assert not [o for s in app.selectbox for o in s.options if o.startswith("My liked")]
    app.feedback[0].set_value(1).run()
    votes = store.votes("default")
    assert votes["vote"].tolist() == [1]
    liked = [o for s in app.selectbox for o in s.options if o.startswith("My liked")]
    assert liked == ["My liked songs (1)"]  # read again after the vote, not from before it
    store.clear_vote("default", votes["track_key"][0])  # forgotten elsewhere (another tab)
    app.run()  # a rerun is not a click: nothing is written again
    assert store.votes("default").empty
    app.feedback[0].set_value(0).run()
    assert store.votes("default")["vote"].tolist() == [-1]
    app.feedback[0].set_value(None).run()  # the thumb taken back
    assert store.votes("default").empty and not app.exception


def test_without_the_feedback_database_the_pages_still_work_and_say_why(
    public_test, detectable, tmp_path, monkeypatch
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database's folder should be")
    monkeypatch.setenv("MOODLENS_FEEDBACK_DB", str(blocker / "feedback.sqlite3"))
    app = _photo_page_with_songs(public_test, detectable)
    assert texts(app).count("Why:") == 5
    notes = "\n".join(i.value for i in app.info)
    assert "feedback database cannot be used right now" in notes
    app.feedback[0].set_value(1).run()
    assert not app.exception, app.exception
    assert "cannot be used right now" in "\n".join(w.value for w in app.warning)
    app.switch_page("pages/history.py").run()
    assert not app.exception, app.exception
    assert "cannot be used right now" in "\n".join(e.value for e in app.error)


def test_photo_page_reads_an_iphone_heic_photo_the_right_way_up(public_test, detectable):
    x, _ = public_test
    ids = [i for cls in sorted(detectable) for i in detectable[cls]][:2]
    heic = phone_photo(scene([x[i] for i in ids], layout(2, 200)), "HEIF")
    app = open_page("pages/photo.py")
    app.file_uploader(key="photo_upload").upload("IMG_0001.HEIC", heic, "image/heic").run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert "2 faces found" in texts(app)


def test_photo_page_rejects_a_non_image():
    app = open_page("pages/photo.py")
    app.file_uploader(key="photo_upload").upload(
        "notes.png", b"hello, not a picture", "image/png"
    ).run()
    assert not app.exception
    assert "not an image" in "\n".join(e.value for e in app.error)


def test_photo_page_without_faces_says_so():
    _ok, png = cv2.imencode(".png", scene([], []))
    app = open_page("pages/photo.py")
    app.file_uploader(key="photo_upload").upload("room.png", png.tobytes(), "image/png").run()
    assert not app.exception
    assert "No face found" in "\n".join(w.value for w in app.warning)


def test_the_catalog_path_cannot_open_other_files_of_the_server():
    app = open_page("pages/photo.py")
    app.sidebar.text_input(key="catalog_path").set_value("/etc/passwd").run()
    assert not app.exception, app.exception
    assert "opened by path only from" in "\n".join(e.value for e in app.sidebar.error)
    assert "starter_catalog.csv" in _plain("\n".join(c.value for c in app.sidebar.caption))


def test_missing_model_is_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("MOODLENS_MODELS_DIR", str(tmp_path / "empty"))
    app = open_page("pages/photo.py")
    assert "No emotion model found" in "\n".join(e.value for e in app.error)


def test_a_damaged_model_is_explained_on_the_live_page_while_it_is_tried_again(
    tmp_path, monkeypatch
):
    """The live page does not wait for its model: a load that failed must not read as
    "loading…" for ever."""
    import time

    from pages import common

    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "broken.npz").write_bytes(b"not a model")
    monkeypatch.setenv("MOODLENS_MODELS_DIR", str(folder))
    app = open_page("pages/live.py")
    deadline = time.monotonic() + TIMEOUT
    while common.last_load_failure(str(folder / "broken.npz")) is None:
        common.model_loading(str(folder / "broken.npz"))  # as the page's next run does
        assert time.monotonic() < deadline, "the damaged model never failed to load"
        time.sleep(0.1)
    app.run()
    assert not app.exception, app.exception
    errors = "\n".join(e.value for e in app.error)
    assert "Could not read model file broken.npz" in errors and "git checkout" in errors


def test_moodlens_model_picks_the_model_the_app_opens_with(monkeypatch):
    from core.emotion.cards import available_models

    ranked = [p.stem for p in available_models()]
    app = open_page("pages/photo.py")
    assert app.selectbox(key="model_name").value == ranked[0]  # best on validation

    monkeypatch.setenv("MOODLENS_MODEL", ranked[-1])
    app = open_page("pages/photo.py")
    assert app.selectbox(key="model_name").value == ranked[-1]
    assert not app.warning

    monkeypatch.setenv("MOODLENS_MODEL", "resnet9000")
    app = open_page("pages/photo.py")
    assert app.selectbox(key="model_name").value == ranked[0]
    assert "`resnet9000`, which is not a shipped model" in "\n".join(w.value for w in app.warning)


def test_malformed_catalog_falls_back_to_starter(tmp_path, monkeypatch):
    bad = tmp_path / "bad.csv"
    bad.write_text("this,is\nnot,a catalog\n")
    monkeypatch.setenv("MOODLENS_CATALOG", str(bad))
    app = open_page("pages/photo.py")
    assert "starter catalog is active" in "\n".join(w.value for w in app.warning)


def test_a_database_url_moodlens_cannot_use_costs_the_history_not_the_pages(
    public_test, detectable, monkeypatch
):
    monkeypatch.setenv("MOODLENS_DATABASE_URL", "mysql://user:pw@db.example/moodlens")
    app = _photo_page_with_songs(public_test, detectable)
    assert not app.exception, app.exception
    assert texts(app).count("Why:") == 5  # the songs come, with the reason there are no thumbs
    assert "SQLite or PostgreSQL" in "\n".join(i.value for i in app.info)
    app.switch_page("pages/history.py").run()
    assert not app.exception, app.exception
    assert "SQLite or PostgreSQL" in "\n".join(e.value for e in app.error)


def test_history_page_lists_votes(tmp_path):
    from core.music.feedback import FeedbackStore

    store = FeedbackStore()
    store.record_mood("default", "happy")
    store.record_vote("default", {"title": "Happy", "artist": "Pharrell Williams"}, 1)
    store.record_mood("someone else", "sad")
    app = open_page("pages/history.py")
    assert "Moods over time" in [s.value for s in app.subheader]
    assert app.dataframe and "Pharrell Williams" in app.dataframe[0].value.to_string()
    # The profile's own history can be deleted (after a confirmation), and nobody else's.
    app.checkbox(key="history_delete_ok").check().run()
    app.button(key="history_delete").click().run()
    assert not app.exception, app.exception
    assert store.history("default").empty and store.votes("default").empty
    assert store.history("someone else")["emotion"].tolist() == ["sad"]
    assert "No moods recorded yet" in "\n".join(i.value for i in app.info)
    assert not [o for s in app.selectbox for o in s.options if o.startswith("My liked")]


def test_history_page_draws_the_latest_moods_and_counts_them_all(monkeypatch):
    from core.music.feedback import FeedbackStore

    monkeypatch.setattr("core.music.feedback.HISTORY_POINTS", 3)
    store = FeedbackStore()
    for emotion in ["sad", "sad", "happy", "happy", "happy"]:
        store.record_mood("default", emotion)
    app = open_page("pages/history.py")
    assert not app.exception, app.exception
    assert "The latest 3 of 5 moods. happy: 3 · sad: 2" in [c.value for c in app.caption]


def test_reruns_leave_the_loaded_model_warm(monkeypatch):
    """Streamlit clears Keras' session after every script run when Keras is imported; on the
    live page (fragments rerun 5x/s) that starved the video threads. The app turns it off."""
    import keras

    calls = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *a, **k: calls.append(1))
    app = open_page("pages/photo.py")
    assert "model_name" in app.session_state  # a model was loaded, so Keras is imported
    calls.clear()  # (a new process's very first run may still clean up once)
    app.run()
    app.run()
    assert calls == []


MODEL_PAGE = """
import streamlit as st
from pages.common import cached_model

model = cached_model(st.session_state["path"])
st.write(f"model {id(model)} {model.name}")
"""


def test_a_model_file_replaced_while_the_app_runs_is_loaded_again(tmp_path):
    import os
    import shutil

    copy = tmp_path / "cnn_swap.npz"
    shutil.copy(REPO_ROOT / "models" / "cnn.npz", copy)
    app = AppTest.from_string(MODEL_PAGE, default_timeout=TIMEOUT)
    app.session_state["path"] = str(copy)
    app.run()
    assert not app.exception, app.exception
    first = app.markdown[0].value
    app.run()
    assert app.markdown[0].value == first  # the same file: the one loaded model
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # replaced (promote)
    app.run()
    assert not app.exception, app.exception
    assert app.markdown[0].value != first and app.markdown[0].value.endswith("cnn_swap")
    from pages import common

    assert [key for key in common._loads if key[0] == str(copy)] == [
        (str(copy), copy.stat().st_mtime_ns)
    ]  # the replaced file's old model is let go, not kept for the life of the server


# ----------------------------------------------------------------------------- songs panel

SONGS_PAGE = """
import streamlit as st
from pages.common import active_catalog, active_recommender, render_songs

catalog = active_catalog()
render_songs(st.session_state["recs"], None, "t", "default", "happy", active_recommender(catalog))
"""


PROFILE_SONGS_PAGE = """
import streamlit as st
from pages.common import active_catalog, active_recommender, render_songs

catalog = active_catalog()
render_songs(st.session_state["recs"], None, "t", st.session_state["who"], "happy",
             active_recommender(catalog))
"""


def test_thumbs_show_the_profiles_own_votes(tmp_path):
    from core.music.feedback import FeedbackStore

    recs = _starter_recommender().recommend({"happy": 1.0}, k=3)
    FeedbackStore(tmp_path / "feedback.sqlite3").record_vote("ana", recs[1], 1)
    app = AppTest.from_string(PROFILE_SONGS_PAGE, default_timeout=TIMEOUT)
    app.session_state["recs"], app.session_state["who"] = recs, "ana"
    app.run()
    assert not app.exception, app.exception
    assert [f.value for f in app.feedback] == [None, 1, None]  # liked before: shown liked
    app.feedback[2].set_value(1).run()
    app.session_state["who"] = "bob"  # another listener: none of ana's thumbs
    app.run()
    assert [f.value for f in app.feedback] == [None, None, None]
    app.session_state["who"] = "ana"
    app.run()
    assert [f.value for f in app.feedback] == [None, 1, 1]


def _songs_page(recs) -> AppTest:
    """The songs panel alone, for `recs`, over the starter catalog."""
    app = AppTest.from_string(SONGS_PAGE, default_timeout=TIMEOUT)
    app.session_state["recs"] = recs
    app.run()
    assert not app.exception, app.exception
    return app


def _plain(markdown: str) -> str:
    """Markdown source with its backslash escapes undone (the text a person reads)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def _more_like_this(app: AppTest) -> list[str]:
    return [m.value for m in app.markdown if m.value.startswith("- ")]


def _starter_recommender():
    from core.music.catalog import load_catalog
    from core.music.recommender import Recommender
    from core.paths import STARTER_CATALOG

    return Recommender(load_catalog(STARTER_CATALOG))


def test_more_like_this_leaves_out_a_song_the_profile_turned_down(tmp_path, monkeypatch):
    from core.music.feedback import FeedbackStore

    # The vote comes from elsewhere (another tab): seen once this session's copy expires.
    monkeypatch.setattr("pages.common.SESSION_READ_TTL_S", 0.0)

    recommender = _starter_recommender()
    anchor = recommender.recommend({"happy": 1.0}, k=1)[0]
    turned_down = recommender.more_like_this(anchor, k=5)[0]  # what it offers without thumbs
    app = _songs_page([anchor])
    app.button(key=f"t_more_0_{anchor.key}").click().run()
    assert any(f"**{turned_down.title}**" in _plain(s) for s in _more_like_this(app))
    FeedbackStore(tmp_path / "feedback.sqlite3").record_vote("default", turned_down, -1)
    app.run()
    assert not app.exception, app.exception
    similar = [_plain(s) for s in _more_like_this(app)]
    assert len(similar) == 5
    assert not any(f"**{turned_down.title}** — {turned_down.artist}" in s for s in similar)


def test_titles_and_names_with_markdown_characters_show_as_written():
    from core.music.tracks import Recommendation
    from pages.common import markdown_text

    title, artist = "*Hit* [me](http://x.y) #1 <b>&amp; ~no~ $5", "_DJ_ `Tick` | Co."
    rec = Recommendation(
        title, artist, None, 2001, "pop", "Happy", None, None, "Lifts a happy face", 1.0
    )
    app = _songs_page([rec])
    line = next(m.value for m in app.markdown if "2001" in m.value)
    assert line.startswith(f"**{markdown_text(title)}** — {markdown_text(artist)} · 2001")
    assert _plain(line).startswith(f"**{title}** — {artist}")
    assert r"\*Hit\* \[me\]\(" in line and r"\&amp;" in line  # no emphasis, link or entity
    app.button(key=f"t_more_0_{rec.key}").click().run()
    assert not app.exception, app.exception
    assert f"**More like _{markdown_text(title)}_**" in [m.value for m in app.markdown]
    assert _more_like_this(app)  # same mood and genre from the catalog
    for similar in _more_like_this(app):  # their reasons quote the title too
        assert title not in similar and markdown_text(title) in similar


def test_the_history_page_shows_a_profile_name_as_written():
    app = open_page("pages/history.py")
    app.sidebar.text_input(key="profile").input("*ana*_b").run()
    assert not app.exception, app.exception
    assert r"Profile **\*ana\*\_b**" in "\n".join(c.value for c in app.caption)


CATALOG_PAGE = """
import streamlit as st
from pages.common import active_catalog, active_recommender

catalog = active_catalog()
recommender = active_recommender(catalog)
st.session_state["recommender"] = __import__("weakref").ref(recommender)
st.write(f"catalog {len(catalog)} recommender {len(recommender.catalog)}")
"""


def test_a_catalog_file_edited_while_the_app_runs_is_used_at_once(tmp_path, monkeypatch):
    import gc

    from core.paths import STARTER_CATALOG

    rows = STARTER_CATALOG.read_text(encoding="utf-8").splitlines()
    mine = tmp_path / "mine.csv"
    mine.write_text("\n".join(rows[:41]) + "\n", encoding="utf-8")
    monkeypatch.setenv("MOODLENS_CATALOG", str(mine))
    app = AppTest.from_string(CATALOG_PAGE, default_timeout=TIMEOUT)
    app.run()
    assert not app.exception, app.exception
    assert app.markdown[0].value == "catalog 40 recommender 40"
    first = app.session_state["recommender"]
    mine.write_text("\n".join(rows[:61]) + "\n", encoding="utf-8")  # edited in place
    app.run()
    assert not app.exception, app.exception
    assert app.markdown[0].value == "catalog 60 recommender 60"
    assert app.session_state["recommender"]() is not first()
    gc.collect()
    assert first() is None  # the old version is let go, not kept until the cache fills up
    app.run()
    assert app.session_state["recommender"]() is not None  # the new one stays cached


# ----------------------------------------------------------------------------- Spotify offer

SPOTIFY_PAGE = """
from pages.common import spotify_return

spotify_return()
"""


def _spotify_offer(monkeypatch, outcomes: list) -> tuple[AppTest, list]:
    """The 'save these songs?' offer after 'Connect Spotify'; each click of Save gets the next
    outcome (a PlaylistError is raised). Returns the page and the names saves were asked for."""
    import time

    from core.music.spotify_playlists import SavedPlaylist, SpotifyPlaylists, UserToken
    from core.music.tracks import Recommendation

    monkeypatch.setenv("SPOTIFY_CLIENT_ID", "client")
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", "secret")
    monkeypatch.setenv("SPOTIFY_REDIRECT_URI", "http://localhost:8501/history")
    asked = []

    def save(self, token, name, tracks, *, description=""):
        asked.append(name)
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return SavedPlaylist("p1", "https://open.spotify.com/playlist/p1", name, len(tracks))

    monkeypatch.setattr(SpotifyPlaylists, "save_playlist", save)
    song = Recommendation("Happy", "Pharrell", None, None, None, None, None, None, "", 0.0)
    app = AppTest.from_string(SPOTIFY_PAGE, default_timeout=TIMEOUT)
    app.session_state["spotify_listener"] = {
        "token": UserToken("token", expires_at=time.time() + 3600),
        "user": "ana",
        "offer": ("moodlens · happy", [song]),
    }
    app.run()
    assert not app.exception, app.exception
    return app, asked


def _save_offered(app: AppTest) -> bool:
    return any(b.key == "spotify_return_spotify_save" for b in app.button)


def test_the_spotify_offer_makes_one_playlist_and_can_be_retried_after_a_failure(monkeypatch):
    from core.music.spotify_playlists import PlaylistError

    app, asked = _spotify_offer(monkeypatch, [PlaylistError("Spotify is busy."), "saved"])
    app.button(key="spotify_return_spotify_save").click().run()
    assert "Spotify is busy." in [e.value for e in app.error]
    assert _save_offered(app)  # nothing was made: the offer stays, to try again
    app.button(key="spotify_return_spotify_save").click().run()
    assert not app.exception, app.exception
    assert asked == ["moodlens · happy"] * 2
    assert "moodlens · happy" in _plain(app.success[-1].value)
    app.run()
    assert not _save_offered(app)  # made once: no second click, no copy
    assert asked == ["moodlens · happy"] * 2
    assert "moodlens · happy" in _plain(app.success[-1].value)  # its link, once more
    app.run()
    assert not [s for s in app.success if "moodlens · happy" in _plain(s.value)]


def test_the_spotify_offer_is_not_made_again_after_a_partly_saved_playlist(monkeypatch):
    from core.music.spotify_playlists import PlaylistError

    partial = PlaylistError("Adding songs failed.", playlist_url="https://x/p1", added=0)
    app, asked = _spotify_offer(monkeypatch, [partial])
    app.button(key="spotify_return_spotify_save").click().run()
    assert "Adding songs failed." in [e.value for e in app.error]
    app.run()
    assert not _save_offered(app) and asked == ["moodlens · happy"]
