"""Runs the DAG in this process with TFX's LocalDagRunner and an SQLite MLMD store.

Caching is on: a re-run with the same inputs and parameters reuses finished components' outputs
(MLMD remembers them), and only what changed runs again.
"""

from __future__ import annotations

import os

from tfx.orchestration import metadata
from tfx.orchestration.local import local_dag_runner

from stackgan.pipeline import layout


def run(pipeline_factory, work_dir: str) -> None:
    """`pipeline_factory(metadata_connection_config)` builds the pipeline; this runs it."""
    os.makedirs(layout.tfx_dir(work_dir), exist_ok=True)
    connection = metadata.sqlite_metadata_connection_config(layout.metadata_path(work_dir))
    local_dag_runner.LocalDagRunner().run(pipeline_factory(connection))
