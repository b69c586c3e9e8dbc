"""Layer state a resumable, honestly validated run needs: per-epoch dropout seeds and
batch-norm statistics re-estimated on clean faces."""

from __future__ import annotations

import numpy as np


def _all_layers(layer):
    """`layer` and every layer inside it, nested models (Keras backbones) included."""
    yield layer
    for inner in getattr(layer, "layers", ()):
        yield from _all_layers(inner)


def reseed_layers(model, seed: int) -> None:
    """Reset the random state of every layer that draws randomness (dropout) to a function of
    `seed`: the masks of epoch e then depend on (seed, e) alone, so a resumed run repeats them."""
    count = 0
    for layer in _all_layers(model):
        for generator in getattr(layer, "_seed_generators", ()):
            # Far-apart first words: each draw bumps the second word, so adjacent values
            # would make two layers' masks collide a step apart.
            start = np.array([seed + count * 1_000_003, 0], dtype=generator.state.dtype)
            generator.state.assign(start)
            count += 1


def recalibrate_batch_norm(model, faces: np.ndarray, batch_size: int) -> int:
    """Set every BatchNormalization layer's moving mean/variance to the average over `faces`
    (uint8, (n, h, w)) of its batch statistics, in training mode without touching weights.

    Returns how many BN layers were reset; 0 (a no-op) for models without batch norm.
    """
    import keras

    layers = [
        layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)
    ]
    if not layers or len(faces) == 0:
        return 0
    momenta = [layer.momentum for layer in layers]
    try:
        for step, start in enumerate(range(0, len(faces), batch_size)):
            # new = momentum * old + (1 - momentum) * batch: with momentum step/(step+1)
            # the moving value is the running mean over the batches seen so far.
            for layer in layers:
                layer.momentum = step / (step + 1)
            batch = faces[start : start + batch_size][..., None].astype(np.float32)
            model(batch, training=True)
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
    return len(layers)
