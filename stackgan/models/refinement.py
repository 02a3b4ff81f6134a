"""Residual refinement for Stage-II (a later-work option, `ModelConfig.stage2_output="residual"`).

The paper's Stage-II generator paints the 256x256 image from scratch out of a 16x16 code, so at
the start of training its output is unrelated to the Stage-I image it was given (grey, with the
stripes of nearest-neighbour upsampling), and on little data or few steps it may never learn to
keep Stage-I's colours and layout. Super-resolution GANs instead predict a correction on top of
the upsampled low-resolution image. Here the correction is added before the tanh, so the output
stays in (-1, 1) and a zero correction reproduces the upsampled Stage-I image exactly:

    image = tanh(atanh(upsample(stage1_image)) + correction)

Stage-II then starts from Stage-I's picture and its adversarial loss only has to add detail.
"""

from __future__ import annotations

import keras
from keras import ops

# atanh(+-1) is infinite: Stage-I's tanh output is clipped just inside the open interval
_EDGE = 1.0 - 1e-3


@keras.saving.register_keras_serializable(package="stackgan")
class TanhResidual(keras.layers.Layer):
    """[base in [-1, 1], correction (same shape, unbounded)] -> tanh(atanh(base) + correction)."""

    def call(self, inputs):
        base, correction = inputs
        base = ops.clip(ops.cast(base, self.compute_dtype), -_EDGE, _EDGE)
        pre_activation = 0.5 * ops.log((1.0 + base) / (1.0 - base))  # atanh
        return ops.tanh(pre_activation + ops.cast(correction, self.compute_dtype))

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]
