"""TF Serving warm-up requests (`assets.extra/tf_serving_warmup_requests`).

TF Serving replays these PredictionLog records when it loads a version, so the first real
request does not pay for graph optimisation and memory allocation.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def warmup_request(
    embedding_dim: int, batch_size: int, model_name: str
) -> predict_pb2.PredictRequest:
    """A `serving_default` request with zero embeddings: cheap, valid for every trained model."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = "serving_default"
    request.inputs["embedding"].CopyFrom(
        tf.make_tensor_proto(np.zeros((batch_size, embedding_dim), np.float32))
    )
    request.inputs["seed"].CopyFrom(tf.make_tensor_proto(np.int64(0)))
    return request


def write_warmup_requests(
    export_dir: str, embedding_dim: int, batch_size: int = 2, model_name: str = "stackgan"
) -> str:
    """Writes one warm-up record per batch size from 1 to `batch_size`; returns the file path."""
    path = os.path.join(export_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for n in range(1, batch_size + 1):
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(
                    request=warmup_request(embedding_dim, n, model_name)
                )
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
