"""Differentiable augmentation of every image the discriminator sees (DiffAugment, Zhao et al.
2020): later work, not the paper, for GANs trained on a few hundred images.

With little data D memorises the real images (the demo's D rejects every mismatched real pair
from a few hundred steps on) and its gradient stops telling G anything useful. DiffAugment
applies the same random transformations to real, mismatched and generated images, before D,
in D's update and G's alike; being differentiable, G's gradient flows through them, and G is
never asked to draw the augmented images themselves.

Only geometric policies are offered: colour is what the captions describe, so shifting the
colours of the real image would teach D that a blue bird matches "a red bird".
"""

from __future__ import annotations

import keras
import tensorflow as tf

POLICIES = ("none", "translation_cutout")
# DiffAugment's defaults: shifts up to 1/8 of the side, one square hole of half the side
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def _shift(images: tf.Tensor, offsets: tf.Tensor, axis: int) -> tf.Tensor:
    """Shifts each image by its integer offset along `axis` (1 = rows, 2 = columns), filling
    the vacated pixels with 0 (mid-grey in [-1, 1]), as DiffAugment pads."""
    size = tf.shape(images)[axis]
    source = tf.range(size)[None, :] - offsets[:, None]  # [B, size]: the pixel each one reads
    inside = tf.logical_and(source >= 0, source < size)
    gathered = tf.gather(images, tf.clip_by_value(source, 0, size - 1), axis=axis, batch_dims=1)
    mask = tf.cast(inside, images.dtype)
    mask = mask[:, :, None, None] if axis == 1 else mask[:, None, :, None]
    return gathered * mask


def translation(images: tf.Tensor, seed: keras.random.SeedGenerator) -> tf.Tensor:
    """Random shift of each image by up to TRANSLATION_RATIO of its side, rows and columns."""
    batch, size = tf.shape(images)[0], tf.shape(images)[1]
    reach = tf.cast(tf.cast(size, tf.float32) * TRANSLATION_RATIO + 0.5, tf.int32)
    offsets = keras.random.randint((2, batch), -reach, reach + 1, seed=seed, dtype="int32")
    return _shift(_shift(images, offsets[0], axis=1), offsets[1], axis=2)


def cutout(images: tf.Tensor, seed: keras.random.SeedGenerator) -> tf.Tensor:
    """Zeroes one square of CUTOUT_RATIO x the side per image, at a random centre."""
    batch, size = tf.shape(images)[0], tf.shape(images)[1]
    half = tf.cast(tf.cast(size, tf.float32) * CUTOUT_RATIO / 2 + 0.5, tf.int32)
    centres = keras.random.randint((2, batch), 0, size, seed=seed, dtype="int32")
    grid = tf.range(size)[None, :]
    rows = tf.abs(grid - centres[0][:, None]) < half  # [B, size]
    cols = tf.abs(grid - centres[1][:, None]) < half
    hole = tf.logical_and(rows[:, :, None], cols[:, None, :])  # [B, size, size]
    return images * tf.cast(tf.logical_not(hole), images.dtype)[..., None]


def augment(images: tf.Tensor, policy: str, seed: keras.random.SeedGenerator) -> tf.Tensor:
    """`images` f32[B,S,S,C] after `policy` (one of POLICIES); "none" returns them unchanged."""
    if policy == "none":
        return images
    if policy == "translation_cutout":
        return cutout(translation(images, seed), seed)
    raise ValueError(f"unknown augmentation policy {policy!r}; choose one of {POLICIES}")
