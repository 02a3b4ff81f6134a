"""A small Examples artifact in the schema's format, written directly, for the trainers' tests.

The trainers' tests need Examples WITH_EMBEDDINGS at the profile's stored sizes, in seconds and
without running the CubExampleGen Beam job. Records go through the same codec, image encoder
and shard writer as the real preprocessing, so the input pipeline reads them exactly as it
reads CubExampleGen's. Every class has its own colour and its own embedding direction, so a
generator has something to learn.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image
from tfx.types import artifact_utils, standard_artifacts

from stackgan.components.cub_example_gen.convert import encode_image
from stackgan.config import Config
from stackgan.tfrecords import example_codec
from stackgan.tfrecords.shard_writer import TFRecordShardWriter, shard_name

COLOURS = ((200, 40, 40), (40, 160, 60), (50, 70, 200), (220, 200, 40), (150, 60, 170))


def tiny_records(
    config: Config, classes: tuple[int, ...], per_class: int, seed: int
) -> list[bytes]:
    data = config.data
    rng = np.random.default_rng(seed)
    directions = np.random.default_rng(1234).normal(size=(len(COLOURS), data.embedding_dim))
    records = []
    for label in classes:
        for k in range(per_class):
            image_id = label * 1000 + k
            pixels = np.clip(
                np.array(COLOURS[label % len(COLOURS)])
                + rng.normal(0, 25, (data.high_res_stored, data.high_res_stored, 3)),
                0,
                255,
            ).astype(np.uint8)
            high = Image.fromarray(pixels)
            low = high.resize((data.low_res_stored,) * 2, Image.Resampling.BICUBIC)
            captions = tuple(
                f"a {['red', 'green', 'blue', 'yellow', 'purple'][label % 5]} bird, caption {i}"
                for i in range(data.captions_per_image)
            )
            embedding = directions[label % len(COLOURS)] + 0.1 * rng.normal(
                size=(data.captions_per_image, data.embedding_dim)
            )
            records.append(
                example_codec.encode(
                    example_codec.ImageRecord(
                        image_id=image_id,
                        filename=f"{label + 1:03d}.Bird/Bird_{image_id:05d}",
                        label=label,
                        class_id=label + 1,
                        class_name=f"{label + 1:03d}.Bird",
                        image_high=encode_image(high, data.image_encoding),
                        image_low=encode_image(low, data.image_encoding),
                        captions=captions,
                        embedding=embedding.astype(np.float32),
                    )
                )
            )
    return records


def write_tiny_examples(
    uri: str, config: Config, *, train_classes=(0, 1, 2), test_classes=(3,), per_class: int = 4
) -> standard_artifacts.Examples:
    """Writes `Split-train/` and `Split-test/` (one gzipped shard each) under `uri`; returns the
    Examples artifact with the custom properties CubExampleGen sets (num_<split>,
    has_embeddings)."""
    artifact = standard_artifacts.Examples()
    artifact.uri = uri
    splits = {"train": train_classes, "test": test_classes}
    artifact.split_names = artifact_utils.encode_split_names(list(splits))
    for seed, (split, classes) in enumerate(splits.items()):
        os.makedirs(os.path.join(uri, f"Split-{split}"), exist_ok=True)
        records = tiny_records(config, tuple(classes), per_class, seed)
        with TFRecordShardWriter(os.path.join(uri, f"Split-{split}", shard_name(0, 1))) as writer:
            for record in records:
                writer.write(record)
        artifact.set_int_custom_property(f"num_{split}", len(records))
    artifact.set_int_custom_property("has_embeddings", 1)
    return artifact
