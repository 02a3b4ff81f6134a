"""The layout of a work dir (`stackgan run --work-dir DIR`):

DIR/data/               the synthetic dataset, when no --data is given
DIR/tfx/pipeline_root/  every component's artifacts (TFRecords, models, runs, metrics)
DIR/tfx/metadata.sqlite the MLMD store (lineage, caching)
DIR/checkpoints/        trainer checkpoints, stable across runs so a killed run resumes
DIR/serving/<model>/    pushed SavedModels, one numbered version each (TF Serving's layout)
"""

from __future__ import annotations

import os

MODEL_NAME = "stackgan"


def data_dir(work_dir: str) -> str:
    return os.path.join(work_dir, "data")


def tfx_dir(work_dir: str) -> str:
    return os.path.join(work_dir, "tfx")


def pipeline_root(work_dir: str) -> str:
    return os.path.join(tfx_dir(work_dir), "pipeline_root")


def metadata_path(work_dir: str) -> str:
    return os.path.join(tfx_dir(work_dir), "metadata.sqlite")


def checkpoint_dir(work_dir: str) -> str:
    return os.path.join(work_dir, "checkpoints")


def serving_dir(work_dir: str, model_name: str = MODEL_NAME) -> str:
    return os.path.join(work_dir, "serving", model_name)
