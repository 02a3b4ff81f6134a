"""A char-CNN-RNN taught to reproduce a dataset's own caption embeddings from the captions.

When the trainers condition on the release's `char-CNN-RNN-embeddings.pickle` (Reed et al.'s
encoder, run in Torch by its authors; or the synthetic set's), nothing in the DAG can embed a
new sentence, so the pushed generator took embeddings only. Here the same char-CNN-RNN as the
DS-SJE path (char_cnn_rnn.py) regresses those embeddings from the caption text (mean squared
error per element), so the exported generator's `text` signatures map a sentence into the space
the GAN was trained on. The Examples carry both: caption j of an image and row j of its
embedding matrix.

How close it gets is scored on captions it never saw (the test split): the mean cosine between
its embedding of a caption and the dataset's, beside what an encoder that ignores its input can
reach at best (every caption mapped to the training embeddings' mean).
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from stackgan.config import TextEncoderConfig
from stackgan.schemas import features
from stackgan.text import tokenizer
from stackgan.text.char_cnn_rnn import build_char_cnn_rnn


@dataclasses.dataclass(frozen=True)
class CaptionTargets:
    """Non-blank captions and the dataset's embedding of each, f32[M, E]."""

    captions: list[str]
    embeddings: np.ndarray
    images_read: int
    blank_captions_dropped: int


def read_caption_targets(file_pattern: str) -> CaptionTargets:
    """Every non-blank caption of the Examples at `file_pattern` with its embedding row."""
    files = sorted(tf.io.gfile.glob(file_pattern))
    if not files:
        raise FileNotFoundError(f"{file_pattern}: no TFRecord files match")
    spec = features.parse_spec(features.WITH_EMBEDDINGS, (features.CAPTIONS, features.EMBEDDING))
    batches = (
        tf.data.TFRecordDataset(files, compression_type="GZIP")
        .batch(256)
        .map(lambda s: tf.io.parse_example(s, spec), num_parallel_calls=tf.data.AUTOTUNE)
    )
    captions, rows = [], []
    images = blank = 0
    for batch in batches:
        for raw, matrix in zip(
            batch[features.CAPTIONS].numpy(), batch[features.EMBEDDING].numpy(), strict=True
        ):
            images += 1
            for caption, row in zip(raw, matrix, strict=True):
                text = caption.decode("utf-8", errors="replace").strip()
                if not text:
                    blank += 1
                    continue
                captions.append(text)
                rows.append(row)
    if not captions:
        raise ValueError(f"{file_pattern}: no caption with an embedding ({images} images read)")
    return CaptionTargets(captions, np.stack(rows).astype(np.float32), images, blank)


def _dataset(targets: CaptionTargets, max_chars: int, batch_size: int, seed: int | None):
    ids = tokenizer.tokenize(tf.constant(targets.captions), max_chars)
    ds = tf.data.Dataset.from_tensor_slices((ids, targets.embeddings))
    if seed is not None:
        ds = ds.shuffle(len(targets.captions), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def train_distilled_encoder(
    train: CaptionTargets,
    cfg: TextEncoderConfig,
    *,
    validation: CaptionTargets | None = None,
    seed: int = 0,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int = 0,
    dtype_policy: str | None = None,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """The char-CNN-RNN (caption ids -> f32[E]) fitted for `cfg.distill_epochs` passes over
    `train`, and the Keras history (loss per epoch; val_loss with `validation`)."""
    keras.utils.set_random_seed(seed)
    encoder = build_char_cnn_rnn(cfg, dtype_policy=dtype_policy)
    encoder.compile(optimizer=keras.optimizers.Adam(cfg.distill_learning_rate), loss="mse")
    history = encoder.fit(
        _dataset(train, cfg.max_chars, cfg.batch_size, seed),
        validation_data=(
            None if validation is None else _dataset(validation, cfg.max_chars, 256, None)
        ),
        epochs=cfg.distill_epochs,
        shuffle=False,  # _dataset shuffles
        callbacks=callbacks or [],
        verbose=verbose,
    )
    return encoder, history.history


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    return np.sum(a * b, axis=-1)


def distillation_scores(
    encoder: keras.Model, targets: CaptionTargets, train_mean: np.ndarray
) -> dict[str, float]:
    """{"cosine": mean cosine of the encoder's embedding of each caption with the dataset's,
    "input_blind_cosine": the same for the training embeddings' mean (the best an encoder that
    ignores its input can do in direction), "captions": how many were scored}."""
    predicted = encoder.predict(
        _dataset(targets, encoder.input_shape[-1], 256, None).map(lambda ids, _: ids), verbose=0
    )
    blind = np.broadcast_to(train_mean, targets.embeddings.shape)
    return {
        "cosine": float(_cosines(predicted, targets.embeddings).mean()),
        "input_blind_cosine": float(_cosines(blind, targets.embeddings).mean()),
        "captions": len(targets.captions),
    }
