"""Model comparison: how the shipped emotion models (and the `fer` peer) compare.

Every number comes from the model cards `models/*.json` (or `MOODLENS_MODELS_DIR`), read by
core.emotion.cards; tables are built in core.analytics.comparison, figures and presenter slides
in core.analytics.comparison_figures. Presenter mode shows one large chart per screen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.analytics import comparison as cmp
from core.analytics import comparison_figures as figs
from core.analytics.charts import figure_config
from core.emotion.cards import MISSING, CardSet, available_models, load_cards, split_label
from core.emotion.model import ModelLoadError
from core.labels import EMOTIONS
from core.paths import REPO_ROOT, fer2013_npz
from core.training.progress import runs_in_progress
from core.vision.faces import UPLOAD_TYPES, ImageError, decode_image
from pages.common import (
    app_settings,
    cached_model,
    cached_photo_detector,
    chart_with_data,
    deferred_csv,
    route_through_app,
)

route_through_app()  # first, so a deep link on a fresh server runs through app.py

PERCENT_COLUMNS = ("accuracy", "macro_f1", *[f"f1_{e}" for e in EMOTIONS])
RESULT_KEY = "cmp_same_face_result"
SLIDE_KEY = "cmp_slide"


# --------------------------------------------------------------------------- helpers


def show_chart(fig: go.Figure, data: pd.DataFrame, name: str, index: bool = False) -> None:
    """A chart and its data as CSV (see pages.common.chart_with_data)."""
    chart_with_data(fig, data, name, "cmp", index=index)


def _column_config() -> dict[str, object]:
    config: dict[str, object] = {
        column: st.column_config.NumberColumn(column.replace("_", " "), format="percent")
        for column in PERCENT_COLUMNS
    }
    config.update(
        {
            "parameters": st.column_config.NumberColumn("parameters", format="%,d"),
            "n_images": st.column_config.NumberColumn("images", format="%,d"),
            "file_size_mb": st.column_config.NumberColumn("file (MB)", format="%.1f"),
            "cpu_ms_per_face": st.column_config.NumberColumn("CPU ms/face", format="%.2f"),
            "cpu_ms_per_face_batch32": st.column_config.NumberColumn(
                "CPU ms/face (batch 32)", format="%.2f"
            ),
            "epochs": st.column_config.NumberColumn("epochs", format="%d"),
            "best_epoch": st.column_config.NumberColumn("best epoch", format="%d"),
            "cpu_hours": st.column_config.NumberColumn("CPU hours", format="%.2f"),
            "cpu_hours_including_lost": st.column_config.NumberColumn(
                "CPU hours with lost attempts", format="%.2f"
            ),
        }
    )
    return config


# --------------------------------------------------------------------------- normal view


def overview_tab(cards: CardSet, split: str) -> None:
    table = cmp.summary_table(cards, split)
    st.dataframe(
        table, hide_index=True, column_config=_column_config(), placeholder=MISSING,
        key="cmp_table",
    )  # fmt: skip
    st.download_button(
        "⬇️ Model table (CSV)",
        deferred_csv(table),
        file_name=f"moodlens-models-{split}.csv",
        mime="text/csv",
        key="cmp_dl_table",
        on_click="ignore",
    )
    left, right = st.columns(2)
    with left:
        show_chart(figs.overview_figure(table, split), table, "accuracy")
    with right:
        show_chart(figs.speed_figure(table, split), table, "speed")
    if (peers := cmp.peer_caption(cards)) is not None:
        st.caption(peers)
    runs = cmp.runs_frame(cards)
    if not runs.empty:
        st.markdown("##### Models trained more than once")
        st.dataframe(
            runs, hide_index=True, placeholder=MISSING, key="cmp_runs",
            column_config={
                "val_accuracy": st.column_config.NumberColumn("validation", format="%.3f"),
                "test_accuracy": st.column_config.NumberColumn("PublicTest", format="%.3f"),
                "test_accuracy_flip": st.column_config.NumberColumn("+ flip TTA", format="%.3f"),
                "test_macro_f1": st.column_config.NumberColumn(
                    "PublicTest macro-F1", format="%.3f"
                ),
                "cpu_hours": st.column_config.NumberColumn("CPU hours", format="%.2f"),
                "cpu_hours_including_lost": st.column_config.NumberColumn(
                    "CPU hours with lost attempts", format="%.2f"
                ),
                "wall_hours": st.column_config.NumberColumn("wall hours", format="%.2f"),
                "train_img_per_s": st.column_config.NumberColumn("img/s", format="%.1f"),
            },
        )  # fmt: skip
        st.caption(
            "Each earlier run as its card recorded it (`previous_runs`); the last row of a model "
            "is the one it ships. The curves of earlier runs are in their cards in git history."
        )
    with st.expander("Where each number comes from (reproduce)"):
        for card in cards.cards:
            reproduce = card.data.get("reproduce")
            st.markdown(f"**{card.name}** — `{card.path}`")
            if isinstance(reproduce, dict):
                st.code("\n".join(str(v) for v in reproduce.values()), language="bash")


def training_tab(cards: CardSet) -> None:
    history = cmp.history_frame(cards)
    missing = [c.name for c in cards.cards if not c.history]
    if history.empty:
        st.info("No card has a training history (per-epoch loss and accuracy).")
        return
    colors = figs.model_colors(cards.names)
    x = st.radio(
        "Against",
        list(cmp.TRAINING_X),
        format_func=cmp.TRAINING_X.get,
        horizontal=True,
        key="training_x",
        help="CPU-hours put every model on the same budget axis: what each buys per CPU-hour.",
    )
    left, right = st.columns(2)
    with left:
        show_chart(figs.training_figure(history, "loss", colors, x), history, "training-loss")
    with right:
        show_chart(
            figs.training_figure(history, "accuracy", colors, x), history, "training-accuracy"
        )
    if missing:
        st.caption(f"No training history in the card of: {', '.join(missing)}.")
    runs_in_progress_section(cards, x)


def runs_in_progress_section(cards: CardSet, x: str) -> None:
    """Runs still training (their committed progress record or live state.json), beside the
    shipped run of the same model."""
    records = cmp.still_training(runs_in_progress(), cards)
    if not records:
        return
    st.markdown("##### Runs still training")
    progress = cmp.progress_frame(records, cards)
    colors = figs.model_colors(cards.names)
    show_chart(figs.progress_figure(progress, colors, x), progress, "training-progress")
    for record in records:
        st.caption(cmp.progress_summary(record))


def confusion_tab(cards: CardSet, split: str) -> None:
    st.caption(
        "Rows: the true emotion; columns: what the model said. Row-normalised cells are the "
        "share of each true emotion's images (the diagonal is each class's recall)."
    )
    for card in cards.cards:
        st.markdown(f"#### {card.name}")
        if card.confusion(split) is None:
            st.caption(f"{MISSING} (no confusion matrix for this split in {card.path.name})")
            continue
        left, right = st.columns(2)
        for column, normalise in ((left, False), (right, True)):
            suffix = "normalised" if normalise else "counts"
            with column:
                show_chart(
                    figs.confusion_figure(card, split, normalise),
                    cmp.confusion_frame(card, split, normalise),
                    f"confusion-{suffix}-{card.name}",
                    index=True,
                )


def per_class_tab(cards: CardSet, split: str) -> None:
    per_class = cmp.per_class_frame(cards, split)
    show_chart(figs.per_class_figure(per_class, split), per_class, "per-class-f1")


# --------------------------------------------------------------------------- same face


@st.cache_resource(show_spinner="Loading FER2013 PublicTest…")
def _fer_test(path: str) -> tuple[np.ndarray, np.ndarray]:
    from core.training.fer_data import load_fer

    return load_fer(path).get("test")


def _random_face() -> None:
    faces, _ = _fer_test(str(fer2013_npz()))
    st.session_state["cmp_fer_index"] = int(np.random.default_rng().integers(0, len(faces)))


def _chosen_face(source: str) -> tuple[np.ndarray, str | None, str] | None:
    """(48x48 face, true label or None, description) for the chosen source, or None."""
    if source == "fer":
        path = fer2013_npz()
        if not path.exists():
            st.error(f"FER2013 is not at {path}; upload a photo instead.")
            return None
        faces, labels = _fer_test(str(path))
        index = min(int(st.session_state.get("cmp_fer_index", 0)), len(faces) - 1)
        label = EMOTIONS[int(labels[index])]
        return faces[index], label, f"FER2013 PublicTest image #{index} (label: {label})"
    upload = st.session_state.get("cmp_photo")
    if upload is None:
        st.warning("Upload a photo first.")
        return None
    try:
        image = decode_image(upload.getvalue())
    except ImageError as error:
        st.error(str(error))
        return None
    face, found = cmp.face_from_photo(image, cached_photo_detector())
    what = "the largest face" if found else "no face found, so the centre of the photo"
    return face, None, f"{upload.name}: {what}"


def same_face_tab(cards: CardSet, folder: Path) -> None:
    paths = cmp.models_to_run(cards, available_models(folder))
    if not paths:
        st.info(f"No model file (.npz) in `{folder}` to run.")
        return
    st.caption(
        f"Runs {', '.join(paths)} on one face. Peers without a model file in the repo are not run."
    )
    sources = {"fer": "A FER2013 test face", "photo": "My photo"}
    source = st.radio(
        "Face", list(sources), format_func=sources.get, horizontal=True, key="cmp_face_source"
    )
    if source == "fer":
        left, right = st.columns([3, 1])
        left.number_input("PublicTest image number", min_value=0, step=1, key="cmp_fer_index")
        right.button(
            "Random face", icon=":material/casino:", on_click=_random_face, key="cmp_random",
            disabled=not fer2013_npz().exists(),
        )  # fmt: skip
    else:
        st.file_uploader("Photo with a face", type=UPLOAD_TYPES, key="cmp_photo")
    if st.button("Run every model on this face", type="primary", key="cmp_run"):
        chosen = _chosen_face(source)
        if chosen is not None:
            face, label, description = chosen
            models = {}
            for name, path in paths.items():
                try:
                    models[name] = cached_model(str(path))
                except ModelLoadError as error:
                    st.error(f"{name}: {error}")
            predictions = cmp.predict_every_model(face, models)
            st.session_state[RESULT_KEY] = (face, label, description, predictions)
    result = st.session_state.get(RESULT_KEY)
    if result is None:
        return
    face, label, description, predictions = result
    left, right = st.columns([1, 4])
    left.image(face, caption=description, width=144, clamp=True)
    with right:
        show_chart(figs.predictions_figure(predictions, label), predictions, "same-face")
    top = cmp.top_predictions(predictions)
    st.dataframe(
        top,
        hide_index=True,
        key="cmp_same_face_top",
        column_config={
            "emotion": "top emotion",
            "probability": st.column_config.NumberColumn("probability", format="percent"),
            "ms": st.column_config.NumberColumn("ms (this run)", format="%.1f"),
        },
    )


# --------------------------------------------------------------------------- presenter mode


def shown_folder(folder: Path) -> str:
    """The models folder as a reader of the page needs it: `models` in this repository,
    else as configured (MOODLENS_MODELS_DIR), never the server's own path to the repository."""
    try:
        return str(Path(folder).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(folder)


def _step(delta: int, count: int) -> None:
    # From the slide shown: a shorter deck (another split) clamps the index it shows.
    shown = min(int(st.session_state.get(SLIDE_KEY, 0)), count - 1)
    st.session_state[SLIDE_KEY] = (shown + delta) % count


def presenter_view(cards: CardSet, split: str) -> None:
    deck = figs.slides(cards, split, cmp.still_training(runs_in_progress(), cards))
    index = min(int(st.session_state.get(SLIDE_KEY, 0)), len(deck) - 1)
    slide = deck[index]
    previous, middle, following = st.columns([1, 4, 1], vertical_alignment="center")
    previous.button(
        "◀ Previous", on_click=_step, args=(-1, len(deck)), key="cmp_prev", width="stretch"
    )
    middle.markdown(f"### {index + 1} of {len(deck)} · {slide.title}")
    following.button("Next ▶", on_click=_step, args=(1, len(deck)), key="cmp_next", width="stretch")
    st.plotly_chart(
        figs.presenter_layout(slide.figure),
        key=f"cmp_slide_{slide.key}",
        config=figure_config(f"moodlens-{slide.key}", scale=3),
        alt=slide.title,
    )
    st.download_button(
        "⬇️ Data behind this chart (CSV)",
        deferred_csv(slide.data),
        file_name=f"moodlens-{slide.key}.csv",
        mime="text/csv",
        key=f"cmp_dl_slide_{slide.key}",
        on_click="ignore",
    )


# --------------------------------------------------------------------------- page

folder = app_settings().models_dir
cards = load_cards(folder)
presenting = bool(st.session_state.get("cmp_presenter", False))
if not presenting:
    st.title(":material/model_training: Model comparison")
for problem in cards.problems:
    st.warning(problem)
if not cards.cards:
    st.info(
        f"No model card (`*.json`) in `{folder}` yet. Cards are written by training: "
        "`python -m core.train --model cnn --data ../shared/data/fer2013/fer2013.npz`."
    )
    st.stop()

left, right = st.columns([3, 1], vertical_alignment="bottom")
splits = cards.splits()
split = left.selectbox(
    "Evaluated on",
    splits,
    index=splits.index("test") if "test" in splits else 0,
    format_func=split_label,
    key="cmp_split",
)
right.toggle("Presenter mode", key="cmp_presenter", help="Large fonts, one chart per screen.")
if not presenting:
    st.caption(
        f"Every number is read from the model cards in `{shown_folder(folder)}` "
        f"({', '.join(c.path.name for c in cards.cards)}); none is typed by hand. Each chart "
        "has a PNG download in its toolbar (camera icon) and its data as CSV."
    )

if presenting:
    presenter_view(cards, split)
else:
    tabs = st.tabs(
        ["Overview", "Training curves", "Confusion matrices", "Per-class F1", "Same face"]
    )
    with tabs[0]:
        overview_tab(cards, split)
    with tabs[1]:
        training_tab(cards)
    with tabs[2]:
        confusion_tab(cards, split)
    with tabs[3]:
        per_class_tab(cards, split)
    with tabs[4]:
        same_face_tab(cards, folder)
