"""Scores a text->image generator on the test captions, and judges whether to bless it.

The core, `evaluate`, knows nothing of SavedModels or TFX: it takes the test batches, a
`generate_fn(embeddings f32[N,E], seed int) -> {"image_64": uint8[N,s,s,3], "image_256":
uint8[N,4s,4s,3] (only with Stage-II)}` (what `Generator.generate` returns; the names are the
serving contract's, the sizes follow the profile), a `classify_fn(images f32[N,S,S,3] in [-1,1])
-> {"logits", "features"}` and the classifier's class ids in logit order, so unit tests drive it
with tiny fakes and the Evaluator component binds it to `load_generator` and `load_classifier`.

What is scored:
- generated: one image per (test image, caption) pair, `EvalConfig.num_samples` pairs evenly
  spaced over the split (0 = every pair, 2,933 x 10 on CUB), in dataset order, generated
  `batch_size` at a time with one seed per batch drawn from `EvalConfig.seed`; the final stage's
  images are scored (Stage-II's when the generator has one);
- real: every distinct test image once (the eval dataset repeats an image for each caption).
Inception score: mean and std over `is_splits` parts of the randomly permuted predictions (the
dataset is ordered by image, hence by class; in-order parts would each see few classes and
score low). FID: generated vs real features. The real set's FID is between two random halves of
the real images: the FID that sampling noise alone gives at that size.
Top-1 (class accuracy): the classifier's arg-max against the class of the caption a generated
image was made from, and against the image's own class for the real images (the ceiling).
`chance` is the largest share of one class among the generated samples' captions: what a
generator that ignores the caption can expect at best. A test class missing from the
classifier's classes is an error: accuracy against a class it cannot name means nothing.
Colour agreement (`stackgan.evaluation.colour_agreement`): whether the palette colours a
caption names cover a fifth of the image's central region, averaged over (image, named colour),
next to the same images scored against other images' captions (what a generator ignoring the
caption gets). Class top-1 cannot tell on unseen species whether the stated traits were drawn;
this can. The real set is scored on the same (image, caption) pairs as the generated one (each
pair's own real image): the ceiling.
Refinement (Stage-II generators only): `refinement.consistency_mad`, `detail_gain` and
`edge_sharpness_gain` of each batch's (image_64, image_256) pair from the same embeddings and
seed, averaged over the batches weighted by their size.

`judge` turns an evaluation (and the latest blessed model's, re-scored the same way) into the
blessing; see its docstring.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import special

from stackgan.config import EvalConfig
from stackgan.evaluation import colour_agreement
from stackgan.evaluation.colour_agreement import ColourAgreement
from stackgan.evaluation.fid import fid_from_features
from stackgan.evaluation.inception_score import inception_score
from stackgan.evaluation.refinement import consistency_mad, detail_gain, edge_sharpness_gain
from stackgan.tfrecords import batch_keys as keys
from stackgan.tfrecords import pixels
from stackgan.tfrecords.pixels import to_uint8

GenerateFn = Callable[[np.ndarray, int], Mapping[str, np.ndarray]]
ClassifyFn = Callable[[np.ndarray], Mapping[str, Any]]
ProgressFn = Callable[[int, int], None]  # (batches generated, batches)
STAGE1_OUTPUT = "image_64"
STAGE2_OUTPUT = "image_256"
_MAX_SEED = 2**31 - 1
# Accuracies are ratios of counts and thresholds products of decimal settings: comparisons
# allow this much, so a value on the boundary (0.75 vs 0.5 x 1.5) counts as reaching it.
_ROUNDING = 1e-9


@dataclasses.dataclass(frozen=True)
class SetScores:
    count: int
    inception_score_mean: float
    inception_score_std: float
    fid: float  # generated: vs the real images; real: between two halves of the real images
    top1_correct: int  # images whose arg-max class is their caption's (generated) / own (real)
    top1_accuracy: float  # top1_correct / count
    # named caption colours present in the image's centre, vs other images' captions; over the
    # generated (image, caption) pairs, for the real set each pair's own real image
    colour: ColourAgreement


@dataclasses.dataclass(frozen=True)
class RefinementScores:
    count: int  # (Stage-I, Stage-II) pairs scored: every generated sample
    consistency_mad: float  # 0-255 levels, lower = Stage-II keeps Stage-I's colours and layout
    detail_gain: float  # 1 = no more detail than upsampling Stage-I (blind to edge width)
    edge_sharpness_gain: float  # n = edges n times narrower than upsampling Stage-I's
    stage1_size: int
    stage2_size: int


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Samples whose real test image was kept: what the caption describes, Stage-I's image of
    it and Stage-II's refinement, uint8 [n, H, W, 3] each."""

    real: np.ndarray
    stage1: np.ndarray
    stage2: np.ndarray
    captions: list[str]


@dataclasses.dataclass(frozen=True)
class CaptionEnds:
    """Two captions of different classes and their embeddings: the ends of the interpolation
    sheet's line (stackgan.evaluation.interpolation_sheet)."""

    first: str
    last: str
    first_embedding: np.ndarray
    last_embedding: np.ndarray


@dataclasses.dataclass
class Evaluation:
    generated: SetScores
    real: SetScores
    chance: float  # the largest share of one class among the generated samples' captions
    refinement: RefinementScores | None  # None: the generator has no Stage-II
    batch_seeds: list[int]  # the seed given to generate_fn for each batch, in order
    sheet_images: np.ndarray  # uint8 [n, H, W, 3]: generated samples for the sample sheet
    sheet_captions: list[str]
    # real | Stage-I | Stage-II for one caption of each of the first classes; None without a
    # Stage-II
    comparison: Comparison | None = None
    # the split's first caption and the first after it of another class; None with one class
    caption_ends: CaptionEnds | None = None

    def table(self) -> list[dict[str, Any]]:
        """One row per image set, for metrics.json and the Markdown table."""
        return [
            {"images": name, **dataclasses.asdict(scores)}
            for name, scores in (("generated", self.generated), ("real (ceiling)", self.real))
        ]


def to_unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> f32 [-1, 1] as NumPy, the range the classifier takes."""
    return np.asarray(pixels.to_unit_range(images))


class _Collector:
    """Classifier outputs of one image set, gathered batch by batch, with its top-1 hits."""

    def __init__(self, classify_fn: ClassifyFn):
        self._classify_fn = classify_fn
        self.logits: list[np.ndarray] = []
        self.features: list[np.ndarray] = []
        self.correct = 0

    def add(self, images: np.ndarray, logit_indexes: np.ndarray) -> None:
        """`logit_indexes`: each image's true class as an index into the classifier's logits."""
        outputs = self._classify_fn(images)
        logits = np.asarray(outputs["logits"], np.float32)
        self.logits.append(logits)
        self.features.append(np.asarray(outputs["features"], np.float32))
        self.correct += int(np.sum(np.argmax(logits, axis=1) == logit_indexes))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.logits:
            return np.zeros([0, 0]), np.zeros([0, 0])
        return np.concatenate(self.logits), np.concatenate(self.features)


class _LabelMap:
    """Test labels (0-based CUB classes) -> the classifier's logit indexes."""

    def __init__(self, class_ids: Sequence[int]):
        self._class_ids = [int(c) for c in class_ids]
        self._index = {class_id: i for i, class_id in enumerate(self._class_ids)}
        if len(self._index) != len(self._class_ids):
            raise ValueError(f"the classifier's class ids repeat: {self._class_ids}")

    def __call__(self, labels) -> np.ndarray:
        labels = np.asarray(labels).tolist()
        missing = sorted({label for label in labels if label not in self._index})
        if missing:
            raise ValueError(
                f"the classifier does not cover test class(es) {missing}: its logits are"
                f" classes {self._class_ids}, so the class accuracy of images of those classes"
                " cannot be measured. Retrain it on classes that include the test split's"
                " (ClassifierConfig.classes 'test' or 'all' on this dataset)."
            )
        return np.array([self._index[label] for label in labels], np.int64)


class _RefinementMeter:
    """Size-weighted means of the per-batch refinement scores."""

    def __init__(self):
        self.count = 0
        self._mad = self._detail = self._edges = 0.0
        self._sizes: tuple[int, int] | None = None

    def add(self, low: np.ndarray, high: np.ndarray) -> None:
        self._mad += consistency_mad(low, high) * len(low)
        self._detail += detail_gain(low, high) * len(low)
        self._edges += edge_sharpness_gain(low, high) * len(low)
        self.count += len(low)
        self._sizes = (low.shape[1], high.shape[1])

    def scores(self) -> RefinementScores | None:
        if self._sizes is None:
            return None
        n = self.count
        return RefinementScores(n, self._mad / n, self._detail / n, self._edges / n, *self._sizes)


def _checked_image(images, count: int, what: str) -> np.ndarray:
    images = np.asarray(images)
    if (
        images.dtype != np.uint8
        or images.ndim != 4
        or images.shape[0] != count
        or images.shape[3] != 3
    ):
        raise ValueError(
            f"generate_fn returned {images.dtype} {list(images.shape)} for {what};"
            f" expected uint8 [{count}, H, W, 3]"
        )
    return images


def _checked_generation(
    outputs: Mapping[str, np.ndarray], count: int, batch_index: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """(the final stage's images, Stage-I's when there is a Stage-II else None)."""
    if STAGE1_OUTPUT not in outputs:
        raise ValueError(
            f"generate_fn returned {sorted(outputs)} for batch {batch_index}; expected"
            f" {STAGE1_OUTPUT!r} (and {STAGE2_OUTPUT!r} with Stage-II)"
        )
    low = _checked_image(outputs[STAGE1_OUTPUT], count, f"{STAGE1_OUTPUT} of batch {batch_index}")
    if STAGE2_OUTPUT not in outputs:
        return low, None
    high = _checked_image(outputs[STAGE2_OUTPUT], count, f"{STAGE2_OUTPUT} of batch {batch_index}")
    return high, low


def _inception(logits: np.ndarray, splits: int, rng: np.random.Generator) -> tuple[float, float]:
    probabilities = special.softmax(logits.astype(np.float64), axis=1)
    return inception_score(probabilities[rng.permutation(len(probabilities))], splits)


def _set_scores(
    collector: _Collector,
    splits: int,
    rng: np.random.Generator,
    fid: float,
    colour: ColourAgreement,
) -> SetScores:
    logits, _ = collector.arrays()
    is_mean, is_std = _inception(logits, splits, rng)
    count = len(logits)
    return SetScores(
        count, is_mean, is_std, fid, collector.correct, collector.correct / count, colour
    )


def _score_sets(
    generated: _Collector,
    real: _Collector,
    cfg: EvalConfig,
    colours: tuple[ColourAgreement, ColourAgreement],
):
    """(generated, real) SetScores; raises when either set is too small to score.
    `colours`: the (generated, real) colour agreement."""
    gen_features = generated.arrays()[1]
    real_features = real.arrays()[1]
    if len(gen_features) < max(2, cfg.is_splits):
        raise ValueError(
            f"{len(gen_features)} generated samples: need at least max(2, EvalConfig.is_splits ="
            f" {cfg.is_splits}) for the scores"
        )
    if len(real_features) < max(4, cfg.is_splits):
        raise ValueError(
            f"{len(real_features)} distinct real test images: need at least max(4,"
            f" EvalConfig.is_splits = {cfg.is_splits}) (two halves of 2+ for the real FID)"
        )
    # one generator for every random choice of the scoring, in a fixed order, so the same
    # EvalConfig.seed gives the same scores
    rng = np.random.default_rng(cfg.seed)
    halves = np.array_split(rng.permutation(len(real_features)), 2)
    generated_scores = _set_scores(
        generated, cfg.is_splits, rng, fid_from_features(gen_features, real_features), colours[0]
    )
    real_fid = fid_from_features(real_features[halves[0]], real_features[halves[1]])
    return generated_scores, _set_scores(real, cfg.is_splits, rng, real_fid, colours[1])


def _chance(logit_indexes: np.ndarray) -> float:
    """The largest share of one class: the top-1 of always answering that class."""
    return float(np.bincount(logit_indexes).max() / len(logit_indexes))


@dataclasses.dataclass(frozen=True)
class _Pairs:
    """(test image, caption) pairs in dataset order: what generation needs of each."""

    embeddings: np.ndarray  # f32 [N, E]
    logit_indexes: np.ndarray  # int64 [N]: the caption's class as the classifier's logit index
    captions: list[str]
    image_ids: list[int]

    def __len__(self) -> int:
        return len(self.captions)

    def caption_ends(self) -> CaptionEnds | None:
        """The first pair's caption and the first after it of another class; None when every
        pair is of one class."""
        other = np.flatnonzero(self.logit_indexes != self.logit_indexes[:1])
        if not len(other):
            return None
        i = int(other[0])
        return CaptionEnds(
            self.captions[0], self.captions[i], self.embeddings[0], self.embeddings[i]
        )

    def spread(self, limit: int) -> _Pairs:
        """`limit` pairs evenly spaced over the split (all when 0 or more than there are). The
        split is ordered by class: its first pairs would be a few classes' only, and a class
        accuracy over one class says nothing about following the caption."""
        if limit <= 0 or limit >= len(self):
            return self
        chosen = np.arange(limit) * len(self) // limit
        return _Pairs(
            self.embeddings[chosen],
            self.logit_indexes[chosen],
            [self.captions[i] for i in chosen],
            [self.image_ids[i] for i in chosen],
        )


def _read_split(
    batches: Iterable[Mapping[str, np.ndarray]],
    real: _Collector,
    to_logit: _LabelMap,
    shown_real: dict[int, np.ndarray],
    shown_classes: int,
    real_shares: dict[int, np.ndarray],
) -> _Pairs:
    """Classifies each real test image once (the split repeats an image for each caption) and
    returns every pair. The first image of each of the first `shown_classes` classes is kept
    in `shown_real` (uint8, by image id) for the comparison sheet; each image's palette shares
    (`colour_agreement.palette_shares`) go into `real_shares` by image id."""
    shown_labels: set[int] = set()
    seen_ids: set[int] = set()
    embeddings, logit_indexes, captions, image_ids = [], [], [], []
    for batch in batches:
        labels = to_logit(batch[keys.LABEL])
        ids = np.asarray(batch[keys.IMAGE_ID]).tolist()
        first = [
            i
            for i, image_id in enumerate(ids)
            if image_id not in seen_ids and ids.index(image_id) == i
        ]
        seen_ids.update(ids)
        if first:
            real_images = np.asarray(batch[keys.IMAGE_HIGH], np.float32)
            real.add(real_images[first], labels[first])
            shares = colour_agreement.palette_shares(np.asarray(to_uint8(real_images[first])))
            real_shares.update((ids[i], row) for i, row in zip(first, shares, strict=True))
            for i in first:
                if len(shown_labels) < shown_classes and int(labels[i]) not in shown_labels:
                    shown_labels.add(int(labels[i]))
                    shown_real[ids[i]] = np.asarray(to_uint8(real_images[i]))
        embeddings.append(np.asarray(batch[keys.EMBEDDING], np.float32))
        logit_indexes.append(labels)
        captions += [c.decode() if isinstance(c, bytes) else str(c) for c in batch[keys.CAPTION]]
        image_ids += ids
    if not captions:
        return _Pairs(np.zeros([0, 0], np.float32), np.zeros([0], np.int64), [], [])
    return _Pairs(np.concatenate(embeddings), np.concatenate(logit_indexes), captions, image_ids)


@dataclasses.dataclass
class _Generation:
    generated: _Collector
    seeds: list[int]
    refinement: RefinementScores | None
    sheet: _SheetPicker
    shares: list[np.ndarray]  # per batch: palette_shares of its generated images


def _generate(
    pairs: _Pairs,
    generate_fn: GenerateFn,
    generated: _Collector,
    cfg: EvalConfig,
    sheet,
    progress: ProgressFn | None,
) -> _Generation:
    """Generates and classifies an image for each pair, `cfg.batch_size` at a time, each batch
    with its own seed drawn from `cfg.seed`; `progress(batches done, batches)` after each."""
    batches = -(-len(pairs) // cfg.batch_size)
    rng = np.random.default_rng(cfg.seed)
    refinement = _RefinementMeter()
    seeds: list[int] = []
    shares: list[np.ndarray] = []
    for batch_index, start in enumerate(range(0, len(pairs), cfg.batch_size)):
        part = slice(start, start + cfg.batch_size)
        seeds.append(int(rng.integers(0, _MAX_SEED)))
        embeddings = pairs.embeddings[part]
        outputs = generate_fn(embeddings, seeds[-1])
        images, stage1 = _checked_generation(outputs, len(embeddings), batch_index)
        generated.add(to_unit_range(images), pairs.logit_indexes[part])
        shares.append(colour_agreement.palette_shares(images))
        if stage1 is not None:
            refinement.add(stage1, images)
        sheet.offer(pairs.image_ids[part], images, pairs.captions[part], stage1)
        if progress is not None:
            progress(batch_index + 1, batches)
    return _Generation(generated, seeds, refinement.scores(), sheet, shares)


def evaluate(
    batches: Iterable[Mapping[str, np.ndarray]],
    generate_fn: GenerateFn,
    classify_fn: ClassifyFn,
    cfg: EvalConfig,
    class_ids: Sequence[int],
    sheet_samples: int = 16,
    progress: ProgressFn | None = None,
) -> Evaluation:
    """Scores `generate_fn` on `batches` (NumPy batches of `make_eval_dataset`: "image_high",
    "embedding", "caption", "label", "image_id"); `class_ids`: the test labels the classifier's
    logits stand for, in logit order; `progress(batches generated, batches)` after each
    generated batch. See the module docstring."""
    real = _Collector(classify_fn)
    shown_real: dict[int, np.ndarray] = {}
    real_shares: dict[int, np.ndarray] = {}
    to_logit = _LabelMap(class_ids)
    pairs = _read_split(batches, real, to_logit, shown_real, sheet_samples, real_shares)
    ends = pairs.caption_ends()
    pairs = pairs.spread(cfg.num_samples)
    sheet = _SheetPicker(sheet_samples, shown_real)
    run = _generate(pairs, generate_fn, _Collector(classify_fn), cfg, sheet, progress)
    colours = _colour_scores(pairs, run.shares, real_shares)
    generated_scores, real_scores = _score_sets(run.generated, real, cfg, colours)
    chosen = run.sheet.chosen()
    return Evaluation(
        generated_scores,
        real_scores,
        _chance(pairs.logit_indexes),
        run.refinement,
        run.seeds,
        chosen.images,
        chosen.captions,
        run.sheet.comparison(),
        ends,
    )


def _colour_scores(
    pairs: _Pairs, generated_shares: list[np.ndarray], real_shares: Mapping[int, np.ndarray]
) -> tuple[ColourAgreement, ColourAgreement]:
    """(generated, real) colour agreement on the same pairs: each generated image and, for the
    ceiling, the pair's own real image, against the pair's caption."""
    if not len(pairs):  # nothing generated: _score_sets refuses to score it
        empty = colour_agreement.score(np.zeros([0, len(colour_agreement.COLOUR_NAMES)]), [])
        return empty, empty
    real = np.stack([real_shares[image_id] for image_id in pairs.image_ids])
    return (
        colour_agreement.score(np.concatenate(generated_shares), pairs.captions, pairs.image_ids),
        colour_agreement.score(real, pairs.captions, pairs.image_ids),
    )


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The push gate's decision and the thresholds it applied."""

    blessed: bool
    reasons: tuple[str, ...]  # one line per failed check; empty when blessed
    required_top1: float  # chance + min_class_accuracy_ratio x (the real images' top-1 - chance)
    baseline_required_top1: float | None  # the baseline's generated top-1 - tolerance
    # min_colour_gain_ratio x the real images' colour gain; None: that check is off
    required_colour_gain: float | None = None
    baseline_required_colour_gain: float | None = None  # the baseline's - tolerance

    @property
    def message(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "blessed"


def judge(candidate: Evaluation, cfg: EvalConfig, baseline: Evaluation | None = None) -> Verdict:
    """Blesses `candidate` when both checks hold:

    1. its generated top-1 above chance >= `cfg.min_class_accuracy_ratio` x the real test
       images' top-1 above chance, i.e. top-1 >= chance + ratio x (real top-1 - chance): the
       generator draws the captioned class at least that fraction as far above chance as the
       classifier recognises real birds. Relative to the real images' top-1 so one setting
       serves a weak from-scratch classifier and a fine-tuned one; measured from `chance` (what
       drawing one class for every caption scores) so it means the same with 5 species as
       with 50: 0.05 of a real top-1 of 0.8 lies far below chance 0.2 among 5 species, where
       0.05 of the way from chance to it does not. With a positive ratio the generated top-1
       must also be above chance (which the first part implies unless the real images score
       no better than chance): a generator that ignores the caption must not pass. A ratio of
       0 turns this check off (the tiny profile, whose tests check the plumbing).
    2. with a `baseline` (the latest model an earlier run blessed, evaluated with the same
       classifier, captions and seeds): its generated top-1 >= the baseline's -
       `cfg.baseline_tolerance`, as TFX's Evaluator checks a candidate against its baseline, so
       a new model may not regress by more than the sampling noise.
    3. with a positive `cfg.min_colour_gain_ratio`: its colour agreement gain >= that fraction
       of the real images' gain (which must be positive: otherwise the captions' colours cannot
       judge anything, and the model is not blessed), and with a baseline >= the baseline's
       gain - `cfg.baseline_tolerance`.
    """
    gen = candidate.generated
    ratio, chance, real = cfg.min_class_accuracy_ratio, candidate.chance, candidate.real
    required = chance + ratio * (real.top1_accuracy - chance) if ratio > 0 else 0.0
    reasons = []
    if gen.top1_accuracy + _ROUNDING < required:
        reasons.append(
            f"generated top-1 {gen.top1_accuracy:.3f} ({gen.top1_correct}/{gen.count}) <"
            f" chance {chance:.3f} + {ratio} x (real top-1 {real.top1_accuracy:.3f} - chance)"
            f" = {required:.3f}"
        )
    if ratio > 0 and gen.top1_accuracy <= chance + _ROUNDING:
        reasons.append(
            f"generated top-1 {gen.top1_accuracy:.3f} is not above chance"
            f" {chance:.3f} (the largest class share among the captions)"
        )
    baseline_required = None
    if baseline is not None:
        baseline_required = baseline.generated.top1_accuracy - cfg.baseline_tolerance
        if gen.top1_accuracy + _ROUNDING < baseline_required:
            reasons.append(
                f"generated top-1 {gen.top1_accuracy:.3f} < the last blessed model's"
                f" {baseline.generated.top1_accuracy:.3f} - {cfg.baseline_tolerance} ="
                f" {baseline_required:.3f}"
            )
    colour_required, colour_baseline_required = _judge_colour(candidate, cfg, baseline, reasons)
    return Verdict(
        not reasons,
        tuple(reasons),
        required,
        baseline_required,
        colour_required,
        colour_baseline_required,
    )


def _judge_colour(
    candidate: Evaluation, cfg: EvalConfig, baseline: Evaluation | None, reasons: list[str]
) -> tuple[float | None, float | None]:
    """The colour agreement checks of `judge`: appends a reason per failed one, returns the
    (required, baseline-required) gains, None where not applied."""
    ratio = cfg.min_colour_gain_ratio
    if ratio <= 0:
        return None, None
    gain, real_gain = candidate.generated.colour.gain, candidate.real.colour.gain
    if gain is None or real_gain is None or real_gain <= 0:
        reasons.append(
            f"colour agreement cannot judge these captions: the real images' gain is"
            f" {real_gain if real_gain is None else f'{real_gain:+.3f}'} (it must be positive)"
        )
        return None, None
    required = ratio * real_gain
    if gain + _ROUNDING < required:
        reasons.append(
            f"generated colour gain {gain:+.3f} < {ratio} x real colour gain {real_gain:+.3f}"
            f" = {required:+.3f}"
        )
    baseline_gain = None if baseline is None else baseline.generated.colour.gain
    if baseline_gain is None:
        return required, None
    baseline_required = baseline_gain - cfg.baseline_tolerance
    if gain + _ROUNDING < baseline_required:
        reasons.append(
            f"generated colour gain {gain:+.3f} < the last blessed model's {baseline_gain:+.3f}"
            f" - {cfg.baseline_tolerance} = {baseline_required:+.3f}"
        )
    return required, baseline_required


@dataclasses.dataclass(frozen=True)
class _Sheet:
    images: np.ndarray
    captions: list[str]


class _SheetPicker:
    """Keeps up to `count` samples for the sample sheets: first those whose real test image
    was kept (one per class, so the sheet shows different species), then one per further
    distinct test image, then repeats. Only what may be shown is kept: the paper profile
    generates 29,330 images."""

    def __init__(self, count: int, shown_real: Mapping[int, np.ndarray]):
        self._count = count
        self._shown_real = shown_real
        self._pools: tuple[list, list, list] = ([], [], [])  # per-class, distinct, repeats
        self._ids: set[int] = set()

    def offer(self, ids, images, captions, stage1: np.ndarray | None = None) -> None:
        for i, (image_id, image, caption) in enumerate(zip(ids, images, captions, strict=True)):
            if image_id in self._ids:
                pool = self._pools[2]
            elif image_id in self._shown_real:
                pool = self._pools[0]
            else:
                pool = self._pools[1]
            if len(pool) < self._count:
                low = None if stage1 is None else stage1[i].copy()
                pool.append((image_id, image.copy(), caption, low))
            self._ids.add(image_id)

    def chosen(self) -> _Sheet:
        chosen = [sample for pool in self._pools for sample in pool][: self._count]
        return _Sheet(
            np.stack([image for _, image, _, _ in chosen]),
            [caption for _, _, caption, _ in chosen],
        )

    def comparison(self) -> Comparison | None:
        """The samples of the per-class pool (their real image was kept), when they have a
        Stage-I image, i.e. the generator has a Stage-II."""
        shown = [sample for sample in self._pools[0] if sample[3] is not None]
        if not shown:
            return None
        return Comparison(
            real=np.stack([self._shown_real[image_id] for image_id, *_ in shown]),
            stage1=np.stack([low for *_, low in shown]),
            stage2=np.stack([image for _, image, _, _ in shown]),
            captions=[caption for _, _, caption, _ in shown],
        )
