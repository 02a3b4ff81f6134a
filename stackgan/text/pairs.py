"""(image features, caption, class) pairs: what the joint embedding trains and is evaluated on.

Image features are computed once per image (the classifier is frozen), so a split is held as
one feature row per image plus that image's captions; the tf.data pipeline expands it into one
element per (image, caption) pair and tokenises the captions in the graph.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from stackgan.text import tokenizer


@dataclasses.dataclass(frozen=True)
class CaptionedFeatures:
    features: np.ndarray  # f32[N, D], one row per image
    captions: Sequence[Sequence[str]]  # N lists of captions
    labels: np.ndarray  # int[N] class of each image

    def __post_init__(self):
        if self.features.ndim != 2:
            raise ValueError(f"features must be [N, D], got shape {self.features.shape}")
        n = len(self.features)
        if len(self.captions) != n or len(self.labels) != n:
            raise ValueError(
                f"{n} feature rows but {len(self.captions)} caption lists and"
                f" {len(self.labels)} labels"
            )

    def flat_captions(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(captions [M], image index int[M], label int[M]) with one row per caption."""
        captions, index = [], []
        for i, image_captions in enumerate(self.captions):
            captions.extend(image_captions)
            index.extend([i] * len(image_captions))
        index = np.asarray(index, dtype=np.int64)
        return captions, index, np.asarray(self.labels, dtype=np.int64)[index]


def pair_dataset(
    data: CaptionedFeatures,
    max_chars: int,
    batch_size: int,
    *,
    seed: int = 0,
    reshuffle: bool = True,
) -> tf.data.Dataset:
    """Batches of {"features": f32[B, D], "char_ids": int32[B, max_chars], "label": int64[B]}.

    Every (image, caption) pair once per pass, shuffled: the DS-SJE loss compares the classes
    present in a batch, and a batch of one class has nothing to compare. `reshuffle=False`
    keeps one fixed order (validation, so its loss is comparable across epochs). The
    last partial batch is dropped when there is at least one full batch, so the in-batch class
    means of the DS-SJE loss are never taken over a handful of stragglers.
    """
    captions, index, labels = data.flat_captions()
    if not captions:
        raise ValueError("no captions to pair with images")
    features = tf.constant(np.asarray(data.features, dtype=np.float32))
    ds = tf.data.Dataset.from_tensor_slices(
        {"caption": tf.constant(captions, tf.string), "index": index, "label": labels}
    )
    ds = ds.shuffle(len(captions), seed=seed, reshuffle_each_iteration=reshuffle)
    ds = ds.batch(batch_size, drop_remainder=len(captions) >= batch_size)

    def to_model_inputs(batch):
        return {
            "features": tf.gather(features, batch["index"]),
            "char_ids": tokenizer.tokenize(batch["caption"], max_chars),
            "label": batch["label"],
        }

    return ds.map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
