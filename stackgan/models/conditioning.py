"""Conditioning Augmentation (paper, section 3.1).

The text embedding goes through one fully connected layer to 2 * Ng values, split into mu and
log(sigma); the condition is c = mu + sigma * eps with eps ~ N(0, I) drawn PER SAMPLE by the
caller and fed in as a model input, so training, evaluation and serving control randomness the
same way. mu and log(sigma) are model outputs too: the trainer's KL term needs exactly these.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from stackgan.config import ModelConfig
from stackgan.models.blocks import LEAKY_SLOPE, weight_init


@keras.saving.register_keras_serializable(package="stackgan")
class ConditioningAugmentation(layers.Layer):
    """[embedding f32[B,E], eps f32[B,Ng]] -> (c, mu, log_sigma), each f32[B,Ng]."""

    def __init__(self, ca_dim: int, activation: str = "leaky_relu", **kwargs):
        super().__init__(**kwargs)
        if activation not in ("leaky_relu", "relu"):
            raise ValueError(
                f"ModelConfig.ca_activation must be 'leaky_relu' or 'relu', got {activation!r}"
            )
        self.ca_dim = ca_dim
        self.activation = activation
        self.fc = layers.Dense(
            2 * ca_dim, kernel_initializer=weight_init(), name="fc", dtype=self.dtype_policy
        )

    def build(self, input_shape):
        embedding_shape, _ = input_shape
        self.fc.build(embedding_shape)

    def call(self, inputs):
        embedding, eps = inputs
        h = self.fc(embedding)
        # TF: LeakyReLU(0.2); PT: ReLU (which makes log_sigma >= 0, i.e. sigma >= 1).
        if self.activation == "leaky_relu":
            h = ops.leaky_relu(h, negative_slope=LEAKY_SLOPE)
        else:
            h = ops.relu(h)
        # mu, log_sigma and c in float32 even under mixed precision: they feed the KL term
        # and exp() overflows float16 early.
        h = ops.cast(h, "float32")
        mu = h[:, : self.ca_dim]
        log_sigma = h[:, self.ca_dim :]
        c = mu + ops.exp(log_sigma) * ops.cast(eps, "float32")
        return c, mu, log_sigma

    def compute_output_shape(self, input_shape):
        batch = input_shape[0][0]
        return ((batch, self.ca_dim),) * 3

    def compute_output_spec(self, inputs):
        embedding, _ = inputs
        # three distinct tensors: one shared object would alias all three outputs
        shape = (embedding.shape[0], self.ca_dim)
        return tuple(keras.KerasTensor(shape, dtype="float32") for _ in range(3))

    def get_config(self):
        return {**super().get_config(), "ca_dim": self.ca_dim, "activation": self.activation}


def conditioning_augmentation(embedding, ca_noise, model_cfg: ModelConfig, name: str, dtype=None):
    """Functional helper: returns the tensors (c, mu, log_sigma)."""
    return ConditioningAugmentation(
        model_cfg.ca_dim, model_cfg.ca_activation, name=name, dtype=dtype
    )([embedding, ca_noise])
