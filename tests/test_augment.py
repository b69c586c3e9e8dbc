"""core.training.augment: in-graph augmentation is reproducible, bounded, and varies faces."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from core.training.augment import augment_batch


def _batch(public_test, n=16):
    return tf.constant(public_test[0][:n, :, :, None].astype(np.float32))


def test_same_seed_same_augmentation(public_test):
    images = _batch(public_test)
    first = augment_batch(images, tf.constant([3, 5], tf.int64)).numpy()
    second = augment_batch(images, tf.constant([3, 5], tf.int64)).numpy()
    other = augment_batch(images, tf.constant([3, 6], tf.int64)).numpy()
    assert np.array_equal(first, second)
    assert not np.allclose(first, other)


def test_output_is_a_changed_face_in_range(public_test):
    images = _batch(public_test)
    out = augment_batch(images, tf.constant([1, 2], tf.int64), erase_probability=0.0).numpy()
    assert out.shape == images.shape
    assert out.min() >= 0.0 and out.max() <= 255.0
    changed = np.abs(out - images.numpy()).mean(axis=(1, 2, 3))
    assert (changed > 1.0).all()  # every face was transformed
    # Still the same face: closer to its own source (or its mirror) than to the next face.
    source = images.numpy()
    for i in range(len(out)):
        a = out[i].ravel()
        own = max(
            np.corrcoef(a, source[i].ravel())[0, 1],
            np.corrcoef(a, source[i, :, ::-1].ravel())[0, 1],
        )
        other = np.corrcoef(a, source[(i + 1) % len(out)].ravel())[0, 1]
        assert own > other


def test_erasing_only_when_asked(public_test):
    images = _batch(public_test, 64)
    seed = tf.constant([9, 9], tf.int64)
    plain = augment_batch(images, seed, erase_probability=0.0).numpy()
    erased = augment_batch(images, seed, erase_probability=1.0).numpy()
    differs = np.abs(plain - erased).reshape(64, -1).max(axis=1) > 0
    assert differs.all()
