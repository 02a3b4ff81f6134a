"""One trainer component's work, apart from TFX: train a stage, then write the Model (Keras
generator + serving SavedModel) and the run summary. The executors only turn their artifacts
into a `StageJobArgs` and call `run_stage_job` (TFX's Trainer idiom: FnArgs -> run_fn).

Where checkpoints live: TFX gives every execution fresh output URIs, so checkpoints kept in the
ModelRun would be lost to a re-run. With a `checkpoint_root` (the pipeline sets one that outlives
executions) they go to `<checkpoint_root>/<key>`, where the key covers what defines the
training trajectory, by content, never by artifact URI (`checkpoint_key`):
- the training split's content fingerprint (its TFRecord files' bytes);
- for Stage-II, the Stage-I generator's weights, by value;
- every config field the trainer reads (its READS) except the run-length and reporting fields
  (`RUN_LENGTH_FIELDS`): the model section, the train section's optimiser, losses and seed,
  the data section's crops and sampling.
A re-run after a kill has the same key and resumes; so does a re-run with a larger `max_steps`,
which extends the training. New data, a new Stage-I or other hyper-parameters give a new key
and a fresh start, never a resumed stale run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import numpy as np
import tensorflow as tf

from stackgan import config_view
from stackgan.config import Config
from stackgan.data.fingerprint import content_fingerprint
from stackgan.serving.export import SavedTextEncoder, export_generator
from stackgan.stages import get_stage
from stackgan.training.runner import StageRun, train_stage

GENERATOR_FILE = "generator.keras"
STAGE1_GENERATOR_FILE = "stage1_generator.keras"
SUMMARY_FILE = "training_summary.json"
SERVING_DIR = "Format-Serving"
# TrainConfig fields that say how long or how often, not what is trained: a run that differs
# only in these continues the same trajectory (precise BatchNorm re-estimates the exported
# statistics from fixed inputs, outside the training stream)
RUN_LENGTH_FIELDS = (
    "max_steps", "stage2_max_steps", "stage1_epochs", "stage2_epochs",
    "checkpoint_every_steps", "sample_every_steps", "log_every_steps", "precise_bn_batches",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class StageJobArgs:
    """What a trainer executor hands its job: paths, counts and the config it was given."""

    stage: int
    config: Config  # the fields the component's READS lists (stackgan.config_view)
    train_pattern: str  # TFRecord files of the training split
    sample_pattern: str  # captions of the sample sheets (the test split when there is one)
    model_dir: str  # writes generator.keras (+ stage1_generator.keras) and Format-Serving/
    run_dir: str  # writes logs/, samples/, training_summary.json (+ checkpoints/ without root)
    num_train_examples: int | None = None  # None: counted from the files
    checkpoint_root: str = ""  # outlives executions: checkpoints go to <root>/<checkpoint_key>
    stage1_model_dir: str | None = None  # Stage-II: the Stage-I Model's directory
    text_encoder_dir: str | None = None  # a text-encoder SavedModel: adds the text signatures


def weights_fingerprint(model) -> str:
    """sha256 over a Keras model's weights (paths, dtypes, shapes and values, in order)."""
    digest = hashlib.sha256()
    for weight in model.weights:
        value = np.asarray(weight.numpy())
        digest.update(f"{weight.path}|{value.dtype}|{value.shape}\n".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    return f"sha256:{digest.hexdigest()}"


def stage1_generator_path(args: StageJobArgs) -> str:
    if not args.stage1_model_dir:
        raise ValueError("Stage-II training needs the Stage-I Model directory")
    path = os.path.join(args.stage1_model_dir, GENERATOR_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"Stage-I generator not found at {path}")
    return path


def checkpoint_key(args: StageJobArgs) -> dict:
    """What defines the stage's training trajectory (see the module docstring), as JSON."""
    config = config_view.given(args.config)
    for field in RUN_LENGTH_FIELDS:
        config.get("train", {}).pop(field, None)
    key = {
        "stage": args.stage,
        "train_data": content_fingerprint(tf.io.gfile.glob(args.train_pattern)),
        "config": config,
    }
    if get_stage(args.stage).refines_stage1:
        import keras

        stage1 = keras.saving.load_model(stage1_generator_path(args), compile=False)
        key["stage1_weights"] = weights_fingerprint(stage1)
    return key


def checkpoint_dir(args: StageJobArgs) -> str:
    """`<checkpoint_root>/<sha256 of checkpoint_key>[:16]`, or the run's own `checkpoints/`."""
    if not args.checkpoint_root:
        return os.path.join(args.run_dir, "checkpoints")
    source = json.dumps(checkpoint_key(args), sort_keys=True)
    return os.path.join(args.checkpoint_root, hashlib.sha256(source.encode()).hexdigest()[:16])


def run_stage_job(args: StageJobArgs) -> dict:
    """Trains (or resumes) the stage and writes the outputs; returns the summary it also writes
    to `<run_dir>/training_summary.json`."""
    stage1_path = stage1_generator_path(args) if get_stage(args.stage).refines_stage1 else None
    ckpt_dir = checkpoint_dir(args)
    run = train_stage(
        args.config,
        args.stage,
        args.train_pattern,
        args.run_dir,
        checkpoint_dir=ckpt_dir,
        sample_pattern=args.sample_pattern,
        stage1_model_path=stage1_path,
        num_examples=args.num_train_examples,
    )
    write_model(run, args.config, args.model_dir, args.text_encoder_dir)
    summary = {
        "stage": args.stage,
        "total_steps": run.total_steps,
        "steps_per_epoch": run.steps_per_epoch,
        "resumed_from_step": run.resumed_from_step,
        "final_logs": run.last_logs,
        "checkpoint": run.checkpoint,
        "checkpoint_dir": ckpt_dir,
        "final_sample_sheet": run.final_sample_sheet,
        "model": args.model_dir,
        # what the networks computed in and why (train.precision=auto differs by machine)
        "precision": run.precision.name,
        "precision_reason": run.precision.reason,
    }
    with tf.io.gfile.GFile(os.path.join(args.run_dir, SUMMARY_FILE), "w") as f:
        f.write(json.dumps(summary, indent=2, sort_keys=True))
    return summary


def write_model(run: StageRun, config: Config, model_dir: str, text_encoder_dir: str | None):
    """`generator.keras` (+ `stage1_generator.keras` for Stage-II) and the serving SavedModel at
    `<model_dir>/Format-Serving` (Stage-I alone, or Stage-I + Stage-II)."""
    tf.io.gfile.makedirs(model_dir)
    run.gan.generator.save(os.path.join(model_dir, GENERATOR_FILE))
    if not get_stage(run.stage).refines_stage1:
        generators = (run.gan.generator,)
    else:
        run.gan.stage1_generator.save(os.path.join(model_dir, STAGE1_GENERATOR_FILE))
        generators = (run.gan.stage1_generator, run.gan.generator)
    text_encoder = SavedTextEncoder(text_encoder_dir) if text_encoder_dir else None
    export_generator(
        os.path.join(model_dir, SERVING_DIR),
        config.model,
        *generators,
        text_encoder=text_encoder,
    )
