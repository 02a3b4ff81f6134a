"""Executor of TextEncoderTrainer (see component.py for the artifacts): its artifacts ->
`TextEncoderJobArgs` -> `stackgan.text.encoder_job.run_text_encoder_job`."""

from __future__ import annotations

from typing import Any

from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from stackgan import config_view
from stackgan.components.artifacts import split_names, split_pattern
from stackgan.text.encoder_job import TextEncoderJobArgs, run_text_encoder_job


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Trains the text encoder on the train split (by `objective`) and exports it.

        input_dict: "examples" (one Examples artifact with split "train"; "test", when present,
          is the held-out evaluation set), "classifier" (ds_sje only: one Model, SavedModel at
          <uri>/Format-Serving).
        output_dict: "model" (one Model: <uri>/Format-Serving), "model_run" (one ModelRun:
          <uri>/history.csv, <uri>/metrics.json).
        exec_properties: "objective" ("ds_sje" | "distill"), "text_config", "data_config",
          "classifier_config", "train_config" (JSON of the fields component.READS names),
          "checkpoint_dir" (optional: where the epoch backup outlives the execution).
        """
        examples = artifact_utils.get_single_instance(input_dict["examples"])
        run_text_encoder_job(
            TextEncoderJobArgs(
                config=config_view.from_exec_properties(exec_properties, "TextEncoderTrainer"),
                train_pattern=split_pattern(examples, "train"),
                eval_pattern=(
                    split_pattern(examples, "test") if "test" in split_names(examples) else None
                ),
                classifier_dir=(
                    path_utils.serving_model_path(
                        artifact_utils.get_single_uri(input_dict["classifier"])
                    )
                    if input_dict.get("classifier")
                    else None
                ),
                objective=exec_properties["objective"],
                serving_dir=path_utils.serving_model_dir(
                    artifact_utils.get_single_uri(output_dict["model"])
                ),
                run_dir=artifact_utils.get_single_uri(output_dict["model_run"]),
                backup_root=exec_properties.get("checkpoint_dir") or "",
            )
        )
