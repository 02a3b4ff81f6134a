"""Residual refinement for Stage-II (a later-work option, `ModelConfig.stage2_output="residual"`).

The paper's Stage-II generator paints the 256x256 image from scratch out of a 16x16 code, so at
the start of training its output is unrelated to the Stage-I image it was given (grey, with the
stripes of nearest-neighbour upsampling), and on little data or few steps it may never learn to
keep Stage-I's colours and layout. Super-resolution GANs instead predict a correction on top of
the upsampled low-resolution image. Here the correction is added before the tanh, so the output
stays in (-1, 1) and a zero correction reproduces the upsampled Stage-I image exactly:

    image = tanh(atanh(upsample(stage1_image)) + correction)

Stage-II then starts from Stage-I's picture and its adversarial loss only has to add detail.

`"subpixel_residual"` computes the correction at Stage-I's resolution and rearranges each pixel's
r*r*3 channels into an r x r block of the r-times larger image (`DepthToSpace`; sub-pixel
convolution, Shi et al. 2016, ESPCN). A 3x3 conv at 64 px costs a sixteenth of one at 256 px, so
for the time of the 2-channel 256 px layers of `"residual"` the correction gets layers 8-16x as
wide that see 7x7 Stage-I pixels around each output block.
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


@keras.saving.register_keras_serializable(package="stackgan")
class DepthToSpace(keras.layers.Layer):
    """[B, h, w, r*r*C] -> [B, r*h, r*w, C]: channel (i*r + j)*C + c of input pixel (y, x) goes
    to output pixel (r*y + i, r*x + j), channel c (tf.nn.depth_to_space's order)."""

    def __init__(self, block_size: int, **kwargs):
        super().__init__(**kwargs)
        self.block_size = block_size

    def call(self, x):
        r = self.block_size
        _, h, w, c = x.shape
        x = ops.reshape(x, (-1, h, w, r, r, c // (r * r)))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, h * r, w * r, c // (r * r)))

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        r = self.block_size
        return (b, h * r, w * r, c // (r * r))

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@keras.saving.register_keras_serializable(package="stackgan")
class IcnrInit(keras.initializers.Initializer):
    """ICNR (Aitken et al. 2017): DCGAN's N(0, 0.02) kernel for one sub-pixel, copied to all
    r*r of them, so DepthToSpace starts as nearest-neighbour upsampling (no checkerboard)."""

    def __init__(self, block_size: int, stddev: float = 0.02):
        self.block_size, self.stddev = block_size, stddev

    def __call__(self, shape, dtype=None):
        kh, kw, cin, cout = shape
        r2 = self.block_size**2
        base = keras.random.normal((kh, kw, cin, 1, cout // r2), stddev=self.stddev, dtype=dtype)
        return ops.reshape(ops.tile(base, (1, 1, 1, r2, 1)), shape)

    def get_config(self):
        return {"block_size": self.block_size, "stddev": self.stddev}


@keras.saving.register_keras_serializable(package="stackgan")
class BlockPeriodFilter(keras.layers.Layer):
    """A fixed separable low-pass filter [1, 2, 2, 2, 1] / 8 (a 4-box times a 2-box) per channel:
    zero response at periods 4 and 2, so nothing periodic in DepthToSpace's 4x4 blocks passes."""

    def call(self, x):
        taps = ops.convert_to_tensor([1.0, 2.0, 2.0, 2.0, 1.0], dtype=self.compute_dtype) / 8.0
        c = x.shape[-1]
        rows = ops.tile(ops.reshape(taps, (5, 1, 1, 1)), (1, 1, c, 1))
        cols = ops.tile(ops.reshape(taps, (1, 5, 1, 1)), (1, 1, c, 1))
        x = ops.depthwise_conv(x, rows, padding="same")
        return ops.depthwise_conv(x, cols, padding="same")
