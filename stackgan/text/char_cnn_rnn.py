"""The char-CNN-RNN text encoder of Reed et al. 2016 as a functional Keras model.

ids int32[B, max_chars] -> one-hot (70 channels, padding all-zero) -> three temporal
convolutions (kernel 4, ReLU), the first two followed by max-pooling (3, stride 3), as in their
`HybridCNN` -> an RNN over the remaining time steps -> mean of its hidden states over time ->
linear map to the embedding (`TextEncoderConfig.embedding_dim`).

With Reed et al.'s 201 characters the RNN runs over 18 steps; `max_chars` must leave at least
one step (see `sequence_length_after_cnn`).

`dtype_policy` (`train.precision`'s Keras policy): under "mixed_bfloat16" the convolutions and
the RNN compute in bf16, the embedding layer in float32, so what leaves the encoder (and what
the DS-SJE loss and the exported SavedModel return) stays float32. Measured on the 2-core AMX
Xeon, paper sizes, batch 40: 2.0x the training steps and 3.5x the captions/s of inference;
at the demo's sizes (64-channel convs, 64 units) no gain (1.08x), but no loss either.
"""

from __future__ import annotations

import keras

from stackgan.config import TextEncoderConfig
from stackgan.text import tokenizer

CONV_KERNEL = 4
POOL_SIZE = 3


def sequence_length_after_cnn(max_chars: int, num_convs: int) -> int:
    """Time steps the RNN sees: each conv removes KERNEL-1 steps, each pool (all convs but the
    last) divides by POOL_SIZE, rounding down."""
    length = max_chars
    for i in range(num_convs):
        length -= CONV_KERNEL - 1
        if i < num_convs - 1:
            length //= POOL_SIZE
    return length


@keras.saving.register_keras_serializable(package="stackgan")
class CharOneHot(keras.layers.Layer):
    """Character ids -> one-hot columns; padding (id 0) becomes the zero vector."""

    def call(self, ids):
        return tokenizer.one_hot(ids)

    def compute_output_shape(self, input_shape):
        return (*input_shape, tokenizer.ONE_HOT_DEPTH)


def _rnn(cfg: TextEncoderConfig, dtype=None) -> keras.layers.Layer:
    # return_sequences: the encoding is the mean hidden state over time, not the last one
    if cfg.rnn_cell == "simple":
        return keras.layers.SimpleRNN(cfg.rnn_units, return_sequences=True, name="rnn", dtype=dtype)
    if cfg.rnn_cell == "gru":
        return keras.layers.GRU(cfg.rnn_units, return_sequences=True, name="rnn", dtype=dtype)
    if cfg.rnn_cell == "lstm":
        return keras.layers.LSTM(cfg.rnn_units, return_sequences=True, name="rnn", dtype=dtype)
    raise ValueError(
        f"TextEncoderConfig.rnn_cell must be simple, gru or lstm, got {cfg.rnn_cell!r}"
    )


def build_char_cnn_rnn(cfg: TextEncoderConfig, *, dtype_policy: str | None = None) -> keras.Model:
    """ids int32[B, cfg.max_chars] -> embedding f32[B, cfg.embedding_dim]."""
    d = dtype_policy
    steps = sequence_length_after_cnn(cfg.max_chars, len(cfg.conv_filters))
    if steps < 1:
        raise ValueError(
            f"TextEncoderConfig.max_chars={cfg.max_chars} is too short for"
            f" {len(cfg.conv_filters)} convolutions (kernel {CONV_KERNEL}, pool {POOL_SIZE})"
        )
    ids = keras.Input(shape=(cfg.max_chars,), dtype="int32", name="char_ids")
    x = CharOneHot(name="one_hot", dtype=d)(ids)
    for i, filters in enumerate(cfg.conv_filters):
        x = keras.layers.Conv1D(
            filters, CONV_KERNEL, activation="relu", name=f"conv{i + 1}", dtype=d
        )(x)
        if i < len(cfg.conv_filters) - 1:
            x = keras.layers.MaxPooling1D(POOL_SIZE, POOL_SIZE, name=f"pool{i + 1}", dtype=d)(x)
    x = _rnn(cfg, d)(x)
    x = keras.layers.GlobalAveragePooling1D(name="mean_over_time", dtype=d)(x)
    embedding = keras.layers.Dense(cfg.embedding_dim, name="embedding", dtype="float32")(x)
    return keras.Model(ids, embedding, name="char_cnn_rnn")
