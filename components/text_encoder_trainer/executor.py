"""Executor of TextEncoderTrainer (see component.py for the artifacts)."""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import keras
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from stackgan import config_view
from stackgan.evaluation.classifier import load_classifier
from stackgan.text.examples_reader import read_split_features
from stackgan.text.export import export_text_encoder
from stackgan.text.training import (
    degenerate_features_warning,
    evaluate_zero_shot,
    train_joint_embedding,
)

HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
TRAIN_SPLIT, EVAL_SPLIT = "train", "test"


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Trains the text encoder on the train split and exports it.

        input_dict: "examples" (one Examples artifact with split "train"; "test", when present,
          is the zero-shot evaluation set), "classifier" (one Model, SavedModel at
          <uri>/Format-Serving).
        output_dict: "model" (one Model: <uri>/Format-Serving), "model_run" (one ModelRun:
          <uri>/history.csv, <uri>/metrics.json).
        exec_properties: "text_config", "data_config", "classifier_config", "train_config" (JSON
          of the fields component.READS names).
        """
        config = config_view.from_exec_properties(exec_properties, "TextEncoderTrainer")
        examples = artifact_utils.get_single_instance(input_dict["examples"])
        classifier_uri = artifact_utils.get_single_uri(input_dict["classifier"])
        model_uri = artifact_utils.get_single_uri(output_dict["model"])
        run_uri = artifact_utils.get_single_uri(output_dict["model_run"])
        splits = artifact_utils.decode_split_names(examples.split_names)
        if TRAIN_SPLIT not in splits:
            raise ValueError(f"{examples.uri}: no {TRAIN_SPLIT!r} split (has {splits})")

        classifier = load_classifier(path_utils.serving_model_path(classifier_uri))
        started = time.monotonic()
        read = {
            split: read_split_features(
                os.path.join(artifact_utils.get_split_uri([examples], split), "*"),
                config.data,
                classifier,
                batch_size=config.classifier.batch_size,
            )
            for split in (TRAIN_SPLIT, EVAL_SPLIT)
            if split in splits
        }
        feature_seconds = time.monotonic() - started
        train = read[TRAIN_SPLIT].data
        evaluation = read[EVAL_SPLIT].data if EVAL_SPLIT in read else None
        logging.info(
            "TextEncoderTrainer: %d train images (%d classes), features in %.1f s",
            len(train.labels), len(set(train.labels.tolist())), feature_seconds,
        )  # fmt: skip

        features_warning = degenerate_features_warning(train.features)
        if features_warning:
            logging.warning("TextEncoderTrainer: %s", features_warning)

        started = time.monotonic()
        model, history = train_joint_embedding(
            train,
            config.text,
            validation=evaluation,
            seed=config.train.seed,
            callbacks=[keras.callbacks.CSVLogger(os.path.join(run_uri, HISTORY_FILE))],
        )
        metrics = {
            "train_seconds": time.monotonic() - started,
            "feature_seconds": feature_seconds,
            "final_loss": history["loss"][-1],
            "image_features_warning": features_warning,
            "seen_classes": _retrieval(model, train),
            "zero_shot": _retrieval(model, evaluation) if evaluation is not None else None,
            "splits": {
                split: {
                    "images_read": r.images_read,
                    "skipped_no_captions": r.skipped_no_captions,
                    "blank_captions_dropped": r.blank_captions_dropped,
                }
                for split, r in read.items()
            },
            # the image side: whether the classifier started from ImageNet or from scratch
            "classifier": {
                k: classifier.info.get(k)
                for k in ("weights_source", "warning", "holdout_top1_accuracy", "classes")
            },
            "history": history,
            "config": config_view.given(config.text),
        }
        if metrics["zero_shot"] is not None:
            logging.info(
                "TextEncoderTrainer: zero-shot top-1 %.4f on %d test classes (chance %.4f)",
                metrics["zero_shot"]["top1"],
                metrics["zero_shot"]["classes"],
                metrics["zero_shot"]["chance"],
            )
        io_utils.write_string_file(
            os.path.join(run_uri, METRICS_FILE), json.dumps(metrics, indent=2, default=float)
        )
        # last, so a Model artifact with a SavedModel in it is a finished one
        export_text_encoder(model, path_utils.serving_model_dir(model_uri))


def _retrieval(model, data) -> dict[str, float]:
    return evaluate_zero_shot(model, data).as_dict()
