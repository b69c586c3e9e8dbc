"""Shared fixtures: real FER2013 faces from ../shared (skipped with a reason when absent)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

import core  # noqa: F401  (loads pylibsrtp before TensorFlow)
from core.paths import fer2013_npz
from core.training.fer_data import FerSplits, load_fer
from core.training.guard import pause_training

_paused = None


def pytest_configure(config) -> None:
    """A running `core.train` (the long ResNet50V2 run) is paused while the tests use the CPU."""
    global _paused
    _paused = pause_training()
    pids = _paused.__enter__()
    if pids:
        print(f"paused training run(s) {pids} for the tests; resumed when they end")


def pytest_unconfigure(config) -> None:
    if _paused is not None:
        _paused.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def _no_shared_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never write into the MOODLENS_DATABASE_URL database of the shell they run in."""
    monkeypatch.delenv("MOODLENS_DATABASE_URL", raising=False)


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server (Debian's `postgresql`), started on first use and removed
    at the end; tests that use it skip with the reason when it cannot start."""
    from tests.support.postgres import postgres_cluster

    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def fer() -> FerSplits:
    """FER2013 from ../shared/data/fer2013/fer2013.npz."""
    path = fer2013_npz()
    if not path.exists():
        pytest.skip(f"FER2013 arrays not found at {path} (they live in ../shared/data)")
    return load_fer(path)


@pytest.fixture(scope="session")
def public_test(fer: FerSplits) -> tuple[np.ndarray, np.ndarray]:
    """FER2013 PublicTest faces and labels."""
    return fer.get("test")


@pytest.fixture(scope="session")
def detector():
    from core.vision.faces import FaceDetector

    return FaceDetector()


@pytest.fixture(scope="session")
def shipped_model():
    """The app's default model, loaded as the app loads it."""
    from core.emotion.cards import default_model_path
    from core.emotion.model import EmotionModel

    return EmotionModel.load(default_model_path())


@pytest.fixture(scope="session")
def detectable(public_test, detector) -> dict[int, list[int]]:
    """Per class, PublicTest indices of faces the detector finds when pasted into a scene."""
    from tests.support.scenes import detectable_faces

    x, y = public_test
    found = {}
    for cls in range(7):
        idx = np.flatnonzero(y == cls)[:40]
        found[cls] = [int(idx[i]) for i in detectable_faces(x[idx], detector, limit=6)]
    return found


@pytest.fixture()
def fake():
    """A local server on 127.0.0.1 that speaks the Spotify Web API (tests/support)."""
    from tests.support.fake_spotify import FakeSpotify

    with FakeSpotify() as server:
        yield server
