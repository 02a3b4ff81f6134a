"""The one pixel convention: images are uint8 [0, 255] on disk, on the wire and in sample
sheets, and float32 [-1, 1] inside the networks (the generators end in tanh). Every
conversion between the two goes through these two functions."""

from __future__ import annotations

import tensorflow as tf


def to_unit_range(image) -> tf.Tensor:
    """uint8 (or float) [0, 255] -> float32 [-1, 1]."""
    return tf.cast(image, tf.float32) / 127.5 - 1.0


def to_uint8(image) -> tf.Tensor:
    """tanh output in [-1, 1] -> uint8 pixels, rounded rather than truncated, clipped."""
    image = tf.cast(image, tf.float32)
    return tf.cast(tf.round(tf.clip_by_value((image + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)
