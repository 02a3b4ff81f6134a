"""The TextEncoderTrainer component's job, apart from TFX: the char-CNN-RNN text encoder trained
on the train split's captions against the frozen classifier's image features, scored zero-shot
on the test split, exported (stackgan.text.export). Its executor only turns artifacts into
`TextEncoderJobArgs` (TFX's Trainer idiom: FnArgs -> run_fn)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time

import keras
import tensorflow as tf

from stackgan import config_view
from stackgan.config import Config
from stackgan.evaluation.classifier import load_classifier
from stackgan.text.examples_reader import read_split_features
from stackgan.text.export import export_text_encoder
from stackgan.text.training import (
    degenerate_features_warning,
    evaluate_zero_shot,
    train_joint_embedding,
)
from stackgan.training import precision

HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"


@dataclasses.dataclass(frozen=True)
class TextEncoderJobArgs:
    config: Config  # text, data crop sizes, classifier.batch_size, train.seed (component READS)
    train_pattern: str  # TFRecord files of the train split: what the encoder learns from
    eval_pattern: str | None  # ... of the test split, for the zero-shot score (None: none)
    classifier_dir: str  # the classifier SavedModel: its features are the image side
    serving_dir: str  # the text-encoder SavedModel goes here (<Model>/Format-Serving)
    run_dir: str  # history.csv, metrics.json


def run_text_encoder_job(args: TextEncoderJobArgs) -> dict:
    """Trains and exports the encoder; returns the metrics also written to metrics.json."""
    config = args.config
    classifier = load_classifier(args.classifier_dir)
    started = time.monotonic()
    patterns = {"train": args.train_pattern, "test": args.eval_pattern}
    read = {
        split: read_split_features(
            pattern, config.data, classifier, batch_size=config.classifier.batch_size
        )
        for split, pattern in patterns.items()
        if pattern is not None
    }
    feature_seconds = time.monotonic() - started
    train = read["train"].data
    evaluation = read["test"].data if "test" in read else None
    logging.info(
        "TextEncoderTrainer: %d train images (%d classes), features in %.1f s",
        len(train.labels), len(set(train.labels.tolist())), feature_seconds,
    )  # fmt: skip

    features_warning = degenerate_features_warning(train.features)
    if features_warning:
        logging.warning("TextEncoderTrainer: %s", features_warning)

    chosen = precision.resolve(config.train.precision)  # the hardware is known here
    logging.info("TextEncoderTrainer: precision %s", chosen.describe())
    started = time.monotonic()
    model, history = train_joint_embedding(
        train,
        config.text,
        validation=evaluation,
        seed=config.train.seed,
        callbacks=[keras.callbacks.CSVLogger(os.path.join(args.run_dir, HISTORY_FILE))],
        dtype_policy=chosen.policy,
    )
    metrics = {
        "precision": chosen.describe(),
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
    with tf.io.gfile.GFile(os.path.join(args.run_dir, METRICS_FILE), "w") as f:
        f.write(json.dumps(metrics, indent=2, default=float))
    # last, so a Model artifact with a SavedModel in it is a finished one
    export_text_encoder(model, args.serving_dir)
    return metrics


def _retrieval(model, data) -> dict[str, float]:
    return evaluate_zero_shot(model, data).as_dict()
