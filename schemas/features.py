"""The Examples schema (`schema.pbtxt`) and everything derived from it.

Loading the schema needs only `tensorflow_metadata` (Beam workers stay free of TensorFlow);
`parse_spec` imports TensorFlow Transform's converter on first use, for the readers.
"""

from __future__ import annotations

import functools
from pathlib import Path

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

SCHEMA_PATH = Path(__file__).with_name("schema.pbtxt")

# Feature names, as declared in schema.pbtxt (a test checks the two agree).
IMAGE_ID = "image_id"
FILENAME = "filename"
LABEL = "label"
CLASS_ID = "class_id"
CLASS_NAME = "class_name"
IMAGE_HIGH = "image_high"
IMAGE_LOW = "image_low"
CAPTIONS = "captions"
EMBEDDING = "embedding"
ALL_FEATURES = (
    IMAGE_ID, FILENAME, LABEL, CLASS_ID, CLASS_NAME, IMAGE_HIGH, IMAGE_LOW, CAPTIONS, EMBEDDING
)  # fmt: skip

# The schema's environments (see schema.pbtxt): which features a set of Examples must have.
WITH_EMBEDDINGS = "WITH_EMBEDDINGS"
WITHOUT_EMBEDDINGS = "WITHOUT_EMBEDDINGS"


@functools.cache
def load_schema(path: Path = SCHEMA_PATH) -> schema_pb2.Schema:
    schema = schema_pb2.Schema()
    text_format.Parse(path.read_text(encoding="utf-8"), schema)
    return schema


def in_environment(
    feature: schema_pb2.Feature, environment: str, schema: schema_pb2.Schema
) -> bool:
    """TF Metadata's rule: `in_environment` lists where a feature is, else it is in every
    default environment that `not_in_environment` does not name."""
    if feature.in_environment:
        return environment in feature.in_environment
    return (
        environment in schema.default_environment and environment not in feature.not_in_environment
    )


def environment_schema(
    environment: str, schema: schema_pb2.Schema | None = None
) -> schema_pb2.Schema:
    """The schema restricted to the features present in `environment`."""
    schema = schema or load_schema()
    if environment not in schema.default_environment:
        raise ValueError(
            f"unknown environment {environment!r}; {SCHEMA_PATH} declares"
            f" {list(schema.default_environment)}"
        )
    kept = schema_pb2.Schema()
    kept.CopyFrom(schema)
    del kept.feature[:]
    kept.feature.extend(f for f in schema.feature if in_environment(f, environment, schema))
    return kept


def feature_shape(name: str, schema: schema_pb2.Schema | None = None) -> tuple[int, ...]:
    """The fixed shape the schema declares for one feature (() for a scalar)."""
    schema = schema or load_schema()
    for feature in schema.feature:
        if feature.name == name:
            return tuple(d.size for d in feature.shape.dim)
    raise KeyError(f"feature {name!r} is not in the schema ({SCHEMA_PATH})")


def check_config(data_config, schema: schema_pb2.Schema | None = None) -> None:
    """Fails when `stackgan.config.DataConfig` disagrees with the schema's fixed shapes."""
    captions = feature_shape(CAPTIONS, schema)
    embedding = feature_shape(EMBEDDING, schema)
    wanted = {
        "captions_per_image": (data_config.captions_per_image, captions[0]),
        "embedding_dim": (data_config.embedding_dim, embedding[1]),
    }
    for field, (configured, declared) in wanted.items():
        if configured != declared:
            raise ValueError(
                f"config data.{field}={configured} but {SCHEMA_PATH} declares {declared}"
            )


def parse_spec(
    environment: str = WITH_EMBEDDINGS,
    features: tuple[str, ...] | None = None,
    schema: schema_pb2.Schema | None = None,
) -> dict:
    """`{name: tf.io.FixedLenFeature}` for `tf.io.parse_example`, derived from the schema.

    `environment` picks the features the Examples have; `features` keeps a subset (e.g. a
    reader that needs only the label and one image). Every feature of this schema has a fixed
    shape, so every spec is a FixedLenFeature without a default: a record that lacks a feature
    fails to parse instead of being silently filled in.
    """
    # TensorFlow Transform's converter (tfx_bsl underneath); imported here so that loading
    # the schema, as the Beam workers do, does not import TensorFlow.
    from tensorflow_transform.tf_metadata import schema_utils

    spec = schema_utils.schema_as_feature_spec(environment_schema(environment, schema)).feature_spec
    if features is None:
        return dict(spec)
    unknown = sorted(set(features) - set(spec))
    if unknown:
        raise KeyError(f"features {unknown} are not in the schema ({SCHEMA_PATH})")
    return {name: spec[name] for name in features}
