"""The evaluator's core and push gate with fake generators and a fake classifier whose scores
are known."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from stackgan.config import EvalConfig
from stackgan.data.synth_text import PALETTE
from stackgan.evaluation.evaluator import evaluate, judge, to_unit_range
from stackgan.evaluation.fid import fid_from_features
from stackgan.evaluation.refinement import (
    consistency_mad,
    detail_gain,
    edge_sharpness_gain,
    frame_contrast,
)

NUM_CLASSES = 4
CLASS_IDS = list(range(NUM_CLASSES))  # the fake classifier's logit i is class i
SIZE = 8


def label_of(image_id: int) -> int:
    return image_id % NUM_CLASSES


def real_image(image_id: int, label: int | None = None) -> np.ndarray:
    """uint8 [SIZE, SIZE, 3]: red channel = 50 * class, green varies per image."""
    label = label_of(image_id) if label is None else label
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
                "label": np.array([label_of(i) for i, _ in part], np.int64),
                "image_high": to_unit_range(np.stack([real_image(i) for i, _ in part])),
                "embedding": np.array([[i, c, 0.0] for i, c in part], np.float32),
                "caption": np.array([f"bird {i} caption {c}".encode() for i, c in part]),
            }
        )
    return batches


def stage1(images: np.ndarray) -> dict[str, np.ndarray]:
    """What a Stage-I-only generator's `generate` returns."""
    return {"image_64": images}


def perfect_generator(embeddings: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    return stage1(np.stack([real_image(int(i)) for i in embeddings[:, 0]]))


def collapsed_generator(embeddings: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    return stage1(np.full((len(embeddings), SIZE, SIZE, 3), 128, np.uint8))


def three_in_four_generator(embeddings: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The caption's class for captions 0-2 of an image, the next class for caption 3."""
    return stage1(
        np.stack(
            [
                real_image(int(i), (label_of(int(i)) + (int(c) == 3)) % NUM_CLASSES)
                for i, c in embeddings[:, :2]
            ]
        )
    )


class RecordingGenerator:
    """Noise from the seed, so equal seeds give equal images; records every call."""

    def __init__(self):
        self.calls: list[tuple[int, int]] = []

    def __call__(self, embeddings, seed):
        self.calls.append((len(embeddings), seed))
        rng = np.random.default_rng(seed)
        return stage1(rng.integers(0, 256, (len(embeddings), SIZE, SIZE, 3), dtype=np.uint8))


class TwoStageGenerator:
    """Stage-I: noise from the seed; Stage-II (4x larger): Stage-I's pixels repeated 4x4
    ("consistent", what a refiner that changes nothing gives) or unrelated noise. Keeps every
    pair it returned."""

    def __init__(self, consistent: bool):
        self.consistent = consistent
        self.pairs: list[tuple[np.ndarray, np.ndarray]] = []

    def __call__(self, embeddings, seed):
        rng = np.random.default_rng(seed)
        low = rng.integers(0, 256, (len(embeddings), SIZE, SIZE, 3), dtype=np.uint8)
        if self.consistent:
            high = low.repeat(4, axis=1).repeat(4, axis=2)
        else:
            high = rng.integers(0, 256, (len(embeddings), 4 * SIZE, 4 * SIZE, 3), dtype=np.uint8)
        self.pairs.append((low, high))
        return {"image_64": low, "image_256": high}


CFG = EvalConfig(
    num_samples=0,
    is_splits=1,
    batch_size=5,
    seed=3,
    min_class_accuracy_ratio=0.5,
    baseline_tolerance=0.02,
)


def test_a_generator_that_returns_the_real_images_scores_like_them():
    result = evaluate(dataset(12, 1, 5), perfect_generator, classify, CFG, CLASS_IDS)
    assert result.generated.count == result.real.count == 12
    # 12 images spread evenly over 4 confidently recognised classes: IS = 4
    assert result.generated.inception_score_mean == pytest.approx(4.0, abs=1e-6)
    assert result.real.inception_score_mean == pytest.approx(4.0, abs=1e-6)
    assert result.generated.fid == pytest.approx(0.0, abs=1e-6)


def test_a_collapsed_generator_scores_one_and_a_large_fid():
    result = evaluate(dataset(12, 2, 5), collapsed_generator, classify, CFG, CLASS_IDS)
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
    result = evaluate(dataset(12, 3, 5), perfect_generator, classify, CFG, CLASS_IDS)
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
    result = evaluate(dataset(10, 2, 5), generator, classify, cfg, CLASS_IDS)
    assert [n for n, _ in generator.calls] == [5, 5, 2]
    assert result.batch_seeds == [seed for _, seed in generator.calls]
    assert result.generated.count == 12
    assert result.real.count == 10  # every test image, beyond the generation cap


def test_progress_follows_the_generated_batches():
    calls = []
    cfg = dataclasses.replace(CFG, num_samples=12)
    evaluate(dataset(10, 2, 5), RecordingGenerator(), classify, cfg, CLASS_IDS,
             progress=lambda done, total: calls.append((done, total)))  # fmt: skip
    assert calls == [(1, 3), (2, 3), (3, 3)]  # 12 captions, batches of 5


def test_num_samples_are_spread_over_the_class_ordered_split():
    # 12 images in class order (labels 0 0 0 1 1 1 ...), 2 captions each: the first 8 pairs
    # would be 6 of class 0 and 2 of class 1; 8 evenly spaced pairs are 2 of each class
    ids = [4, 8, 12, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    seen = []

    def recording(embeddings, seed):
        seen.extend((int(i), int(c)) for i, c in embeddings[:, :2])
        return perfect_generator(embeddings, seed)

    cfg = dataclasses.replace(CFG, num_samples=8)
    result = evaluate(dataset(0, 2, 5, ids=ids), recording, classify, cfg, CLASS_IDS)
    assert seen == [(4, 0), (8, 1), (1, 0), (5, 1), (2, 0), (6, 1), (3, 0), (7, 1)]
    assert result.chance == pytest.approx(0.25)
    assert result.real.count == 12


def test_same_seed_same_scores_other_seed_other_samples():
    first = evaluate(dataset(12, 2, 5), RecordingGenerator(), classify, CFG, CLASS_IDS)
    again = evaluate(dataset(12, 2, 5), RecordingGenerator(), classify, CFG, CLASS_IDS)
    assert first.batch_seeds == again.batch_seeds
    assert dataclasses.asdict(first.generated) == dataclasses.asdict(again.generated)
    np.testing.assert_array_equal(first.sheet_images, again.sheet_images)
    other = evaluate(
        dataset(12, 2, 5),
        RecordingGenerator(),
        classify,
        dataclasses.replace(CFG, seed=4),
        CLASS_IDS,
    )
    assert other.batch_seeds != first.batch_seeds
    assert other.generated.fid != first.generated.fid


def test_splits_permute_the_class_ordered_samples():
    # 8 images in class order (labels 0 0 1 1 2 2 3 3): in-order halves would each hold 2
    # classes twice and score exactly 2; the evaluator shuffles first, so its halves mix classes
    batches = dataset(0, 1, 4, ids=[4, 8, 1, 5, 2, 6, 3, 7])
    cfg = dataclasses.replace(CFG, is_splits=2)
    result = evaluate(batches, perfect_generator, classify, cfg, CLASS_IDS)
    assert result.generated.count == 8
    assert result.generated.inception_score_mean > 2.0 + 1e-6


def test_sheet_shows_distinct_images_first_with_their_captions():
    result = evaluate(
        dataset(4, 3, 5), perfect_generator, classify, CFG, CLASS_IDS, sheet_samples=5
    )
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
        return stage1(np.zeros((len(embeddings), SIZE, SIZE, 3), np.float32))

    with pytest.raises(
        ValueError, match=r"generate_fn returned float32 \[5, 8, 8, 3\] for image_64 of batch 0"
    ):
        evaluate(dataset(12, 1, 5), floats, classify, CFG, CLASS_IDS)

    def unnamed(embeddings, seed):
        return {"image": perfect_generator(embeddings, seed)["image_64"]}

    with pytest.raises(ValueError, match=r"generate_fn returned \['image'\] for batch 0"):
        evaluate(dataset(12, 1, 5), unnamed, classify, CFG, CLASS_IDS)


def test_too_few_images_is_an_error():
    with pytest.raises(ValueError, match="3 distinct real test images"):
        evaluate(dataset(3, 2, 5), perfect_generator, classify, CFG, CLASS_IDS)
    with pytest.raises(ValueError, match="1 generated samples"):
        evaluate(
            dataset(6, 1, 5),
            perfect_generator,
            classify,
            dataclasses.replace(CFG, num_samples=1),
            CLASS_IDS,
        )


def test_class_accuracy_of_generated_images_against_their_captions_class():
    # 12 images x 4 captions; caption 3 of every image gets a bird of the next class
    result = evaluate(dataset(12, 4, 5), three_in_four_generator, classify, CFG, CLASS_IDS)
    assert (result.generated.top1_correct, result.generated.count) == (36, 48)
    assert result.generated.top1_accuracy == pytest.approx(0.75)
    assert (result.real.top1_correct, result.real.count) == (12, 12)
    assert result.real.top1_accuracy == 1.0
    assert result.chance == pytest.approx(0.25)  # 4 balanced classes
    row = result.table()[0]
    assert (row["top1_correct"], row["top1_accuracy"]) == (36, 0.75)


def test_class_ids_map_labels_to_logits_in_the_classifiers_order():
    order = [2, 0, 3, 1]  # logit k of this classifier is class order[k]

    def reordered(images):
        outputs = classify(images)
        return {"logits": outputs["logits"][:, order], "features": outputs["features"]}

    right = evaluate(dataset(12, 1, 5), perfect_generator, reordered, CFG, order)
    assert right.generated.top1_accuracy == right.real.top1_accuracy == 1.0
    # read in the natural order, the same logits name the wrong class for every image
    wrong = evaluate(dataset(12, 1, 5), perfect_generator, reordered, CFG, CLASS_IDS)
    assert wrong.generated.top1_correct == wrong.real.top1_correct == 0


def test_a_classifier_without_a_test_class_is_an_error():
    with pytest.raises(ValueError, match=r"does not cover test class\(es\) \[3\]"):
        evaluate(dataset(12, 1, 5), perfect_generator, classify, CFG, [0, 1, 2])


def test_refinement_scores_pair_each_batchs_stage1_and_stage2_images():
    consistent = TwoStageGenerator(consistent=True)
    result = evaluate(dataset(12, 1, 5), consistent, classify, CFG, CLASS_IDS)
    scores = result.refinement
    assert (scores.count, scores.stage1_size, scores.stage2_size) == (12, SIZE, 4 * SIZE)
    # Stage-II's 4x4 blocks average back to Stage-I exactly
    assert scores.consistency_mad == pytest.approx(0.0, abs=1e-4)
    # batches of 5, 5 and 2: the mean of the batches' gains weighted by their size
    for name, measure in (
        ("detail_gain", detail_gain),
        ("edge_sharpness_gain", edge_sharpness_gain),
    ):
        expected = sum(measure(low, high) * len(low) for low, high in consistent.pairs) / 12
        assert getattr(scores, name) == pytest.approx(expected)
    assert result.sheet_images.shape[1] == 4 * SIZE  # Stage-II's images are the ones scored

    unrelated = TwoStageGenerator(consistent=False)
    other = evaluate(dataset(12, 1, 5), unrelated, classify, CFG, CLASS_IDS).refinement
    lows, highs = (np.concatenate(images) for images in zip(*unrelated.pairs, strict=True))
    assert other.consistency_mad == pytest.approx(consistency_mad(lows, highs), rel=1e-5)
    assert other.consistency_mad > 40  # independent uniform noise, after 4x4 averaging
    assert other.detail_gain > scores.detail_gain
    assert other.edge_sharpness_gain > scores.edge_sharpness_gain


def _edge_image(width: float, size: int = 64) -> np.ndarray:
    """uint8 [1, size, size, 3]: dark left, light right, the step spread over `width` px."""
    ramp = np.clip((np.arange(size) - size / 2 + 0.5) / width + 0.5, 0.0, 1.0) * 200 + 20
    return np.broadcast_to(ramp[None, None, :, None], (1, size, size, 3)).astype(np.uint8)


def test_edge_sharpness_sees_narrower_edges_that_detail_gain_cannot():
    low = np.asarray(tf.image.resize(_edge_image(8.0), (16, 16), method="area")).astype(np.uint8)
    sharp, as_upsampled = _edge_image(1.0), _edge_image(8.0)
    # a monotone step carries the same total variation however wide it is
    assert detail_gain(low, sharp) == pytest.approx(detail_gain(low, as_upsampled), rel=0.05)
    # its gradient energy grows as it narrows: 8x narrower -> ~8x
    ratio = edge_sharpness_gain(low, sharp) / edge_sharpness_gain(low, as_upsampled)
    assert 6.0 < ratio < 10.0
    # bicubic upsampling of Stage-I itself scores 1 on both
    upsampled = np.asarray(tf.image.resize(low.astype(np.float32), (64, 64), method="bicubic"))
    upsampled = upsampled.clip(0, 255).round().astype(np.uint8)
    assert detail_gain(low, upsampled) == pytest.approx(1.0, abs=0.02)
    assert edge_sharpness_gain(low, upsampled) == pytest.approx(1.0, abs=0.03)


def test_frame_contrast_sees_a_frame_and_not_a_scene_running_to_the_border():
    rng = np.random.default_rng(0)
    ys = np.linspace(0, 200, 32)[None, :, None, None]
    sky = np.broadcast_to(ys, (4, 32, 32, 3)) + rng.normal(0, 2, (4, 32, 32, 3))
    framed = sky.copy()
    framed[:, :2], framed[:, -2:], framed[:, :, :2], framed[:, :, -2:] = 255, 255, 255, 255
    # a gradient running on to the border: only its slope and noise, a few levels
    assert frame_contrast(sky) < 15
    assert frame_contrast(framed) > 5 * frame_contrast(sky)
    # one side framed counts a quarter as much as all four
    left = sky.copy()
    left[:, :, :2] = 255
    assert frame_contrast(left) < frame_contrast(framed) / 2


def test_a_stage1_only_generator_has_no_refinement_scores():
    result = evaluate(dataset(12, 1, 5), perfect_generator, classify, CFG, CLASS_IDS)
    assert result.refinement is None


def _with_top1(result, generated: float, real: float):
    """`result` with the given generated and real top-1 (for the gate's boundaries)."""
    return dataclasses.replace(
        result,
        generated=dataclasses.replace(result.generated, top1_accuracy=generated),
        real=dataclasses.replace(result.real, top1_accuracy=real),
    )


@pytest.fixture(scope="module")
def three_in_four():
    return evaluate(dataset(12, 4, 5), three_in_four_generator, classify, CFG, CLASS_IDS)


def test_gate_blesses_at_the_ratio_and_refuses_below(three_in_four):
    # chance 0.25 (4 classes), real top-1 1.0: ratio 2/3 asks for 0.25 + 2/3 x 0.75 = 0.75
    assert three_in_four.chance == pytest.approx(0.25)
    at = judge(three_in_four, dataclasses.replace(CFG, min_class_accuracy_ratio=2 / 3))
    assert at.blessed and at.reasons == () and at.required_top1 == pytest.approx(0.75)
    above = judge(three_in_four, dataclasses.replace(CFG, min_class_accuracy_ratio=0.68))
    assert not above.blessed
    assert above.message == (
        "generated top-1 0.750 (36/48) < chance 0.250 + 0.68 x (real top-1 1.000 - chance) = 0.760"
    )
    # the bar scales with the classifier's own top-1 on real images: 0.25 + 0.5 x 1.0 = 0.75
    weaker = judge(_with_top1(three_in_four, 0.75, 1.25), CFG)
    assert weaker.blessed
    # 0.25 + 0.9 x (0.4 - 0.25) is reached by 0.385, whatever floating point makes of it
    ninety = dataclasses.replace(CFG, min_class_accuracy_ratio=0.9)
    assert judge(_with_top1(three_in_four, 0.385, 0.4), ninety).blessed


def test_gate_measures_the_ratio_from_chance():
    """A fifth of the real top-1 lies below chance among 4 classes; a fifth of the way from
    chance to it does not: a generator barely above chance is refused (the real CUB sample's 5
    species: generated 0.285, chance 0.2, real 0.8)."""
    result = evaluate(dataset(12, 2, 5), collapsed_generator, classify, CFG, CLASS_IDS)
    fifth = dataclasses.replace(CFG, min_class_accuracy_ratio=0.2)
    barely = judge(_with_top1(result, 0.30, 1.0), fifth)
    assert barely.required_top1 == pytest.approx(0.25 + 0.2 * 0.75)
    assert barely.reasons == (
        "generated top-1 0.300 (6/24) < chance 0.250 + 0.2 x (real top-1 1.000 - chance) = 0.400",
    )
    assert judge(_with_top1(result, 0.40, 1.0), fifth).blessed


def test_chance_is_the_largest_class_share_so_always_drawing_that_class_is_refused():
    """Captions of unbalanced classes (4 images of class 0, one each of 1-3): chance is 8/14,
    what always drawing class 0 scores, not 1/4. Measured from 1/4, that generator would be
    blessed at any small ratio."""
    ids = [4, 8, 12, 16, 1, 2, 3]  # labels 0 0 0 0 1 2 3

    def always_class_0(embeddings, seed):
        return stage1(np.stack([real_image(0, 0)] * len(embeddings)))

    result = evaluate(dataset(0, 2, 5, ids=ids), always_class_0, classify, CFG, CLASS_IDS)
    assert result.chance == pytest.approx(8 / 14)
    assert result.generated.top1_accuracy == pytest.approx(8 / 14)
    verdict = judge(result, dataclasses.replace(CFG, min_class_accuracy_ratio=0.05))
    assert not verdict.blessed
    assert verdict.reasons[-1] == (
        "generated top-1 0.571 is not above chance 0.571 (the largest class share among the"
        " captions)"
    )


def test_gate_refuses_a_generator_that_ignores_the_caption():
    # every image the same grey bird: right only for the class the classifier calls it
    result = evaluate(dataset(12, 2, 5), collapsed_generator, classify, CFG, CLASS_IDS)
    assert result.generated.top1_accuracy == pytest.approx(result.chance) == pytest.approx(0.25)
    verdict = judge(result, EvalConfig())  # the default ratio, 0.5
    assert verdict.reasons == (
        "generated top-1 0.250 (6/24) < chance 0.250 + 0.5 x (real top-1 1.000 - chance) = 0.625",
        "generated top-1 0.250 is not above chance 0.250 (the largest class share among the"
        " captions)",
    )
    # a classifier no better than chance on real images (0.2) puts the ratio's bar below
    # chance: chance still holds
    weak = judge(_with_top1(result, 0.25, 0.2), EvalConfig())
    assert weak.reasons == verdict.reasons[1:]
    assert judge(_with_top1(result, 0.26, 0.2), EvalConfig()).blessed
    # ratio 0 (the tiny profile) turns both checks off
    off = dataclasses.replace(CFG, min_class_accuracy_ratio=0.0)
    assert judge(_with_top1(result, 0.0, 1.0), off).blessed


def test_gate_against_the_last_blessed_model(three_in_four):
    better = _with_top1(three_in_four, 0.80, 1.0)
    refused = judge(three_in_four, CFG, baseline=better)
    assert not refused.blessed
    assert refused.baseline_required_top1 == pytest.approx(0.78)
    assert refused.message == (
        "generated top-1 0.750 < the last blessed model's 0.800 - 0.02 = 0.780"
    )
    # within the tolerance: 0.77 - 0.02 = 0.75
    assert judge(three_in_four, CFG, baseline=_with_top1(three_in_four, 0.77, 1.0)).blessed
    worse = judge(three_in_four, CFG, baseline=_with_top1(three_in_four, 0.5, 1.0))
    assert worse.blessed and worse.baseline_required_top1 == pytest.approx(0.48)
    # both the ratio and the baseline fail (0.3 is above chance 0.25): both reasons are given
    both = judge(_with_top1(three_in_four, 0.3, 1.0), CFG, baseline=better)
    assert [reason.split(" < ")[1][:8] for reason in both.reasons] == ["chance 0", "the last"]


def test_comparison_shows_each_classs_real_image_with_its_stage1_and_stage2_images():
    generator = TwoStageGenerator(consistent=True)
    result = evaluate(dataset(12, 2, 5), generator, classify, CFG, CLASS_IDS, sheet_samples=8)
    comparison = result.comparison
    # one sample per class (NUM_CLASSES = 4), the first image of each: ids 1 to 4
    assert comparison.captions == [f"bird {i} caption 0" for i in (1, 2, 3, 4)]
    np.testing.assert_array_equal(comparison.real, np.stack([real_image(i) for i in (1, 2, 3, 4)]))
    lows = np.concatenate([low for low, _ in generator.pairs])
    highs = np.concatenate([high for _, high in generator.pairs])
    # pairs are generated in dataset order: image i's first caption is row 2 (i - 1)
    np.testing.assert_array_equal(comparison.stage1, lows[[0, 2, 4, 6]])
    np.testing.assert_array_equal(comparison.stage2, highs[[0, 2, 4, 6]])
    # a Stage-I-only generator has nothing to compare
    assert (
        evaluate(dataset(12, 1, 5), perfect_generator, classify, CFG, CLASS_IDS).comparison is None
    )


# Colour agreement: class k's birds are painted all over in COLOURS[k], and say so
COLOURS = ("red", "blue", "yellow", "green")


def painted(image_id: int, label: int | None = None) -> np.ndarray:
    label = label_of(image_id) if label is None else label
    return np.broadcast_to(np.array(PALETTE[COLOURS[label]], np.uint8), (SIZE, SIZE, 3)).copy()


def colour_dataset(num_images: int, captions: int, batch_size: int) -> list[dict]:
    """`dataset`, with each image painted in its class's colour and captions naming it."""
    batches = dataset(num_images, captions, batch_size)
    for batch in batches:
        ids, labels = batch["image_id"], batch["label"]
        batch["image_high"] = to_unit_range(np.stack([painted(i) for i in ids]))
        batch["caption"] = np.array(
            [f"a {COLOURS[label]} bird, image {i}".encode() for i, label in zip(ids, labels)]
        )
    return batches


def painting_generator(embeddings, seed):
    """Paints each caption's image's colour: follows the caption."""
    return stage1(np.stack([painted(int(i)) for i in embeddings[:, 0]]))


def red_generator(embeddings, seed):
    """Every bird red, whatever the caption says."""
    return stage1(np.stack([painted(0, label=0)] * len(embeddings)))


def test_colour_agreement_of_generated_and_real_images_against_their_captions():
    # 12 images (3 per class), 2 captions each: an image's 22 other-image captions name its
    # colour 4 times (the 2 other images of its class)
    follows = evaluate(colour_dataset(12, 2, 5), painting_generator, classify, CFG, CLASS_IDS)
    colour = follows.generated.colour
    assert (colour.agreement, colour.named, colour.scored, colour.skipped) == (1.0, 24, 24, 0)
    assert colour.shuffled == pytest.approx(4 / 22)
    assert colour.gain == pytest.approx(1 - 4 / 22)
    assert follows.real.colour == colour  # the real images are these very pictures

    # a generator that ignores the caption: at the baseline; the real ceiling stays
    ignores = evaluate(colour_dataset(12, 2, 5), red_generator, classify, CFG, CLASS_IDS)
    assert ignores.generated.colour.agreement == pytest.approx(0.25)  # the red captions
    assert ignores.generated.colour.gain == pytest.approx(0.0, abs=1e-12)
    assert ignores.real.colour == colour

    # metrics.json's table rows carry it
    row = json.loads(json.dumps(ignores.table()))[0]
    assert row["colour"] == dataclasses.asdict(ignores.generated.colour)


def test_colour_agreement_skips_captions_without_colours_and_scores_the_generated_pairs():
    # `dataset`'s captions ("bird 3 caption 1") name no colour: all 24 skipped, no score
    plain = evaluate(dataset(12, 2, 5), perfect_generator, classify, CFG, CLASS_IDS)
    for scores in (plain.generated, plain.real):
        assert dataclasses.astuple(scores.colour) == (None, None, None, 0, 0, 24)
    # the real set is scored on the spread pairs the generator saw, each with its own image
    spread = evaluate(
        colour_dataset(12, 2, 5),
        red_generator,
        classify,
        dataclasses.replace(CFG, num_samples=8),
        CLASS_IDS,
    )
    assert spread.generated.colour.scored == spread.real.colour.scored == 8
    assert spread.real.colour.agreement == 1.0 and spread.real.count == 12


def test_the_run_summary_prints_each_sets_colour_agreement_and_the_sampling():
    from stackgan.pipeline.results import score_lines

    ignores = evaluate(colour_dataset(12, 2, 5), red_generator, classify, CFG, CLASS_IDS)
    metrics = json.loads(json.dumps({"table": ignores.table(), "chance": 0.25, "baseline": None}))
    lines = score_lines(metrics)
    generated = lines.index(next(line for line in lines if "generated: top-1" in line))
    real = lines.index(next(line for line in lines if "real (ceiling): top-1" in line))
    assert (
        lines[generated + 1]
        .strip()
        .startswith("colour agreement 0.250 (other images' captions 0.250, gain ")
    )
    assert lines[generated + 1].endswith("; 24 named colours, 0 captions naming none)")
    assert "colour agreement 1.000 (other images' captions 0.182, gain +0.818;" in lines[real + 1]
    assert real == generated + 2  # metrics of a run from before the sampling was recorded

    # the noise the generated images were drawn with, under their colour agreement
    lines = score_lines({**metrics, "sampling": {"truncation": 0.5}})
    assert lines[generated + 2] == f"{'':>24}sampled at truncation 0.5 (the paper: 1)"
    assert "real (ceiling): top-1" in lines[generated + 3]

    # the baseline, re-scored now at its own export's sampling
    baseline = {"model": "/m/7", "same_as_candidate": False, "table": metrics["table"]}
    lines = score_lines({**metrics, "baseline": {**baseline, "truncation": 1.0}})
    assert lines[-1] == (
        "      baseline: /m/7 (generated top-1 0.250 now, sampled at truncation 1 (the paper))"
    )
    assert score_lines({**metrics, "baseline": baseline})[-1] == (
        "      baseline: /m/7 (generated top-1 0.250 now)"  # metrics of an older run
    )


def _with_colour_gain(result, gain: float):
    """`result` with the generated images' colour gain set to `gain`."""
    colour = dataclasses.replace(result.generated.colour, gain=gain)
    return dataclasses.replace(
        result, generated=dataclasses.replace(result.generated, colour=colour)
    )


def test_colour_gate_refuses_a_generator_whose_colours_ignore_the_caption():
    colour_cfg = dataclasses.replace(CFG, min_class_accuracy_ratio=0.0, min_colour_gain_ratio=0.3)
    follows = evaluate(colour_dataset(12, 2, 5), painting_generator, classify, CFG, CLASS_IDS)
    blessed = judge(follows, colour_cfg)
    real_gain = 1 - 4 / 22
    assert blessed.blessed and blessed.required_colour_gain == pytest.approx(0.3 * real_gain)
    # every bird red: right colour only for the red captions, gain 0
    ignores = evaluate(colour_dataset(12, 2, 5), red_generator, classify, CFG, CLASS_IDS)
    refused = judge(ignores, colour_cfg)
    assert refused.reasons == (
        "generated colour gain +0.000 < 0.3 x real colour gain +0.818 = +0.245",
    )
    # the boundary: exactly the required fraction passes, just below does not
    assert judge(_with_colour_gain(follows, 0.3 * real_gain), colour_cfg).blessed
    assert not judge(_with_colour_gain(follows, 0.3 * real_gain - 1e-3), colour_cfg).blessed
    # off (the default): the same generator is judged on class top-1 alone
    assert judge(ignores, dataclasses.replace(colour_cfg, min_colour_gain_ratio=0.0)).blessed


def test_colour_gate_against_the_last_blessed_model_and_on_captions_without_colours():
    colour_cfg = dataclasses.replace(CFG, min_class_accuracy_ratio=0.0, min_colour_gain_ratio=0.3)
    follows = evaluate(colour_dataset(12, 2, 5), painting_generator, classify, CFG, CLASS_IDS)
    weaker = _with_colour_gain(follows, 0.5)
    refused = judge(weaker, colour_cfg, baseline=follows)
    assert refused.baseline_required_colour_gain == pytest.approx(1 - 4 / 22 - 0.02)
    assert refused.reasons == (
        "generated colour gain +0.500 < the last blessed model's +0.818 - 0.02 = +0.798",
    )
    assert judge(follows, colour_cfg, baseline=weaker).blessed
    # captions that name no colour cannot judge colours: not blessed, and said why
    plain = evaluate(dataset(12, 2, 5), perfect_generator, classify, CFG, CLASS_IDS)
    verdict = judge(plain, colour_cfg)
    assert verdict.reasons == (
        "colour agreement cannot judge these captions: the real images' gain is None"
        " (it must be positive)",
    )
