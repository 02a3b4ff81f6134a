"""schemas/: the schema file, the specs derived from it, and the conformance check."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from tfx_bsl.coders import example_coder

from stackgan import config
from stackgan.schemas import conformance, features
from stackgan.tfrecords import example_codec


def _record(**changes) -> example_codec.ImageRecord:
    record = example_codec.ImageRecord(
        image_id=7,
        filename="002.Laysan_Albatross/Laysan_Albatross_0002_1027",
        label=1,
        class_id=2,
        class_name="002.Laysan_Albatross",
        image_high=b"high-bytes",
        image_low=b"low-bytes",
        captions=tuple(f"caption {i}" for i in range(10)),
        embedding=np.arange(10 * 1024, dtype=np.float32).reshape(10, 1024),
    )
    return dataclasses.replace(record, **changes)


def test_feature_names_are_the_schema_features():
    assert [f.name for f in features.load_schema().feature] == list(features.ALL_FEATURES)


def test_parse_spec_follows_the_schema_and_its_environments():
    import tensorflow as tf

    spec = features.parse_spec()
    assert spec[features.CAPTIONS] == tf.io.FixedLenFeature([10], tf.string)
    assert spec[features.EMBEDDING] == tf.io.FixedLenFeature([10, 1024], tf.float32)
    assert spec[features.LABEL] == tf.io.FixedLenFeature([], tf.int64)
    raw = features.parse_spec(features.WITHOUT_EMBEDDINGS)
    assert set(raw) == set(features.ALL_FEATURES) - {features.EMBEDDING}
    subset = features.parse_spec(features.WITH_EMBEDDINGS, (features.LABEL, features.IMAGE_LOW))
    assert list(subset) == [features.LABEL, features.IMAGE_LOW]
    with pytest.raises(KeyError, match="bbox"):
        features.parse_spec(features.WITH_EMBEDDINGS, ("bbox",))
    with pytest.raises(ValueError, match="unknown environment"):
        features.parse_spec("SERVING")


def test_parse_spec_parses_an_encoded_record():
    import tensorflow as tf

    parsed = tf.io.parse_single_example(example_codec.encode(_record()), features.parse_spec())
    assert parsed[features.EMBEDDING].shape == (10, 1024)
    assert float(parsed[features.EMBEDDING][3, 5]) == 3 * 1024 + 5
    assert parsed[features.CAPTIONS][9].numpy() == b"caption 9"
    assert int(parsed[features.IMAGE_ID]) == 7


def test_config_must_agree_with_the_schema():
    features.check_config(config.paper().data)
    features.check_config(config.tiny().data)
    with pytest.raises(ValueError, match="data.embedding_dim=512 .* declares 1024"):
        features.check_config(config.paper().replace(data={"embedding_dim": 512}).data)


def test_encode_decode_round_trip():
    record = _record()
    (decoded,) = example_codec.decode([example_codec.encode(record)])
    assert decoded["filename"] == record.filename.encode()
    assert decoded["captions"] == [c.encode() for c in record.captions]
    np.testing.assert_array_equal(decoded["embedding"], record.embedding)
    (raw,) = example_codec.decode([example_codec.encode(_record(embedding=None))])
    assert "embedding" not in raw


def test_conforming_examples_pass():
    with_embedding = example_codec.encode(_record())
    without = example_codec.encode(_record(embedding=None))
    assert conformance.conformance_errors([with_embedding] * 2, features.WITH_EMBEDDINGS) == []
    assert conformance.conformance_errors([without] * 2, features.WITHOUT_EMBEDDINGS) == []


def test_conformance_names_the_example_feature_and_problem():
    good = example_codec.encode(_record())
    bad = example_codec.encode(
        _record(captions=("only one",), label=250, embedding=None, image_id=0)
    )
    errors = conformance.conformance_errors([good, bad], features.WITH_EMBEDDINGS)
    assert "example 1: captions: 1 values, schema says 10..10" in errors
    assert "example 1: label: [250] outside [0, 199]" in errors
    assert "example 1: image_id: [0] outside [1, inf]" in errors
    assert "example 1: embedding: missing" in errors
    assert not any(e.startswith("example 0") for e in errors)
    # a raw Example must not carry embeddings
    extra = conformance.conformance_errors([good], features.WITHOUT_EMBEDDINGS)
    assert extra == ["all examples: embedding: not a feature of the WITHOUT_EMBEDDINGS schema"]


def test_conformance_checks_types():
    import pyarrow as pa

    batch = pa.RecordBatch.from_arrays(
        [pa.array([[1.5]], type=pa.list_(pa.float32()))], names=[features.LABEL]
    )
    (serialized,) = example_coder.RecordBatchToExamplesEncoder().encode(batch)
    errors = conformance.conformance_errors([serialized], features.WITHOUT_EMBEDDINGS)
    assert "all examples: label: values of type float, schema says INT" in errors
    assert "all examples: image_high: missing" in errors
