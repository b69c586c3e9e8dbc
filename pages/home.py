"""Home: what moodlens does and how to use it."""

import streamlit as st

from pages.common import route_through_app

route_through_app()  # first, so a deep link on a fresh server runs through app.py

st.title(":material/headphones: moodlens")
st.markdown(
    "**Music for the face you make.** moodlens finds every face in your camera picture, reads "
    "its expression with an emotion model trained by this project on FER2013 (angry, disgust, "
    "fear, happy, sad, surprise, neutral), and recommends songs that match your mood, lift it, "
    "or calm you down."
)
left, middle, right = st.columns(3)
with left:
    st.subheader(":material/videocam: Live camera")
    st.write("Live boxes, emotion bars and a mood timeline; songs follow your expression.")
    st.page_link("pages/live.py", label="Open the live camera", icon=":material/arrow_forward:")
with middle:
    st.subheader(":material/photo_camera: Photo")
    st.write("Upload a photo or take a snapshot; every face gets its own reading.")
    st.page_link("pages/photo.py", label="Analyse a photo", icon=":material/arrow_forward:")
with right:
    st.subheader(":material/model_training: For instructors")
    st.write("How the emotion models compare: accuracy, confusion matrices, speed.")
    st.page_link(
        "pages/model_comparison.py", label="Compare models", icon=":material/arrow_forward:"
    )

st.success(
    icon=":material/lock:",
    body="**Privacy:** camera frames and photos are analysed in memory on this machine; they "
    "never leave it and are never stored (a snapshot is a download you ask for). What is kept "
    "is your profile's history: the moods detected and your thumbs up/down, in this app's "
    "feedback database. A profile is a name, not an account: anyone using this app who types "
    "it sees that history, and My history deletes it.",
)
st.caption(
    "Songs come from the local music catalog (choose one in the sidebar of any page), or live "
    "from Spotify when the app has Spotify credentials."
)
