"""Inception score (Salimans et al. 2016): IS = exp(E_x KL(p(y|x) || p(y))).

Computed as the authors' evaluation code and OpenAI's reference do: the samples are cut into
`splits` consecutive parts, p(y) is the mean prediction of each part, and the score is reported
as the mean and standard deviation over the parts. The classifier behind p(y|x) decides what the
number means: scores from different classifiers (here MobileNetV2 fine-tuned on CUB, in the paper
Inception-v3 fine-tuned on CUB) are not comparable.
"""

from __future__ import annotations

import numpy as np
from scipy import special


def inception_score(probabilities: np.ndarray, splits: int) -> tuple[float, float]:
    """Mean and (population) standard deviation of the score over `splits` parts.

    `probabilities` is [N, K], each row a distribution over K classes (softmax outputs). Rows are
    split in order, so callers that want class-mixed parts shuffle the rows first.
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"probabilities must be [N, K], got shape {probs.shape}")
    if splits < 1:
        raise ValueError(f"splits must be >= 1, got {splits}")
    if len(probs) < splits:
        raise ValueError(f"{len(probs)} samples cannot be cut into {splits} splits")
    if np.any(probs < 0) or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("each row of probabilities must be non-negative and sum to 1")
    scores = []
    for part in np.array_split(probs, splits):
        marginal = part.mean(axis=0, keepdims=True)
        # rel_entr is p * log(p / q) with 0 * log 0 = 0, so confident rows stay finite
        kl = special.rel_entr(part, marginal).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def inception_score_from_logits(logits: np.ndarray, splits: int) -> tuple[float, float]:
    """`inception_score` of softmax(logits)."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must be [N, K], got shape {logits.shape}")
    return inception_score(special.softmax(logits, axis=1), splits)
