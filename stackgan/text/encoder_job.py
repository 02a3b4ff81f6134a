"""The TextEncoderTrainer component's job, apart from TFX: the char-CNN-RNN text encoder trained
on the train split's captions, exported (stackgan.text.export). Its executor only turns
artifacts into `TextEncoderJobArgs` (TFX's Trainer idiom: FnArgs -> run_fn).

Two objectives:
- "ds_sje" (the dataset has no embeddings): against the frozen classifier's image features,
  scored zero-shot on the test split; the CaptionEmbedder then embeds every caption with it.
- "distill" (the trainers use the dataset's embeddings pickle): regress those embeddings from
  the captions (stackgan/text/distill.py), scored by cosine on the test split's captions, so
  the pushed generator takes sentences in the space it was trained on."""

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
from stackgan.data.fingerprint import content_fingerprint
from stackgan.evaluation.classifier import load_classifier
from stackgan.text import distill
from stackgan.text.examples_reader import read_split_features
from stackgan.text.export import export_caption_encoder, export_text_encoder
from stackgan.text.training import (
    degenerate_features_warning,
    evaluate_zero_shot,
    train_joint_embedding,
)
from stackgan.training import precision
from stackgan.training.epoch_backup import EpochBackup, open_backup

METRICS_FILE = "metrics.json"
TENSORBOARD_DIR = "logs"
OBJECTIVES = ("ds_sje", "distill")


@dataclasses.dataclass(frozen=True)
class TextEncoderJobArgs:
    config: Config  # text, data crops, classifier.batch_size, train.precision (component READS)
    train_pattern: str  # TFRecord files of the train split: what the encoder learns from
    eval_pattern: str | None  # ... of the test split, for the zero-shot score (None: none)
    classifier_dir: str | None  # the classifier SavedModel: the image side (ds_sje only)
    serving_dir: str  # the text-encoder SavedModel goes here (<Model>/Format-Serving)
    run_dir: str  # history.csv, metrics.json, TensorBoard logs/
    objective: str = "ds_sje"  # one of OBJECTIVES (module docstring)
    # outlives executions: a killed run resumes from its epoch backup under it
    # (stackgan/training/epoch_backup.py); "" keeps the backup in run_dir, lost to a re-run
    backup_root: str = ""


def run_text_encoder_job(args: TextEncoderJobArgs) -> dict:
    """Trains and exports the encoder; returns the metrics also written to metrics.json."""
    if args.objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {args.objective!r}")
    if args.objective == "distill":
        return _run_distillation(args)
    if args.classifier_dir is None:
        raise ValueError("the ds_sje objective needs the classifier (classifier_dir)")
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
    backup = _open_backup(args)
    model, history, seconds = _train(train_joint_embedding, train, evaluation, args, chosen, backup)
    metrics = {
        "precision": chosen.describe(),
        "train_seconds": seconds,
        "resumed_from_epoch": backup.resumed_from_epoch,
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
    backup.finish(args.run_dir)
    return metrics


def _run_distillation(args: TextEncoderJobArgs) -> dict:
    config = args.config
    train = distill.read_caption_targets(args.train_pattern)
    evaluation = distill.read_caption_targets(args.eval_pattern) if args.eval_pattern else None
    chosen = precision.resolve(config.train.precision)
    logging.info(
        "TextEncoderTrainer: distilling %d captions' embeddings, precision %s",
        len(train.captions), chosen.describe(),
    )  # fmt: skip
    backup = _open_backup(args)
    encoder, history, seconds = _train(
        distill.train_distilled_encoder, train, evaluation, args, chosen, backup
    )
    train_mean = train.embeddings.mean(axis=0)
    metrics = {
        "objective": "distill",
        "precision": chosen.describe(),
        "train_seconds": seconds,
        "resumed_from_epoch": backup.resumed_from_epoch,
        "final_loss": history["loss"][-1],
        "train_captions": distill.distillation_scores(encoder, train, train_mean),
        "test_captions": (
            distill.distillation_scores(encoder, evaluation, train_mean) if evaluation else None
        ),
        "splits": {
            split: {
                "images_read": t.images_read,
                "blank_captions_dropped": t.blank_captions_dropped,
            }
            for split, t in (("train", train), ("test", evaluation))
            if t is not None
        },
        "history": history,
        "config": config_view.given(config.text),
    }
    if evaluation is not None:
        scores = metrics["test_captions"]
        logging.info(
            "TextEncoderTrainer: cosine %.3f with the dataset's embeddings on %d test captions"
            " (one embedding for all: %.3f)",
            scores["cosine"], scores["captions"], scores["input_blind_cosine"],
        )  # fmt: skip
    with tf.io.gfile.GFile(os.path.join(args.run_dir, METRICS_FILE), "w") as f:
        f.write(json.dumps(metrics, indent=2, default=float))
    export_caption_encoder(encoder, args.serving_dir)  # last: a finished artifact
    backup.finish(args.run_dir)
    return metrics


def _open_backup(args: TextEncoderJobArgs) -> EpochBackup:
    """The epoch backup keyed by what defines this training: the objective, the config the
    component reads, the training split's bytes and (ds_sje) the classifier's weights."""
    key = {
        "job": "TextEncoderTrainer",
        "objective": args.objective,
        "config": config_view.given(args.config),
        "train_data": content_fingerprint(tf.io.gfile.glob(args.train_pattern)),
    }
    if args.classifier_dir:
        variables = os.path.join(args.classifier_dir, "variables", "*")
        key["classifier_weights"] = content_fingerprint(tf.io.gfile.glob(variables))
    return open_backup(args.backup_root or os.path.join(args.run_dir, "backup"), key)


def _train(train_fn, train, evaluation, args: TextEncoderJobArgs, chosen, backup: EpochBackup):
    """(model, history of every epoch, seconds) of either objective's training function, with
    the job's text config, seed and precision, resuming from `backup` where a kill left it."""
    if backup.resumed_from_epoch:
        logging.info(
            "TextEncoderTrainer: resuming after epoch %d from %s",
            backup.resumed_from_epoch, backup.directory,
        )  # fmt: skip
    # the user's view of a long run: a line per epoch, and the curves in TensorBoard
    tensorboard = keras.callbacks.TensorBoard(
        os.path.join(args.run_dir, TENSORBOARD_DIR), write_graph=False
    )
    started = time.monotonic()
    model, _ = train_fn(
        train,
        args.config.text,
        validation=evaluation,
        seed=args.config.text.seed,
        callbacks=[*backup.callbacks(), tensorboard],
        verbose=2,
        dtype_policy=chosen.policy,
    )
    return model, backup.history(), time.monotonic() - started


def _retrieval(model, data) -> dict[str, float]:
    return evaluate_zero_shot(model, data).as_dict()
