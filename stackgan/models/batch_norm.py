"""BatchNormalization that can keep batch statistics while frozen.

Keras sets a BatchNormalization layer with `trainable=False` to inference mode (moving
averages), whatever `training` says. The official StackGAN codes freeze Stage-I while Stage-II
trains but still normalise Stage-I with the statistics of the current batch (TF rebuilds the
graph in training mode; PT never calls `.eval()` on it). `FreezableBatchNorm` lets the Stage-II
trainer choose: with `batch_statistics_when_frozen` set, a frozen layer normalises with the
batch's moments and never writes its moving averages, so its weights stay bit-identical.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="stackgan")
class FreezableBatchNorm(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization`, plus batch statistics in frozen training mode."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Runtime switch, not part of the saved config: the trainer that freezes the layer
        # decides (see StageIIGAN and ModelConfig.frozen_stage1_batchnorm).
        self.batch_statistics_when_frozen = False

    def call(self, inputs, training=None, mask=None):
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

    `forward()` runs one batch through `model` with `training=True`. Why: a GAN's weights move
    fast, so moving averages with momentum 0.9 mix statistics of older weights. Inference with
    them drifts from what training saw; in Stage-II's generator that drift paints stripes.
    """
    layers = [
        layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)
    ]
    momenta = [layer.momentum for layer in layers]
    try:
        for k in range(batches):
            # momentum k / (k + 1) makes the moving value the running mean of the batches'
            for layer in layers:
                layer.momentum = k / (k + 1)
            forward()
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
    return len(layers)
