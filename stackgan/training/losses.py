"""Matching-aware GAN losses and the Conditioning Augmentation KL term (paper, eq. 3-6).

Everything is PER EXAMPLE here; `average` turns a per-example vector into the loss a replica
differentiates, divided by the GLOBAL batch size, because tf.distribute sums the replicas'
gradients (Keras' optimizer all-reduces with SUM). On one device that is the plain mean.
"""

from __future__ import annotations

import tensorflow as tf


def sigmoid_cross_entropy(logits: tf.Tensor, label: float) -> tf.Tensor:
    """[B,1] logits -> [B] cross-entropy against a constant 0/1 label (no label smoothing)."""
    logits = tf.reshape(tf.cast(logits, tf.float32), [-1])
    return tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.fill(tf.shape(logits), label), logits=logits
    )


def kl_divergence(mu: tf.Tensor, log_sigma: tf.Tensor) -> tf.Tensor:
    """[B]: KL(N(mu, sigma^2) || N(0, I)) of each sample's CA distribution, averaged over the
    Ng dimensions as both official codes do (so their weight 2.0 keeps its meaning).

    The second half of the CA output is log(sigma) (TF), so sigma^2 = exp(2 log_sigma).
    """
    mu = tf.cast(mu, tf.float32)
    log_sigma = tf.cast(log_sigma, tf.float32)
    per_dim = -log_sigma + 0.5 * (-1.0 + tf.exp(2.0 * log_sigma) + tf.square(mu))
    return tf.reduce_mean(per_dim, axis=-1)


def correct_fraction(logits, label: float) -> tf.Tensor:
    """[B] of 0/1: whether D's decision (logit > 0 means "real and matching") is right."""
    logits = tf.reshape(tf.cast(logits, tf.float32), [-1])
    decided_real = logits > 0.0
    return tf.cast(decided_real if label == 1.0 else tf.logical_not(decided_real), tf.float32)


def average(per_example: tf.Tensor) -> tf.Tensor:
    """Mean over the global batch, correct inside a tf.distribute replica too."""
    return tf.nn.compute_average_loss(per_example)
