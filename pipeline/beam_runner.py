"""Runs the DAG with TFX's BeamDagRunner: each component is a step of a Beam pipeline, so the
orchestration itself can run on any Beam runner given through `beam_orchestrator_args`
(the components' own Beam jobs take the pipeline's `beam_pipeline_args`)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from tfx.orchestration import metadata
from tfx.orchestration.beam import beam_dag_runner

from stackgan.pipeline import layout


def run(pipeline_factory, work_dir: str, beam_orchestrator_args: Sequence[str] = ()) -> None:
    os.makedirs(layout.tfx_dir(work_dir), exist_ok=True)
    connection = metadata.sqlite_metadata_connection_config(layout.metadata_path(work_dir))
    runner = beam_dag_runner.BeamDagRunner(beam_orchestrator_args=list(beam_orchestrator_args))
    runner.run(pipeline_factory(connection))
