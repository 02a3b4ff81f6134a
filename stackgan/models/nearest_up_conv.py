"""Nearest-neighbour x2 upsampling followed by a 3x3 "same" convolution, computed at the input's
resolution: the same function as `UpSampling2D(2, "nearest")` then `Conv2D(f, 3)`, with the same
kernel [3, 3, C_in, f] (so the same parameters, initialisation and weight names), in a quarter
of the pixels.

Why: on a CPU the two layers spend most of their time on the upsampled map, worst where few
channels come out (every generator's last conv has 3): such a conv runs far below the matmul
rate, and the upsampled map and its gradient hold 4x the input. One conv with 4x the output
channels on the input's grid does the same multiply-adds at a better rate. Not where many
come out: its kernel, and the kernel's gradient, are then 4x as large as the upsampled
activations are. Measured by `bench/bench_nearest_up_conv.py` (figures in docs/BENCHMARKS.md;
2-core AMD EPYC, float32, forward and both gradients): the RGB convs 3.3x (the demo's, 8 -> 3
channels) and 4.8x (the paper's, 128 -> 3) faster, the demo's other up-blocks
1.05-2.6x and the paper's last two Stage-II ones 1.7x; slower for the demo's first block; and
slower with 128 or more channels out on maps of 16 px or less (down to 0.21x for the paper's
1,024 -> 512 at 4 px). So `blocks.up_conv` uses it up to
`model.upsample_conv_max_filters` (64) output channels and the two layers above; the demo's
Stage-I iteration is 1.2-1.34x faster (three runs).

How: output row 2i + a of the upsampled conv reads upsampled rows 2i + a - 1 .. 2i + a + 1,
which are input rows (i - 1, i, i) for a = 0 and (i, i, i + 1) for a = 1. So each of the four
output phases (a, b) is a 3x3 conv of the input whose taps are sums of the kernel's taps
(`PHASE_TAPS`); the four run as one conv with 4 f output channels, and `depth_to_space`
interleaves them. Zero padding agrees too: upsampled row -1 is input row -1; so does replicate
padding (`padding="replicate"`): upsampled row -1 copies upsampled row 0, which is input row 0,
and so does the input padded by copying its row 0.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

# PHASE_TAPS[a, p, y]: how much the kernel's tap y (0, 1, 2 = offsets -1, 0, +1 at the output
# resolution) adds to the input tap p (offsets -1, 0, +1 at the input resolution) for phase a.
PHASE_TAPS = np.array(
    [
        [[1, 0, 0], [0, 1, 1], [0, 0, 0]],  # a = 0: rows i-1 <- W0; i <- W1 + W2
        [[0, 0, 0], [1, 1, 0], [0, 0, 1]],  # a = 1: rows i <- W0 + W1; i+1 <- W2
    ],
    dtype=np.float32,
)


@keras.saving.register_keras_serializable(package="stackgan")
class NearestUpConv2D(keras.layers.Layer):
    """[B, H, W, C] -> [B, 2H, 2W, filters]: nearest x2 then a 3x3 same conv (+ bias)."""

    def __init__(
        self,
        filters: int,
        use_bias: bool = True,
        kernel_initializer=None,
        padding: str = "zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if padding not in ("zeros", "replicate"):
            raise ValueError(f"padding must be 'zeros' or 'replicate', got {padding!r}")
        self.filters = filters
        self.use_bias = use_bias
        self.padding = padding
        self.kernel_initializer = keras.initializers.get(kernel_initializer or "glorot_uniform")

    def build(self, input_shape):
        channels = input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel",
            shape=(3, 3, channels, self.filters),
            initializer=self.kernel_initializer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, inputs):
        # The phase kernels are sums of the kernel's taps: formed in float32 from the variable
        # itself (not its autocast copy), then cast to what the layer computes in.
        kernel = tf.cast(self.kernel.value, tf.float32)
        taps = tf.constant(PHASE_TAPS)
        phases = tf.einsum("apy,bqx,yxio->pqiabo", taps, taps, kernel)
        phases = tf.reshape(phases, [3, 3, kernel.shape[2], 4 * self.filters])
        if self.padding == "replicate":
            edges = [[0, 0], [1, 1], [1, 1], [0, 0]]
            x = tf.nn.conv2d(
                tf.pad(inputs, edges, "SYMMETRIC"), tf.cast(phases, inputs.dtype), 1, "VALID"
            )
        else:
            x = tf.nn.conv2d(inputs, tf.cast(phases, inputs.dtype), 1, "SAME")
        # depth_to_space reads channel (a * 2 + b) * filters + o as phase (a, b), channel o
        x = tf.nn.depth_to_space(x, 2)
        if self.bias is not None:
            x = tf.nn.bias_add(x, tf.cast(self.bias.value, x.dtype))
        return x

    def compute_output_shape(self, input_shape):
        batch, *sides, _ = input_shape
        return (batch, *(None if n is None else 2 * n for n in sides), self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "use_bias": self.use_bias,
            "padding": self.padding,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
