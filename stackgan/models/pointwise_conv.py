"""A 1x1 stride-1 convolution computed as a matmul over the channels: the same layer as
`Conv2D(filters, 1)` (its subclass: same kernel [1, 1, C_in, f], bias, initialisation, weight
names and config), computed by `einsum("bhwc,co->bhwo")` instead of a convolution kernel.

Why: on a CPU TensorFlow runs a 1x1 convolution, and above all its gradients, through oneDNN's
convolution kernels, which are slow where few channels come out (Stage-II's RGB layer at full
size has 3) and where many go in on small maps (D's 1x1 squeezes of 2,048 channels at 4x4). As
a matmul the same multiply-adds run at the matmul rate, forward and backward. Measured by
`bench/bench_pointwise_conv.py` (figures in docs/BENCHMARKS.md). The einsum must name
its axes: TensorFlow lowers `"...c,co->...o"` another way, which measured 8-30x slower than the
convolution.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="stackgan")
class PointwiseConv2D(keras.layers.Conv2D):
    """`Conv2D` with kernel_size 1, stride 1, channels last: [B, H, W, C] -> [B, H, W, f]."""

    def build(self, input_shape):
        if (
            tuple(self.kernel_size) != (1, 1)
            or tuple(self.strides) != (1, 1)
            or tuple(self.dilation_rate) != (1, 1)
            or self.groups != 1
            or self.data_format != "channels_last"
        ):
            raise ValueError(
                f"{self.name}: PointwiseConv2D is a 1x1, stride-1, ungrouped, channels-last conv;"
                f" got kernel {self.kernel_size}, strides {self.strides},"
                f" dilation {self.dilation_rate}, groups {self.groups}, {self.data_format}"
            )
        super().build(input_shape)

    def convolution_op(self, inputs, kernel):
        return tf.einsum("bhwc,co->bhwo", inputs, kernel[0, 0])
