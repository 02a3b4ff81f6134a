"""tf.Example encoding and decoding of one CUB image record, following schemas/schema.pbtxt.

Encoding goes through tfx_bsl's Arrow -> tf.Example encoder, so the Beam workers that write
Examples never import TensorFlow (a worker process would otherwise spend ~20 s on the import).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from tfx_bsl.coders import example_coder

from stackgan.schemas import features


@dataclasses.dataclass(frozen=True)
class ImageRecord:
    """What one tf.Example holds (field names are the schema's feature names)."""

    image_id: int
    filename: str
    label: int
    class_id: int
    class_name: str
    image_high: bytes  # encoded as data.image_encoding
    image_low: bytes
    captions: tuple[str, ...]
    embedding: np.ndarray | None  # float32 [captions, dim]; None when the dataset has none


_local = threading.local()


def _encoder() -> example_coder.RecordBatchToExamplesEncoder:
    # one per thread (the converter encodes on several), made once: making one per Example
    # was most of its encoding time
    if not hasattr(_local, "encoder"):
        _local.encoder = example_coder.RecordBatchToExamplesEncoder()
    return _local.encoder


def _column(values: list, value_type: pa.DataType) -> pa.Array:
    return pa.array([values], type=pa.large_list(value_type))


def encode(record: ImageRecord) -> bytes:
    """The serialized tf.Example of one record."""
    columns = {
        features.IMAGE_ID: _column([record.image_id], pa.int64()),
        features.FILENAME: _column([record.filename.encode()], pa.large_binary()),
        features.LABEL: _column([record.label], pa.int64()),
        features.CLASS_ID: _column([record.class_id], pa.int64()),
        features.CLASS_NAME: _column([record.class_name.encode()], pa.large_binary()),
        features.IMAGE_HIGH: _column([record.image_high], pa.large_binary()),
        features.IMAGE_LOW: _column([record.image_low], pa.large_binary()),
        features.CAPTIONS: _column([c.encode() for c in record.captions], pa.large_binary()),
    }
    if record.embedding is not None:
        # Row-major flattening: FixedLenFeature([10, 1024]) reshapes it back.
        flat = np.ascontiguousarray(record.embedding, dtype=np.float32).reshape(-1)
        columns[features.EMBEDDING] = pa.LargeListArray.from_arrays(
            pa.array([0, flat.size], type=pa.int64()), pa.array(flat)
        )
    batch = pa.RecordBatch.from_arrays(list(columns.values()), names=list(columns))
    return _encoder().encode(batch)[0]


def decode(serialized: Sequence[bytes]) -> list[dict]:
    """Python dicts of serialized Examples (for inspection and tests): one value per scalar
    feature, lists otherwise, `embedding` as a [captions, dim] array when present."""
    batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(list(serialized))
    records = []
    for row in batch.to_pylist():
        record = {}
        for name, values in row.items():
            if values is None:
                continue
            if name == features.EMBEDDING:
                record[name] = np.asarray(values, np.float32).reshape(
                    features.feature_shape(features.EMBEDDING)
                )
            elif features.feature_shape(name) == ():
                record[name] = values[0]
            else:
                record[name] = values
        records.append(record)
    return records
