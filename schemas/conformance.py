"""Checks serialized tf.Examples against the schema: feature names, types, value counts,
presence and integer domains (the part of TFDV's validation this project needs; TFDV itself
has no wheels for this Python). Decoding goes through tfx_bsl, as TFDV's does."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pyarrow as pa
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.coders import example_coder

from stackgan.schemas import features

_ARROW_TYPES = {
    schema_pb2.INT: (pa.int64(),),
    schema_pb2.FLOAT: (pa.float32(),),
    schema_pb2.BYTES: (pa.binary(), pa.large_binary()),
}


def conformance_errors(
    serialized: Sequence[bytes],
    environment: str,
    schema: schema_pb2.Schema | None = None,
) -> list[str]:
    """Every way the examples break the schema, as `example <i>: <feature>: <problem>` lines
    (empty when they conform)."""
    expected = features.environment_schema(environment, schema)
    if not serialized:
        return []
    # Without a schema the decoder keeps every feature it finds, with the type it was written as.
    batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(list(serialized))
    errors = [
        f"all examples: {name}: not a feature of the {environment} schema"
        for name in batch.schema.names
        if name not in {f.name for f in expected.feature}
    ]
    for feature in expected.feature:
        if feature.name not in batch.schema.names:
            errors.append(f"all examples: {feature.name}: missing")
            continue
        column = batch.column(feature.name)
        value_type = column.type.value_type
        if value_type not in _ARROW_TYPES[feature.type] and value_type != pa.null():
            errors.append(
                f"all examples: {feature.name}: values of type {value_type}, schema says"
                f" {schema_pb2.FeatureType.Name(feature.type)}"
            )
            continue
        errors.extend(_row_errors(feature, column.to_pylist()))
    return errors


def _row_errors(feature: schema_pb2.Feature, rows: list) -> list[str]:
    required = feature.presence.min_fraction >= 1.0
    if feature.HasField("shape"):
        counts = (math.prod(d.size for d in feature.shape.dim),) * 2
    elif feature.HasField("value_count"):
        counts = (feature.value_count.min, feature.value_count.max or math.inf)
    else:
        counts = (0, math.inf)
    domain = feature.int_domain if feature.HasField("int_domain") else None
    errors = []
    for i, values in enumerate(rows):
        where = f"example {i}: {feature.name}"
        if values is None:
            if required:
                errors.append(f"{where}: missing")
            continue
        if not counts[0] <= len(values) <= counts[1]:
            errors.append(f"{where}: {len(values)} values, schema says {counts[0]}..{counts[1]}")
        if domain is not None:
            low = domain.min if domain.HasField("min") else -math.inf
            high = domain.max if domain.HasField("max") else math.inf
            outside = [v for v in values if not low <= v <= high]
            if outside:
                errors.append(f"{where}: {outside[:3]} outside [{low}, {high}]")
    return errors
