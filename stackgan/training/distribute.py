"""Which tf.distribute strategy a trainer runs under.

- TF_CONFIG naming more than one task: MultiWorkerMirroredStrategy (synchronous data parallel
  across machines, e.g. a Kubeflow/Vertex training job). TensorFlow requires it to be created
  before any other TF op runs, so a multi-worker job calls `choose_strategy` first thing.
- more than one local GPU: MirroredStrategy.
- otherwise the default (no-op) strategy, so CPU runs pay nothing for distribution.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf


def cluster_size(tf_config: str | None) -> int:
    """Number of tasks (chief + workers) TF_CONFIG describes; 0 when it is unset or empty."""
    if not tf_config:
        return 0
    try:
        cluster = json.loads(tf_config).get("cluster", {})
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from None
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


def choose_strategy(tf_config: str | None = None) -> tf.distribute.Strategy:
    """The strategy for this process; `tf_config` defaults to the TF_CONFIG environment."""
    if tf_config is None:
        tf_config = os.environ.get("TF_CONFIG")
    if cluster_size(tf_config) > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def keras_reduces_logs_along_axis_0(strategy: tf.distribute.Strategy) -> bool:
    """True where Keras 3's train function reduces each log with `strategy.reduce("MEAN",
    value, axis=0)`: MultiWorkerMirroredStrategy across several workers (Keras' own test,
    `_collective_all_reduce_multi_worker`). A scalar log has no axis 0 there, and the first
    step fails ("Invalid reduction dimension 0 for input with 0 dimensions", tensorflow#72388),
    so a train step hands its logs over as [1] tensors under such a strategy."""
    return (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    )


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the task that owns the outputs (checkpoints, summaries, sample sheets).
    Multi-worker: the "chief" task, or worker 0 when the cluster has no chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief
