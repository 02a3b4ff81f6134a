"""DiffAugment (stackgan/training/augment.py): what D sees, and that G's gradient gets through."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from stackgan.training import augment


def _images(batch=4, size=16):
    rng = np.random.default_rng(0)
    return tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)), tf.float32)


def test_shift_moves_each_image_by_its_own_offset_and_fills_with_grey():
    images = _images()
    offsets = tf.constant([0, 2, -3, 16], tf.int32)
    shifted = augment._shift(images, offsets, axis=1).numpy()
    x = images.numpy()
    np.testing.assert_array_equal(shifted[0], x[0])
    np.testing.assert_array_equal(shifted[1, 2:], x[1, :-2])
    np.testing.assert_array_equal(shifted[1, :2], 0.0)
    np.testing.assert_array_equal(shifted[2, :-3], x[2, 3:])
    np.testing.assert_array_equal(shifted[2, -3:], 0.0)
    np.testing.assert_array_equal(shifted[3], 0.0)  # shifted out of the frame entirely
    columns = augment._shift(images, offsets, axis=2).numpy()
    np.testing.assert_array_equal(columns[1, :, 2:], x[1, :, :-2])


def test_translation_cutout_keeps_colours_and_hides_one_square_per_image():
    images = tf.ones([64, 32, 32, 3]) * tf.constant([0.5, -0.25, 0.75])
    out = augment.augment(images, "translation_cutout", keras.random.SeedGenerator(1)).numpy()
    for image in out:
        kept = np.any(image != 0, axis=-1)
        # every visible pixel keeps its colour: geometry only
        np.testing.assert_allclose(
            image[kept], np.broadcast_to([0.5, -0.25, 0.75], image[kept].shape)
        )
        hidden = (~kept).sum()
        # a cutout of up to 16x16 (clipped at the border) plus up to 4 shifted-in rows/columns
        assert 0 < hidden <= 16 * 16 + 2 * 4 * 32
    # the holes are not all in one place
    assert len({tuple(np.argwhere(~np.any(im != 0, axis=-1)).mean(0).round()) for im in out}) > 8


def test_generator_gradient_flows_through_the_augmentation():
    images = tf.Variable(_images())
    seed = keras.random.SeedGenerator(3)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(augment.augment(images, "translation_cutout", seed) ** 2)
    grad = tape.gradient(loss, images).numpy()
    # the gradient reaches the pixels D saw (most of them) and is exactly 0 on the hidden ones
    assert 0.5 < np.mean(grad != 0) < 1.0


def test_none_is_the_identity_and_unknown_policies_are_refused():
    images = _images()
    assert augment.augment(images, "none", None) is images
    with pytest.raises(ValueError, match="unknown augmentation policy 'colour'"):
        augment.augment(images, "colour", keras.random.SeedGenerator(0))
