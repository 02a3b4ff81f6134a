"""Captions -> character ids, inside the TensorFlow graph.

Runs in the exported encoder SavedModel, so a served model takes raw strings. Steps: lowercase
(Unicode-aware), collapse whitespace runs to one space and strip, decode UTF-8 into code points
(invalid bytes become U+FFFD), map each code point to its id in Reed et al.'s alphabet, truncate
to `max_chars`, pad with `PAD_ID`.

Ids: 0 = padding, 1 = a character outside the alphabet (accented letters, emoji, U+FFFD...),
2.. = the alphabet in order. `one_hot` turns padding into an all-zero column, as Reed et al.'s
Lua code does, so the network sees 70 channels: "unknown" plus the 69 distinct alphabet
characters (their 70-character string lists "-" twice).
"""

from __future__ import annotations

import tensorflow as tf

# Reed et al. 2016 (icml2016 / cvpr2016 code, util.lua), "-" listed twice there.
REED_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-,;.!?:'\"/\\|_@#$%^&*~`+-=<>()[]{} "
ALPHABET = "".join(dict.fromkeys(REED_ALPHABET))  # first occurrence of each character
PAD_ID = 0
UNKNOWN_ID = 1
FIRST_CHAR_ID = 2
VOCAB_SIZE = FIRST_CHAR_ID + len(ALPHABET)  # ids 0 .. VOCAB_SIZE - 1
ONE_HOT_DEPTH = VOCAB_SIZE - 1  # padding has no channel

# A dense code point -> id table over ASCII; every other code point is UNKNOWN_ID.
_ASCII = 128
_ID_BY_CODE_POINT = [UNKNOWN_ID] * _ASCII
for _i, _c in enumerate(ALPHABET):
    _ID_BY_CODE_POINT[ord(_c)] = FIRST_CHAR_ID + _i


def tokenize(captions: tf.Tensor, max_chars: int) -> tf.Tensor:
    """string[N] -> int32[N, max_chars] character ids (see the module docstring)."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    captions = tf.convert_to_tensor(captions, dtype=tf.string)
    text = tf.strings.lower(captions, encoding="utf-8")
    text = tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " "))
    code_points = tf.strings.unicode_decode(
        text, "UTF-8", errors="replace", replacement_char=0xFFFD
    )
    code_points = code_points[:, :max_chars]
    ids = tf.ragged.map_flat_values(_ids_of_code_points, code_points)
    return ids.to_tensor(default_value=PAD_ID, shape=[None, max_chars])


def _ids_of_code_points(code_points: tf.Tensor) -> tf.Tensor:
    table = tf.constant(_ID_BY_CODE_POINT, dtype=tf.int32)
    ascii_ids = tf.gather(table, tf.clip_by_value(code_points, 0, _ASCII - 1))
    return tf.where(code_points < _ASCII, ascii_ids, UNKNOWN_ID)


def one_hot(ids: tf.Tensor) -> tf.Tensor:
    """int[N, L] ids -> f32[N, L, ONE_HOT_DEPTH]; padding rows are all zeros."""
    # one_hot of -1 is the zero vector
    return tf.one_hot(tf.cast(ids, tf.int32) - 1, depth=ONE_HOT_DEPTH, dtype=tf.float32)


def decode(ids) -> list[str]:
    """Ids back to text, unknown characters shown as U+FFFD (for debugging and tests)."""
    chars = {FIRST_CHAR_ID + i: c for i, c in enumerate(ALPHABET)}
    chars[UNKNOWN_ID] = "\ufffd"
    return ["".join(chars[int(i)] for i in row if int(i) != PAD_ID) for row in ids]
