"""FID against closed forms and an independent matrix square root."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from stackgan.evaluation.fid import feature_statistics, fid_from_features, frechet_distance


def test_feature_set_against_itself_is_zero():
    features = np.random.default_rng(0).normal(size=(500, 16))
    assert fid_from_features(features, features) == pytest.approx(0.0, abs=1e-8)


def test_fewer_samples_than_dimensions_against_itself_is_zero():
    # the covariance is singular (rank 19 in 64 dimensions): the tiny and demo runs hit this
    features = np.random.default_rng(1).normal(size=(20, 64))
    assert fid_from_features(features, features) == pytest.approx(0.0, abs=1e-6)


def test_diagonal_gaussians_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    # = (1 + 0 + 6.25) + ((1 + 9 - 6) + (4 + 1 - 4) + 0) = 12.25
    assert expected == pytest.approx(12.25)
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(12.25)


def test_full_covariances_match_scipy_sqrtm():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    sigma1, sigma2 = a @ a.T + np.eye(6), b @ b.T + np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    expected = (
        np.sum((mu1 - mu2) ** 2)
        + np.trace(sigma1 + sigma2)
        - 2 * np.trace(linalg.sqrtm(sigma1 @ sigma2).real)
    )
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-9)


def test_shifted_features_give_squared_shift():
    # same covariance, means apart by `shift`: FID = ||shift||^2 exactly
    features = np.random.default_rng(3).normal(size=(300, 5))
    shift = np.array([1.0, -2.0, 0.0, 0.5, 3.0])
    assert fid_from_features(features, features + shift) == pytest.approx(14.25, rel=1e-9)


def test_samples_of_two_gaussians_approach_the_closed_form():
    rng = np.random.default_rng(4)
    f1 = rng.normal(loc=0.0, scale=1.0, size=(20000, 3))
    f2 = rng.normal(loc=1.0, scale=2.0, size=(20000, 3))
    # per dimension: (0 - 1)^2 + 1 + 4 - 2 * sqrt(1 * 4) = 2; three dimensions
    assert fid_from_features(f1, f2) == pytest.approx(6.0, abs=0.15)


def test_statistics_are_mean_and_unbiased_covariance():
    features = np.array([[0.0, 0.0], [2.0, 2.0], [4.0, 1.0]])
    mu, sigma = feature_statistics(features)
    np.testing.assert_allclose(mu, [2.0, 1.0])
    np.testing.assert_allclose(sigma, [[4.0, 1.0], [1.0, 1.0]])


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="feature sizes differ"):
        fid_from_features(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        fid_from_features(np.zeros((1, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="covariances must be"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
