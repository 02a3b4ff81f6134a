"""Executor of Evaluator (see component.py for the artifacts): its artifacts ->
`EvaluatorJobArgs` -> `stackgan.evaluation.evaluator_job.run_evaluator_job`, then the blessing
and the ModelEvaluation's properties, as TFX's own Evaluator writes them."""

from __future__ import annotations

import os
from typing import Any

from tfx import types
from tfx.components.evaluator import constants as tfx_evaluator
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from stackgan import config_view
from stackgan.components.artifacts import split_pattern
from stackgan.evaluation import evaluator
from stackgan.evaluation.evaluator_job import (
    Baseline,
    EvaluatorJobArgs,
    GeneratorRef,
    run_evaluator_job,
)


def set_evaluation_properties(evaluation: types.Artifact, result: evaluator.Evaluation) -> None:
    """The headline numbers on the ModelEvaluation artifact, for MLMD queries."""
    values = {
        "inception_score": result.generated.inception_score_mean,
        "fid": result.generated.fid,
        "generated_top1_accuracy": result.generated.top1_accuracy,
        "real_top1_accuracy": result.real.top1_accuracy,
    }
    if result.refinement is not None:
        values["consistency_mad"] = result.refinement.consistency_mad
        values["detail_gain"] = result.refinement.detail_gain
        values["edge_sharpness_gain"] = result.refinement.edge_sharpness_gain
    for name, value in values.items():
        evaluation.set_float_custom_property(name, value)


def write_blessing(
    blessing: types.Artifact,
    model: GeneratorRef,
    baseline: Baseline | None,
    verdict: evaluator.Verdict,
) -> None:
    """TFX's Evaluator conventions: the Pusher checks `blessed`, and TFX's
    LatestBlessedModelStrategy finds the blessed model through `current_model_id`."""
    blessing.set_string_custom_property(
        tfx_evaluator.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri
    )
    blessing.set_int_custom_property(tfx_evaluator.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
    if baseline is not None:
        blessing.set_string_custom_property(
            tfx_evaluator.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY, baseline.model.uri
        )
        blessing.set_int_custom_property(
            tfx_evaluator.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY, baseline.model.id
        )
    blessing.set_string_custom_property(
        tfx_evaluator.ARTIFACT_PROPERTY_BLESSING_MESSAGE_KEY, verdict.message
    )
    blessed = verdict.blessed
    name = tfx_evaluator.BLESSED_FILE_NAME if blessed else tfx_evaluator.NOT_BLESSED_FILE_NAME
    io_utils.write_string_file(os.path.join(blessing.uri, name), "")
    blessing.set_int_custom_property(
        tfx_evaluator.ARTIFACT_PROPERTY_BLESSED_KEY,
        tfx_evaluator.BLESSED_VALUE if blessed else tfx_evaluator.NOT_BLESSED_VALUE,
    )


def _reference(model: types.Artifact) -> GeneratorRef:
    return GeneratorRef(uri=model.uri, id=model.id)


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Scores the generator (and the baseline) and blesses it or not.

        input_dict: "examples" (one Examples artifact with embeddings and the split named by
            EvalConfig.captions_split, "test" by default),
          "model" (one Model: the generator SavedModel, <uri>/Format-Serving), "classifier"
          (one Model: ClassifierTrainer's, <uri>/Format-Serving), "baseline_model" (none or one
          Model: the latest blessed generator, from the pipeline's Resolver).
        output_dict: "evaluation" (one ModelEvaluation: metrics.json, metrics.md, samples.png,
            comparison.png with a Stage-II),
          "blessing" (one ModelBlessing: custom property "blessed" 1/0, "blessing_message" (why
          not), a BLESSED or NOT_BLESSED file).
        exec_properties: "eval_config", "data_config" (JSON of the fields component.READS
          names).
        """
        config = config_view.from_exec_properties(exec_properties, "Evaluator")
        examples = artifact_utils.get_single_instance(input_dict["examples"])
        baselines = input_dict.get("baseline_model") or []
        classifier_uri = artifact_utils.get_single_uri(input_dict["classifier"])
        model = _reference(artifact_utils.get_single_instance(input_dict["model"]))
        evaluation = artifact_utils.get_single_instance(output_dict["evaluation"])
        result = run_evaluator_job(
            EvaluatorJobArgs(
                config=config,
                captions_pattern=split_pattern(examples, config.eval.captions_split),
                model=model,
                classifier_dir=classifier_uri,
                classifier_path=path_utils.serving_model_path(classifier_uri),
                output_dir=evaluation.uri,
                baseline=(
                    _reference(artifact_utils.get_single_instance(baselines)) if baselines else None
                ),
            )
        )
        set_evaluation_properties(evaluation, result.evaluation)
        blessing = artifact_utils.get_single_instance(output_dict["blessing"])
        write_blessing(blessing, model, result.baseline, result.verdict)
