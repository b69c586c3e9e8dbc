"""Face augmentation as stateless TensorFlow ops, so it runs inside tf.data and is reproducible.

Each batch's randomness is a pure function of a (seed, batch index) pair: a resumed run sees
exactly the augmentations the uninterrupted run would have seen.
"""

from __future__ import annotations

import math

import tensorflow as tf


def _affine(
    images: tf.Tensor, seed: tf.Tensor, max_degrees: float, max_shift: float, max_zoom: float
) -> tf.Tensor:
    """Random rotation, shift and zoom about the image centre (reflect padding)."""
    batch = tf.shape(images)[0]
    size = tf.cast(tf.shape(images)[1], tf.float32)
    u = tf.random.stateless_uniform((batch, 4), seed=seed, minval=-1.0, maxval=1.0)
    angle = u[:, 0] * (max_degrees * math.pi / 180.0)
    scale = 1.0 + u[:, 1] * max_zoom
    shift_x, shift_y = u[:, 2] * max_shift * size, u[:, 3] * max_shift * size
    centre = (size - 1.0) / 2.0
    a0, a1 = tf.cos(angle) / scale, -tf.sin(angle) / scale
    b0, b1 = tf.sin(angle) / scale, tf.cos(angle) / scale
    a2 = centre - a0 * centre - a1 * centre - shift_x
    b2 = centre - b0 * centre - b1 * centre - shift_y
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )


def _random_erasing(images: tf.Tensor, seed: tf.Tensor, probability: float) -> tf.Tensor:
    """Blank one random rectangle (2-20% of the area) in a share of the images with noise."""
    batch = tf.shape(images)[0]
    size = tf.shape(images)[1]
    sizef = tf.cast(size, tf.float32)
    u = tf.random.stateless_uniform((batch, 5), seed=seed)
    area = (0.02 + u[:, 0] * 0.18) * sizef * sizef
    aspect = tf.exp((u[:, 1] - 0.5) * 2.0 * math.log(3.0))
    height = tf.minimum(tf.sqrt(area * aspect), sizef)
    width = tf.minimum(tf.sqrt(area / aspect), sizef)
    top = u[:, 2] * (sizef - height)
    left = u[:, 3] * (sizef - width)
    apply = tf.cast(u[:, 4] < probability, tf.float32)
    coords = tf.cast(tf.range(size), tf.float32)
    rows = (coords[None, :] >= top[:, None]) & (coords[None, :] < (top + height)[:, None])
    cols = (coords[None, :] >= left[:, None]) & (coords[None, :] < (left + width)[:, None])
    mask = tf.cast(rows[:, :, None] & cols[:, None, :], tf.float32) * apply[:, None, None]
    mask = mask[..., None]
    noise = tf.random.stateless_uniform(tf.shape(images), seed=seed + 1, maxval=255.0)
    return images * (1.0 - mask) + noise * mask


def augment_batch(
    images: tf.Tensor,
    seed: tf.Tensor,
    *,
    max_degrees: float = 10.0,
    max_shift: float = 0.1,
    max_zoom: float = 0.1,
    erase_probability: float = 0.5,
) -> tf.Tensor:
    """Flip, rotate, shift, zoom and randomly erase a float32 batch (n, h, w, 1) in 0..255."""
    seed = tf.cast(seed, tf.int64)
    flip = tf.random.stateless_uniform((tf.shape(images)[0], 1, 1, 1), seed=seed) < 0.5
    images = tf.where(flip, tf.reverse(images, axis=[2]), images)
    images = _affine(images, seed + 2, max_degrees, max_shift, max_zoom)
    if erase_probability > 0:
        images = _random_erasing(images, seed + 4, erase_probability)
    return tf.clip_by_value(images, 0.0, 255.0)
