"""The ClassifierTrainer component's job, apart from TFX: fine-tune the CUB classifier on the
Examples' splits, export it (the classifier contract, docs/ARCHITECTURE.md) and write run.json.
Its executor only turns artifacts into `ClassifierJobArgs` (TFX's Trainer idiom: FnArgs ->
run_fn) and records the result on the Model artifact."""

from __future__ import annotations

import dataclasses
import json
import logging
import os

import keras
import tensorflow as tf

from stackgan import config_view
from stackgan.config import Config
from stackgan.data.fingerprint import content_fingerprint
from stackgan.evaluation import classifier, classifier_data
from stackgan.training.epoch_backup import open_backup

RUN_FILE = "run.json"
TENSORBOARD_DIR = "logs"


@dataclasses.dataclass(frozen=True)
class ClassifierJobArgs:
    config: Config  # classifier, data crop sizes, encoding and order (component READS)
    train_pattern: str  # TFRecord files of the Examples' train split
    test_pattern: str  # ... and of the test split (both feed the classes and the hold-out)
    serving_dir: str  # the SavedModel goes here (<Model>/Format-Serving)
    run_dir: str  # run.json and TensorBoard logs/
    # outlives executions: a killed run resumes from its epoch backups under it
    # (stackgan/training/epoch_backup.py); "" keeps them in run_dir, lost to a re-run
    backup_root: str = ""


@dataclasses.dataclass(frozen=True)
class ClassifierJobResult:
    holdout_top1_accuracy: float
    weights_source: str
    warning: str | None


def run_classifier_job(args: ClassifierJobArgs) -> ClassifierJobResult:
    config = args.config
    cfg = config.classifier
    # First: tf.data's seeded ops (the shuffle, the augmentation's seed stream) pair their seed
    # with the global one, which an earlier component in this process may have set otherwise.
    keras.utils.set_random_seed(cfg.seed)
    patterns = {"train": args.train_pattern, "test": args.test_pattern}
    indexes = {split: classifier_data.scan_split(p) for split, p in patterns.items()}
    classes = classifier_data.choose_classes(cfg, indexes["train"], indexes["test"])
    holdout = classifier_data.choose_holdout(
        list(indexes.values()), classes, cfg.holdout_fraction, cfg.seed
    )
    train_ds, holdout_ds = classifier_data.make_datasets(
        list(patterns.values()),
        list(indexes.values()),
        config.data,
        cfg,
        classes,
        holdout,
        cfg.seed,
    )
    in_classes = classifier_data.count_images(list(indexes.values()), classes)
    logging.info(
        "ClassifierTrainer: %d classes (%s), %d images, %d held out",
        len(classes), cfg.classes, in_classes, len(holdout),
    )  # fmt: skip

    weights = classifier.choose_weights(cfg)
    if weights.warning:
        logging.warning("ClassifierTrainer: %s", weights.warning)
    models = classifier.build_classifier(cfg, len(classes), weights)
    # TFX's convention: TensorBoard logs in the ModelRun (`tensorboard --logdir <uri>`)
    tensorboard = keras.callbacks.TensorBoard(
        os.path.join(args.run_dir, TENSORBOARD_DIR), write_graph=False
    )
    # what defines this training: the config it reads, both splits' bytes (they give the
    # classes and the hold-out) and the weights it starts from
    backup = open_backup(
        args.backup_root or os.path.join(args.run_dir, "backup"),
        {
            "job": "ClassifierTrainer",
            "config": config_view.given(config),
            "data": {s: content_fingerprint(tf.io.gfile.glob(p)) for s, p in patterns.items()},
            "weights": {"source": weights.source, "file": weights.path},
        },
    )
    phases = classifier.fine_tune(
        models,
        train_ds,
        holdout_ds,
        cfg,
        callbacks=[tensorboard],
        backups=lambda phase: open_backup(backup.directory, {"phase": phase}),
    )
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
    run = {
        **info,
        "holdout_image_ids": holdout.tolist(),
        "phases": phases,
        "config": config_view.given(config),  # the fields it was given
    }
    with tf.io.gfile.GFile(os.path.join(args.run_dir, RUN_FILE), "w") as f:
        f.write(json.dumps(run, indent=2))
    # last, so a Model artifact with a SavedModel in it is a finished one
    classifier.export_classifier(models, args.serving_dir, info)
    backup.discard()
    return ClassifierJobResult(accuracy, weights.source, weights.warning)
