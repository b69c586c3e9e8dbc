"""My history: moods over time and liked songs for the active profile (from the feedback
database: a local SQLite file, or the shared PostgreSQL one)."""

import plotly.express as px
import streamlit as st

from core.music.feedback import HISTORY_POINTS, in_time_zone
from core.music.store import STORE_FAILURES, unavailable_note
from core.palette import EMOTION_COLORS
from pages.common import (
    feedback_store,
    forget_profile_reads,
    markdown_text,
    profile_name,
    route_through_app,
    spotify_return,
    take_songs_with_you,
)

route_through_app()  # first, so a deep link on a fresh server runs through app.py

st.title(":material/history: My history")
spotify_return()  # Spotify's redirect URI points here: finish "Connect Spotify", offer to save
profile = profile_name()
store = feedback_store()
where = (
    f"stored only on this machine in `{store.path}`"
    if store.path is not None
    else "stored in the shared feedback database (MOODLENS_DATABASE_URL)"
    if store.backend == "postgresql"
    else "kept in memory until the app stops"
    if store.backend == "sqlite"
    else "in the database MOODLENS_DATABASE_URL names"
)
st.caption(f"Profile **{markdown_text(profile)}** · {where}.")

try:
    history, liked = store.history(profile, latest=HISTORY_POINTS), store.liked_songs(profile)
    totals = store.emotion_totals(profile)
except STORE_FAILURES as error:
    st.error(unavailable_note(error))
    st.stop()
# Times in the browser's time zone, so a 9 pm mood is on the day it was felt.
zone = st.context.timezone
history, liked = in_time_zone(history, "recorded_at", zone), in_time_zone(liked, "voted_at", zone)
if history.empty:
    st.info("No moods recorded yet for this profile. Use the Live camera or Photo page first.")
else:
    st.subheader("Moods over time")
    figure = px.scatter(
        history,
        x="recorded_at",
        y="emotion",
        color="emotion",
        color_discrete_map=EMOTION_COLORS,
        category_orders={"emotion": list(EMOTION_COLORS)},
    )
    figure.update_traces(marker={"size": 12})
    figure.update_layout(height=320, showlegend=False, xaxis_title=None, yaxis_title=None)
    st.plotly_chart(figure, key="history_moods", alt="Moods over time, one dot a reading")
    shown = (
        f"The latest {len(history):,} of {sum(totals.values()):,} moods. "
        if sum(totals.values()) > len(history)
        else ""
    )
    st.caption(shown + " · ".join(f"{emotion}: {n:,}" for emotion, n in totals.items()))

st.subheader("Liked songs")
if liked.empty:
    st.info("Give songs a thumbs up and they will be listed here.")
else:
    st.dataframe(liked, hide_index=True)
    st.download_button(
        "Download liked songs (CSV)",
        store.export_liked_csv(profile),
        file_name=f"moodlens-liked-{profile}.csv",
        mime="text/csv",
    )

take_songs_with_you("history", profile)

with st.expander("Delete this profile's history", icon=":material/delete:"):
    st.caption(
        "Removes every mood and thumb of this profile from the feedback database. A profile "
        "is a name, not an account: anyone who types it here sees and can delete it."
    )
    if st.checkbox(
        f"Yes, delete the history of **{markdown_text(profile)}**", key="history_delete_ok"
    ) and st.button("Delete", type="primary", key="history_delete"):
        try:
            store.delete_profile(profile)
        except STORE_FAILURES as error:
            st.error(unavailable_note(error))
        else:
            st.session_state.pop("history_delete_ok", None)
            forget_profile_reads()
            st.rerun()
