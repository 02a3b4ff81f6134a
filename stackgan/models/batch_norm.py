"""BatchNormalization that can keep batch statistics while frozen, and normalises a batch in one
fused op under bfloat16.

Keras sets a BatchNormalization layer with `trainable=False` to inference mode (moving
averages), whatever `training` says. The official StackGAN codes freeze Stage-I while Stage-II
trains but still normalise Stage-I with the statistics of the current batch (TF rebuilds the
graph in training mode; PT never calls `.eval()` on it). `FreezableBatchNorm` lets the Stage-II
trainer choose: with `batch_statistics_when_frozen` set, a frozen layer normalises with the
batch's moments and never writes its moving averages, so its weights stay bit-identical.

Under a bfloat16 policy (`train.precision`), Keras' layer casts each bf16 activation to float32
and composes the batch moments, the normalisation and their gradients from ~10 elementwise ops
and reductions, which took a quarter of a paper Stage-I step on an AMX CPU. There a
training-mode batch goes through TensorFlow's `FusedBatchNormV3` instead: bf16 in and out,
statistics and scale/offset in float32 (measured +25% Stage-I img/s, see bench_train_step.py).
float32 keeps Keras' code (the arithmetic the float32 tests pin, and that tf.distribute's
synchronized statistics need: the fused op sees one replica's batch only).
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf
from keras import ops

# compute dtypes whose training-mode batches use the fused op
FUSED_DTYPES = ("bfloat16",)


@keras.saving.register_keras_serializable(package="stackgan")
class FreezableBatchNorm(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization`, plus batch statistics in frozen training mode."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Runtime switch, not part of the saved config: the trainer that freezes the layer
        # decides (see StageIIGAN and ModelConfig.frozen_stage1_batchnorm).
        self.batch_statistics_when_frozen = False

    def call(self, inputs, training=None, mask=None):
        batch_statistics = training and (self.trainable or self.batch_statistics_when_frozen)
        if batch_statistics and mask is None and self._fusable(inputs):
            return self._fused(inputs, update=self.trainable)
        if not (training and not self.trainable and self.batch_statistics_when_frozen):
            return super().call(inputs, training=training, mask=mask)
        # As the parent does: normalise in float32 even under mixed precision.
        x = ops.cast(inputs, backend_float(inputs.dtype))
        mean, variance = self._moments(x, mask)
        outputs = ops.batch_normalization(
            x=x,
            mean=mean,
            variance=variance,
            axis=self.axis,
            offset=ops.cast(self.beta, x.dtype) if self.center else None,
            scale=ops.cast(self.gamma, x.dtype) if self.scale else None,
            epsilon=self.epsilon,
        )
        return ops.cast(outputs, self.compute_dtype)

    def _fusable(self, inputs) -> bool:
        context = tf.distribute.get_replica_context()
        return (
            self.compute_dtype in FUSED_DTYPES
            and len(inputs.shape) in (2, 4)
            and self.axis in (-1, len(inputs.shape) - 1)
            and self.center
            and self.scale
            and not self.renorm
            # synchronized statistics over several replicas need Keras' all-reduce
            and (context is None or context.num_replicas_in_sync == 1)
        )

    def _fused(self, inputs, update: bool):
        return fused_batch_statistics(self, ops.cast(inputs, self.compute_dtype), update)


def fused_batch_statistics(layer: keras.layers.BatchNormalization, x, update: bool):
    """`layer`'s training-mode normalisation of `x` ([B, C] or NHWC) in TF's one
    `FusedBatchNormV3` op, in x's dtype with statistics, scale and offset in float32; `update`:
    also move the layer's moving averages (with its `momentum`, as Keras does, so precise
    BatchNorm's momentum schedule holds). Keras composes the same from ~10 elementwise ops
    and reductions, forward and backward."""
    flat = len(x.shape) == 2  # [B, C] -> [B, 1, 1, C]: statistics over B, as Keras
    shape = tf.shape(x)
    if flat:
        x = tf.reshape(x, [-1, 1, 1, x.shape[-1]])
    empty = tf.zeros([0], tf.float32)
    outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
        x=x,
        scale=tf.cast(layer.gamma.value, tf.float32),
        offset=tf.cast(layer.beta.value, tf.float32),
        mean=empty,
        variance=empty,
        epsilon=layer.epsilon,
        exponential_avg_factor=1.0,
        data_format="NHWC",
        is_training=True,
    )
    if update:
        # the op returns the unbiased (n - 1) batch variance; Keras averages the biased one
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
        variance = variance * (count - 1.0) / count
        momentum = layer.momentum
        layer.moving_mean.assign(layer.moving_mean * momentum + mean * (1.0 - momentum))
        layer.moving_variance.assign(layer.moving_variance * momentum + variance * (1.0 - momentum))
    return tf.reshape(outputs, shape) if flat else outputs


def backend_float(dtype) -> str:
    """float32, or float64 when the input already is (BN never computes in float16)."""
    return "float64" if str(dtype).endswith("float64") else "float32"


def set_batch_statistics_when_frozen(model: keras.Model, enabled: bool) -> int:
    """Switch every FreezableBatchNorm inside `model` (nested models too); returns how many."""
    count = 0
    for layer in _all_layers(model):
        if isinstance(layer, FreezableBatchNorm):
            layer.batch_statistics_when_frozen = enabled
            count += 1
    return count


def _all_layers(layer: keras.layers.Layer):
    for sub in getattr(layer, "layers", []):
        yield sub
        yield from _all_layers(sub)


def recalibrate_batch_norm(model: keras.Model, forward, batches: int) -> int:
    """Re-estimates the moving statistics of `model`'s BatchNorm layers as the plain
    mean of `batches` training-mode batches under the current weights ("precise BN", Wu &
    Johnson 2021); returns how many layers it set.

    `forward()` runs one batch through `model` with `training=True`; it may be a tf.function
    (traced here, where every layer's momentum is 0, so each batch writes its own statistics,
    which are read back and averaged). Why: a GAN's weights move fast, so moving averages with
    momentum 0.9 mix statistics of older weights. Inference with them drifts from what training
    saw; in Stage-II's generator that drift paints stripes.
    """
    with batch_statistics_written(model) as layers:
        sums = [[0.0, 0.0] for _ in layers]
        for _ in range(batches):
            forward()
            for total, layer in zip(sums, layers, strict=True):
                total[0] += keras.ops.convert_to_numpy(layer.moving_mean)
                total[1] += keras.ops.convert_to_numpy(layer.moving_variance)
    if batches:
        for (mean, variance), layer in zip(sums, layers, strict=True):
            layer.moving_mean.assign(mean / batches)
            layer.moving_variance.assign(variance / batches)
    return len(layers)


@contextlib.contextmanager
def batch_statistics_written(model: keras.Model):
    """Within it, every BatchNorm layer of `model` (nested models too) has momentum 0, so a
    training-mode batch writes its own statistics to the moving averages, and a tf.function
    traced within it keeps doing so. Yields those layers; restores their momenta on exit."""
    layers = [
        layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)
    ]
    momenta = [layer.momentum for layer in layers]
    try:
        for layer in layers:
            layer.momentum = 0.0
        yield layers
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
