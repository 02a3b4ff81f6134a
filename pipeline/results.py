"""Reads what a pipeline run produced back out of MLMD, for the end-of-run summary."""

from __future__ import annotations

import json
import os

import ml_metadata as mlmd
from tfx.orchestration import metadata

from stackgan.pipeline import layout


def latest_artifacts(work_dir: str) -> dict[str, str]:
    """type name -> URI of the newest LIVE artifact of each type in the run's MLMD store."""
    connection = metadata.sqlite_metadata_connection_config(layout.metadata_path(work_dir))
    store = mlmd.MetadataStore(connection)
    newest: dict[str, str] = {}
    types = {t.id: t.name for t in store.get_artifact_types()}
    for artifact in sorted(store.get_artifacts(), key=lambda a: a.id):
        if artifact.state == mlmd.proto.Artifact.LIVE:
            newest[types[artifact.type_id]] = artifact.uri
    return newest


def summarize(work_dir: str, pipeline_name: str, elapsed_s: float) -> str:
    uris = latest_artifacts(work_dir)
    lines = [f"\npipeline {pipeline_name!r} finished in {elapsed_s:.0f} s. Results:"]
    evaluation = uris.get("ModelEvaluation")
    if evaluation:
        metrics_path = os.path.join(evaluation, "metrics.json")
        lines.append(f"  metrics:      {metrics_path}")
        if os.path.exists(metrics_path):
            with open(metrics_path) as f:
                m = json.load(f)
            for key in ("inception_score", "fid"):
                if key in m:
                    lines.append(f"      {key}: {json.dumps(m[key])}")
        for name in sorted(os.listdir(evaluation)):
            if name.endswith(".png"):
                lines.append(f"  sample sheet: {os.path.join(evaluation, name)}")
    for kind, label in (("ModelRun", "training logs (TensorBoard --logdir)"),):
        if kind in uris:
            lines.append(f"  {label}: {os.path.dirname(os.path.dirname(uris[kind]))}")
    serving = layout.serving_dir(work_dir)
    versions = sorted(v for v in os.listdir(serving) if v.isdigit()) if os.path.isdir(serving) else []
    if versions:
        lines.append(f"  pushed model: {os.path.join(serving, versions[-1])}")
        lines.append(
            f"  try it:       stackgan generate --model {serving} --embeddings ... --out grid.png"
        )
    else:
        lines.append("  pushed model: none (the evaluator did not bless the generator)")
    return "\n".join(lines)
