"""core.emotion.architectures: every architecture builds and answers in FER2013's shape."""

from __future__ import annotations

import numpy as np
import pytest

from core.emotion.architectures import ARCHITECTURES, ArchSpec, build_model


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_architecture_builds_and_returns_probabilities(arch):
    model = build_model(ArchSpec(arch, 48, 1, 0.4))
    faces = np.random.default_rng(0).uniform(0, 255, (2, 48, 48, 1)).astype(np.float32)
    probabilities = model(faces, training=False).numpy()
    assert model.input_shape == (None, 48, 48, 1)
    assert probabilities.shape == (2, 7)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
