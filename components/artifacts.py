"""What the executors read from their artifacts, as plain values for their jobs.

Only executors import this (it is TFX's side of the line): the jobs they call take paths,
counts and config sections, never an artifact.
"""

from __future__ import annotations

import os
from typing import Any

from tfx import types
from tfx.types import artifact_utils


def split_names(examples: types.Artifact) -> list[str]:
    return artifact_utils.decode_split_names(examples.split_names) if examples.split_names else []


def split_pattern(examples: types.Artifact, split: str) -> str:
    """Glob of the gzipped TFRecord shards of one split of an Examples artifact."""
    splits = split_names(examples)
    if split not in splits:
        raise ValueError(f"{examples.uri}: no {split!r} split (has {splits})")
    return os.path.join(artifact_utils.get_split_uri([examples], split), "*")


def int_property(artifact: types.Artifact, name: str) -> int | None:
    """An int custom property, or None when the artifact does not have it."""
    properties = artifact.mlmd_artifact.custom_properties
    return properties[name].int_value if name in properties else None


def examples_paths(examples: types.Artifact) -> dict[str, Any]:
    """A GAN trainer's view of its Examples: `train_pattern`, `sample_pattern` (the test split's
    captions, or the train split's when there is no test split) and `num_train_examples`
    (CubExampleGen's `num_train`, or None to count); refuses Examples without embeddings."""
    if int_property(examples, "has_embeddings") == 0:
        raise ValueError(
            f"{examples.uri}: these Examples have no embeddings; train on the CaptionEmbedder's "
            "output (or a dataset that ships char-CNN-RNN embeddings)"
        )
    sample_split = "test" if "test" in split_names(examples) else "train"
    return {
        "train_pattern": split_pattern(examples, "train"),
        "sample_pattern": split_pattern(examples, sample_split),
        "num_train_examples": int_property(examples, "num_train"),
    }
