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
