"""Reads what a pipeline run produced back out of MLMD, for the end-of-run summary."""

from __future__ import annotations

import json
import os

import ml_metadata as mlmd
from tfx.orchestration import metadata

from stackgan.pipeline import layout
from stackgan.pipeline.text_path import EMBEDDINGS_PICKLE

_DONE = (mlmd.proto.Execution.COMPLETE, mlmd.proto.Execution.CACHED)


def open_store(work_dir: str) -> mlmd.MetadataStore:
    path = layout.metadata_path(work_dir)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no MLMD store (has the pipeline run in {work_dir}?)")
    return mlmd.MetadataStore(metadata.sqlite_metadata_connection_config(path))


def node_outputs(store, pipeline_name: str, node_id: str) -> dict[str, str]:
    """output key -> URI for the newest finished (or cached) execution of one component."""
    context = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node_id}")
    if context is None:
        return {}
    executions = [
        e for e in store.get_executions_by_context(context.id) if e.last_known_state in _DONE
    ]
    if not executions:
        return {}
    latest = max(executions, key=lambda e: e.id)
    events = [
        e
        for e in store.get_events_by_execution_ids([latest.id])
        if e.type == mlmd.proto.Event.OUTPUT
    ]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    outputs = {}
    for event in events:
        key = event.path.steps[0].key if event.path.steps else str(event.artifact_id)
        outputs[key] = artifacts[event.artifact_id].uri
    return outputs


def execution_states(store, pipeline_name: str) -> dict[str, list[str]]:
    """component id -> the states of its executions, oldest first (to see what was cached)."""
    states = {}
    prefix = f"{pipeline_name}."
    for context in store.get_contexts_by_type("node"):
        if context.name.startswith(prefix):
            executions = sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)
            states[context.name[len(prefix) :]] = [
                mlmd.proto.Execution.State.Name(e.last_known_state) for e in executions
            ]
    return states


def summarize(
    work_dir: str, pipeline_name: str, elapsed_s: float, data_root: str, text_signature: bool
) -> str:
    store = open_store(work_dir)
    states = execution_states(store, pipeline_name)
    cached = sorted(n for n, s in states.items() if s and s[-1] == "CACHED")
    lines = [
        f"\npipeline {pipeline_name!r} finished in {elapsed_s:.0f} s"
        + (f" (cached, not re-run: {', '.join(cached)})" if cached else "")
        + ". Results:"
    ]
    evaluation = node_outputs(store, pipeline_name, "Evaluator").get("evaluation")
    if evaluation:
        metrics_path = os.path.join(evaluation, "metrics.json")
        lines.append(f"  metrics:       {metrics_path}")
        if os.path.exists(metrics_path):
            with open(metrics_path) as f:
                metrics = json.load(f)
            for row in metrics.get("table", []):
                lines.append(
                    f"      {row['images']:>16}: inception score {row['inception_score_mean']:.3f}"
                    f" +- {row['inception_score_std']:.3f}, FID {row['fid']:.2f}"
                    f" ({row['count']} images)"
                )
            if "blessed" in metrics:
                lines.append(
                    f"      blessed: {metrics['blessed']} (needs inception score >= "
                    f"{metrics.get('min_inception_score')})"
                )
        for name in sorted(os.listdir(evaluation)):
            if name.endswith(".png"):
                lines.append(f"  sample sheet:  {os.path.join(evaluation, name)}")
    for node in ("Stage1Trainer", "Stage2Trainer"):
        run_dir = node_outputs(store, pipeline_name, node).get("model_run")
        if run_dir:
            lines.append(f"  {node} run:  {run_dir}  (tensorboard --logdir {run_dir})")
    serving = layout.serving_dir(work_dir)
    versions = (
        sorted((v for v in os.listdir(serving) if v.isdigit()), key=int)
        if os.path.isdir(serving)
        else []
    )
    if versions:
        lines.append(f"  pushed model:  {os.path.join(serving, versions[-1])}")
        if text_signature:
            source = "--caption 'a small red bird with black wings'"
        else:  # the model takes embeddings: the dataset's own test-caption embeddings
            source = f"--embeddings {os.path.join(data_root, 'birds', 'test', EMBEDDINGS_PICKLE)}"
        lines.append(
            f"  try it:        stackgan generate --model {serving} {source} --out birds.png"
        )
    else:
        lines.append("  pushed model:  none (the evaluator did not bless the generator)")
    return "\n".join(lines)
