"""An Examples split -> `CaptionedFeatures`: classifier features of each image + its captions.

Reads the gzipped TFRecords of one split (schemas/schema.pbtxt; embeddings not needed), takes
the centre `data.high_res` crop of each stored `image_high` (what the evaluator scores), runs
the frozen classifier once per image, and keeps the image's non-blank captions. An image
without any non-blank caption is skipped and counted.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from stackgan.config import DataConfig
from stackgan.evaluation.classifier import LoadedClassifier
from stackgan.evaluation.classifier_data import decode_image
from stackgan.schemas import features
from stackgan.text.pairs import CaptionedFeatures
from stackgan.tfrecords.pixels import to_unit_range


@dataclasses.dataclass(frozen=True)
class SplitFeatures:
    data: CaptionedFeatures
    images_read: int
    skipped_no_captions: int
    blank_captions_dropped: int


def _centre_crop(encoded: tf.Tensor, data_cfg: DataConfig) -> tf.Tensor:
    image = decode_image(encoded, data_cfg)
    offset = (data_cfg.high_res_stored - data_cfg.high_res) // 2
    image = tf.image.crop_to_bounding_box(
        image, offset, offset, data_cfg.high_res, data_cfg.high_res
    )
    return to_unit_range(image)


def read_split_features(
    file_pattern: str, data_cfg: DataConfig, classifier: LoadedClassifier, batch_size: int = 32
) -> SplitFeatures:
    """Features, captions and labels of every image in the TFRecords at `file_pattern`."""
    files = sorted(tf.io.gfile.glob(file_pattern))
    if not files:
        raise FileNotFoundError(f"{file_pattern}: no TFRecord files match")
    spec = features.parse_spec(
        features.WITHOUT_EMBEDDINGS, (features.IMAGE_HIGH, features.CAPTIONS, features.LABEL)
    )

    def parse(serialized):
        example = tf.io.parse_example(serialized, spec)
        images = tf.map_fn(
            lambda e: _centre_crop(e, data_cfg),
            example[features.IMAGE_HIGH],
            fn_output_signature=tf.float32,
        )
        return images, example[features.CAPTIONS], example[features.LABEL]

    batches = (
        tf.data.TFRecordDataset(files, compression_type="GZIP")
        .batch(batch_size)
        .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    rows, captions, labels = [], [], []
    images_read = skipped = blank = 0
    for images, batch_captions, batch_labels in batches:
        batch_features = classifier(images)["features"].numpy()
        for row, raw, label in zip(
            batch_features, batch_captions.numpy(), batch_labels.numpy(), strict=True
        ):
            images_read += 1
            text = [c.decode("utf-8", errors="replace").strip() for c in raw]
            kept = [c for c in text if c]
            blank += len(text) - len(kept)
            if not kept:
                skipped += 1
                continue
            rows.append(row)
            captions.append(kept)
            labels.append(int(label))
    if not rows:
        raise ValueError(f"{file_pattern}: no image with a caption ({images_read} images read)")
    data = CaptionedFeatures(
        np.stack(rows).astype(np.float32), captions, np.asarray(labels, np.int64)
    )
    return SplitFeatures(data, images_read, skipped, blank)
