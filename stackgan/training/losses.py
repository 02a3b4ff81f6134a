"""Matching-aware GAN losses and the Conditioning Augmentation KL term (paper, eq. 3-6).

Everything is PER EXAMPLE here; `average` turns a per-example vector into the loss a replica
differentiates, divided by the GLOBAL batch size, because tf.distribute sums the replicas'
gradients (Keras' optimizer all-reduces with SUM). On one device that is the plain mean.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf


def sigmoid_cross_entropy(logits: tf.Tensor, label: float) -> tf.Tensor:
    """[B,1] logits -> [B] cross-entropy against a constant 0/1 label (no label smoothing)."""
    logits = tf.reshape(tf.cast(logits, tf.float32), [-1])
    return tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.fill(tf.shape(logits), label), logits=logits
    )


def hinge(logits: tf.Tensor, label: float) -> tf.Tensor:
    """[B,1] logits -> [B] D's hinge loss (Lim & Ye 2017; SAGAN, BigGAN): max(0, 1 - l) for
    label 1, max(0, 1 + l) for label 0, so D stops pushing a pair once it is past the margin."""
    logits = tf.reshape(tf.cast(logits, tf.float32), [-1])
    return tf.nn.relu(1.0 - logits if label == 1.0 else 1.0 + logits)


def d_term(logits: tf.Tensor, label: float, kind: str) -> tf.Tensor:
    """[B] discriminator loss of one pair type under `TrainConfig.gan_loss`."""
    return hinge(logits, label) if kind == "hinge" else sigmoid_cross_entropy(logits, label)


def g_term(logits: tf.Tensor, kind: str) -> tf.Tensor:
    """[B] generator loss on its fakes: non-saturating cross-entropy, or hinge's -logit."""
    if kind == "hinge":
        return -tf.reshape(tf.cast(logits, tf.float32), [-1])
    return sigmoid_cross_entropy(logits, 1.0)


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


def box_downscale(high: tf.Tensor, size: int) -> tf.Tensor:
    """[B,S,S,C] -> [B,size,size,C] float32: each output pixel the mean of its S/size square."""
    factor = high.shape[1] // size
    return tf.nn.avg_pool2d(tf.cast(high, tf.float32), factor, factor, "VALID")


def gaussian_blur(images: tf.Tensor, sigma: float) -> tf.Tensor:
    """[B,H,W,C] float32 blurred by a separable Gaussian of `sigma` pixels (kernel radius
    ceil(3 sigma), edges mirrored, so a flat image stays flat); sigma 0 returns the images."""
    images = tf.cast(images, tf.float32)
    if sigma <= 0:
        return images
    radius = math.ceil(3 * sigma)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = tf.constant(taps / taps.sum(), tf.float32)
    channels = images.shape[-1]
    across = tf.tile(tf.reshape(taps, [1, -1, 1, 1]), [1, 1, channels, 1])
    down = tf.reshape(across, [-1, 1, channels, 1])
    padded = tf.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], "SYMMETRIC")
    rows = tf.nn.depthwise_conv2d(padded, across, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(rows, down, [1, 1, 1, 1], "VALID")


def mean_l1(image: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """[B]: mean |image - target| per example."""
    difference = tf.cast(image, tf.float32) - tf.cast(target, tf.float32)
    return tf.reduce_mean(tf.abs(difference), axis=[1, 2, 3])


def downscaled_l1(high: tf.Tensor, low: tf.Tensor) -> tf.Tensor:
    """[B]: mean |box-downscale(high) - low|, pixels in [-1, 1]. A Stage-II image whose
    low-frequency content (colours, layout) is that of its Stage-I input scores 0."""
    return mean_l1(box_downscale(high, low.shape[1]), low)


def color_moments(high: tf.Tensor, low: tf.Tensor) -> tf.Tensor:
    """[B]: StackGAN++'s colour-consistency term (Zhang et al. 2018, eq. 9): the squared
    distance between the two images' mean pixel colours plus 5x that between their 3x3 pixel
    covariances. It constrains the colours, not where they are."""

    def moments(images):
        pixels = tf.reshape(tf.cast(images, tf.float32), [tf.shape(images)[0], -1, 3])
        mean = tf.reduce_mean(pixels, axis=1, keepdims=True)
        centred = pixels - mean
        count = tf.cast(tf.shape(pixels)[1], tf.float32)
        return tf.squeeze(mean, 1), tf.matmul(centred, centred, transpose_a=True) / count

    mean_h, cov_h = moments(high)
    mean_l, cov_l = moments(low)
    return tf.reduce_sum(tf.square(mean_h - mean_l), -1) + 5.0 * tf.reduce_sum(
        tf.square(cov_h - cov_l), [-2, -1]
    )


CONSISTENCY_LOSSES = {"downscaled_l1": downscaled_l1, "color_moments": color_moments}
