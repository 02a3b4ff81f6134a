"""In-graph caption tokenisation: what the exported text encoder does to a raw string."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from stackgan.text import tokenizer as tok


def _ids(text: str) -> list[int]:
    return [tok.FIRST_CHAR_ID + tok.ALPHABET.index(c) for c in text]


def test_alphabet_is_reeds_seventy_characters_less_the_repeated_dash():
    assert len(tok.REED_ALPHABET) == 70
    assert len(tok.ALPHABET) == 69 and len(set(tok.ALPHABET)) == 69
    assert tok.ONE_HOT_DEPTH == 70  # 69 characters + "unknown"


def test_lowercases_and_pads_to_max_chars():
    ids = tok.tokenize(["A Red BIRD"], max_chars=12).numpy()
    assert ids.shape == (1, 12) and ids.dtype == np.int32
    assert ids[0].tolist() == _ids("a red bird") + [tok.PAD_ID] * 2


def test_characters_outside_the_alphabet_map_to_the_unknown_id_one_per_character():
    # "é" and the snowman are one code point each, however many UTF-8 bytes they take
    ids = tok.tokenize(["café ☃!"], max_chars=8).numpy()[0]
    assert ids.tolist() == [
        *_ids("caf"),
        tok.UNKNOWN_ID,
        *_ids(" "),
        tok.UNKNOWN_ID,
        *_ids("!"),
        tok.PAD_ID,
    ]


def test_invalid_utf8_bytes_are_unknown_not_an_error():
    ids = tok.tokenize([b"ok\xff"], max_chars=4).numpy()[0]
    assert ids.tolist() == [*_ids("ok"), tok.UNKNOWN_ID, tok.PAD_ID]


def test_truncates_long_captions_to_max_chars():
    caption = "this bird has a very long tail " * 20
    ids = tok.tokenize([caption], max_chars=201).numpy()[0]
    assert ids.shape == (201,)
    assert tok.decode([ids]) == [caption[:201]]


def test_empty_and_blank_captions_are_all_padding():
    ids = tok.tokenize(["", "  \t\n "], max_chars=5).numpy()
    assert (ids == tok.PAD_ID).all()


def test_whitespace_runs_become_one_space_and_ends_are_stripped():
    ids = tok.tokenize(["  a\tred\n\nbird  "], max_chars=10).numpy()[0]
    assert tok.decode([ids]) == ["a red bird"]


def test_runs_inside_a_traced_function_and_tf_data():
    fn = tf.function(
        lambda s: tok.tokenize(s, 6), input_signature=[tf.TensorSpec([None], tf.string)]
    )
    assert fn(tf.constant(["Ab", "c"])).numpy().tolist() == [
        [*_ids("ab"), 0, 0, 0, 0],
        [*_ids("c"), 0, 0, 0, 0, 0],
    ]
    ds = tf.data.Dataset.from_tensor_slices(["xy", "z"]).batch(2).map(lambda s: tok.tokenize(s, 3))
    assert next(iter(ds)).numpy().tolist() == [[*_ids("xy"), 0], [*_ids("z"), 0, 0]]


def test_one_hot_gives_padding_no_channel():
    ids = tf.constant([[tok.PAD_ID, tok.UNKNOWN_ID, tok.FIRST_CHAR_ID]])
    columns = tok.one_hot(ids).numpy()[0]
    assert columns.shape == (3, tok.ONE_HOT_DEPTH)
    assert columns[0].sum() == 0
    assert columns[1].argmax() == 0 and columns[1].sum() == 1
    assert columns[2].argmax() == 1 and columns[2].sum() == 1


def test_rejects_a_non_positive_max_chars():
    with pytest.raises(ValueError, match="max_chars"):
        tok.tokenize(["a"], max_chars=0)
