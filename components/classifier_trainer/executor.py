"""Executor of ClassifierTrainer (see component.py for the artifacts)."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import keras
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import path_utils

from stackgan import config_view
from stackgan.evaluation import classifier, classifier_data

RUN_FILE = "run.json"
TENSORBOARD_DIR = "logs"


def split_pattern(examples: types.Artifact, split: str) -> str:
    """Glob of the gzipped TFRecord shards of one split of an Examples artifact."""
    return os.path.join(artifact_utils.get_split_uri([examples], split), "*")


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Fine-tunes the classifier and exports it.

        input_dict: "examples" (one Examples artifact with splits "train" and "test").
        output_dict: "model" (one Model: <uri>/Format-Serving), "model_run" (one ModelRun:
          <uri>/run.json).
        exec_properties: "classifier_config", "data_config", "train_config" (JSON of the fields
          component.READS names).
        """
        config = config_view.from_exec_properties(exec_properties, "ClassifierTrainer")
        cfg = config.classifier
        examples = artifact_utils.get_single_instance(input_dict["examples"])
        model = artifact_utils.get_single_instance(output_dict["model"])
        model_uri = model.uri
        run_uri = artifact_utils.get_single_uri(output_dict["model_run"])

        patterns = {split: split_pattern(examples, split) for split in ("train", "test")}
        indexes = {split: classifier_data.scan_split(p) for split, p in patterns.items()}
        classes = classifier_data.choose_classes(cfg, indexes["train"], indexes["test"])
        holdout = classifier_data.choose_holdout(
            list(indexes.values()), classes, cfg.holdout_fraction, config.train.seed
        )
        train_ds, holdout_ds = classifier_data.make_datasets(
            list(patterns.values()),
            list(indexes.values()),
            config.data,
            cfg,
            classes,
            holdout,
            config.train.seed,
        )
        in_classes = classifier_data.count_images(list(indexes.values()), classes)
        logging.info(
            "ClassifierTrainer: %d classes (%s), %d images, %d held out",
            len(classes), cfg.classes, in_classes, len(holdout),
        )  # fmt: skip

        weights = classifier.choose_weights(cfg)
        if weights.warning:
            logging.warning("ClassifierTrainer: %s", weights.warning)
        keras.utils.set_random_seed(config.train.seed)
        models = classifier.build_classifier(cfg, len(classes), weights)
        # TFX's convention: TensorBoard logs in the ModelRun (`tensorboard --logdir <uri>`)
        tensorboard = keras.callbacks.TensorBoard(
            os.path.join(run_uri, TENSORBOARD_DIR), write_graph=False
        )
        phases = classifier.fine_tune(models, train_ds, holdout_ds, cfg, callbacks=[tensorboard])
        accuracy = classifier.top1_accuracy(models, holdout_ds)
        logging.info("ClassifierTrainer: held-out top-1 accuracy %.4f", accuracy)

        class_names = {**indexes["train"].class_names, **indexes["test"].class_names}
        info = {
            "class_ids": classes,  # 0-based CUB labels, in logit order
            "class_names": [class_names[c] for c in classes],
            "classes": cfg.classes,
            "image_size": cfg.image_size,
            "alpha": cfg.alpha,
            "holdout_top1_accuracy": accuracy,
            "num_train_images": in_classes - len(holdout),
            "num_holdout_images": len(holdout),
            "weights_source": weights.source,
            "weights_file": weights.path,
            "warning": weights.warning,
        }
        with fileio.open(os.path.join(run_uri, RUN_FILE), "w") as f:
            run = {
                **info,
                "holdout_image_ids": holdout.tolist(),
                "phases": phases,
                "config": config_view.given(config),  # the fields it was given
            }
            json.dump(run, f, indent=2)
        # last, so a Model artifact with a SavedModel in it is a finished one
        classifier.export_classifier(models, path_utils.serving_model_dir(model_uri), info)
        # shown by the metadata store's UIs next to the artifact
        model.set_float_custom_property("holdout_top1_accuracy", accuracy)
        model.set_string_custom_property("weights_source", weights.source)
        if weights.warning:
            model.set_string_custom_property("warning", weights.warning)
