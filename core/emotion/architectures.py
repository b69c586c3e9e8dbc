"""Emotion model architectures: the seed CNN, a stronger small CNN, and Keras backbones.

Every model takes (batch, 48, 48, 1) float32 grayscale faces with pixels in 0..255 and returns
softmax probabilities over FER2013's seven classes. Rescaling and any upscaling happen inside the
model, so callers never need to know a model's working resolution.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
from keras import layers

from core.labels import FACE_SIZE, NUM_EMOTIONS

BACKBONES = ("resnet50v2", "vgg16", "vgg19", "efficientnetb0")
ARCHITECTURES = ("cnn", "cnn_plus", *BACKBONES)


@dataclass(frozen=True)
class ArchSpec:
    """Everything needed to rebuild a model's graph (stored in each model card)."""

    model: str
    image_size: int = FACE_SIZE
    channels: int = 1
    dropout: float = 0.4

    def to_dict(self) -> dict:
        return asdict(self)


def _conv_block(x, filters: int, convs: int, dropout: float, name: str):
    for i in range(convs):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    return layers.Dropout(dropout, name=f"{name}_drop")(x) if dropout else x


def _dense_head(x, units: int, dropout: float):
    """Dense -> BatchNorm -> ReLU -> Dropout: a normalised head trains stably with Adam."""
    x = layers.Dense(units, use_bias=False, name="fc")(x)
    x = layers.BatchNormalization(name="fc_bn")(x)
    x = layers.Activation("relu", name="fc_relu")(x)
    return layers.Dropout(dropout, name="fc_drop")(x)


def _seed_cnn(x, spec: ArchSpec):
    """The research's basic CNN: three conv blocks and a dense head."""
    for i, filters in enumerate((32, 64, 128)):
        x = _conv_block(x, filters, convs=2, dropout=0.1 * (i + 1), name=f"block{i + 1}")
    x = layers.Flatten(name="flatten")(x)
    return _dense_head(x, 256, spec.dropout)


def _cnn_plus(x, spec: ArchSpec):
    """The seed CNN's compute spent where it pays on this CPU: one cheap conv at 48 px, then
    64/128/256-filter stages at 24/12/6 px and a global-average-pooled head (~100 M MACs)."""
    x = _conv_block(x, 32, convs=1, dropout=0.0, name="block1")
    for i, filters in enumerate((64, 128, 256)):
        x = _conv_block(x, filters, convs=2, dropout=0.1 * (i + 1), name=f"block{i + 2}")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return _dense_head(x, 256, spec.dropout)


def _backbone(x, spec: ArchSpec):
    from keras import applications

    shape = (spec.image_size, spec.image_size, spec.channels)
    common = {"include_top": False, "weights": None, "input_shape": shape, "pooling": "avg"}
    if spec.model == "resnet50v2":
        net = applications.ResNet50V2(**common)
    elif spec.model == "vgg16":
        net = applications.VGG16(**common)
    elif spec.model == "vgg19":
        net = applications.VGG19(**common)
    elif spec.model == "efficientnetb0":
        # Keras' EfficientNetB0 always rescales 0..255 input itself: hand it that range.
        x = layers.Rescaling(255.0, name="to_0_255")(x)
        net = applications.EfficientNetB0(**common)
    else:
        raise ValueError(f"unknown backbone {spec.model!r}")
    x = net(x)
    return layers.Dropout(spec.dropout, name="head_drop")(x)


def build_model(spec: ArchSpec) -> keras.Model:
    """Build an uncompiled model for `spec` under the current Keras dtype policy."""
    if spec.model not in ARCHITECTURES:
        raise ValueError(f"unknown model {spec.model!r}; choose from {', '.join(ARCHITECTURES)}")
    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 1), name="face")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    if spec.image_size != FACE_SIZE:
        x = layers.Resizing(spec.image_size, spec.image_size, name="upscale")(x)
    if spec.channels == 3:
        x = layers.Concatenate(name="to_rgb")([x, x, x])
    if spec.model == "cnn":
        x = _seed_cnn(x, spec)
    elif spec.model == "cnn_plus":
        x = _cnn_plus(x, spec)
    else:
        x = _backbone(x, spec)
    logits = layers.Dense(NUM_EMOTIONS, name="logits")(x)
    # Softmax in float32 even under a mixed policy, for stable losses and exact exports.
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    return keras.Model(inputs, outputs, name=spec.model)
