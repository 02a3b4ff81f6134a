"""The classifier's images: which classes, which images are held out, and the tf.data pipelines.

Reads the Examples artifact's TFRecords (schemas/schema.pbtxt) directly, one record per image,
since the classifier needs each image once with its label and no caption or embedding (the
trainers' input pipeline yields image/caption pairs and requires embeddings).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from stackgan.config import ClassifierConfig, DataConfig
from stackgan.schemas import features
from stackgan.tfrecords import input_pipeline
from stackgan.tfrecords.pixels import to_unit_range

# reading labels and ids only: big batches make the scan cost little more than the file reads
_SCAN_BATCH = 1024


@dataclasses.dataclass(frozen=True)
class ImageIndex:
    """Id, label and class name of every image of one split, in file order."""

    image_ids: np.ndarray  # int64 [N]
    labels: np.ndarray  # int64 [N], 0-based CUB class index
    class_names: dict[int, str]  # label -> "NNN.Class_Name"

    def __len__(self) -> int:
        return len(self.image_ids)


def _records(file_pattern: str) -> tf.data.Dataset:
    files = tf.io.gfile.glob(file_pattern)
    if not files:
        raise FileNotFoundError(f"{file_pattern}: no TFRecord files match")
    return tf.data.TFRecordDataset(sorted(files), compression_type="GZIP")


def scan_split(file_pattern: str) -> ImageIndex:
    """Ids, labels and class names of the images in the gzipped TFRecords at `file_pattern`."""
    spec = features.parse_spec(
        features.WITHOUT_EMBEDDINGS, (features.IMAGE_ID, features.LABEL, features.CLASS_NAME)
    )
    ids, labels, names = [], [], {}
    batches = _records(file_pattern).batch(_SCAN_BATCH).map(lambda s: tf.io.parse_example(s, spec))
    for batch in batches:
        ids.append(batch[features.IMAGE_ID].numpy())
        labels.append(batch[features.LABEL].numpy())
        for label, name in zip(labels[-1], batch[features.CLASS_NAME].numpy(), strict=True):
            names.setdefault(int(label), name.decode())
    if not ids:
        raise ValueError(f"{file_pattern}: the TFRecords hold no examples")
    return ImageIndex(np.concatenate(ids), np.concatenate(labels), names)


def choose_classes(cfg: ClassifierConfig, train: ImageIndex, test: ImageIndex) -> list[int]:
    """The labels the classifier distinguishes, sorted (their order is the logit order).

    "test": the classes of the test split, as the authors' scoring model was fine-tuned on the
    50 test classes of StackGAN's class-disjoint split; "all": every class of both splits.
    """
    if cfg.classes == "test":
        classes = sorted({int(c) for c in test.labels})
    elif cfg.classes == "all":
        classes = sorted({int(c) for c in np.concatenate([train.labels, test.labels])})
    else:
        raise ValueError(f"ClassifierConfig.classes must be 'test' or 'all', got {cfg.classes!r}")
    if len(classes) < 2:
        raise ValueError(
            f"ClassifierConfig.classes={cfg.classes!r} gives {len(classes)} class(es); a classifier"
            " needs at least 2 (the test split of a small dataset may hold a single class: use"
            " classes='all')"
        )
    return classes


def choose_holdout(
    indexes: Sequence[ImageIndex], classes: Sequence[int], fraction: float, seed: int
) -> np.ndarray:
    """Image ids held out for early stopping and the reported accuracy, drawn per class.

    Each class with 2+ images gives round(fraction * n) of them, at least 1 and at most n - 1,
    so every class is both trained and scored.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"ClassifierConfig.holdout_fraction must be in (0, 1), got {fraction}")
    ids = np.concatenate([index.image_ids for index in indexes])
    labels = np.concatenate([index.labels for index in indexes])
    rng = np.random.default_rng(seed)
    held = []
    for label in classes:
        members = np.sort(ids[labels == label])
        if len(members) < 2:
            continue
        count = min(max(1, round(fraction * len(members))), len(members) - 1)
        held.append(rng.choice(members, size=count, replace=False))
    return np.sort(np.concatenate(held)) if held else np.zeros([0], np.int64)


def decode_image(encoded: tf.Tensor, data_cfg: DataConfig) -> tf.Tensor:
    """uint8 [S, S, 3] of one stored `image_high` (S = data.high_res_stored)."""
    return input_pipeline.decode_image(encoded, data_cfg.high_res_stored, data_cfg.image_encoding)


def count_images(indexes: Sequence[ImageIndex], classes: Sequence[int]) -> int:
    """How many images of `indexes` belong to `classes`."""
    return int(sum(np.isin(index.labels, classes).sum() for index in indexes))


def _with_augmentation_seeds(dataset: tf.data.Dataset, seed: int) -> tf.data.Dataset:
    """(encoded or image, index) -> (..., index, seeds int64[2, 2]): stateless seeds for each
    element's crop and flip, from a stream seeded by `seed` that draws anew each epoch. Stateful
    random ops in a parallel map draw in whatever order its threads run; these do not, so an
    ordered pipeline trains the same classifier every time."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(4)
    return tf.data.Dataset.zip(dataset, seeds).map(
        lambda element, drawn: (*element, tf.reshape(drawn, [2, 2]))
    )


def make_datasets(
    file_patterns: Sequence[str],
    indexes: Sequence[ImageIndex],
    data_cfg: DataConfig,
    cfg: ClassifierConfig,
    classes: Sequence[int],
    holdout_ids: np.ndarray,
    seed: int,
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """(train, holdout) batches of `(image f32[B,s,s,3] in [-1,1], class index int64[B])`.

    Images of other classes are dropped; labels become indexes into `classes`. Training images
    get the GAN's own augmentation (random `data.high_res` crop of the stored image, random
    horizontal flip); held-out images the centre crop the evaluator scores. Both are resized to
    `cfg.image_size` here, so the model's own resize is the identity during training.
    `indexes` (the `scan_split` of each pattern) give the batch counts.

    With `cfg.cache_images` the training images are decoded and shrunk once, to the size at
    which a `data.high_res` crop is `cfg.image_size` pixels, and kept in memory as uint8; each
    epoch then only crops and flips them. Decoding and resizing the demo's 304 training images
    again each epoch costs 0.55 CPU-seconds, half as much as the 48-pixel classifier's training
    steps; from the cache, 0.03.
    """
    num_holdout = len(holdout_ids)
    num_train = count_images(indexes, classes) - num_holdout
    if num_train < 1 or num_holdout < 1:
        raise ValueError(
            f"{num_train} training and {num_holdout} held-out images in classes {list(classes)};"
            " the classifier needs both (each class needs 2+ images)"
        )
    spec = features.parse_spec(
        features.WITHOUT_EMBEDDINGS, (features.IMAGE_ID, features.LABEL, features.IMAGE_HIGH)
    )
    class_table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(classes), tf.int64), tf.range(len(classes), dtype=tf.int64)
        ),
        default_value=-1,
    )
    holdout = tf.constant(np.asarray(holdout_ids, np.int64))
    crop, size = data_cfg.high_res, cfg.image_size

    def parse(serialized):
        example = tf.io.parse_single_example(serialized, spec)
        index = class_table.lookup(example[features.LABEL])
        is_holdout = tf.reduce_any(tf.equal(holdout, example[features.IMAGE_ID]))
        return example[features.IMAGE_HIGH], index, is_holdout

    def to_float(image):
        image = tf.image.resize(image, [size, size], antialias=True)
        return to_unit_range(image)

    def augment(encoded, index, seeds):
        image = decode_image(encoded, data_cfg)
        return to_float(input_pipeline.crop_and_flip(image, crop, seeds[0], seeds[1])), index

    # the cached path crops after shrinking: the same crop of the bird, `size` pixels wide
    shrunk = round(size * data_cfg.high_res_stored / crop)

    def shrink(encoded, index):
        image = tf.image.resize(decode_image(encoded, data_cfg), [shrunk, shrunk], antialias=True)
        return tf.cast(tf.round(image), tf.uint8), index

    def crop_small(image, index, seeds):
        return to_unit_range(input_pipeline.crop_and_flip(image, size, seeds[0], seeds[1])), index

    def centre(encoded, index):
        image = decode_image(encoded, data_cfg)
        stored = data_cfg.high_res_stored
        offset = (stored - crop) // 2
        image = tf.image.crop_to_bounding_box(image, offset, offset, crop, crop)
        return to_float(image), index

    records = tf.data.Dataset.from_tensor_slices(list(file_patterns)).flat_map(
        lambda pattern: tf.data.Dataset.list_files(pattern, shuffle=False).flat_map(
            lambda f: tf.data.TFRecordDataset(f, compression_type="GZIP")
        )
    )
    parsed = records.map(parse).filter(lambda encoded, index, held: index >= 0)
    train = parsed.filter(lambda encoded, index, held: tf.logical_not(held)).map(
        lambda encoded, index, held: (encoded, index)
    )
    ordered = data_cfg.ordered
    if cfg.cache_images:
        train = (
            train.map(shrink, num_parallel_calls=tf.data.AUTOTUNE, deterministic=ordered)
            .cache()
            # every image is in memory already, so a full shuffle costs nothing more
            .shuffle(num_train, seed=seed, reshuffle_each_iteration=True)
        )
        crop_and_flip = crop_small
    else:
        train = train.shuffle(data_cfg.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        crop_and_flip = augment
    train = _with_augmentation_seeds(train, seed).map(
        crop_and_flip, num_parallel_calls=tf.data.AUTOTUNE, deterministic=ordered
    )
    train = (
        train.batch(cfg.batch_size)
        # filter() hides the size from Keras, which then warns that the data "ran out"
        .apply(tf.data.experimental.assert_cardinality(-(-num_train // cfg.batch_size)))
        .prefetch(tf.data.AUTOTUNE)
    )
    held_out = (
        parsed.filter(lambda encoded, index, held: held)
        .map(lambda encoded, index, held: (encoded, index))
        .map(centre, num_parallel_calls=tf.data.AUTOTUNE)
    )
    if cfg.cache_images:
        held_out = held_out.cache()  # fine-tuning validates on it every epoch
    held_out = (
        held_out.batch(cfg.batch_size)
        .apply(tf.data.experimental.assert_cardinality(-(-num_holdout // cfg.batch_size)))
        .prefetch(tf.data.AUTOTUNE)
    )
    return train, held_out
