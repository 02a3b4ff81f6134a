"""Compiles the DAG into a Kubeflow Pipelines V2 / Vertex AI `PipelineJob` JSON.

Every component runs in `image`, which must have this project installed (see the Dockerfile);
data, pipeline root and serving dir are then cluster paths (gs://..., or a mounted volume).
"""

from __future__ import annotations

import os

from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

DEFAULT_IMAGE = "stackgan-tfx:latest"


def compile_pipeline(pipeline, output_file: str, image: str = DEFAULT_IMAGE) -> str:
    out_dir, filename = os.path.split(os.path.abspath(output_file))
    os.makedirs(out_dir, exist_ok=True)
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=out_dir,
        output_filename=filename,
    )
    runner.run(pipeline, write_out=True)
    return os.path.join(out_dir, filename)
