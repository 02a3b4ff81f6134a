"""Reads what a pipeline run produced back out of MLMD, for the end-of-run summary."""

from __future__ import annotations

import json
import os

import ml_metadata as mlmd
from tfx.orchestration import metadata

from stackgan.pipeline import layout
from stackgan.pipeline.text_path import EMBEDDINGS_PICKLE
from stackgan.serving import signatures

_DONE = (mlmd.proto.Execution.COMPLETE, mlmd.proto.Execution.CACHED)
_PIPELINE_RUN = "pipeline_run"  # TFX's context type of one run of a sync pipeline


def open_store(work_dir: str) -> mlmd.MetadataStore:
    path = layout.metadata_path(work_dir)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no MLMD store (has the pipeline run in {work_dir}?)")
    return mlmd.MetadataStore(metadata.sqlite_metadata_connection_config(path))


def latest_run_executions(store, pipeline_name: str) -> set[int]:
    """Ids of the executions (run or cached) of the pipeline's newest run: what this run did,
    as opposed to what an earlier run left in the store."""
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        return set()
    run_type = store.get_context_type(_PIPELINE_RUN)
    newest_first = sorted(store.get_executions_by_context(pipeline.id), key=lambda e: -e.id)
    for execution in newest_first:
        runs = [
            c for c in store.get_contexts_by_execution(execution.id) if c.type_id == run_type.id
        ]
        if runs:
            return {e.id for e in store.get_executions_by_context(runs[0].id)}
    return set()


def node_artifacts(
    store, pipeline_name: str, node_id: str, among: set[int] | None = None
) -> dict[str, mlmd.proto.Artifact]:
    """output key -> artifact of the newest finished (or cached) execution of one component,
    among the execution ids `among` when given (e.g. `latest_run_executions`)."""
    context = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node_id}")
    if context is None:
        return {}
    executions = [
        e
        for e in store.get_executions_by_context(context.id)
        if e.last_known_state in _DONE and (among is None or e.id in among)
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
    return {
        (event.path.steps[0].key if event.path.steps else str(event.artifact_id)): artifacts[
            event.artifact_id
        ]
        for event in events
    }


def node_outputs(
    store, pipeline_name: str, node_id: str, among: set[int] | None = None
) -> dict[str, str]:
    """output key -> URI, as `node_artifacts`."""
    return {k: a.uri for k, a in node_artifacts(store, pipeline_name, node_id, among).items()}


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


def score_lines(metrics: dict) -> list[str]:
    """The Evaluator's numbers, one line per image set, then refinement and baseline."""
    lines = []
    if "captions_split" in metrics:
        seen = (
            "classes seen in training" if metrics["captions_split"] == "train" else "unseen classes"
        )
        lines.append(f"      captions of the {metrics['captions_split']} split ({seen}):")
    for row in metrics.get("table", []):
        chance = f"; chance {metrics['chance']:.3f}" if row["images"] == "generated" else ""
        lines.append(
            f"      {row['images']:>16}: top-1 {row['top1_accuracy']:.3f}"
            f" ({row['top1_correct']}/{row['count']}{chance}), inception score"
            f" {row['inception_score_mean']:.3f} +- {row['inception_score_std']:.3f},"
            f" FID {row['fid']:.2f}"
        )
        lines += _colour_line(row.get("colour"))
        if row["images"] == "generated":
            lines += _sampling_line(metrics.get("sampling"))
    refinement = metrics.get("refinement")
    if refinement:
        lines.append(
            f"      Stage-I -> Stage-II: consistency {refinement['consistency_mad']:.2f} levels"
            f" (lower = more faithful), detail gain {refinement['detail_gain']:.2f},"
            f" edge sharpness gain {refinement['edge_sharpness_gain']:.2f}"
        )
    baseline = metrics.get("baseline")
    if baseline is None:
        lines.append("      baseline: none (no model blessed before)")
    elif baseline["same_as_candidate"]:
        lines.append("      baseline: this same model, blessed by an earlier run")
    else:
        top1 = baseline["table"][0]["top1_accuracy"]
        sampled = (
            f", sampled at {signatures.describe_sampling(baseline['truncation'])}"
            if "truncation" in baseline  # absent from metrics of older runs
            else ""
        )
        lines.append(
            f"      baseline: {baseline['model']} (generated top-1 {top1:.3f} now{sampled})"
        )
    return lines


def _sampling_line(sampling: dict | None) -> list[str]:
    """The noise the generated images were drawn with (absent from metrics of older runs)."""
    if not sampling:
        return []
    return [f"{'':>24}sampled at {signatures.describe_sampling(sampling['truncation'])}"]


def _colour_line(colour: dict | None) -> list[str]:
    """Colour agreement of one image set (absent from metrics of older runs)."""
    if not colour:
        return []
    if colour["agreement"] is None:
        return [
            f"{'':>24}colour agreement: none of the {colour['skipped']} captions names a colour"
        ]
    shuffled = "n/a" if colour["shuffled"] is None else f"{colour['shuffled']:.3f}"
    gain = "" if colour["gain"] is None else f", gain {colour['gain']:+.3f}"
    return [
        f"{'':>24}colour agreement {colour['agreement']:.3f} (other images' captions"
        f" {shuffled}{gain}; {colour['named']} named colours, {colour['skipped']} captions"
        " naming none)"
    ]


def precision_lines(run_dir: str) -> list[str]:
    """What a trainer computed in and why, from its training_summary.json (none when absent)."""
    path = os.path.join(run_dir, "training_summary.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        summary = json.load(f)
    if "precision" not in summary:
        return []
    return [f"      precision: {summary['precision']} ({summary['precision_reason']})"]


def _property(artifact: mlmd.proto.Artifact, name: str) -> mlmd.proto.Value:
    # .get: indexing a protobuf message map inserts the missing key
    return artifact.custom_properties.get(name) or mlmd.proto.Value()


def push_lines(
    metrics: dict | None, push: mlmd.proto.Artifact | None, text_signature: bool, data_root: str
) -> list[str]:
    """Whether this run's generator was blessed and pushed, from this run's Evaluator metrics
    and Pusher output (never from the serving folder, which holds earlier runs' pushes too)."""
    pushed = push is not None and _property(push, "pushed").int_value == 1
    if metrics is None or not metrics.get("blessed"):
        reasons = "; ".join(metrics["gate"]["reasons"]) if metrics else "no evaluation this run"
        return [f"  not blessed: {reasons}; nothing pushed"]
    if not pushed:
        return ["  blessed, but the Pusher pushed nothing this run"]
    destination = _property(push, "pushed_destination").string_value
    if text_signature:
        source = "--caption 'a small red bird with black wings'"
    else:  # the model takes embeddings: the dataset's own test-caption embeddings
        source = f"--embeddings {os.path.join(data_root, 'birds', 'test', EMBEDDINGS_PICKLE)}"
    return [
        "  blessed:       yes",
        f"  pushed model:  {destination}",
        f"  try it:        stackgan generate --model {destination} {source} --out birds.png",
    ]


def summarize(
    work_dir: str, pipeline_name: str, elapsed_s: float, data_root: str, text_signature: bool
) -> str:
    store = open_store(work_dir)
    states = execution_states(store, pipeline_name)
    this_run = latest_run_executions(store, pipeline_name)
    cached = sorted(n for n, s in states.items() if s and s[-1] == "CACHED")
    lines = [
        f"\npipeline {pipeline_name!r} finished in {elapsed_s:.0f} s"
        + (f" (cached, not re-run: {', '.join(cached)})" if cached else "")
        + ". Results:"
    ]
    metrics = None
    evaluation = node_outputs(store, pipeline_name, "Evaluator", this_run).get("evaluation")
    if evaluation:
        metrics_path = os.path.join(evaluation, "metrics.json")
        lines.append(f"  metrics:       {metrics_path}")
        with open(metrics_path) as f:
            metrics = json.load(f)
        lines += score_lines(metrics)
        for name in sorted(os.listdir(evaluation)):
            if name.endswith(".png"):
                lines.append(f"  sample sheet:  {os.path.join(evaluation, name)}")
    # every trainer logs for TensorBoard; the GAN trainers also say what they computed in
    for node in ("Stage1Trainer", "Stage2Trainer", "ClassifierTrainer", "TextEncoderTrainer"):
        run_dir = node_outputs(store, pipeline_name, node, this_run).get("model_run")
        if run_dir:
            lines.append(f"  {node} run:  {run_dir}  (tensorboard --logdir {run_dir})")
            lines += precision_lines(run_dir)
    push = node_artifacts(store, pipeline_name, "Pusher", this_run).get("pushed_model")
    lines += push_lines(metrics, push, text_signature, data_root)
    return "\n".join(lines)
