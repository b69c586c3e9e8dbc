"""Photo page: upload a picture (or take a snapshot) -> faces, emotions, songs."""

import cv2
import numpy as np
import streamlit as st

from core.analytics.charts import emotion_alt, emotion_bars
from core.vision.faces import (
    UPLOAD_FORMATS,
    UPLOAD_TYPES,
    ImageError,
    decode_image,
    fit_width,
    is_blank,
    to_gray,
)
from core.vision.live import analyze_still, annotate
from pages.common import (
    STRATEGY_LABELS,
    active_catalog,
    active_recommender,
    cached_photo_detector,
    chosen_model_version,
    model_choice,
    mood_songs,
    profile_name,
    render_songs,
    route_through_app,
    song_controls,
    spotify_return,
    take_songs_with_you,
)

route_through_app()  # first, so a deep link on a fresh server runs through app.py

st.title(":material/photo_camera: Photo")
spotify_return()  # back from "Connect Spotify": finish the sign-in, offer to save
st.caption(
    "Your photo is analysed in memory on this machine and is not stored; the mood read from it "
    "goes to your profile's history. Each face is read as taken and mirrored, and the two "
    "readings averaged."
)
model = model_choice()
catalog = active_catalog()
profile = profile_name()


def _newest(which: str) -> None:
    st.session_state["photo_newest"] = which


upload_tab, camera_tab = st.tabs(["Upload a photo", "Take a snapshot"])
with upload_tab:
    upload = st.file_uploader(
        "Photo with one or more faces",
        type=UPLOAD_TYPES,
        key="photo_upload",
        on_change=_newest,
        args=("upload",),
    )
with camera_tab:
    snapshot = st.camera_input("Snapshot", key="photo_camera", on_change=_newest, args=("camera",))
# The picture given last is read: a snapshot taken after an upload, or an upload after one.
newest = st.session_state.get("photo_newest")
source = (snapshot or upload) if newest == "camera" else (upload or snapshot)

if model is None:
    st.stop()
if source is None:
    st.info(f"Upload a photo ({UPLOAD_FORMATS}) or take a snapshot to begin.")
    st.stop()

try:
    image = fit_width(decode_image(source.getvalue()))
except ImageError as error:
    st.error(str(error))
    st.stop()

if is_blank(to_gray(image)):
    st.warning("This picture is almost black or flat. Take it in better light and try again.")
    st.stop()

# Read the photo once per (photo, model): choosing a face or a strategy reruns the page, and
# must not detect and classify every face again.
picture = source.file_id if hasattr(source, "file_id") else source.name
model_version = (model.name, *chosen_model_version())  # a replaced file reads it again
analysis_key = (picture, *model_version)
if st.session_state.get("photo_analysis", (None, []))[0] != analysis_key:
    st.session_state.photo_analysis = (
        analysis_key,
        analyze_still(image, model, cached_photo_detector()),
    )
faces = st.session_state.photo_analysis[1]
st.image(cv2.cvtColor(annotate(image, faces), cv2.COLOR_BGR2RGB), width="stretch")
if not faces:
    st.warning(
        "No face found. Use a photo where faces look at the camera, are well lit and "
        "not too small (at least about 1/12 of the picture's height)."
    )
    st.stop()

if len(faces) > 1:
    st.write(
        f"**{len(faces)} faces found.** Each one's reading is below; choose whose mood "
        "picks the music."
    )
columns = st.columns(min(len(faces), 4))
for face, column in zip(faces, columns * ((len(faces) + 3) // 4), strict=False):
    column.plotly_chart(
        emotion_bars(
            face.probabilities,
            title=f"Face #{face.face_id}: {face.label} {face.confidence:.0%}",
            height=260,
        ),
        key=f"bars_{face.face_id}",
        config={"displayModeBar": False},
        alt=emotion_alt(face.probabilities, f"Face #{face.face_id}"),
    )

chosen_id = (
    st.radio(
        "Music for face",
        [f.face_id for f in faces],
        horizontal=True,
        format_func=lambda i: f"#{i}",
        key="photo_face",
    )
    if len(faces) > 1
    else 1
)
face = next(f for f in faces if f.face_id == chosen_id)
probabilities = np.asarray(face.probabilities)

st.subheader(f"Songs for a {face.label} face")
strategy, use_spotify = song_controls("photo")
(recs, note), _ = mood_songs(
    "photo",
    (picture, *model_version, chosen_id),  # another model reads the face again
    probabilities,
    face.label,
    strategy=strategy,
    use_spotify=use_spotify,
    catalog=catalog,
    profile=profile,
)
render_songs(recs, note, "photo", profile, face.label, active_recommender(catalog))
take_songs_with_you(
    "photo", profile, recs, f"moodlens · {face.label} · {STRATEGY_LABELS[strategy]}"
)
