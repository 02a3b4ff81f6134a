"""The text -> image chain, written once: Stage-I paints a low-resolution image from the
caption embedding and its noise; Stage-II, when there is one, refines that image with its own
Conditioning Augmentation noise. Stage-II training (StageIIGAN), the sample sheets and the
serving export all generate through `generate_chain`."""

from __future__ import annotations

import keras
import tensorflow as tf


def generate_chain(
    stage1: keras.Model,
    stage2: keras.Model | None,
    embedding,
    noise,
    ca_noise,
    ca_noise_2=None,
    *,
    training: bool = False,
):
    """-> (Stage-I's (image, mu, log_sigma), Stage-II's (image, mu, log_sigma) or None).

    Stage-II sees Stage-I's image without gradient: Stage-I stays frozen while Stage-II trains.
    """
    # Keras refuses a call that mixes NumPy arrays with the tensors Stage-I returns
    embedding, noise, ca_noise = (tf.convert_to_tensor(x) for x in (embedding, noise, ca_noise))
    low = stage1([embedding, noise, ca_noise], training=training)
    if stage2 is None:
        return low, None
    ca_noise_2 = tf.convert_to_tensor(ca_noise_2)
    high = stage2([tf.stop_gradient(low[0]), embedding, ca_noise_2], training=training)
    return low, high
