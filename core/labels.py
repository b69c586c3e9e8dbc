"""Facts shared by every module: FER2013's face geometry and emotions, and catalog moods."""

from __future__ import annotations

# FER2013 faces are 48x48 grayscale; every model takes faces of this size (it upscales inside).
FACE_SIZE = 48

# FER2013's own label order: index i of a model's output is EMOTIONS[i].
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_EMOTIONS = len(EMOTIONS)

# Moods of the Kaggle "data_moods.csv" catalog and of our starter catalog.
MOODS: tuple[str, ...] = ("Happy", "Sad", "Energetic", "Calm")

# The research's emotion -> mood mapping (the "match" strategy of the first recommender).
EMOTION_TO_MOOD: dict[str, str] = {
    "angry": "Calm",
    "disgust": "Calm",
    "fear": "Calm",
    "happy": "Happy",
    "sad": "Sad",
    "surprise": "Energetic",
    "neutral": "Happy",
}
