"""TF Serving warm-up requests (`assets.extra/tf_serving_warmup_requests`).

TF Serving replays these PredictionLog records when it loads a version, so the first real
request does not pay for graph optimisation and memory allocation. Every signature of the
export gets one request per batch size, built from its input specs, so the records always
match the signatures they warm.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
_CAPTION = "a small bird"  # any sentence is valid for every text encoder


def warmup_inputs(input_signature: Sequence[tf.TensorSpec], batch_size: int) -> dict:
    """Zeros for float inputs, seed 0, a short caption; batched inputs get `batch_size` rows."""
    inputs = {}
    for spec in input_signature:
        shape = [batch_size, *spec.shape[1:]] if spec.shape.rank else []
        if spec.dtype == tf.string:
            inputs[spec.name] = np.full(shape, _CAPTION, dtype=object)
        else:
            inputs[spec.name] = np.zeros(shape, spec.dtype.as_numpy_dtype)
    return inputs


def warmup_request(
    signature_name: str, input_signature: Sequence[tf.TensorSpec], batch_size: int, model_name: str
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, value in warmup_inputs(input_signature, batch_size).items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def write_warmup_requests(
    export_dir: str,
    signatures: Mapping[str, Sequence[tf.TensorSpec]],
    batch_size: int = 2,
    model_name: str = "stackgan",
) -> str:
    """Writes, for each signature (name -> its input specs), one warm-up record per batch size
    from 1 to `batch_size`; returns the file path."""
    path = os.path.join(export_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for signature_name, input_signature in signatures.items():
            for n in range(1, batch_size + 1):
                request = warmup_request(signature_name, input_signature, n, model_name)
                log = prediction_log_pb2.PredictionLog(
                    predict_log=prediction_log_pb2.PredictLog(request=request)
                )
                writer.write(log.SerializeToString())
    return path


def read_warmup_requests(export_dir: str) -> list[predict_pb2.PredictRequest]:
    """The requests stored in an export, in order (for tests and `stackgan` diagnostics)."""
    path = os.path.join(export_dir, WARMUP_FILE)
    requests = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        requests.append(prediction_log_pb2.PredictionLog.FromString(record).predict_log.request)
    return requests
