"""The evaluator's core with a fake generator and a fake classifier whose scores are known."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from stackgan.config import EvalConfig
from stackgan.evaluation.evaluator import evaluate, to_unit_range
from stackgan.evaluation.fid import fid_from_features

NUM_CLASSES = 4
SIZE = 8


def real_image(image_id: int) -> np.ndarray:
    """uint8 [SIZE, SIZE, 3]: red channel = 50 * class, green varies per image."""
    label = image_id % NUM_CLASSES
    pixel = np.array([50 * label, (37 * image_id) % 256, 90], np.uint8)
    return np.broadcast_to(pixel, (SIZE, SIZE, 3)).copy()


def classify(images: np.ndarray) -> dict[str, np.ndarray]:
    """Features: mean RGB in [-1, 1]; logits: a confident vote for class round(red / 50)."""
    features = images.mean(axis=(1, 2))
    red = (features[:, 0] + 1.0) * 127.5
    label = np.clip(np.rint(red / 50), 0, NUM_CLASSES - 1).astype(int)
    return {"logits": 50.0 * np.eye(NUM_CLASSES)[label], "features": features}


def dataset(num_images: int, captions: int, batch_size: int, ids=None) -> list[dict]:
    """Batches like make_eval_dataset's: one row per (image, caption), an image's rows together,
    for images 1..num_images (or `ids`, in that order). The embedding carries the image id, so a
    fake generator can look the image up."""
    ids = range(1, num_images + 1) if ids is None else ids
    rows = [(i, c) for i in ids for c in range(captions)]
    batches = []
    for start in range(0, len(rows), batch_size):
        part = rows[start : start + batch_size]
        batches.append(
            {
                "image_id": np.array([i for i, _ in part], np.int64),
                "image_high": to_unit_range(np.stack([real_image(i) for i, _ in part])),
                "embedding": np.array([[i, c, 0.0] for i, c in part], np.float32),
                "caption": np.array([f"bird {i} caption {c}".encode() for i, c in part]),
            }
        )
    return batches


def perfect_generator(embeddings: np.ndarray, seed: int) -> np.ndarray:
    return np.stack([real_image(int(i)) for i in embeddings[:, 0]])


def collapsed_generator(embeddings: np.ndarray, seed: int) -> np.ndarray:
    return np.full((len(embeddings), SIZE, SIZE, 3), 128, np.uint8)


class RecordingGenerator:
    """Noise from the seed, so equal seeds give equal images; records every call."""

    def __init__(self):
        self.calls: list[tuple[int, int]] = []

    def __call__(self, embeddings, seed):
        self.calls.append((len(embeddings), seed))
        rng = np.random.default_rng(seed)
        return rng.integers(0, 256, (len(embeddings), SIZE, SIZE, 3), dtype=np.uint8)


CFG = EvalConfig(num_samples=0, is_splits=1, batch_size=5, seed=3, min_inception_score=1.0)


def test_a_generator_that_returns_the_real_images_scores_like_them():
    result = evaluate(dataset(12, 1, 5), perfect_generator, classify, CFG)
    assert result.generated.count == result.real.count == 12
    # 12 images spread evenly over 4 confidently recognised classes: IS = 4
    assert result.generated.inception_score_mean == pytest.approx(4.0, abs=1e-6)
    assert result.real.inception_score_mean == pytest.approx(4.0, abs=1e-6)
    assert result.generated.fid == pytest.approx(0.0, abs=1e-6)


def test_a_collapsed_generator_scores_one_and_a_large_fid():
    result = evaluate(dataset(12, 2, 5), collapsed_generator, classify, CFG)
    assert result.generated.count == 24 and result.real.count == 12
    assert result.generated.inception_score_mean == pytest.approx(1.0)
    real_features = classify(to_unit_range(np.stack([real_image(i) for i in range(1, 13)])))
    gray = np.full((24, 3), 128 / 127.5 - 1.0)
    # all generated features equal: FID = ||mu_real - gray||^2 + Tr(S_real)
    expected = np.sum((real_features["features"].mean(0) - gray[0]) ** 2) + np.trace(
        np.cov(real_features["features"], rowvar=False)
    )
    assert result.generated.fid == pytest.approx(expected, rel=1e-6)  # float32 images


def test_real_images_are_scored_once_each_and_halves_give_the_real_fid():
    result = evaluate(dataset(12, 3, 5), perfect_generator, classify, CFG)
    assert result.real.count == 12 and result.generated.count == 36
    features = classify(to_unit_range(np.stack([real_image(i) for i in range(1, 13)])))["features"]
    # the halves are the first draw of the scoring generator seeded with EvalConfig.seed
    halves = np.array_split(np.random.default_rng(CFG.seed).permutation(12), 2)
    assert result.real.fid == pytest.approx(
        fid_from_features(features[halves[0]], features[halves[1]])
    )


def test_num_samples_caps_generation_in_batches_with_recorded_seeds():
    generator = RecordingGenerator()
    cfg = dataclasses.replace(CFG, num_samples=12)
    result = evaluate(dataset(10, 2, 5), generator, classify, cfg)
    assert [n for n, _ in generator.calls] == [5, 5, 2]
    assert result.batch_seeds == [seed for _, seed in generator.calls]
    assert result.generated.count == 12
    assert result.real.count == 10  # every test image, beyond the generation cap


def test_same_seed_same_scores_other_seed_other_samples():
    first = evaluate(dataset(12, 2, 5), RecordingGenerator(), classify, CFG)
    again = evaluate(dataset(12, 2, 5), RecordingGenerator(), classify, CFG)
    assert first.batch_seeds == again.batch_seeds
    assert dataclasses.asdict(first.generated) == dataclasses.asdict(again.generated)
    np.testing.assert_array_equal(first.sheet_images, again.sheet_images)
    other = evaluate(
        dataset(12, 2, 5), RecordingGenerator(), classify, dataclasses.replace(CFG, seed=4)
    )
    assert other.batch_seeds != first.batch_seeds
    assert other.generated.fid != first.generated.fid


def test_splits_permute_the_class_ordered_samples():
    # 8 images in class order (labels 0 0 1 1 2 2 3 3): in-order halves would each hold 2
    # classes twice and score exactly 2; the evaluator shuffles first, so its halves mix classes
    batches = dataset(0, 1, 4, ids=[4, 8, 1, 5, 2, 6, 3, 7])
    cfg = dataclasses.replace(CFG, is_splits=2)
    result = evaluate(batches, perfect_generator, classify, cfg)
    assert result.generated.count == 8
    assert result.generated.inception_score_mean > 2.0 + 1e-6


def test_sheet_shows_distinct_images_first_with_their_captions():
    result = evaluate(dataset(4, 3, 5), perfect_generator, classify, CFG, sheet_samples=5)
    assert result.sheet_captions == [
        "bird 1 caption 0",
        "bird 2 caption 0",
        "bird 3 caption 0",
        "bird 4 caption 0",
        "bird 1 caption 1",
    ]
    np.testing.assert_array_equal(result.sheet_images[1], real_image(2))


def test_generator_output_is_checked():
    def floats(embeddings, seed):
        return np.zeros((len(embeddings), SIZE, SIZE, 3), np.float32)

    with pytest.raises(
        ValueError, match=r"generate_fn returned float32 \[5, 8, 8, 3\] for batch 0"
    ):
        evaluate(dataset(12, 1, 5), floats, classify, CFG)


def test_too_few_images_is_an_error():
    with pytest.raises(ValueError, match="3 distinct real test images"):
        evaluate(dataset(3, 2, 5), perfect_generator, classify, CFG)
    with pytest.raises(ValueError, match="1 generated samples"):
        evaluate(
            dataset(6, 1, 5), perfect_generator, classify, dataclasses.replace(CFG, num_samples=1)
        )
