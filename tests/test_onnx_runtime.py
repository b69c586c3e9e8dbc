"""core.emotion.onnx_runtime: ONNX Runtime reproduces Keras; the app falls back cleanly."""

from __future__ import annotations

import numpy as np
import pytest

from core.emotion.architectures import ArchSpec, build_model
from core.emotion.model import EmotionModel
from core.emotion.onnx_runtime import OnnxRunner, UnsupportedLayer, to_onnx


def _with_random_statistics(model):
    """Batch-norm statistics away from their defaults, so a mistranslated BN shows."""
    rng = np.random.default_rng(1)
    stack = [model]
    while stack:
        layer = stack.pop()
        stack.extend(getattr(layer, "layers", []))
        if type(layer).__name__ == "BatchNormalization":
            weights = layer.get_weights()
            weights[-2] = rng.normal(0, 0.1, weights[-2].shape).astype(np.float32)
            weights[-1] = rng.uniform(0.5, 1.5, weights[-1].shape).astype(np.float32)
            layer.set_weights(weights)
    return model


@pytest.mark.parametrize(("arch", "size"), [("cnn", 48), ("cnn_plus", 48), ("resnet50v2", 64)])
def test_onnx_matches_keras_for_every_shipped_architecture(arch, size):
    model = _with_random_statistics(build_model(ArchSpec(arch, size, 1, 0.4)))
    faces = np.random.default_rng(2).uniform(0, 255, (5, 48, 48, 1)).astype(np.float32)
    expected = model(faces, training=False).numpy()
    got = OnnxRunner(model)(faces)
    assert got.shape == expected.shape == (5, 7)
    assert np.abs(got - expected).max() < 1e-4
    assert not np.allclose(got, got[0])  # different faces, different answers


def test_shipped_model_runs_on_onnx_and_agrees_with_keras_on_real_faces(shipped_model, public_test):
    x, _ = public_test
    faces = x[:64]
    fast = EmotionModel.load(shipped_model.path)
    reference = EmotionModel.load(shipped_model.path)
    reference.runtime = "keras"
    got, expected = fast.predict(faces), reference.predict(faces)
    assert fast.runtime == "onnxruntime" and reference.runtime == "keras"
    assert np.abs(got - expected).max() < 1e-3
    assert (got.argmax(1) == expected.argmax(1)).all()


def test_an_untranslatable_model_stays_on_keras():
    import keras

    inputs = keras.Input((48, 48, 1))
    x = keras.layers.SeparableConv2D(4, 3)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(7, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    with pytest.raises(UnsupportedLayer, match="SeparableConv2D"):
        to_onnx(model)
    emotion = EmotionModel(model, name="separable")
    probabilities = emotion.predict(np.zeros((2, 48, 48), np.uint8))
    assert emotion.runtime == "keras" and probabilities.shape == (2, 7)
