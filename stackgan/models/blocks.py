"""The building blocks shared by both stages (paper, supplementary; authors' TF code).

Every helper takes a tensor of a functional model and returns the next one, so the builders in
`stage1.py` / `stage2.py` read like the paper's tables. Initialisation follows both official
codes (DCGAN): weights N(0, 0.02), BatchNorm gamma N(1, 0.02). Convolutions followed by
BatchNorm carry no bias (BatchNorm's beta already is one).
"""

from __future__ import annotations

import math

import keras
from keras import layers

from stackgan.models.batch_norm import FreezableBatchNorm
from stackgan.models.edge_padding import EdgePadding2D
from stackgan.models.nearest_up_conv import NearestUpConv2D
from stackgan.models.pointwise_conv import PointwiseConv2D
from stackgan.models.text_affine import text_affine

LEAKY_SLOPE = 0.2


def weight_init() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def batch_norm(x, name: str, dtype=None):
    # synchronized=True: under tf.distribute the statistics are those of the GLOBAL batch, so
    # N replicas train like one device with the same global batch (tests/test_distribute.py).
    return FreezableBatchNorm(
        momentum=0.9,
        epsilon=1e-5,
        gamma_initializer=keras.initializers.RandomNormal(mean=1.0, stddev=0.02),
        synchronized=True,
        name=name,
        dtype=dtype,
    )(x)


def conv(
    x,
    filters: int,
    kernel: int,
    stride: int,
    name: str,
    *,
    bias: bool,
    dtype=None,
    padding: str = "same",
    initializer=None,
):
    """`padding`: "same" / "valid" as Keras; "zeros" is "same" (`model.generator_padding`'s
    name for it); "replicate" pads a stride-1 conv with copies of its border (edge_padding.py)."""
    # a 1x1 stride-1 conv runs as a matmul over the channels (pointwise_conv.py: the same layer)
    layer = PointwiseConv2D if kernel == 1 and stride == 1 else layers.Conv2D
    if padding == "zeros":
        padding = "same"
    if padding == "replicate":
        if kernel > 1:
            if stride != 1 or kernel % 2 == 0:
                raise ValueError(f"replicate padding needs an odd stride-1 kernel, got {name}")
            x = EdgePadding2D(kernel // 2, name=f"{name}_pad", dtype=dtype)(x)
        padding = "valid"
    return layer(
        filters,
        kernel,
        strides=stride,
        padding=padding,
        use_bias=bias,
        kernel_initializer=initializer or weight_init(),
        name=name,
        dtype=dtype,
    )(x)


def dense(x, units: int, name: str, *, bias: bool, dtype=None):
    return layers.Dense(
        units, use_bias=bias, kernel_initializer=weight_init(), name=name, dtype=dtype
    )(x)


def relu(x, name: str, dtype=None):
    return layers.ReLU(name=name, dtype=dtype)(x)


def leaky_relu(x, name: str, dtype=None):
    return layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=name, dtype=dtype)(x)


def upsampling(x, factor: int, name: str, interpolation: str, dtype=None):
    """x `factor` upsampling, nearest-neighbour or bilinear. Bilinear computes in float32
    whatever the networks' precision (the next layer casts back): TensorFlow's XLA lowers the
    gradient of a bfloat16 bilinear resize (ResizeBilinearGrad) to a float32 result, which
    fails a jit-compiled bf16 step (`train.xla`) with "mixed precision is disallowed"."""
    if interpolation == "bilinear":
        dtype = "float32"
    return layers.UpSampling2D(factor, interpolation=interpolation, name=name, dtype=dtype)(x)


def up_block(
    x,
    filters: int,
    name: str,
    *,
    max_phase_filters: int,
    activate: bool = True,
    padding: str = "zeros",
    interpolation: str = "nearest",
    condition=None,
    dtype=None,
):
    """x2 upsampling (nearest-neighbour in the paper), 3x3 stride-1 conv, BatchNorm, ReLU (the
    paper's up-sampling block).

    `activate=False` leaves out the ReLU where TF's Stage-I G adds a residual bottleneck first.
    `max_phase_filters`, `padding`, `interpolation`: see `up_conv`. With a `condition` the
    normalised features are scaled and shifted by it before the ReLU (text_affine.py).
    """
    x = up_conv(
        x,
        filters,
        f"{name}_conv",
        bias=False,
        max_phase_filters=max_phase_filters,
        padding=padding,
        interpolation=interpolation,
        dtype=dtype,
    )
    x = batch_norm(x, f"{name}_bn", dtype=dtype)
    if condition is not None:
        x = text_affine(x, condition, f"{name}_text", dtype=dtype)
    return relu(x, f"{name}_relu", dtype=dtype) if activate else x


def up_conv(
    x,
    filters: int,
    name: str,
    *,
    bias: bool,
    max_phase_filters: int,
    padding: str = "zeros",
    interpolation: str = "nearest",
    dtype=None,
):
    """x2 upsampling, then a 3x3 stride-1 conv named `name`, padded with zeros or with
    copies of the border (`padding="replicate"`). Up to `max_phase_filters` output channels
    (`model.upsample_conv_max_filters`) it is computed at the input's resolution
    (`NearestUpConv2D`: the same function and kernel, up to 4x faster there); above, as the
    two layers. That is nearest-neighbour upsampling, as in the paper; `interpolation="bilinear"`
    (`model.generator_upsampling`) upsamples bilinearly instead, always as the two layers."""
    if interpolation not in ("nearest", "bilinear"):
        raise ValueError(f"interpolation must be 'nearest' or 'bilinear', got {interpolation!r}")
    if interpolation == "nearest" and filters <= max_phase_filters:
        return NearestUpConv2D(
            filters,
            use_bias=bias,
            kernel_initializer=weight_init(),
            padding=padding,
            name=name,
            dtype=dtype,
        )(x)
    x = upsampling(x, 2, f"{name}_upsample", interpolation, dtype)
    return conv(x, filters, 3, 1, name, bias=bias, padding=padding, dtype=dtype)


def down_block(x, filters: int, name: str, *, normalize: bool = True, dtype=None):
    """4x4 stride-2 conv, BatchNorm (not on the first block), LeakyReLU(0.2)."""
    x = conv(x, filters, 4, 2, f"{name}_conv", bias=not normalize, dtype=dtype)
    if normalize:
        x = batch_norm(x, f"{name}_bn", dtype=dtype)
    return leaky_relu(x, f"{name}_lrelu", dtype=dtype)


def residual_block(x, filters: int, name: str, padding: str = "zeros", dtype=None):
    """Stage-II G: x + BN(conv3(ReLU(BN(conv3(x))))), then ReLU; `padding` as `up_conv`."""
    h = conv(x, filters, 3, 1, f"{name}_conv1", bias=False, padding=padding, dtype=dtype)
    h = relu(batch_norm(h, f"{name}_bn1", dtype=dtype), f"{name}_relu1", dtype=dtype)
    h = conv(h, filters, 3, 1, f"{name}_conv2", bias=False, padding=padding, dtype=dtype)
    h = batch_norm(h, f"{name}_bn2", dtype=dtype)
    x = layers.Add(name=f"{name}_add", dtype=dtype)([x, h])
    return relu(x, f"{name}_relu", dtype=dtype)


def bottleneck_block(x, filters: int, name: str, padding: str = "zeros", dtype=None):
    """TF Stage-I G's residual bottleneck: x + BN(3x3 -> C)(ReLU BN 3x3)(ReLU BN 1x1 -> C/4).

    `x` arrives BatchNormed but not activated; the sum is activated (as in the TF code).
    `padding`: the 3x3 convs' ("zeros" or "replicate").
    """
    squeezed = max(1, filters // 4)
    h = conv(x, squeezed, 1, 1, f"{name}_conv1", bias=False, dtype=dtype)
    h = relu(batch_norm(h, f"{name}_bn1", dtype=dtype), f"{name}_relu1", dtype=dtype)
    h = conv(h, squeezed, 3, 1, f"{name}_conv2", bias=False, padding=padding, dtype=dtype)
    h = relu(batch_norm(h, f"{name}_bn2", dtype=dtype), f"{name}_relu2", dtype=dtype)
    h = conv(h, filters, 3, 1, f"{name}_conv3", bias=False, padding=padding, dtype=dtype)
    h = batch_norm(h, f"{name}_bn3", dtype=dtype)
    x = layers.Add(name=f"{name}_add", dtype=dtype)([x, h])
    return relu(x, f"{name}_relu", dtype=dtype)


def spatial_tile(vector, size: int, name: str, dtype=None):
    """[B, C] -> [B, size, size, C]: the vector copied to every position (nearest upsampling of
    a 1x1 map is exactly a tile, and both layers serialise without custom code)."""
    channels = vector.shape[-1]
    x = layers.Reshape((1, 1, channels), name=f"{name}_reshape", dtype=dtype)(vector)
    return layers.UpSampling2D(size, interpolation="nearest", name=f"{name}_tile", dtype=dtype)(x)


def resampling_steps(small: int, large: int, what: str) -> int:
    """How many x2 steps lead from `small` to `large`, which must be `small` times a power of 2
    (4 -> 64: 4 steps; the tiny profile's 4 -> 16: 2)."""
    steps = round(math.log2(large / small)) if large > small > 0 else 0
    if steps < 1 or small * 2**steps != large:
        raise ValueError(
            f"{what} = {large} is not {small} times a power of 2; "
            f"supported sizes are {small * 2}, {small * 4}, {small * 8}, ..."
        )
    return steps
