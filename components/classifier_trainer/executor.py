"""Executor of ClassifierTrainer (see component.py for the artifacts): its artifacts ->
`ClassifierJobArgs` -> `stackgan.evaluation.classifier_job.run_classifier_job`."""

from __future__ import annotations

from typing import Any

from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from stackgan import config_view
from stackgan.components.artifacts import split_pattern
from stackgan.evaluation.classifier_job import ClassifierJobArgs, run_classifier_job


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Fine-tunes the classifier and exports it.

        input_dict: "examples" (one Examples artifact with splits "train" and "test").
        output_dict: "model" (one Model: <uri>/Format-Serving; custom properties
          holdout_top1_accuracy, weights_source, warning), "model_run" (one ModelRun:
          <uri>/run.json, <uri>/logs).
        exec_properties: "classifier_config", "data_config" (JSON of the fields component.READS
          names), "checkpoint_dir" (optional: where the epoch backups outlive the execution).
        """
        examples = artifact_utils.get_single_instance(input_dict["examples"])
        model = artifact_utils.get_single_instance(output_dict["model"])
        result = run_classifier_job(
            ClassifierJobArgs(
                config=config_view.from_exec_properties(exec_properties, "ClassifierTrainer"),
                train_pattern=split_pattern(examples, "train"),
                test_pattern=split_pattern(examples, "test"),
                serving_dir=path_utils.serving_model_dir(model.uri),
                run_dir=artifact_utils.get_single_uri(output_dict["model_run"]),
                backup_root=exec_properties.get("checkpoint_dir") or "",
            )
        )
        # shown by the metadata store's UIs next to the artifact
        model.set_float_custom_property("holdout_top1_accuracy", result.holdout_top1_accuracy)
        model.set_string_custom_property("weights_source", result.weights_source)
        if result.warning:
            model.set_string_custom_property("warning", result.warning)
