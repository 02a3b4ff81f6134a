"""Inception score against cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stackgan.evaluation.inception_score import inception_score, inception_score_from_logits


def test_identical_uniform_predictions_score_one():
    probs = np.full((12, 5), 1 / 5)
    mean, std = inception_score(probs, splits=3)
    assert mean == pytest.approx(1.0)
    assert std == pytest.approx(0.0)


@pytest.mark.parametrize("num_classes", [2, 7, 50])
def test_confident_predictions_spread_over_k_classes_score_k(num_classes):
    # two rounds of one-hot rows 0..K-1, so each of the two splits holds every class once
    probs = np.tile(np.eye(num_classes), (2, 1))
    mean, std = inception_score(probs, splits=2)
    assert mean == pytest.approx(num_classes)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_fixed_matrix_exact_value():
    # p(y) = [0.75, 0.25]
    # KL(row 1) = 1 * log(1 / 0.75)                        = log(4/3)
    # KL(row 2) = 0.5 * log(0.5 / 0.75) + 0.5 * log(0.5 / 0.25) = 0.5 * log(4/3)
    # IS = exp(mean KL) = exp(0.75 * log(4/3)) = (4/3) ** 0.75
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    mean, std = inception_score(probs, splits=1)
    assert mean == pytest.approx((4 / 3) ** 0.75, rel=1e-12)
    assert std == 0.0


def test_mean_and_std_over_splits():
    # split 1: uniform rows (IS 1); split 2: one-hot rows over two classes (IS 2)
    probs = np.array([[0.5, 0.5], [0.5, 0.5], [1.0, 0.0], [0.0, 1.0]])
    mean, std = inception_score(probs, splits=2)
    assert mean == pytest.approx(1.5)
    assert std == pytest.approx(0.5)


def test_from_logits_applies_softmax():
    logits = np.array([[math.log(3.0), 0.0], [0.0, 0.0]])  # softmax -> [0.75, 0.25], [0.5, 0.5]
    probs = np.array([[0.75, 0.25], [0.5, 0.5]])
    assert inception_score_from_logits(logits, 1) == pytest.approx(inception_score(probs, 1))


def test_score_lies_between_one_and_number_of_classes():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(10, 0.3), size=200)
    mean, _ = inception_score(probs, splits=4)
    assert 1.0 < mean < 10.0


@pytest.mark.parametrize(
    ("probs", "splits", "message"),
    [
        (np.full((4, 2), 0.6), 1, "sum to 1"),
        (np.full((2, 2), 0.5), 3, "cannot be cut into 3 splits"),
        (np.full((4,), 0.25), 1, r"\[N, K\]"),
        (np.full((4, 2), 0.5), 0, "splits must be >= 1"),
    ],
)
def test_bad_input_is_rejected(probs, splits, message):
    with pytest.raises(ValueError, match=message):
        inception_score(probs, splits)
