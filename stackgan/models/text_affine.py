"""Text fused into every up-block of the Stage-I generator (`model.generator_text_fusion`).

Why: the paper's generator sees the text condition once, concatenated with the noise before
its first layer, and must carry which colour goes on which part through every up-block. Later
text-to-image GANs feed the condition to each block as a per-channel scale and shift of the
normalised features: conditional BatchNorm (de Vries et al. 2017; BigGAN), DF-GAN's deep fusion
(Tao et al. 2022). Here the scale and shift come from linear maps, initialised to zero (so a
fresh generator computes what the paper's does), of the caption's code: the Conditioning
Augmentation's mean, as DF-GAN fuses the sentence vector itself. Fused from the CA's noisy
sample instead, the demo's Stage-I named the training species less often (class top-1
0.370-0.465 against 0.495-0.540 from the mean, seeds 0-2; docs/EXPERIMENTS.md, "Text in every
up-block").
"""

from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="stackgan")
class TextAffine(keras.layers.Layer):
    """[features [B, H, W, C], scale [B, C], shift [B, C]] -> features * (1 + scale) + shift,
    the same scale and shift at every position of a sample."""

    def call(self, inputs):
        features, scale, shift = inputs
        scale = ops.expand_dims(ops.expand_dims(scale, 1), 1)
        shift = ops.expand_dims(ops.expand_dims(shift, 1), 1)
        return features * (1.0 + scale) + shift

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def text_affine(x, condition, name: str, dtype=None):
    """`x` scaled and shifted per channel by linear maps of `condition` (zero at the start)."""
    channels = x.shape[-1]

    def linear(suffix: str):
        return layers.Dense(
            channels, kernel_initializer="zeros", name=f"{name}_{suffix}", dtype=dtype
        )(condition)

    return TextAffine(name=name, dtype=dtype)([x, linear("scale"), linear("shift")])
