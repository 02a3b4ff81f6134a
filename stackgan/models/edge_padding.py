"""Replicate ("edge") padding for a generator's stride-1 convolutions.

Why: a "same" convolution pads with zeros, so a generator's border pixels see a black frame
that no training image has, and its outermost rows and columns come out unlike the rest: the
demo's Stage-I birds stood in a light frame. Padding with the border's own pixels gives the
border the same statistics as the interior (as pix2pixHD and StyleGAN-era generators pad).
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="stackgan")
class EdgePadding2D(keras.layers.Layer):
    """[B, H, W, C] -> [B, H + 2, W + 2, C], the new rows and columns copies of the border's.

    tf.pad's SYMMETRIC mode mirrors including the border, so one pixel of it copies the border
    row and column: replicate padding. Two or more would mirror, so they are refused (the
    generators' convs are 3x3 and need one)."""

    def __init__(self, pad: int = 1, **kwargs):
        super().__init__(**kwargs)
        if pad != 1:
            raise ValueError(f"EdgePadding2D copies a 1-pixel border (a 3x3 conv's), got pad={pad}")
        self.pad = pad

    def call(self, inputs):
        p = self.pad
        return tf.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="SYMMETRIC")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        grow = lambda n: None if n is None else n + 2 * self.pad  # noqa: E731
        return (batch, grow(height), grow(width), channels)

    def get_config(self):
        return {**super().get_config(), "pad": self.pad}
