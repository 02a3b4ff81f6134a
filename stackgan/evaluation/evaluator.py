"""Scores a text->image generator on the test captions: inception score and FID, with the same
scores of the REAL test images as the ceiling.

The core, `evaluate`, knows nothing of SavedModels or TFX: it takes the test batches, a
`generate_fn(embeddings f32[N,E], seed int) -> uint8[N,H,W,3]` and a `classify_fn(images
f32[N,S,S,3] in [-1,1]) -> {"logits", "features"}`, so unit tests drive it with tiny fakes and the
Evaluator component binds it to `load_generator` and `load_classifier`.

What is scored:
- generated: one image per (test image, caption) pair, in dataset order, capped at
  `EvalConfig.num_samples` (0 = every pair, 2,933 x 10 on CUB), generated `batch_size` at a time
  with one seed per batch drawn from `EvalConfig.seed`;
- real: every distinct test image once (the eval dataset repeats an image for each caption).
Inception score: mean and std over `is_splits` parts of the randomly permuted predictions (the
dataset is ordered by image, hence by class; in-order parts would each see few classes and
score low). FID: generated vs real features. The real set's FID is between two random halves of
the real images: the FID that sampling noise alone gives at that size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from scipy import special

from stackgan.config import EvalConfig
from stackgan.evaluation.fid import fid_from_features
from stackgan.evaluation.inception_score import inception_score

GenerateFn = Callable[[np.ndarray, int], np.ndarray]
ClassifyFn = Callable[[np.ndarray], Mapping[str, Any]]
_MAX_SEED = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class SetScores:
    count: int
    inception_score_mean: float
    inception_score_std: float
    fid: float  # generated: vs the real images; real: between two halves of the real images


@dataclasses.dataclass
class Evaluation:
    generated: SetScores
    real: SetScores
    batch_seeds: list[int]  # the seed given to generate_fn for each batch, in order
    sheet_images: np.ndarray  # uint8 [n, H, W, 3]: generated samples for the sample sheet
    sheet_captions: list[str]

    def table(self) -> list[dict[str, Any]]:
        """One row per image set, for metrics.json and the Markdown table."""
        return [
            {"images": name, **dataclasses.asdict(scores)}
            for name, scores in (("generated", self.generated), ("real (ceiling)", self.real))
        ]


def to_unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> f32 [-1, 1], the range the classifier takes."""
    return images.astype(np.float32) / 127.5 - 1.0


class _Collector:
    """Classifier outputs of one image set, gathered batch by batch."""

    def __init__(self, classify_fn: ClassifyFn):
        self._classify_fn = classify_fn
        self.logits: list[np.ndarray] = []
        self.features: list[np.ndarray] = []

    def add(self, images: np.ndarray) -> None:
        outputs = self._classify_fn(images)
        self.logits.append(np.asarray(outputs["logits"], np.float32))
        self.features.append(np.asarray(outputs["features"], np.float32))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.logits:
            return np.zeros([0, 0]), np.zeros([0, 0])
        return np.concatenate(self.logits), np.concatenate(self.features)


def _checked_generation(images, count: int, batch_index: int) -> np.ndarray:
    images = np.asarray(images)
    if (
        images.dtype != np.uint8
        or images.ndim != 4
        or images.shape[0] != count
        or images.shape[3] != 3
    ):
        raise ValueError(
            f"generate_fn returned {images.dtype} {list(images.shape)} for batch {batch_index};"
            f" expected uint8 [{count}, H, W, 3]"
        )
    return images


def _inception(logits: np.ndarray, splits: int, rng: np.random.Generator) -> tuple[float, float]:
    probabilities = special.softmax(logits.astype(np.float64), axis=1)
    return inception_score(probabilities[rng.permutation(len(probabilities))], splits)


def evaluate(
    batches: Iterable[Mapping[str, np.ndarray]],
    generate_fn: GenerateFn,
    classify_fn: ClassifyFn,
    cfg: EvalConfig,
    sheet_samples: int = 16,
) -> Evaluation:
    """Scores `generate_fn` on `batches` (NumPy batches of `make_eval_dataset`: "image_high",
    "embedding", "caption", "image_id"); see the module docstring."""
    limit = cfg.num_samples if cfg.num_samples > 0 else None
    rng = np.random.default_rng(cfg.seed)
    generated, real = _Collector(classify_fn), _Collector(classify_fn)
    seen_ids: set[int] = set()
    seeds: list[int] = []
    sheet = _SheetPicker(sheet_samples)
    num_generated = 0
    for batch_index, batch in enumerate(batches):
        # real images: each test image once, however many captions it has
        ids = np.asarray(batch["image_id"]).tolist()
        first = [
            i
            for i, image_id in enumerate(ids)
            if image_id not in seen_ids and ids.index(image_id) == i
        ]
        seen_ids.update(ids)
        if first:
            real.add(np.asarray(batch["image_high"], np.float32)[first])

        take = len(ids) if limit is None else min(len(ids), limit - num_generated)
        if take <= 0:
            continue  # the generation cap is reached; the rest of the split only adds real images
        seed = int(rng.integers(0, _MAX_SEED))
        seeds.append(seed)
        embeddings = np.asarray(batch["embedding"], np.float32)[:take]
        images = _checked_generation(generate_fn(embeddings, seed), take, batch_index)
        generated.add(to_unit_range(images))
        num_generated += take
        captions = [c.decode() if isinstance(c, bytes) else str(c) for c in batch["caption"][:take]]
        sheet.offer(ids[:take], images, captions)

    gen_logits, gen_features = generated.arrays()
    real_logits, real_features = real.arrays()
    if num_generated < max(2, cfg.is_splits):
        raise ValueError(
            f"{num_generated} generated samples: need at least max(2, EvalConfig.is_splits ="
            f" {cfg.is_splits}) for the scores"
        )
    if len(real_logits) < max(4, cfg.is_splits):
        raise ValueError(
            f"{len(real_logits)} distinct real test images: need at least max(4,"
            f" EvalConfig.is_splits = {cfg.is_splits}) (two halves of 2+ for the real FID)"
        )

    score_rng = np.random.default_rng(cfg.seed)
    halves = np.array_split(score_rng.permutation(len(real_features)), 2)
    generated_scores = SetScores(
        num_generated,
        *_inception(gen_logits, cfg.is_splits, score_rng),
        fid_from_features(gen_features, real_features),
    )
    real_scores = SetScores(
        len(real_logits),
        *_inception(real_logits, cfg.is_splits, score_rng),
        fid_from_features(real_features[halves[0]], real_features[halves[1]]),
    )
    sheet_images, sheet_captions = sheet.chosen()
    return Evaluation(generated_scores, real_scores, seeds, sheet_images, sheet_captions)


class _SheetPicker:
    """Keeps up to `count` samples for the sample sheet, one per distinct test image first (the
    dataset lists an image's captions together, so the first samples would otherwise show one
    or two birds). Only what may be shown is kept: the paper profile generates 29,330 images."""

    def __init__(self, count: int):
        self._count = count
        self._distinct: list[tuple[np.ndarray, str]] = []
        self._repeats: list[tuple[np.ndarray, str]] = []
        self._ids: set[int] = set()

    def offer(self, ids: list[int], images: np.ndarray, captions: list[str]) -> None:
        for image_id, image, caption in zip(ids, images, captions, strict=True):
            pool = self._repeats if image_id in self._ids else self._distinct
            if len(pool) < self._count:
                pool.append((image.copy(), caption))
            self._ids.add(image_id)

    def chosen(self) -> tuple[np.ndarray, list[str]]:
        chosen = (self._distinct + self._repeats)[: self._count]
        return np.stack([image for image, _ in chosen]), [caption for _, caption in chosen]
