"""Executor of Stage2Trainer: its artifacts -> `StageJobArgs` -> `trainer_job.run_stage_job`."""

from __future__ import annotations

from typing import Any

from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

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
        """Trains Stage-II on top of the frozen Stage-I generator and exports both.

        input_dict: `examples` (one Examples artifact WITH_EMBEDDINGS), `stage1_model` (one
        Model artifact of Stage1Trainer, read from its `generator.keras`), `text_encoder`
        (optional, zero or one Model artifact with a text-encoder SavedModel at Format-Serving).
        output_dict: `model` (one Model artifact: `generator.keras` (Stage-II),
        `stage1_generator.keras`, `Format-Serving/` SavedModel of Stage-I + Stage-II, with a
        `text` signature when a text encoder was given; custom properties `stage`,
        `total_steps`), `model_run` (one ModelRun artifact, as Stage1Trainer's).
        exec_properties: `data_config`, `model_config`, `train_config`, `checkpoint_dir`
        (optional), as Stage1Trainer's.
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        text_encoders = input_dict.get("text_encoder") or []
        model = artifact_utils.get_single_instance(output_dict["model"])
        args = trainer_job.StageJobArgs(
            stage=2,
            config=config_view.from_exec_properties(exec_properties, "Stage2Trainer"),
            **examples_paths(artifact_utils.get_single_instance(input_dict["examples"])),
            model_dir=model.uri,
            run_dir=artifact_utils.get_single_uri(output_dict["model_run"]),
            checkpoint_root=exec_properties.get("checkpoint_dir") or "",
            stage1_model_dir=artifact_utils.get_single_uri(input_dict["stage1_model"]),
            text_encoder_dir=(
                path_utils.serving_model_path(artifact_utils.get_single_uri(text_encoders))
                if text_encoders
                else None
            ),
        )
        summary = trainer_job.run_stage_job(args)
        model.set_int_custom_property("stage", 2)
        model.set_int_custom_property("total_steps", summary["total_steps"])
