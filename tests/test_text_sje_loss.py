"""The DS-SJE loss against a case worked by hand, and the zero-shot retrieval metric."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from stackgan.text.retrieval import class_mean_embeddings, zero_shot_top1
from stackgan.text.sje_loss import ds_sje_loss


def test_ds_sje_loss_matches_a_hand_computed_case():
    # Pairs 0 and 2 are class 5, pair 1 class 7.
    images = tf.constant([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    texts = tf.constant([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    labels = tf.constant([5, 7, 5])
    # class-mean texts: c5 = (1, 0), c7 = (0, 1); class-mean images: c5 = (1, .5), c7 = (0, 1)
    # image -> text, max_y [Delta + v.t_y] - v.t_true:
    #   v0 = (1, 0): scores (1, 0) -> max(1, 0 + 1) - 1 = 0
    #   v1 = (0, 1): scores (0, 1) -> max(0 + 1, 1) - 1 = 0
    #   v2 = (1, 1): scores (1, 1) -> max(1, 1 + 1) - 1 = 1        mean 1/3
    # text -> image, max_y [Delta + v_y.t] - v_true.t:
    #   t0 = (2, 0): scores (2, 0)  -> max(2, 0 + 1) - 2 = 0
    #   t1 = (0, 1): scores (.5, 1) -> max(.5 + 1, 1) - 1 = .5
    #   t2 = (0, 0): scores (0, 0)  -> max(0, 0 + 1) - 0 = 1       mean 1.5/3
    image_to_text, text_to_image = ds_sje_loss(images, texts, labels)
    assert image_to_text.numpy() == pytest.approx(1 / 3)
    assert text_to_image.numpy() == pytest.approx(0.5)


def test_ds_sje_loss_is_zero_when_every_class_wins_by_the_margin():
    images = tf.constant([[3.0, 0.0], [0.0, 3.0]])
    texts = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    losses = ds_sje_loss(images, texts, tf.constant([0, 1]))
    assert [float(x) for x in losses] == [0.0, 0.0]


def test_ds_sje_loss_gradients_reach_both_sides():
    # each image is closer to the other class's caption: both hinges are active
    images = tf.Variable([[1.0, 0.0], [0.0, 1.0]])
    texts = tf.Variable([[0.0, 1.0], [1.0, 0.0]])
    with tf.GradientTape() as tape:
        loss = tf.add_n(ds_sje_loss(images, texts, tf.constant([0, 1])))
    grad_images, grad_texts = tape.gradient(loss, [images, texts])
    assert float(loss) == pytest.approx(4.0)  # (1 + 1 - 0) per pair, per direction
    # One pair per class, so the class means are the pairs themselves. Image->text is
    # mean_n [1 + v_n.t_other - v_n.t_n], text->image mean_n [1 + t_n.v_other - t_n.v_n]:
    # d/dv_0 = (t_1 - t_0) / 2 + (t_1 - t_0) / 2 = (1, -1), d/dt_0 = (v_1 - v_0) = (-1, 1), and
    # the mirror images for pair 1: each step pulls v_n towards t_n and away from t_other.
    np.testing.assert_allclose(grad_images.numpy(), [[1.0, -1.0], [-1.0, 1.0]])
    np.testing.assert_allclose(grad_texts.numpy(), [[-1.0, 1.0], [1.0, -1.0]])


def test_class_means_group_by_label():
    classes, means = class_mean_embeddings([[0.0, 2.0], [4.0, 0.0], [0.0, 4.0]], [9, 3, 9])
    assert classes.tolist() == [3, 9]
    np.testing.assert_allclose(means, [[4.0, 0.0], [0.0, 3.0]])


def test_zero_shot_top1_classifies_images_by_nearest_class_mean_caption():
    texts = [[1.0, 0.0], [1.0, 0.2], [0.0, 1.0]]  # class 10 mean (1, .1), class 20 (0, 1)
    text_labels = [10, 10, 20]
    images = [[2.0, 0.0], [0.0, 3.0], [1.0, 0.0], [1.0, 0.0]]
    image_labels = [10, 20, 10, 20]  # the last one is misclassified
    result = zero_shot_top1(images, image_labels, texts, text_labels)
    assert result.top1 == pytest.approx(0.75)
    assert result.num_classes == 2 and result.chance == pytest.approx(0.5)
    assert result.as_dict()["images"] == 4


def test_zero_shot_top1_rejects_images_of_classes_without_captions():
    with pytest.raises(ValueError, match=r"classes \[7\]"):
        zero_shot_top1([[1.0, 0.0]], [7], [[1.0, 0.0]], [1])
