"""Executor of Evaluator (see component.py for the artifacts): binds the evaluator core to the
exported generator and classifier, re-scores the latest blessed model (the baseline) the same
way, then writes the report and the blessing."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
from typing import Any

from tfx import types
from tfx.components.evaluator import constants as tfx_evaluator
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from stackgan import config_view
from stackgan.components.classifier_trainer.executor import split_pattern
from stackgan.config import Config
from stackgan.evaluation import evaluator
from stackgan.evaluation.classifier import LoadedClassifier, load_classifier
from stackgan.serving.generator import load_generator
from stackgan.tfrecords.input_pipeline import make_eval_dataset
from stackgan.visualize.sample_sheet import render_comparison, render_sheet

METRICS_FILE = "metrics.json"
TABLE_FILE = "metrics.md"
SHEET_FILE = "samples.png"
# real | Stage-I | Stage-II for the same captions (only for generators with a Stage-II)
COMPARISON_FILE = "comparison.png"
SHEET_COLUMNS = 8
CLASSIFIER_INFO_KEYS = (
    "holdout_top1_accuracy",
    "classes",
    "class_ids",
    "image_size",
    "alpha",
    "weights_source",
    "warning",
)


@dataclasses.dataclass
class Baseline:
    """The latest model an earlier run blessed, scored like the candidate."""

    model: types.Artifact
    evaluation: evaluator.Evaluation
    same_as_candidate: bool  # a re-run of the same model: its own scores, not re-computed


def markdown_table(
    result: evaluator.Evaluation, verdict: evaluator.Verdict, baseline: Baseline | None
) -> str:
    lines = [
        "| images | count | top-1 (correct) | inception score | FID |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in result.table():
        lines.append(
            f"| {row['images']} | {row['count']} | {row['top1_accuracy']:.3f}"
            f" ({row['top1_correct']}) | {row['inception_score_mean']:.3f}"
            f" ± {row['inception_score_std']:.3f} | {row['fid']:.3f} |"
        )
    lines += [
        "",
        "Top-1 of the generated images: against the class of the caption each was generated"
        f" from (chance, one class for every caption: {result.chance:.3f}); of the real images:"
        " against their own class. FID of the real images: between two random halves of the"
        " real test images (the sampling-noise floor at this size). All scores use the"
        " project's MobileNetV2 CUB classifier, so they are not comparable with"
        " Inception-v3-based numbers in papers.",
        "",
    ]
    if result.refinement is not None:
        r = result.refinement
        lines.append(
            f"Stage-I -> Stage-II ({r.stage1_size} -> {r.stage2_size} px, {r.count} pairs):"
            f" consistency {r.consistency_mad:.2f} levels (mean |downscaled Stage-II - Stage-I|,"
            f" lower = more faithful), sharpness gain {r.sharpness_gain:.2f} (1 = no detail"
            " beyond upsampling)."
        )
        lines.append("")
    lines.append(_baseline_line(baseline))
    lines.append(f"Blessed: {'yes' if verdict.blessed else 'no: ' + verdict.message}.")
    return "\n".join(lines) + "\n"


def _baseline_line(baseline: Baseline | None) -> str:
    if baseline is None:
        return "Baseline: none (no model was blessed before)."
    if baseline.same_as_candidate:
        return f"Baseline: this same model ({baseline.model.uri}), blessed by an earlier run."
    return (
        f"Baseline (latest blessed model, re-scored now): {baseline.model.uri}, generated top-1"
        f" {baseline.evaluation.generated.top1_accuracy:.3f}."
    )


def _baseline_metrics(baseline: Baseline | None) -> dict[str, Any] | None:
    if baseline is None:
        return None
    result = baseline.evaluation
    return {
        "model": baseline.model.uri,
        "model_id": baseline.model.id,
        "same_as_candidate": baseline.same_as_candidate,
        "table": result.table(),
        "chance": result.chance,
        "refinement": _asdict(result.refinement),
        "batch_seeds": result.batch_seeds,
    }


def _asdict(value) -> dict[str, Any] | None:
    return None if value is None else dataclasses.asdict(value)


def metrics_json(
    result: evaluator.Evaluation,
    verdict: evaluator.Verdict,
    baseline: Baseline | None,
    config: Config,
    model: types.Artifact,
    classifier_uri: str,
    classifier: LoadedClassifier,
) -> dict[str, Any]:
    cfg = config.eval
    return {
        "table": result.table(),
        "captions_split": cfg.captions_split,
        "chance": result.chance,
        "refinement": _asdict(result.refinement),
        "num_samples": result.generated.count,
        "num_real_images": result.real.count,
        "is_splits": cfg.is_splits,
        "seed": cfg.seed,
        "batch_seeds": result.batch_seeds,
        "generated_image_size": int(result.sheet_images.shape[1]),
        "gate": {
            "min_class_accuracy_ratio": cfg.min_class_accuracy_ratio,
            "required_top1": verdict.required_top1,
            "baseline_tolerance": cfg.baseline_tolerance,
            "baseline_required_top1": verdict.baseline_required_top1,
            "reasons": list(verdict.reasons),
        },
        "baseline": _baseline_metrics(baseline),
        "blessed": verdict.blessed,
        "generator": model.uri,
        "classifier": {
            "uri": classifier_uri,
            **{key: classifier.info.get(key) for key in CLASSIFIER_INFO_KEYS},
        },
    }


def _score(generator_uri: str, examples, config: Config, classifier: LoadedClassifier):
    split = split_pattern(examples, config.eval.captions_split)
    batches = make_eval_dataset(split, config, config.eval.batch_size)
    return evaluator.evaluate(
        batches.as_numpy_iterator(),
        load_generator(generator_uri).generate,
        classifier,
        config.eval,
        classifier.info["class_ids"],
    )


def score_baseline(
    baseline_model: types.Artifact | None,
    model: types.Artifact,
    result: evaluator.Evaluation,
    examples,
    config: Config,
    classifier: LoadedClassifier,
) -> Baseline | None:
    """The baseline scored with this run's classifier, captions and seeds (its own earlier
    scores used another classifier); None without one."""
    if baseline_model is None:
        return None
    if baseline_model.id == model.id:
        # a re-run whose trainers were cached: the baseline is the candidate, same scores
        return Baseline(baseline_model, result, same_as_candidate=True)
    try:
        evaluation = _score(baseline_model.uri, examples, config, classifier)
    except (ValueError, FileNotFoundError) as e:
        raise ValueError(
            f"the latest blessed model {baseline_model.uri} (the baseline) cannot be scored on"
            f" these examples: {e}. It was blessed under another configuration; use a new"
            " --work-dir or --pipeline-name to start a new model lineage."
        ) from e
    return Baseline(baseline_model, evaluation, same_as_candidate=False)


def write_report(out: str, result, verdict, baseline, metrics: dict[str, Any]) -> None:
    sheet = io.BytesIO()
    render_sheet(result.sheet_images, result.sheet_captions, columns=SHEET_COLUMNS).save(
        sheet, format="PNG"
    )
    files = [(SHEET_FILE, sheet.getvalue())]
    if result.comparison is not None:
        comparison = io.BytesIO()
        c = result.comparison
        render_comparison(c.real, c.stage1, c.stage2, c.captions).save(comparison, format="PNG")
        files.append((COMPARISON_FILE, comparison.getvalue()))
    for name, content in (
        *files,
        (TABLE_FILE, markdown_table(result, verdict, baseline).encode()),
        (METRICS_FILE, json.dumps(metrics, indent=2).encode()),
    ):
        with fileio.open(os.path.join(out, name), "wb") as f:
            f.write(content)


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
        values["sharpness_gain"] = result.refinement.sharpness_gain
    for name, value in values.items():
        evaluation.set_float_custom_property(name, value)


def write_blessing(
    blessing: types.Artifact,
    model: types.Artifact,
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


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Scores the generator (and the baseline) on the test split and blesses it or not.

        input_dict: "examples" (one Examples artifact with embeddings and the split named by
            EvalConfig.captions_split, "test" by default),
          "model" (one Model: the generator SavedModel, <uri>/Format-Serving), "classifier"
          (one Model: ClassifierTrainer's, <uri>/Format-Serving), "baseline_model" (none or one
          Model: the latest blessed generator, from the pipeline's Resolver).
        output_dict: "evaluation" (one ModelEvaluation: metrics.json, metrics.md, samples.png,
            comparison.png with a Stage-II),
          "blessing" (one ModelBlessing: custom property "blessed" 1/0, "blessing_message" (why
          not), a BLESSED or NOT_BLESSED file).
        exec_properties: "eval_config", "data_config" (JSON of the fields component.READS names).
        """
        config = config_view.from_exec_properties(exec_properties, "Evaluator")
        examples = artifact_utils.get_single_instance(input_dict["examples"])
        model = artifact_utils.get_single_instance(input_dict["model"])
        baseline_models = input_dict.get("baseline_model") or []
        classifier_uri = artifact_utils.get_single_uri(input_dict["classifier"])
        evaluation = artifact_utils.get_single_instance(output_dict["evaluation"])
        blessing = artifact_utils.get_single_instance(output_dict["blessing"])

        classifier = load_classifier(path_utils.serving_model_path(classifier_uri))
        if classifier.info.get("warning"):
            logging.warning("Evaluator: the classifier says: %s", classifier.info["warning"])
        result = _score(model.uri, examples, config, classifier)
        baseline = score_baseline(
            artifact_utils.get_single_instance(baseline_models) if baseline_models else None,
            model,
            result,
            examples,
            config,
            classifier,
        )
        verdict = evaluator.judge(
            result, config.eval, baseline.evaluation if baseline is not None else None
        )
        logging.info("Evaluator: %s", markdown_table(result, verdict, baseline))

        metrics = metrics_json(result, verdict, baseline, config, model, classifier_uri, classifier)
        write_report(evaluation.uri, result, verdict, baseline, metrics)
        set_evaluation_properties(evaluation, result)
        write_blessing(blessing, model, baseline, verdict)
