"""Stage-I training: text -> low-resolution image."""

from __future__ import annotations

import keras
import tensorflow as tf

from stackgan.config import Config
from stackgan.training.conditional_gan import ConditionalGAN


class StageIGAN(ConditionalGAN):
    """`StageIGAN(generator, discriminator, config)`; `compile(d_optimizer, g_optimizer)`, then
    `fit` on batches of `make_train_dataset(..., stage=1, ...)`."""

    def __init__(
        self, generator: keras.Model, discriminator: keras.Model, config: Config, **kwargs
    ):
        kwargs.setdefault("name", "stage1_gan")
        super().__init__(generator, discriminator, config, **kwargs)

    def generate_with_penalty(self, embedding, training: bool, real_image=None):
        embedding = tf.convert_to_tensor(embedding, tf.float32)
        batch = tf.shape(embedding)[0]
        noise = self.per_sample_normal(batch, self.config.model.z_dim)
        ca_noise = self.per_sample_normal(batch, self.config.model.ca_dim)
        fake, mu, log_sigma = self.generator([embedding, noise, ca_noise], training=training)
        return fake, mu, log_sigma, tf.zeros([batch], tf.float32)
