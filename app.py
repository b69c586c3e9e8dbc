"""moodlens: look into the camera, get music for your mood. Run with `make run`."""

import streamlit as st

import core  # noqa: F401  (must load before TensorFlow: see core/__init__.py)
from pages.common import keep_models_warm_between_runs, warm_up_models

keep_models_warm_between_runs()

st.set_page_config(page_title="moodlens", page_icon=":material/headphones:", layout="wide")

# url_path equals each file's name so deep links resolve the same way in every Streamlit mode
# (see pages/common.py).
pages = {
    "Listen": [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/live.py", title="Live camera", icon=":material/videocam:", url_path="live"),
        st.Page("pages/photo.py", title="Photo", icon=":material/photo_camera:", url_path="photo"),
        st.Page(
            "pages/history.py", title="My history", icon=":material/history:", url_path="history"
        ),
    ],
    "Explore": [
        st.Page(
            "pages/music_explorer.py",
            title="Music explorer",
            icon=":material/library_music:",
            url_path="music_explorer",
        ),
        st.Page(
            "pages/model_comparison.py",
            title="Model comparison",
            icon=":material/model_training:",
            url_path="model_comparison",
        ),
    ],
}
try:
    st.navigation(pages).run()
finally:  # once the page has rendered (or stopped, or reruns): models load in the background
    warm_up_models()
