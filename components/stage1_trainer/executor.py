"""Executor of Stage1Trainer: its artifacts -> `StageJobArgs` -> `trainer_job.run_stage_job`."""

from __future__ import annotations

from typing import Any

from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from stackgan import config_view
from stackgan.components.artifacts import examples_paths
from stackgan.training import trainer_job


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list],
        output_dict: dict[str, list],
        exec_properties: dict[str, Any],
    ) -> None:
        """Trains Stage-I (resuming from `checkpoint_dir` when a killed run left checkpoints).

        input_dict: `examples` (one Examples artifact WITH_EMBEDDINGS; `Split-train` trains,
        `Split-test` captions the sample sheets; `num_train` custom property, if set, gives the
        epoch length). output_dict: `model` (one Model artifact: `generator.keras`,
        `Format-Serving/` SavedModel with `image_64`, custom properties `stage`, `total_steps`),
        `model_run` (one ModelRun artifact: `logs/` TensorBoard, `samples/*.png`,
        `training_summary.json`, and `checkpoints/` when no checkpoint_dir is set).
        exec_properties: `data_config`, `model_config`, `train_config` (JSON of the fields
        component.READS names), `checkpoint_dir` (optional; see
        stackgan/training/trainer_job.py for the layout under it).
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        model = artifact_utils.get_single_instance(output_dict["model"])
        args = trainer_job.StageJobArgs(
            stage=1,
            config=config_view.from_exec_properties(exec_properties, "Stage1Trainer"),
            **examples_paths(artifact_utils.get_single_instance(input_dict["examples"])),
            model_dir=model.uri,
            run_dir=artifact_utils.get_single_uri(output_dict["model_run"]),
            checkpoint_root=exec_properties.get("checkpoint_dir") or "",
        )
        summary = trainer_job.run_stage_job(args)
        model.set_int_custom_property("stage", 1)
        model.set_int_custom_property("total_steps", summary["total_steps"])
