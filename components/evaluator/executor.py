"""Executor of Evaluator (see component.py for the artifacts): binds the evaluator core to the
exported generator and classifier, then writes the report and the blessing."""

from __future__ import annotations

import io
import json
import logging
import os
from typing import Any

import numpy as np
from tfx import types
from tfx.components.evaluator import constants as tfx_evaluator
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from stackgan.components.classifier_trainer.executor import split_pattern
from stackgan.config import Config
from stackgan.evaluation import evaluator
from stackgan.evaluation.classifier import load_classifier
from stackgan.serving.generator import Generator, load_generator
from stackgan.tfrecords.input_pipeline import make_eval_dataset
from stackgan.visualize.sample_sheet import render_sheet

METRICS_FILE = "metrics.json"
TABLE_FILE = "metrics.md"
SHEET_FILE = "samples.png"
SHEET_COLUMNS = 8


def final_stage_generate_fn(generator: Generator) -> evaluator.GenerateFn:
    """generate_fn of the largest images the generator makes (Stage-II's when it has one)."""

    def generate(embeddings: np.ndarray, seed: int) -> np.ndarray:
        outputs = generator.generate(embeddings, seed)
        return max(outputs.values(), key=lambda images: images.shape[1])

    return generate


def markdown_table(result: evaluator.Evaluation) -> str:
    lines = [
        "| images | count | inception score | FID |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in result.table():
        lines.append(
            f"| {row['images']} | {row['count']} | {row['inception_score_mean']:.3f}"
            f" ± {row['inception_score_std']:.3f} | {row['fid']:.3f} |"
        )
    lines.append("")
    lines.append(
        "FID of the real images: between two random halves of the real test images (the"
        " sampling-noise floor at this size). Both scores use the project's MobileNetV2 CUB"
        " classifier, so they are not comparable with Inception-v3-based numbers in papers."
    )
    return "\n".join(lines) + "\n"


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Scores the generator on the test split and blesses it or not.

        input_dict: "examples" (one Examples artifact with embeddings and a "test" split),
          "model" (one Model: the generator SavedModel, <uri>/Format-Serving), "classifier"
          (one Model: ClassifierTrainer's, <uri>/Format-Serving).
        output_dict: "evaluation" (one ModelEvaluation: metrics.json, metrics.md, samples.png),
          "blessing" (one ModelBlessing: custom property "blessed" 1/0 and a BLESSED or
          NOT_BLESSED file).
        exec_properties: "config_json" (a stackgan.config.Config as JSON).
        """
        config = Config.from_json(exec_properties["config_json"])
        cfg = config.eval
        examples = artifact_utils.get_single_instance(input_dict["examples"])
        model = artifact_utils.get_single_instance(input_dict["model"])
        classifier_uri = artifact_utils.get_single_uri(input_dict["classifier"])
        evaluation = artifact_utils.get_single_instance(output_dict["evaluation"])
        blessing = artifact_utils.get_single_instance(output_dict["blessing"])

        classifier = load_classifier(path_utils.serving_model_path(classifier_uri))
        generator = load_generator(model.uri)
        if classifier.info.get("warning"):
            logging.warning("Evaluator: the classifier says: %s", classifier.info["warning"])
        batches = make_eval_dataset(split_pattern(examples, "test"), config, cfg.batch_size)
        result = evaluator.evaluate(
            batches.as_numpy_iterator(), final_stage_generate_fn(generator), classifier, cfg
        )
        blessed = result.generated.inception_score_mean >= cfg.min_inception_score
        logging.info("Evaluator: %s", markdown_table(result))

        metrics = {
            "table": result.table(),
            "num_samples": result.generated.count,
            "num_real_images": result.real.count,
            "is_splits": cfg.is_splits,
            "seed": cfg.seed,
            "batch_seeds": result.batch_seeds,
            "generated_image_size": int(result.sheet_images.shape[1]),
            "min_inception_score": cfg.min_inception_score,
            "blessed": bool(blessed),
            "generator": model.uri,
            "classifier": {
                "uri": classifier_uri,
                **{
                    key: classifier.info.get(key)
                    for key in (
                        "holdout_top1_accuracy",
                        "classes",
                        "class_ids",
                        "image_size",
                        "alpha",
                        "weights_source",
                        "warning",
                    )
                },  # fmt: skip
            },
        }
        out = evaluation.uri
        sheet = io.BytesIO()
        render_sheet(result.sheet_images, result.sheet_captions, columns=SHEET_COLUMNS).save(
            sheet, format="PNG"
        )
        for name, content in (
            (SHEET_FILE, sheet.getvalue()),
            (TABLE_FILE, markdown_table(result).encode()),
            (METRICS_FILE, json.dumps(metrics, indent=2).encode()),
        ):
            with fileio.open(os.path.join(out, name), "wb") as f:
                f.write(content)
        evaluation.set_float_custom_property(
            "inception_score", result.generated.inception_score_mean
        )
        evaluation.set_float_custom_property("fid", result.generated.fid)

        # TFX's Evaluator conventions, which TFX's Pusher checks before pushing
        blessing.set_string_custom_property(
            tfx_evaluator.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri
        )
        blessing.set_int_custom_property(
            tfx_evaluator.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id
        )
        name = tfx_evaluator.BLESSED_FILE_NAME if blessed else tfx_evaluator.NOT_BLESSED_FILE_NAME
        io_utils.write_string_file(os.path.join(blessing.uri, name), "")
        blessing.set_int_custom_property(
            tfx_evaluator.ARTIFACT_PROPERTY_BLESSED_KEY,
            tfx_evaluator.BLESSED_VALUE if blessed else tfx_evaluator.NOT_BLESSED_VALUE,
        )
